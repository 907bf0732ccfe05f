import FuncdCore
import NIOCore

/// Everything one event loop shares among its connections: the batch of calls read in this
/// tick (submitted to the Invoker once, at the end of the tick), the sink that takes answers
/// back in batches, the access log buffer (written once per tick), and the loop's connections,
/// swept by one repeating timer for their timeouts (a timer per connection would cost a
/// schedule and a cancel per request).
///
/// `@unchecked Sendable`: the mutable fields are touched only on `eventLoop`; `deliver` is the
/// one entry from other threads and only schedules work onto the loop.
final class EventLoopLane: InvocationSink, @unchecked Sendable {
    let eventLoop: any EventLoop
    let invoker: Invoker
    let accessLog: AccessLog

    private var pending: [Invocation] = []
    private var submitScheduled = false
    private var connections: [ObjectIdentifier: FunctionHTTPHandler] = [:]
    private var sweep: RepeatedTask?
    /// How often the sweep looks: a quarter of the shortest timeout, within 50 ms...1 s.
    private let sweepInterval: TimeAmount

    init(eventLoop: any EventLoop, invoker: Invoker, accessLog: AccessLog, limits: HTTPLimits) {
        self.eventLoop = eventLoop
        self.invoker = invoker
        self.accessLog = accessLog
        let shortest = min(
            limits.headerTimeoutSeconds, limits.bodyTimeoutSeconds, limits.idleTimeoutSeconds,
            limits.lingerTimeoutSeconds)
        self.sweepInterval = .milliseconds(Int64(max(50, min(1000, shortest * 250))))
        pending.reserveCapacity(64)
    }

    // MARK: - Connections and their timeouts

    func register(_ connection: FunctionHTTPHandler) {
        connections[ObjectIdentifier(connection)] = connection
        guard sweep == nil else { return }
        sweep = eventLoop.scheduleRepeatedTask(initialDelay: sweepInterval, delay: sweepInterval) { [weak self] task in
            guard let self else {
                task.cancel()
                return
            }
            let now = MonotonicClock.nanoseconds()
            for connection in connections.values { connection.checkTimeouts(now: now) }
        }
    }

    func unregister(_ connection: FunctionHTTPHandler) {
        connections.removeValue(forKey: ObjectIdentifier(connection))
    }

    /// The connection on this loop that has waited longest for a request, if any may be closed.
    func oldestEvictable(excluding newcomer: FunctionHTTPHandler) -> FunctionHTTPHandler? {
        var oldest: (since: UInt64, connection: FunctionHTTPHandler)?
        for connection in connections.values where connection !== newcomer {
            guard let since = connection.evictableSince else { continue }
            if oldest == nil || since < oldest!.since { oldest = (since, connection) }
        }
        return oldest?.connection
    }

    /// Calls read in this tick and not yet handed to the Invoker.
    var pendingCount: Int { pending.count }

    /// Queues a call; all calls read in one tick reach the host as one batch.
    func submit(_ invocation: Invocation) {
        pending.append(invocation)
        guard !submitScheduled else { return }
        submitScheduled = true
        // Tasks run after the tick's I/O: by then every readable connection has been read.
        eventLoop.execute { [self] in
            submitScheduled = false
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            invoker.submit(batch)
        }
    }

    func deliver(_ batch: [Invocation]) {
        eventLoop.execute {
            for invocation in batch {
                (invocation.reply as? PendingResponse)?.send(invocation)
            }
        }
    }
}
