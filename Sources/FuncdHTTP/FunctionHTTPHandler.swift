import FuncdCore
import NIOCore
import NIOHTTP1

/// One connection: turns each request into an ``Invocation`` (or answers `/healthz` and
/// `/metrics` itself), enforces the limits a client could otherwise push past, and writes the
/// answer when the host hands it back. The connection's life (timeouts, the read gate, closing
/// or lingering) is decided by its ``ConnectionStateMachine``; this class does the I/O.
///
/// Requests are answered in order, one at a time: a request that arrives (pipelined) while
/// another is being answered waits in `waiting`. Reading goes on meanwhile, and stops when
/// `FUNC_MAX_PIPELINED` requests wait or the client is not taking its answers (NIO's pipelining
/// helper instead stops reading whenever an answer is outstanding, which costs two `epoll_ctl`
/// calls per request when answers come back from another thread, as every call's does).
///
/// A request with a body is judged by its head: over the body limit → 413, the worker's body
/// budget spent or the call queue full → 503 + `Retry-After`, at once, before its body is read;
/// then the connection lingers (reads and drops) so that the client reads the answer instead of
/// a reset. Accepted bodies are gathered into one array sized from `Content-Length`, and that
/// array is what the host gets: no second copy.
final class FunctionHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    /// Answers leave encoded (``AnswerEncoding``): no HTTP encoder sits below this handler.
    typealias OutboundOut = ByteBuffer

    /// A request read and waiting for its turn to be answered.
    private enum Waiting {
        /// Its body, and the part of the worker's body budget it holds.
        case request(HTTPRequestHead, [UInt8], budget: Int)
        /// Refused from its head (or mid-body): the answer is all that is left.
        case refused(HTTPRequestHead, Refusal)
    }

    /// Why a request is answered without a call.
    enum Refusal {
        case bodyTooLarge
        case headersTooLarge(String)
        case bodyBudget
        case overloaded
    }

    /// The request whose head has arrived and whose body is arriving.
    private struct Reading {
        var head: HTTPRequestHead
        var body: [UInt8]
        /// Bytes of the worker's body budget this request holds.
        var budget: Int
        /// Set when the request was refused: its body is dropped.
        var refused: Bool
    }

    let lane: EventLoopLane
    let server: ServerState
    let connectionGuard: ConnectionGuard
    var machine: ConnectionStateMachine
    private var reading: Reading?
    private var waiting: [Waiting] = []
    private var waitingStart = 0
    /// The call being answered, and the budget its body holds until its answer is written.
    private var inFlight: (invocation: Invocation, budget: Int)?
    var remote = "-"
    private(set) var context: ChannelHandlerContext?
    /// The answer being streamed, if any; see ``startStream``.
    var streaming:
        (
            stream: ResponseStream, head: HTTPRequestHead, status: Int, keepAlive: Bool, chunked: Bool, bytes: Int,
            started: UInt64, trace: CallTrace
        )?

    init(lane: EventLoopLane, server: ServerState, connectionGuard: ConnectionGuard) {
        self.lane = lane
        self.server = server
        self.connectionGuard = connectionGuard
        self.machine = ConnectionStateMachine(limits: server.machineLimits, now: MonotonicClock.nanoseconds())
        connectionGuard.connection = self
    }

    private var waitingCount: Int { waiting.count - waitingStart }

    // MARK: - The connection's life

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The context holds this handler: letting go of it here breaks the cycle when the channel's
    /// pipeline is torn down.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.channel.remoteAddress?.ipAddress ?? "-"
        let open = server.connections.add(context.channel)
        lane.register(self)
        if open > server.configuration.limits.maxConnections {
            // At the cap: make room by closing the connection that has waited longest for a
            // request (idle keep-alive, or a head that is late); with none, this one goes.
            if let victim = lane.oldestEvictable(excluding: self) {
                server.invoker.metrics.closedConnections[.evicted]?.increment()
                victim.closeNow()
            } else {
                server.invoker.metrics.closedConnections[.refused]?.increment()
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.connections.remove(context.channel)
        lane.unregister(self)
        machine.closed()
        if let reading {
            server.bodyBudget.release(reading.budget)
            self.reading = nil
        }
        for index in waitingStart..<waiting.count {
            if case .request(_, _, let budget) = waiting[index] {
                server.bodyBudget.release(budget)
                server.invoker.metrics.abandonedCalls.increment()
            }
        }
        waiting.removeAll()
        waitingStart = 0
        if let inFlight, server.invoker.abandon(inFlight.invocation) {
            // A call that has not started is taken back: its client is gone. One that runs still
            // holds its body, and its budget, until its answer (or 408) comes back to nobody.
            server.bodyBudget.release(inFlight.budget)
            self.inFlight = nil
        }
        streaming?.stream.detach()
        streaming = nil
        context.fireChannelInactive()
    }

    /// Called by the ``ConnectionGuard`` for every read of raw bytes.
    func bytesArrived() {
        machine.bytesArrived(now: MonotonicClock.nanoseconds())
    }

    func read(context: ChannelHandlerContext) {
        if machine.shouldRead(writable: context.channel.isWritable) {
            context.read()
        } else {
            machine.readDeferred()
        }
    }

    /// Reads again if the gate had closed and has opened.
    func resumeReadingIfAllowed(context: ChannelHandlerContext) {
        guard machine.readPaused, machine.shouldRead(writable: context.channel.isWritable) else { return }
        machine.readResumed(now: MonotonicClock.nanoseconds())
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        machine.writabilityChanged(writable: writable, now: MonotonicClock.nanoseconds())
        if writable {
            answerNext(context: context)
            resumeReadingIfAllowed(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // A client that shut down its sending side still gets the answers it asked for.
            if machine.inputClosed() { closeNow() }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Called by the lane's sweep: closes the connection if one of its timeouts has run out.
    func checkTimeouts(now: UInt64) {
        switch machine.expiry(now: now) {
        case .none: return
        case .lingerOver: closeNow()
        case .close(let reason):
            server.invoker.metrics.closedConnections[reason]?.increment()
            closeNow()
        }
    }

    /// How long this connection has waited for a request, if closing it costs nobody an answer.
    var evictableSince: UInt64? { machine.evictableSince() }

    func closeNow() {
        machine.closed()
        context?.close(promise: nil)
    }

    // MARK: - Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            receivedHead(head, context: context)
        case .body(let chunk):
            receivedBody(chunk, context: context)
        case .end:
            guard let finished = reading else { return }
            reading = nil
            machine.requestEnded(now: MonotonicClock.nanoseconds(), complete: !finished.refused)
            if !finished.refused {
                enqueue(.request(finished.head, finished.body, budget: finished.budget), context: context)
            }
        }
    }

    private func receivedHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let now = MonotonicClock.nanoseconds()
        let limits = server.configuration.limits
        var refusal: Refusal?
        var budget = 0
        var declared = 0
        if let problem = Self.headProblem(head, limits: limits) {
            refusal = .headersTooLarge(problem)
        } else if let length = head.headers.first(name: "content-length").flatMap(Int.init) {
            declared = length
            if length > server.configuration.bodyLimitBytes {
                refusal = .bodyTooLarge
            }
        }
        let hasBody = declared > 0 || head.headers.contains(name: "transfer-encoding")
        if refusal == nil && hasBody {
            // Judged from the head, before a byte of the body is buffered.
            if server.isOverloaded(pendingOnLoop: lane.pendingCount + waitingCount) {
                refusal = .overloaded
            } else if !server.bodyBudget.reserve(declared) {
                refusal = .bodyBudget
            } else {
                budget = declared
            }
        }
        machine.headReceived(now: now, refused: refusal != nil)
        reading = Reading(head: head, body: [], budget: budget, refused: refusal != nil)
        if let refusal {
            countRefusal(refusal)
            enqueue(.refused(head, refusal), context: context)
            return
        }
        if declared > 0 { reading!.body.reserveCapacity(declared) }
        if hasBody, !machine.answering, machine.unanswered == 0, head.version == .http1_1,
            let expect = head.headers.first(name: "expect"), expect.equalsIgnoringASCIICase("100-continue")
        {
            // The client waits for this before it sends the body (curl for a second).
            var buffer = context.channel.allocator.buffer(capacity: 32)
            buffer.writeStatusLine(version: head.version, status: .continue)
            buffer.writeStaticString("\r\n")
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
    }

    private func receivedBody(_ chunk: ByteBuffer, context: ChannelHandlerContext) {
        guard var current = reading, !current.refused else { return }
        reading = nil
        let size = current.body.count + chunk.readableBytes
        var refusal: Refusal?
        if size > server.configuration.bodyLimitBytes {
            refusal = .bodyTooLarge
        } else if size > current.budget {
            // A chunked body (or one longer than it said): its share of the budget grows with it.
            if server.bodyBudget.reserve(size - current.budget) {
                current.budget = size
            } else {
                refusal = .bodyBudget
            }
        }
        if let refusal {
            server.bodyBudget.release(current.budget)
            current.budget = 0
            current.body = []
            current.refused = true
            reading = current
            machine.bodyRefused(now: MonotonicClock.nanoseconds())
            countRefusal(refusal)
            enqueue(.refused(current.head, refusal), context: context)
            return
        }
        current.body.append(contentsOf: chunk.readableBytesView)
        reading = current
    }

    private func countRefusal(_ refusal: Refusal) {
        let metrics = server.invoker.metrics
        switch refusal {
        case .bodyTooLarge: metrics.refusedRequests[.bodyTooLarge]?.increment()
        case .headersTooLarge: metrics.refusedRequests[.headersTooLarge]?.increment()
        case .bodyBudget: metrics.refusedRequests[.bodyBudget]?.increment()
        case .overloaded: metrics.overloadRejections.increment()
        }
    }

    /// Answers a request now if it is its turn, or queues it behind the ones before it.
    private func enqueue(_ request: Waiting, context: ChannelHandlerContext) {
        if waitingStart == waiting.count && machine.mayAnswer(writable: context.channel.isWritable) {
            // Nothing before it (the usual case): no trip through the queue.
            start(request, context: context)
        } else {
            waiting.append(request)
            answerNext(context: context)
        }
    }

    /// Starts answering the next waiting request when nothing is being answered and the client
    /// is taking its answers.
    func answerNext(context: ChannelHandlerContext) {
        guard waitingStart < waiting.count, machine.mayAnswer(writable: context.channel.isWritable) else { return }
        let next = waiting[waitingStart]
        waitingStart += 1
        if waitingStart == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingStart = 0
        }
        start(next, context: context)
    }

    private func start(_ request: Waiting, context: ChannelHandlerContext) {
        machine.answerStarted()
        switch request {
        case .request(let head, let body, let budget):
            dispatch(context: context, head: head, body: body, budget: budget)
        case .refused(let head, let refusal):
            refuse(context: context, head: head, refusal: refusal)
        }
    }

    private func refuse(context: ChannelHandlerContext, head: HTTPRequestHead, refusal: Refusal) {
        let started = MonotonicClock.nanoseconds()
        let text: String
        let status: HTTPResponseStatus
        var headers = [("Content-Type", "text/plain; charset=utf-8")]
        switch refusal {
        case .bodyTooLarge:
            status = .payloadTooLarge
            text = "Request body over the limit of \(server.configuration.bodyLimitBytes) bytes\n"
        case .headersTooLarge(let problem):
            status = .requestHeaderFieldsTooLarge
            text = "Request header fields too large: \(problem)\n"
        case .bodyBudget:
            status = .serviceUnavailable
            text = "Busy: too many request bodies being received; try again\n"
            headers.append(("Retry-After", "1"))
        case .overloaded:
            status = .serviceUnavailable
            text = "Overloaded: too many calls waiting\n"
            headers.append(("Retry-After", "1"))
        }
        write(
            context: context, head: head, status: status, headers: headers, body: Array(text.utf8), keepAlive: false,
            started: started)
    }

    private func dispatch(context: ChannelHandlerContext, head: HTTPRequestHead, body: [UInt8], budget: Int) {
        let started = MonotonicClock.nanoseconds()
        let path = head.uri[..<(head.uri.firstIndex(of: "?") ?? head.uri.endIndex)]
        if head.method == .GET || head.method == .HEAD {
            if path == "/healthz" {
                server.bodyBudget.release(budget)
                let healthy = server.isHealthy
                write(
                    context: context, head: head, status: healthy ? .ok : .serviceUnavailable,
                    headers: Self.plainText, body: healthy ? Self.healthy : Self.unhealthy,
                    keepAlive: head.isKeepAlive, started: started)
                return
            }
            if path == "/metrics" {
                server.bodyBudget.release(budget)
                write(
                    context: context, head: head, status: .ok,
                    headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                    body: server.metricsText(), keepAlive: head.isKeepAlive,
                    started: started)
                return
            }
        }
        if head.method == .OPTIONS && server.configuration.answersCORS {
            server.bodyBudget.release(budget)
            // The kubeless nodejs runtime answered every preflight itself, allowing what was asked.
            var headers = [("Access-Control-Allow-Origin", "*")]
            if let method = head.headers.first(name: "access-control-request-method") {
                headers.append(("Access-Control-Allow-Methods", method))
            }
            if let asked = head.headers.first(name: "access-control-request-headers") {
                headers.append(("Access-Control-Allow-Headers", asked))
            }
            write(
                context: context, head: head, status: .ok, headers: headers, body: [], keepAlive: head.isKeepAlive,
                started: started)
            return
        }
        if server.isOverloaded(pendingOnLoop: lane.pendingCount) {
            // Beyond the bounded queue: say so at once rather than let every caller's latency grow.
            server.bodyBudget.release(budget)
            server.invoker.metrics.overloadRejections.increment()
            write(
                context: context, head: head, status: .serviceUnavailable,
                headers: [("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "1")],
                body: Array("Overloaded: too many calls waiting\n".utf8), keepAlive: head.isKeepAlive,
                started: started)
            return
        }
        let scan = RequestHeaderScan(head.headers)
        var cloudEvent: CloudEventInput?
        switch scan.cloudEvent(enabled: server.configuration.cloudEvents) {
        case .none: break
        case .event(let input): cloudEvent = input
        case .batch:
            server.bodyBudget.release(budget)
            write(
                context: context, head: head, status: .unsupportedMediaType,
                headers: [("Content-Type", "text/plain; charset=utf-8"), ("Accept", CloudEvents.structuredMediaType)],
                body: Array("CloudEvents batch mode is not accepted here: send one event per request\n".utf8),
                keepAlive: head.isKeepAlive, started: started, trace: scan.trace)
            return
        }
        let reply = PendingResponse(handler: self, context: context, head: head)
        let invocation = Invocation(
            method: head.method.rawValue, target: head.uri, headers: scan.headers, body: body, sink: lane, reply: reply,
            remoteAddress: remote == "-" ? nil : remote, trace: scan.trace, cloudEvent: cloudEvent)
        inFlight = (invocation, budget)
        lane.submit(invocation)
    }

    /// `/healthz`'s answers, made once: a probe's answer costs no allocation of its own.
    private static let plainText = [("Content-Type", "text/plain; charset=utf-8")]
    private static let healthy = Array("OK".utf8)
    private static let unhealthy = Array("Unavailable".utf8)

    /// The call's answer has come back (or the connection is gone): its body's budget is free.
    func finishCall() {
        guard let current = inFlight else { return }
        inFlight = nil
        server.bodyBudget.release(current.budget)
    }

    /// Writes the host's answer (on the event loop, through the lane).
    func answer(context: ChannelHandlerContext, head: HTTPRequestHead, invocation: Invocation, result: InvocationResult) {
        finishCall()
        guard machine.writing != .closed else { return }
        if let error = result.error, result.status >= 500 || error != "timeout" {
            server.logHandlerError(invocation: invocation, result: result)
        }
        if let problem = Self.answerProblem(status: result.status, headers: result.headers) {
            refuseAnswer(context: context, head: head, invocation: invocation, problem: problem)
            return
        }
        write(
            context: context, head: head, status: HTTPResponseStatus(statusCode: result.status),
            headers: withCORS(result.headers), body: result.body, keepAlive: head.isKeepAlive,
            started: invocation.submittedAt, trace: invocation.trace)
    }

    /// A handler's answer HTTP cannot carry safely becomes a 500, with one line naming why.
    func refuseAnswer(
        context: ChannelHandlerContext, head: HTTPRequestHead, invocation: Invocation, problem: String
    ) {
        server.logger.error(
            "function answer refused",
            metadata: invocation.logMetadata([LogKeys.error: "\(problem)"]))
        write(
            context: context, head: head, status: .internalServerError,
            headers: withCORS([("Content-Type", "text/plain; charset=utf-8")]),
            body: Array("Internal Server Error\n".utf8), keepAlive: head.isKeepAlive, started: invocation.submittedAt,
            trace: invocation.trace)
    }

    /// Adds `Access-Control-Allow-Origin: *` to a function's answer where the runtime answers
    /// CORS and the handler did not say otherwise.
    func withCORS(_ headers: [(String, String)]) -> [(String, String)] {
        guard server.configuration.answersCORS,
            !headers.contains(where: { $0.0.equalsIgnoringASCIICase("access-control-allow-origin") })
        else { return headers }
        return headers + [("Access-Control-Allow-Origin", "*")]
    }

    /// Drops the requests still waiting: the connection is closing after this answer.
    func dropWaiting() {
        waiting.removeAll()
        waitingStart = 0
    }

    /// Closes the connection if no request is in flight (used when draining).
    func closeIfIdle(context: ChannelHandlerContext) {
        if !machine.answering && reading == nil && waitingCount == 0 { closeNow() }
    }

    /// A request the decoder cannot read ends the connection, with a 400 first unless an answer
    /// is part-way out (a streamed one): the client learns why, and nothing after the bad bytes
    /// is taken for a request.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError, streaming == nil, machine.writing == .open {
            var buffer = context.channel.allocator.buffer(capacity: 80)
            buffer.writeStatusLine(version: .http1_1, status: .badRequest)
            buffer.writeHeaderField("Connection", "close")
            buffer.writeContentLength(0)
            buffer.writeStaticString("\r\n")
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        closeNow()
    }
}
