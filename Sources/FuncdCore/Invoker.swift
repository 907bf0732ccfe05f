import Logging
import Synchronization

/// Sits between the transports and the language host: applies the deadline, records the
/// metrics, and hands finished invocations back to their sinks in batches.
///
/// The deadline belongs here, not to the language: at `FUNC_TIMEOUT` the caller gets its 408 on
/// time whatever the handler does; then the host is asked to interrupt it, and if the handler
/// has not let go of its interpreter thread after the grace period the process is declared stuck
/// (``onStuck``), which ends it so that Kubernetes (or the supervisor) starts a fresh one.
///
/// In-flight invocations sit in a doubly linked list in submission order. Every call has the same
/// timeout, so that order is also deadline order: the watchdog sleeps until the head's deadline,
/// and submitting and finishing are O(1) under one uncontended lock.
///
/// `@unchecked Sendable`: the list and the grace queue are only touched under `lock`.
public final class Invoker: @unchecked Sendable {
    public let host: any FunctionHost
    public let metrics: FunctionMetrics
    public let timeoutSeconds: Double
    private let timeoutNanoseconds: UInt64
    private let graceNanoseconds: UInt64
    private let logger: Logger
    private let onStuck: @Sendable (Invocation) -> Void

    private let lock = ConditionLock()
    private var head: Invocation?
    private var tail: Invocation?
    /// Calls submitted and not yet answered; atomic so that the transports can check it for
    /// overload on every request without the lock.
    private let inFlight = Atomic<Int>(0)
    private var grace: [(due: UInt64, invocation: Invocation)] = []
    private var graceStart = 0
    /// When the watchdog will next look at the list; 0 while it is awake (it looks again before
    /// sleeping). A submit whose deadline comes sooner must wake it.
    private var watchdogWakesAt: UInt64 = 0

    /// The states a deadline can take a call out of.
    private static let expirable: [Invocation.State] = [.queued, .running, .streaming]

    /// The answer of a call that ran past its deadline (the text the kubeless runtime used).
    static let timeoutBody = Array("Timeout while processing the function\n".utf8)

    public init(
        host: any FunctionHost,
        timeoutSeconds: Double,
        graceSeconds: Double,
        metrics: FunctionMetrics,
        logger: Logger,
        onStuck: @escaping @Sendable (Invocation) -> Void
    ) {
        self.host = host
        self.metrics = metrics
        self.timeoutSeconds = timeoutSeconds
        self.timeoutNanoseconds = UInt64(timeoutSeconds * 1e9)
        self.graceNanoseconds = UInt64(graceSeconds * 1e9)
        self.logger = logger
        self.onStuck = onStuck
        host.attach(self)
    }

    /// The number of calls submitted and not yet answered.
    public var inFlightCount: Int { inFlight.load(ordering: .relaxed) }

    /// Starts the deadline of each invocation and queues the batch on the host.
    public func submit(_ batch: [Invocation]) {
        guard !batch.isEmpty else { return }
        let now = MonotonicClock.nanoseconds()
        let deadline = now &+ timeoutNanoseconds
        lock.lock()
        for invocation in batch {
            invocation.deadline = deadline
            append(invocation)
        }
        inFlight.add(batch.count, ordering: .relaxed)
        let wake = deadline < watchdogWakesAt
        if wake { watchdogWakesAt = 0 }
        lock.unlock()
        if wake { lock.signal() }
        host.submit(batch)
    }

    /// Takes back a call whose caller has gone (a client that disconnected) if it has not
    /// started: the host skips it, and its place in `FUNC_CONCURRENCY` + `FUNC_QUEUE` is free at
    /// once instead of when it would have run. A call already running goes on; its answer is
    /// dropped. Returns whether the call was taken back.
    @discardableResult
    public func abandon(_ invocation: Invocation) -> Bool {
        guard invocation.transition(from: .queued, to: .abandoned) else { return false }
        lock.withLock { unlink(invocation) }
        inFlight.subtract(1, ordering: .relaxed)
        metrics.abandonedCalls.increment()
        return true
    }

