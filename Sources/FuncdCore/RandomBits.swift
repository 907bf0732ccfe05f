import Synchronization

/// Random bits for ids that must be unique, not secret (Kafka event ids, trace and span ids):
/// xorshift64* seeded once from the system generator, because an id per request must not cost a
/// system call. One state for the process, advanced by compare-and-swap: as cheap as a lock
/// held for a few instructions, and seen by ThreadSanitizer, which does not see the futex under
/// Synchronization's `Mutex` on Linux and reported the event loops' calls as a race.
public final class RandomBits: Sendable {
    public static let shared = RandomBits()
    private let state: Atomic<UInt64>

    public init() {
        var system = SystemRandomNumberGenerator()
        state = Atomic(system.next() | 1)
    }

    /// 64 random bits.
    public func next() -> UInt64 {
        advance(by: 1).0
    }

    /// 192 random bits from one advance of the state: a trace id and a span id.
    public func next192() -> (UInt64, UInt64, UInt64) {
        advance(by: 3)
    }

    /// 128 random bits from one advance of the state.
    public func next128() -> (UInt64, UInt64) {
        let bits = advance(by: 2)
        return (bits.0, bits.1)
    }

    /// Steps the shared state `count` (1...3) times at once; returns the outputs (unused ones 0).
    /// A caller that loses the race steps again from the state that won, so no two callers ever
    /// get the same bits.
    @inline(__always)
    private func advance(by count: Int) -> (UInt64, UInt64, UInt64) {
        var current = state.load(ordering: .relaxed)
        while true {
            var next = current
            let first = Self.step(&next)
            let second = count > 1 ? Self.step(&next) : 0
            let third = count > 2 ? Self.step(&next) : 0
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: next, ordering: .relaxed)
            if exchanged { return (first, second, third) }
            current = original
        }
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
