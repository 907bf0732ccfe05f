import Synchronization

/// The rest of an answer that a handler writes in pieces (Node's `extensions.response`): the
/// host writes, the transport takes and sends, and a writer that gets ahead of a slow client is
/// paused rather than buffered without bound.
///
/// Writes and the end arrive on the host's thread; the transport is told through `notify`
/// (once per batch of events, on whatever thread wrote) and takes them on its own thread.
public final class ResponseStream: Sendable {
    public enum Event: Sendable {
        case bytes([UInt8])
        /// The answer is complete.
        case end
        /// The answer cannot be completed (the handler failed, or its deadline passed): the
        /// transport must make the client see a broken answer, not a short one.
        case abort(String)
    }

    /// Bytes written and not yet sent beyond which a writer is asked to pause.
    public static let highWater = 256 * 1024

    private struct State {
        var events: [Event] = []
        /// Written and not yet reported sent by the transport.
        var unsent = 0
        var notify: (@Sendable () -> Void)?
        var notified = false
        var closed = false
        var detached = false
        var paused = false
    }

    private let state = Mutex(State())
    private let onDrain: @Sendable () -> Void

    /// `onDrain` runs (on the transport's thread) when a paused writer may go on.
    public init(onDrain: @escaping @Sendable () -> Void) {
        self.onDrain = onDrain
    }

    // MARK: - The host's side

    /// Queues `bytes` for the client; false asks the writer to pause until `onDrain`.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return true }
        let (notify, more): ((@Sendable () -> Void)?, Bool) = state.withLock { state in
            if state.closed || state.detached { return (nil, true) }
            state.events.append(.bytes(bytes))
            state.unsent += bytes.count
            if state.unsent > Self.highWater { state.paused = true }
            return (Self.claimNotify(&state), !state.paused)
        }
        notify?()
        return more
    }

    /// The answer is complete.
    public func finish() { close(with: .end) }

    /// The answer breaks off; `reason` is for the log (`timeout` when the deadline passed).
    public func abort(_ reason: String) { close(with: .abort(reason)) }

    private func close(with event: Event) {
        let notify: (@Sendable () -> Void)? = state.withLock { state in
            guard !state.closed else { return nil }
            state.closed = true
            if state.detached { return nil }
            state.events.append(event)
            return Self.claimNotify(&state)
        }
        notify?()
    }

    private static func claimNotify(_ state: inout State) -> (@Sendable () -> Void)? {
        guard let notify = state.notify, !state.notified else { return nil }
        state.notified = true
        return notify
    }

    // MARK: - The transport's side

    /// `notify` runs whenever events wait to be taken (at once if some already do).
    public func attach(_ notify: @escaping @Sendable () -> Void) {
        let waiting = state.withLock { state in
            state.notify = notify
            state.notified = !state.events.isEmpty
            return state.notified
        }
        if waiting { notify() }
    }

    /// The events written since the last call.
    public func take() -> [Event] {
        state.withLock { state in
            state.notified = false
            defer { state.events.removeAll(keepingCapacity: true) }
            return state.events
        }
    }

    /// `count` bytes taken earlier have been handed to the client.
    public func sent(_ count: Int) {
        let resume = state.withLock { state in
            state.unsent -= count
            guard state.paused, state.unsent <= Self.highWater / 2 else { return false }
            state.paused = false
            return true
        }
        if resume { onDrain() }
    }

    /// The client is gone: what the handler writes from now on is dropped, and a paused writer
    /// is let go so that it can finish.
    public func detach() {
        let resume = state.withLock { state in
            state.detached = true
            state.events.removeAll()
            defer { state.paused = false }
            return state.paused
        }
        if resume { onDrain() }
    }

    /// True once the client has gone.
    public var isDetached: Bool { state.withLock { $0.detached } }
}