    /// Called by the host, on its own thread, with invocations whose handler returned (their
    /// `result` set through ``Invocation/complete(with:)``), or whose streamed answer ended.
    /// Answers each one unless its deadline already answered it.
    public func finished(_ batch: [Invocation]) {
        var answered: [Invocation] = []
        var ended: [Invocation] = []
        answered.reserveCapacity(batch.count)
        let now = MonotonicClock.nanoseconds()
        for invocation in batch {
            invocation.released.store(true, ordering: .releasing)
            // `finishedAt` is written only by the winner of the state: when the deadline won,
            // the watchdog writes it (in `expire`), maybe at this very moment.
            if invocation.transition(from: .running, to: .completed) {
                invocation.finishedAt = now
                invocation.result = invocation.hostResult
                answered.append(invocation)
            } else if invocation.transition(from: .streaming, to: .completed) {
                // Its answer went out through its stream; only the books are left.
                invocation.finishedAt = now
                ended.append(invocation)
            } else {
                logger.debug(
                    "late result dropped",
                    metadata: invocation.logMetadata())
            }
        }
        guard !answered.isEmpty || !ended.isEmpty else { return }
        lock.withLock {
            for invocation in answered { unlink(invocation) }
            for invocation in ended { unlink(invocation) }
        }
        inFlight.subtract(answered.count + ended.count, ordering: .relaxed)
        for invocation in answered { record(invocation) }
        for invocation in ended { record(invocation) }
        if !answered.isEmpty { Self.deliver(answered) }
    }

    private func record(_ invocation: Invocation) {
        metrics.record(
            method: invocation.method, nanoseconds: invocation.finishedAt &- invocation.startedAt,
            failed: invocation.streamBrokeOff || (invocation.hostResult?.isFailure ?? true), timedOut: false)
    }

    /// Called by the host with running invocations whose handler started a streamed answer
    /// (`result.stream` set through ``Invocation/complete(with:)``): their head goes out now, the
    /// rest through the stream, and ``finished(_:)`` closes their books. The deadline still
    /// applies: when it passes first, the stream is aborted.
    public func started(_ batch: [Invocation]) {
        var streaming: [Invocation] = []
        for invocation in batch {
            if invocation.transition(from: .running, to: .streaming) {
                invocation.result = invocation.hostResult
                streaming.append(invocation)
            } else {
                invocation.stream?.abort("timeout")
            }
        }
        if !streaming.isEmpty { Self.deliver(streaming) }
    }

    /// Hands `batch` to the sinks, one call per distinct sink.
    static func deliver(_ batch: [Invocation]) {
        guard let first = batch.first else { return }
        if batch.allSatisfy({ $0.sink === first.sink }) {
            first.sink.deliver(batch)
            return
        }
        var groups: [(sink: any InvocationSink, items: [Invocation])] = []
        for invocation in batch {
            if let index = groups.firstIndex(where: { $0.sink === invocation.sink }) {
                groups[index].items.append(invocation)
            } else {
                groups.append((invocation.sink, [invocation]))
            }
        }
        for group in groups { group.sink.deliver(group.items) }
    }

    // MARK: - The deadline list

    private func append(_ invocation: Invocation) {
        invocation.linked = true
        invocation.previous = tail
        invocation.next = nil
        if let tail { tail.next = invocation } else { head = invocation }
        tail = invocation
    }

    private func unlink(_ invocation: Invocation) {
        guard invocation.linked else { return }
        invocation.linked = false
        let previous = invocation.previous
        let next = invocation.next
        if let previous { previous.next = next } else { head = next }
        if let next { next.previous = previous } else { tail = previous }
        invocation.next = nil
        invocation.previous = nil
    }

    // MARK: - The watchdog

