import FuncdCore
import NIOCore
import NIOHTTP1

/// Writing answers: whole, streamed, and the connection's end after them (closing or lingering).
extension FunctionHTTPHandler {
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
        streaming = (stream, head, result.status, keepAlive, 0, invocation.submittedAt, invocation.trace)
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

    func endStream(context: ChannelHandlerContext, broken reason: String?) {
        guard let current = streaming else { return }
        streaming = nil
        lane.accessLog.record(
            remote: remote, head: current.head, status: current.status, bytes: current.bytes,
            nanoseconds: MonotonicClock.nanoseconds() &- current.started, trace: current.trace)
        if let reason {
            // A chunked answer without its last chunk is how HTTP says "broken".
            if reason != "timeout" {
                server.logger.error(
                    "streamed answer broke off",
                    metadata: current.trace.logMetadata.merging([LogKeys.error: "\(reason)"]) { _, given in given })
            }
            context.flush()
            closeNow()
            return
        }
        let after = machine.answered(now: MonotonicClock.nanoseconds(), keepAlive: current.keepAlive)
        finish(context: context, after: after, end: context.writeAndFlush(wrapOutboundOut(.end(nil))))
    }

    // MARK: - Writing answers

    func write(
        context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus,
        headers: [(String, String)], body: [UInt8], keepAlive: Bool, started: UInt64, trace: CallTrace? = nil
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
            nanoseconds: MonotonicClock.nanoseconds() &- started, trace: trace)
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
    func finish(context: ChannelHandlerContext, after: ConnectionStateMachine.AfterAnswer, end: EventLoopFuture<Void>?) {
        switch after {
        case .next:
            answerNext(context: context)
            resumeReadingIfAllowed(context: context)
        case .close:
            dropWaiting()
            let channel = context.channel
            if let end {
                end.whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
        case .linger:
            dropWaiting()
            startLingering(context: context, after: end)
        }
    }

    /// Shuts our sending side once the answer is out and drops whatever the client still sends
    /// until it closes or the linger timeout passes (as nginx's `lingering_close`): closing with
    /// unread bytes would make the kernel send a reset, which can reach the client before it has
    /// read the answer.
    func startLingering(context: ChannelHandlerContext, after end: EventLoopFuture<Void>?) {
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
}
