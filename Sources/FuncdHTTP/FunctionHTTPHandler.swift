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
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

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

    private let lane: EventLoopLane
    private let server: ServerState
    private let connectionGuard: ConnectionGuard
    private var machine: ConnectionStateMachine
    private var reading: Reading?
    private var waiting: [Waiting] = []
    private var waitingStart = 0
    /// The call being answered, and the budget its body holds until its answer is written.
    private var inFlight: (invocation: Invocation, budget: Int)?
    private var remote = "-"
    private(set) var context: ChannelHandlerContext?
    /// The answer being streamed, if any; see ``startStream``.
    private var streaming:
        (stream: ResponseStream, head: HTTPRequestHead, status: Int, keepAlive: Bool, bytes: Int, started: UInt64)?

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
        if let inFlight {
            // A call that has not started is taken back: its client is gone.
            server.invoker.abandon(inFlight.invocation)
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
    private func resumeReadingIfAllowed(context: ChannelHandlerContext) {
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
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
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

    /// What makes a head too large to take (431), if anything.
    static func headProblem(_ head: HTTPRequestHead, limits: HTTPLimits) -> String? {
        if head.headers.count > limits.maxHeaders {
            return "more than \(limits.maxHeaders) header fields"
        }
        var bytes = head.uri.utf8.count
        for (name, value) in head.headers {
            bytes += name.utf8.count + value.utf8.count + 4
        }
        if bytes > limits.maxHeaderBytes {
            return "request target and header fields over \(limits.maxHeaderBytes) bytes"
        }
        return nil
    }

    /// Answers a request now if it is its turn, or queues it behind the ones before it.
    private func enqueue(_ request: Waiting, context: ChannelHandlerContext) {
        waiting.append(request)
        answerNext(context: context)
    }

    /// Starts answering the next waiting request when nothing is being answered and the client
    /// is taking its answers.
    private func answerNext(context: ChannelHandlerContext) {
        guard waitingStart < waiting.count, machine.mayAnswer(writable: context.channel.isWritable) else { return }
        let next = waiting[waitingStart]
        waitingStart += 1
        if waitingStart == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingStart = 0
        }
        machine.answerStarted()
        switch next {
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
        let path = head.uri.utf8.split(separator: UInt8(ascii: "?"), maxSplits: 1).first.map(Substring.init) ?? ""
        if head.method == .GET || head.method == .HEAD {
            if path == "/healthz" {
                server.bodyBudget.release(budget)
                let healthy = server.isHealthy
                write(
                    context: context, head: head, status: healthy ? .ok : .serviceUnavailable,
                    headers: [("Content-Type", "text/plain; charset=utf-8")],
                    body: Array((healthy ? "OK" : "Unavailable").utf8), keepAlive: head.isKeepAlive,
                    started: started)
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
        var headers: [(String, String)] = []
        headers.reserveCapacity(head.headers.count)
        for (name, value) in head.headers where !Self.isKafkaField(name) { headers.append((name, value)) }
        let reply = PendingResponse(handler: self, context: context, head: head)
        let invocation = Invocation(
            method: head.method.rawValue, target: head.uri, headers: headers, body: body, sink: lane, reply: reply)
        inFlight = (invocation, budget)
        lane.submit(invocation)
    }

    /// The call's answer has come back (or the connection is gone): its body's budget is free.
    private func finishCall() {
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
            started: invocation.submittedAt)
    }

    /// A handler's answer HTTP cannot carry safely becomes a 500, with one line naming why.
    private func refuseAnswer(
        context: ChannelHandlerContext, head: HTTPRequestHead, invocation: Invocation, problem: String
    ) {
        server.logger.error(
            "function answer refused",
            metadata: [
                LogKeys.method: "\(invocation.method)", LogKeys.target: "\(invocation.target)",
                LogKeys.error: "\(problem)",
            ])
        write(
            context: context, head: head, status: .internalServerError,
            headers: withCORS([("Content-Type", "text/plain; charset=utf-8")]),
            body: Array("Internal Server Error\n".utf8), keepAlive: head.isKeepAlive, started: invocation.submittedAt)
    }

    /// Adds `Access-Control-Allow-Origin: *` to a function's answer where the runtime answers
    /// CORS and the handler did not say otherwise.
    private func withCORS(_ headers: [(String, String)]) -> [(String, String)] {
        guard server.configuration.answersCORS,
            !headers.contains(where: { $0.0.equalsIgnoringASCIICase("access-control-allow-origin") })
        else { return headers }
        return headers + [("Access-Control-Allow-Origin", "*")]
    }

    // MARK: - Streamed answers

    /// Writes the head and first bytes of a streamed answer: chunked over HTTP/1.1; over
    /// HTTP/1.0 the end of the answer is the end of the connection.
    func startStream(
        context: ChannelHandlerContext, head: HTTPRequestHead, invocation: Invocation, result: InvocationResult,
        stream: ResponseStream
    ) {
        finishCall()
        guard machine.writing != .closed else {
            stream.detach()
            return
        }
        if let problem = Self.answerProblem(status: result.status, headers: result.headers) {
            stream.detach()
            refuseAnswer(context: context, head: head, invocation: invocation, problem: problem)
            return
        }
        let bodiless = Self.forbidsBody(status: result.status)
        let chunked = head.version.major == 1 && head.version.minor >= 1 && !bodiless
        let keepAlive = head.isKeepAlive && (chunked || bodiless) && !server.isDraining
        var headers = HTTPHeaders()
        for (name, value) in withCORS(result.headers) where !Self.isFraming(name) {
            headers.add(name: name, value: value)
        }
        if chunked { headers.add(name: "Transfer-Encoding", value: "chunked") }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let response = HTTPResponseHead(
            version: head.version, status: HTTPResponseStatus(statusCode: result.status), headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        streaming = (stream, head, result.status, keepAlive, 0, invocation.submittedAt)
        // The first bytes came with the result, not through the stream: nothing to report sent.
        continueStream(context: context, events: [.bytes(result.body)], stream: stream, counted: false)
    }

    /// Sends streamed events taken from `stream`, and ends the answer when they say so. `counted`:
    /// the bytes were written through the stream, which must hear when they have been sent.
    func continueStream(
        context: ChannelHandlerContext, events: [ResponseStream.Event], stream: ResponseStream, counted: Bool = true
    ) {
        guard let current = streaming, current.stream === stream else { return }
        let dropsBody = current.head.method == .HEAD || Self.forbidsBody(status: current.status)
        for event in events {
            switch event {
            case .bytes(let bytes):
                guard !bytes.isEmpty else { continue }
                if dropsBody {
                    // HEAD, 204 and 304 carry no body: the writer is told its bytes went.
                    if counted { stream.sent(bytes.count) }
                    continue
                }
                streaming?.bytes += bytes.count
                var buffer = context.channel.allocator.buffer(capacity: bytes.count)
                buffer.writeBytes(bytes)
                let count = counted ? bytes.count : 0
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer)))).whenComplete { outcome in
                    if case .success = outcome, count > 0 { stream.sent(count) }
                }
            case .end:
                endStream(context: context, broken: nil)
                return
            case .abort(let reason):
                endStream(context: context, broken: reason)
                return
            }
        }
        context.flush()
    }

    private func endStream(context: ChannelHandlerContext, broken reason: String?) {
        guard let current = streaming else { return }
        streaming = nil
        lane.accessLog.record(
            remote: remote, head: current.head, status: current.status, bytes: current.bytes,
            nanoseconds: MonotonicClock.nanoseconds() &- current.started)
        if let reason {
            // A chunked answer without its last chunk is how HTTP says "broken".
            if reason != "timeout" {
                server.logger.error("streamed answer broke off", metadata: [LogKeys.error: "\(reason)"])
            }
            context.flush()
            closeNow()
            return
        }
        let after = machine.answered(now: MonotonicClock.nanoseconds(), keepAlive: current.keepAlive)
        finish(context: context, after: after, end: context.writeAndFlush(wrapOutboundOut(.end(nil))))
    }

    // MARK: - Writing answers

    private func write(
        context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus,
        headers: [(String, String)], body: [UInt8], keepAlive: Bool, started: UInt64
    ) {
        let keepAlive = keepAlive && !server.isDraining
        let code = Int(status.code)
        let carriesBody = head.method != .HEAD && !Self.forbidsBody(status: code)
        var responseHeaders = HTTPHeaders()
        responseHeaders.reserveCapacity(headers.count + 2)
        for (name, value) in headers where !Self.isFraming(name) {
            responseHeaders.add(name: name, value: value)
        }
        if !Self.forbidsBody(status: code) {
            responseHeaders.add(name: "Content-Length", value: String(body.count))
        }
        if !keepAlive { responseHeaders.add(name: "Connection", value: "close") }
        var response = HTTPResponseHead(version: head.version, status: status, headers: responseHeaders)
        if head.version.major == 1 && head.version.minor == 0 && keepAlive {
            response.headers.add(name: "Connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if carriesBody && !body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        lane.accessLog.record(
            remote: remote, head: head, status: code, bytes: carriesBody ? body.count : 0,
            nanoseconds: MonotonicClock.nanoseconds() &- started)
        let after = machine.answered(now: MonotonicClock.nanoseconds(), keepAlive: keepAlive)
        if after == .next {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            finish(context: context, after: after, end: nil)
        } else {
            finish(context: context, after: after, end: context.writeAndFlush(wrapOutboundOut(.end(nil))))
        }
    }

    /// After an answer: the next request, or the connection's end once `end` (the answer's
    /// last write) has gone out.
    private func finish(context: ChannelHandlerContext, after: ConnectionStateMachine.AfterAnswer, end: EventLoopFuture<Void>?) {
        switch after {
        case .next:
            answerNext(context: context)
            resumeReadingIfAllowed(context: context)
        case .close:
            waiting.removeAll()
            waitingStart = 0
            let channel = context.channel
            if let end {
                end.whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
        case .linger:
            waiting.removeAll()
            waitingStart = 0
            startLingering(context: context, after: end)
        }
    }

    /// Shuts our sending side once the answer is out and drops whatever the client still sends
    /// until it closes or the linger timeout passes (as nginx's `lingering_close`): closing with
    /// unread bytes would make the kernel send a reset, which can reach the client before it has
    /// read the answer.
    private func startLingering(context: ChannelHandlerContext, after end: EventLoopFuture<Void>?) {
        connectionGuard.dropsInput = true
        // Nothing more is parsed, and a refused body's missing end is no error to answer: NIO's
        // error handler would write a 400 after our answer.
        let pipeline = context.pipeline.syncOperations
        if let errors = try? pipeline.context(handlerType: HTTPServerProtocolErrorHandler.self) {
            pipeline.removeHandler(context: errors, promise: nil)
        }
        if let decoder = try? pipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self) {
            pipeline.removeHandler(context: decoder, promise: nil)
        }
        machine.lingerStarted(now: MonotonicClock.nanoseconds())
        let channel = context.channel
        let shut: @Sendable () -> Void = {
            channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        }
        if let end { end.whenComplete { _ in shut() } } else { shut() }
        resumeReadingIfAllowed(context: context)
        context.read()
    }

    // MARK: - Rules

    /// 1xx, 204 and 304 answers have no body (RFC 9110 §6.4.1); writing one anyway would be read
    /// by the client as the start of the next answer.
    static func forbidsBody(status: Int) -> Bool {
        status < 200 || status == 204 || status == 304
    }

    /// Why a handler's answer cannot go out as it is, if it cannot: a final status outside
    /// 200...599, a header name that is not a token, or a value with a control byte (CR, LF and
    /// NUL would split the head). Node's `http` refuses the same.
    static func answerProblem(status: Int, headers: [(String, String)]) -> String? {
        guard (200...599).contains(status) else { return "status \(status) is not a final HTTP status" }
        for (name, value) in headers {
            if name.isEmpty || !name.utf8.allSatisfy(Self.isTokenByte) {
                return "header name \(String(reflecting: name)) is not an HTTP token"
            }
            if value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
                return "header \(name) has a control character in its value \(String(reflecting: value))"
            }
        }
        return nil
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// `funcd-kafka-*` carries a Kafka message's facts to the glue; a client cannot send them.
    static func isKafkaField(_ name: String) -> Bool {
        name.utf8.count > 12 && (name.utf8.first == UInt8(ascii: "f") || name.utf8.first == UInt8(ascii: "F"))
            && name.utf8.prefix(12).elementsEqual("funcd-kafka-".utf8, by: { ($0 | 0x20) == $1 })
    }

    /// Headers that frame the message: the server's to set, dropped from a handler's answer.
    static func isFraming(_ name: String) -> Bool {
        switch name.utf8.count {
        case 10: return name.equalsIgnoringASCIICase("connection")
        case 14: return name.equalsIgnoringASCIICase("content-length")
        case 17: return name.equalsIgnoringASCIICase("transfer-encoding")
        default: return false
        }
    }

    /// Closes the connection if no request is in flight (used when draining).
    func closeIfIdle(context: ChannelHandlerContext) {
        if !machine.answering && reading == nil && waitingCount == 0 { closeNow() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeNow()
    }
}
