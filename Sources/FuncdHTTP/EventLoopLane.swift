import FuncdCore
import NIOCore

/// Everything one event loop shares among its connections: the batch of calls read in this
/// tick (submitted to the Invoker once, at the end of the tick), the sink that takes answers
/// back in batches, and the access log buffer (written once per tick).
///
/// `@unchecked Sendable`: the mutable fields are touched only on `eventLoop`; `deliver` is the
/// one entry from other threads and only schedules work onto the loop.
final class EventLoopLane: InvocationSink, @unchecked Sendable {
    let eventLoop: any EventLoop
    let invoker: Invoker
    let accessLog: AccessLog

    private var pending: [Invocation] = []
    private var submitScheduled = false

    init(eventLoop: any EventLoop, invoker: Invoker, accessLog: AccessLog) {
        self.eventLoop = eventLoop
        self.invoker = invoker
        self.accessLog = accessLog
        pending.reserveCapacity(64)
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
