import FuncdCore

/// The life of one HTTP connection as a value: which part of a request is arriving and since
/// when, how many requests wait for their answer, whether the client still sends and whether the
/// connection is closing. ``FunctionHTTPHandler`` tells it what happened and does what it
/// returns; the timeouts, the read gate and the choice between closing and lingering are decided
/// here, so they are tested without a socket (`ConnectionStateMachineTests`).
///
/// Times are monotonic nanoseconds, passed in by the caller.
struct ConnectionStateMachine {
    /// The limits in the unit the machine counts in.
    struct Limits {
        var headerTimeout: UInt64
        var bodyTimeout: UInt64
        var idleTimeout: UInt64
        var lingerTimeout: UInt64
        var maxPipelined: Int

        init(_ limits: HTTPLimits) {
            func nanoseconds(_ seconds: Double) -> UInt64 { UInt64(seconds * 1e9) }
            headerTimeout = nanoseconds(limits.headerTimeoutSeconds)
            bodyTimeout = nanoseconds(limits.bodyTimeoutSeconds)
            idleTimeout = nanoseconds(limits.idleTimeoutSeconds)
            lingerTimeout = nanoseconds(limits.lingerTimeoutSeconds)
            maxPipelined = limits.maxPipelined
        }
    }

    /// What arrives from the client.
    enum Reading: Equatable {
        /// Between requests: nothing of the next one has arrived. `fresh` until the first request
        /// (a connection that never sends is held to the head timeout, not the idle one).
        case idle(since: UInt64, fresh: Bool)
        /// Bytes of a head have arrived; the head is not complete.
        case head(since: UInt64)
        /// The body of an accepted request; `since` is its last progress.
        case body(since: UInt64)
        /// The body of a request refused from its head: its bytes are read and dropped.
        case discarding(since: UInt64)
        /// The client shut down its sending side: no more requests come.
        case inputClosed
    }

    /// What goes to the client.
    enum Writing: Equatable {
        case open
        /// An answer said `Connection: close`; nothing more is read into a call.
        case closing
        /// The answer has gone and our side is shut; what the client still sends is dropped
        /// until it closes or `lingerTimeout` passes (so it reads the answer, not a reset).
        case lingering(since: UInt64)
        case closed
    }

    /// What the handler does after an answer has been written.
    enum AfterAnswer: Equatable {
        /// Answer the next waiting request, if any, and read on.
        case next
        /// Close once the answer is flushed.
        case close
        /// Shut our side once the answer is flushed, then drop input until the client is done.
        case linger
    }

    let limits: Limits
    private(set) var reading: Reading
    private(set) var writing: Writing = .open
    /// Requests read completely (or refused from their head) and not yet answered.
    private(set) var unanswered = 0
    /// Whether one of them is being answered now.
    private(set) var answering = false
    /// Since when the channel has had more answer bytes waiting than the send buffer allows.
    private(set) var unwritableSince: UInt64?
    /// Whether reading stopped because the machine said so (and must be asked for again).
    private(set) var readPaused = false

    init(limits: Limits, now: UInt64) {
        self.limits = limits
        self.reading = .idle(since: now, fresh: true)
    }

    // MARK: - Reading

    /// Raw bytes arrived: a new request has begun, or a body made progress.
    mutating func bytesArrived(now: UInt64) {
        switch reading {
        case .idle: reading = .head(since: now)
        case .body: reading = .body(since: now)
        case .discarding: reading = .discarding(since: now)
        case .head, .inputClosed: break
        }
    }

    /// A head is complete; `refused` when it was answered from the head (413, 431, 503).
    mutating func headReceived(now: UInt64, refused: Bool) {
        guard reading != .inputClosed else { return }
        if refused {
            reading = .discarding(since: now)
            unanswered += 1
        } else {
            reading = .body(since: now)
        }
    }

    /// A body was refused after part of it arrived (a chunked body past a limit).
    mutating func bodyRefused(now: UInt64) {
        guard case .body = reading else { return }
        reading = .discarding(since: now)
        unanswered += 1
    }

    /// The request's end arrived; `complete` when it is a request to answer (not a refused one,
    /// whose answer was counted at its head).
    mutating func requestEnded(now: UInt64, complete: Bool) {
        if reading != .inputClosed { reading = .idle(since: now, fresh: false) }
        if complete { unanswered += 1 }
    }