    /// The deadline watchdog: runs on the calling thread for the life of the process. Whoever
    /// makes an Invoker starts it on a thread of its own (`startWatchdog()`, in FuncdSystem), so
    /// that FuncdCore itself starts no thread.
    public func runWatchdog() -> Never {
        lock.lock()
        while true {
            let now = MonotonicClock.nanoseconds()
            var expired: [(Invocation, Invocation.State)] = []
            while let first = head, first.deadline <= now {
                unlink(first)
                for state in Self.expirable where first.transition(from: state, to: .timedOut) {
                    expired.append((first, state))
                    break
                }
            }
            inFlight.subtract(expired.count, ordering: .relaxed)
            var stuck: [Invocation] = []
            while graceStart < grace.count, grace[graceStart].due <= now {
                let entry = grace[graceStart]
                graceStart += 1
                if !entry.invocation.released.load(ordering: .acquiring) { stuck.append(entry.invocation) }
            }
            if graceStart > 64 && graceStart * 2 > grace.count {
                grace.removeFirst(graceStart)
                graceStart = 0
            }
            for (invocation, state) in expired where state != .queued {
                grace.append((now &+ graceNanoseconds &* (host.killsInterruptedCalls ? 2 : 1), invocation))
            }

            if !expired.isEmpty || !stuck.isEmpty {
                lock.unlock()
                expire(expired)
                for invocation in stuck { declareStuck(invocation) }
                lock.lock()
                continue
            }

            let nextDue = [head?.deadline, graceStart < grace.count ? grace[graceStart].due : nil]
                .compactMap { $0 }.min()
            if let nextDue {
                watchdogWakesAt = nextDue
                lock.wait(untilNanoseconds: nextDue)
            } else {
                watchdogWakesAt = .max
                lock.wait()
            }
            watchdogWakesAt = 0
        }
    }

    private func expire(_ expired: [(Invocation, Invocation.State)]) {
        guard !expired.isEmpty else { return }
        let now = MonotonicClock.nanoseconds()
        var answers: [Invocation] = []
        for (invocation, state) in expired {
            invocation.finishedAt = now
            // A call taken out of `queued` never started: its time counts from submission, and
            // its `startedAt` is not read (a host's `tryStart` may be writing it right now).
            let started = state == .queued ? invocation.submittedAt : invocation.startedAt
            metrics.record(method: invocation.method, nanoseconds: now &- started, failed: true, timedOut: true)
            logger.warning(
                "handler timed out",
                metadata: invocation.logMetadata([LogKeys.timeout: "\(timeoutSeconds)"]))
            if state == .streaming {
                // Its head is out: the client can only be shown a broken answer. The stream comes
                // from its atomic slot, not from `hostResult`, which is the host thread's.
                invocation.stream?.abort("timeout")
            } else {
                invocation.result = InvocationResult(
                    status: 408,
                    headers: [("Content-Type", "text/plain; charset=utf-8")],
                    body: Self.timeoutBody,
                    error: "timeout")
                answers.append(invocation)
            }
        }
        // Answer first, then interrupt: the caller's 408 must not wait on the interpreter.
        if !answers.isEmpty { Self.deliver(answers) }
        for (invocation, state) in expired {
            if state == .queued { host.expiredWaiting(invocation) } else { host.interrupt(invocation) }
        }
    }

    private func declareStuck(_ invocation: Invocation) {
        metrics.stuckHandlers.increment()
        logger.critical(
            "handler could not be interrupted; funcd stops so that a fresh process replaces it",
            metadata: invocation.logMetadata())
        onStuck(invocation)
    }
}

extension Invocation {
    /// Stores the handler's result; the host calls this before ``Invoker/finished(_:)``, which
    /// publishes it as ``result`` only if the deadline has not answered the call already. A
    /// streamed result's stream also goes to ``stream``, where the watchdog can reach it.
    public func complete(with result: InvocationResult) {
        if let stream = result.stream { _ = streamSlot.storeIfNil(stream) }
        self.hostResult = result
    }
}
