import Synchronization

/// Random bits for ids that must be unique, not secret (Kafka event ids, trace and span ids):
/// xorshift64* seeded once from the system generator, because an id per request must not cost a
/// system call. One lock-guarded state for the process; the lock is held for a few instructions.
public final class RandomBits: Sendable {
    public static let shared = RandomBits()
    private let state: Mutex<UInt64>

    public init() {
        var system = SystemRandomNumberGenerator()
        state = Mutex(system.next() | 1)
    }

    /// 64 random bits.
    public func next() -> UInt64 {
        state.withLock { Self.step(&$0) }
    }

    /// 192 random bits, under one lock: a trace id and a span id.
    public func next192() -> (UInt64, UInt64, UInt64) {
        state.withLock { state in (Self.step(&state), Self.step(&state), Self.step(&state)) }
    }

    /// 128 random bits, under one lock.
    public func next128() -> (UInt64, UInt64) {
        state.withLock { state in (Self.step(&state), Self.step(&state)) }
    }

    @inline(__always)
    private static func step(_ state: inout UInt64) -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}

/// ``RandomBits/shared`` as a `RandomNumberGenerator`, for APIs that take one.
public struct SharedRandomGenerator: RandomNumberGenerator {
    public init() {}
    public mutating func next() -> UInt64 { RandomBits.shared.next() }
}
