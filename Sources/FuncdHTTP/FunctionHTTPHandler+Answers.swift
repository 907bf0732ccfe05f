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
        let framed = Self.isFramed(method: head.method, status: result.status)
        let chunked = head.version.major == 1 && head.version.minor >= 1 && framed
        let keepAlive = head.isKeepAlive && (chunked || !framed) && !server.isDraining
        let headers = withCORS(result.headers)
        var buffer = context.channel.allocator.buffer(capacity: Self.headBytes(headers))
        buffer.writeStatusLine(version: head.version, status: HTTPResponseStatus(statusCode: result.status))
        for (name, value) in headers where !Self.isFraming(name) {
            buffer.writeHeaderField(name, value)
        }
        if chunked { buffer.writeHeaderField("Transfer-Encoding", "chunked") }
        if !keepAlive { buffer.writeHeaderField("Connection", "close") }
        buffer.writeStaticString("\r\n")
        context.write(wrapOutboundOut(buffer), promise: nil)
        // A HEAD's answer says how a GET's would be framed, and sends no chunk (not even the last).
        streaming = (
            stream, head, result.status, keepAlive, chunked && head.method != .HEAD, 0, invocation.submittedAt,
            invocation.trace
        )
        // The first bytes came with the result, not through the stream: nothing to report sent.
        continueStream(context: context, events: [.bytes(result.body)], stream: stream, counted: false)
    }

    /// Sends streamed events taken from `stream`, and ends the answer when they say so. `counted`:
    /// the bytes were written through the stream, which must hear when they have been sent.
    func continueStream(
        context: ChannelHandlerContext, events: [ResponseStream.Event], stream: ResponseStream, counted: Bool = true
    ) {
        guard let current = streaming, current.stream === stream else { return }
        let dropsBody = !Self.carriesBody(method: current.head.method, status: current.status)
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
                var buffer = context.channel.allocator.buffer(capacity: bytes.count + 16)
                if current.chunked { buffer.writeChunk(bytes) } else { buffer.writeBytes(bytes) }
                let count = counted ? bytes.count : 0
                context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { outcome in
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
        var last = context.channel.allocator.buffer(capacity: current.chunked ? 5 : 0)
        if current.chunked { last.writeLastChunk() }
        // Written even when empty: its future is the moment the whole answer has gone out.
        finish(context: context, after: after, end: context.writeAndFlush(wrapOutboundOut(last)))
    }

    // MARK: - Writing answers

    /// Writes a whole answer as one buffer: the head, and the body where the answer has one.
    func write(
        context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus,
        headers: [(String, String)], body: [UInt8], keepAlive: Bool, started: UInt64, trace: CallTrace? = nil
    ) {
        let keepAlive = keepAlive && !server.isDraining
        let code = Int(status.code)
        let carriesBody = Self.carriesBody(method: head.method, status: code) && !body.isEmpty
        var buffer = context.channel.allocator.buffer(
            capacity: Self.headBytes(headers) + (carriesBody ? body.count : 0))
        buffer.writeStatusLine(version: head.version, status: status)
        for (name, value) in headers where !Self.isFraming(name) {
            buffer.writeHeaderField(name, value)
        }
        // A HEAD's answer gives the length a GET's body would have.
        if Self.isFramed(method: head.method, status: code) { buffer.writeContentLength(body.count) }
        if !keepAlive { buffer.writeHeaderField("Connection", "close") }
        if head.version.major == 1 && head.version.minor == 0 && keepAlive {
            buffer.writeHeaderField("Connection", "keep-alive")
        }
        buffer.writeStaticString("\r\n")
        if carriesBody { buffer.writeBytes(body) }
        lane.accessLog.record(
            remote: remote, head: head, status: code, bytes: carriesBody ? body.count : 0,
            nanoseconds: MonotonicClock.nanoseconds() &- started, trace: trace)
        let after = machine.answered(now: MonotonicClock.nanoseconds(), keepAlive: keepAlive)
        if after == .next {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            finish(context: context, after: after, end: nil)
        } else {
            finish(context: context, after: after, end: context.writeAndFlush(wrapOutboundOut(buffer)))
        }
    }

    /// Whether an answer says how long its body is (`Content-Length`, or chunks): not 1xx, 204
    /// and 304, which have none, nor an answer to CONNECT, whose 2xx would mean a tunnel (NIO's
    /// encoder framed neither).
    static func isFramed(method: HTTPMethod, status: Int) -> Bool {
        method != .CONNECT && !forbidsBody(status: status)
    }

    /// Whether an answer's body bytes go on the wire: where it is framed, except to HEAD.
    static func carriesBody(method: HTTPMethod, status: Int) -> Bool {
        method != .HEAD && isFramed(method: method, status: status)
    }

    /// Room for a head with these fields, the ones funcd adds, and the status line.
    static func headBytes(_ headers: [(String, String)]) -> Int {
        var bytes = 128
        for (name, value) in headers { bytes += name.utf8.count + value.utf8.count + 4 }
        return bytes
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
        // Nothing more is parsed, and a refused body's missing end is no error to answer (a 400
        // after our answer).
        let pipeline = context.pipeline.syncOperations
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