    /// The client shut down its sending side (or, while lingering, finished sending).
    /// Returns true when the connection should close now.
    mutating func inputClosed() -> Bool {
        if case .lingering = writing { return true }
        reading = .inputClosed
        return unanswered == 0
    }

    // MARK: - Answering

    /// Whether the next waiting request may be answered now.
    func mayAnswer(writable: Bool) -> Bool {
        !answering && unanswered > 0 && writable && writing == .open
    }

    mutating func answerStarted() { answering = true }

    /// An answer has been written. `keepAlive`: it did not say `Connection: close`.
    mutating func answered(now: UInt64, keepAlive: Bool) -> AfterAnswer {
        answering = false
        unanswered = max(0, unanswered - 1)
        guard keepAlive else {
            writing = .closing
            switch reading {
            case .body, .discarding, .head: return .linger
            case .idle, .inputClosed: return .close
            }
        }
        switch reading {
        case .inputClosed where unanswered == 0:
            writing = .closing
            return .close
        case .head:
            // Part of the next head arrived while this answer was pending: its time starts now.
            reading = .head(since: now)
        case .idle(_, let fresh):
            // The client has been waiting for this answer, not idle: idle time starts now.
            reading = .idle(since: now, fresh: fresh)
        default: break
        }
        return .next
    }

    mutating func lingerStarted(now: UInt64) { writing = .lingering(since: now) }
    mutating func closed() { writing = .closed }

    // MARK: - The read gate

    /// Whether to ask the channel for more bytes. Reading stops while answers are not being
    /// taken by the client and while enough requests are read ahead; a refused body and a
    /// lingering close are always read (and dropped).
    func shouldRead(writable: Bool) -> Bool {
        switch writing {
        case .lingering: return true
        case .closing, .closed: return false
        case .open: break
        }
        if case .discarding = reading { return true }
        if reading == .inputClosed { return false }
        return writable && unanswered <= limits.maxPipelined
    }

    /// Reading was asked for and refused by ``shouldRead(writable:)``.
    mutating func readDeferred() { readPaused = true }

    /// The gate opened again: time the client spent waiting on us does not count against it.
    mutating func readResumed(now: UInt64) {
        readPaused = false
        switch reading {
        case .head: reading = .head(since: now)
        case .body: reading = .body(since: now)
        case .discarding: reading = .discarding(since: now)
        case .idle, .inputClosed: break
        }
    }

    mutating func writabilityChanged(writable: Bool, now: UInt64) {
        unwritableSince = writable ? nil : (unwritableSince ?? now)
    }

    // MARK: - Timeouts

    /// What has run out at `now`, if anything.
    enum Expiry: Equatable {
        case close(ConnectionClose)
        /// The lingering after an early answer is over.
        case lingerOver
    }

    func expiry(now: UInt64) -> Expiry? {
        switch writing {
        case .closed: return nil
        case .lingering(let since):
            return now &- since >= limits.lingerTimeout ? .lingerOver : nil
        case .open, .closing: break
        }
        if let since = unwritableSince, now &- since >= limits.bodyTimeout { return .close(.sendTimeout) }
        // While the client waits on us (a call running, reading paused), its clock stops.
        if readPaused { return nil }
        switch reading {
        case .idle(let since, let fresh):
            guard unanswered == 0 else { return nil }
            let limit = fresh ? limits.headerTimeout : limits.idleTimeout
            return now &- since >= limit ? .close(fresh ? .headerTimeout : .idleTimeout) : nil
        case .head(let since):
            guard unanswered == 0 else { return nil }
            return now &- since >= limits.headerTimeout ? .close(.headerTimeout) : nil
        case .body(let since), .discarding(let since):
            return now &- since >= limits.bodyTimeout ? .close(.bodyTimeout) : nil
        case .inputClosed:
            return nil
        }
    }

    /// How long this connection has been idle or waiting for a head, when closing it to admit
    /// another costs nobody an answer; nil otherwise. The oldest goes first.
    func evictableSince() -> UInt64? {
        guard unanswered == 0, writing == .open else { return nil }
        switch reading {
        case .idle(let since, _), .head(let since): return since
        case .body, .discarding, .inputClosed: return nil
        }
    }
}
