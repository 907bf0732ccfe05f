import FuncdCore
import NIOCore
import NIOHTTP1

/// One connection: turns each request into an ``Invocation`` (or answers `/healthz` and
/// `/metrics` itself), enforces the body limit, and writes the answer when the host hands it
/// back.
///
/// Requests are answered in order, one at a time: a request that arrives (pipelined) while
/// another is being handled waits in `waiting`. Reading goes on meanwhile, and stops only when
/// that queue is full. (NIO's pipelining helper instead stops reading whenever an answer is
/// outstanding, which costs two `epoll_ctl` calls per request when answers come back from
/// another thread, as every function call's does.)
final class FunctionHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A complete request waiting for the one before it to be answered.
    private enum Waiting {
        case request(HTTPRequestHead, ByteBuffer?)
        case tooLarge(HTTPRequestHead)
    }

    /// Pipelined requests held before reading pauses.
    static let maximumWaiting = 16

    private let lane: EventLoopLane
    private let server: ServerState
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var rejected = false
    private var busy = false
    private var waiting: [Waiting] = []
    private var readDeferred = false
    /// Set once an answer said `Connection: close`: nothing more is read into a call.
    private var closing = false
    private var remote = "-"
    /// The answer being streamed, if any; see ``startStream``.
    private var streaming: (stream: ResponseStream, head: HTTPRequestHead, status: Int, keepAlive: Bool, bytes: Int, started: UInt64)?

    init(lane: EventLoopLane, server: ServerState) {
        self.lane = lane
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.channel.remoteAddress?.ipAddress ?? "-"
        server.connections.add(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.connections.remove(context.channel)
        waiting.removeAll()
        streaming?.stream.detach()
        streaming = nil
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if waiting.count >= Self.maximumWaiting {
            readDeferred = true
        } else {
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = nil
            self.rejected = false
            if let length = head.headers.first(name: "content-length").flatMap(Int.init),
                length > server.configuration.bodyLimitBytes
            {
                rejected = true
                handle(.tooLarge(head), context: context)
            }
        case .body(var chunk):
            guard !rejected, let head else { return }
            let size = (body?.readableBytes ?? 0) + chunk.readableBytes
            if size > server.configuration.bodyLimitBytes {
                rejected = true
                body = nil
                handle(.tooLarge(head), context: context)
                return
            }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            let finished = head
            head = nil
            guard !rejected, let finished else { return }
            let complete = body
            body = nil
            handle(.request(finished, complete), context: context)
        }
    }

    /// Runs a complete request now, or queues it behind the one being answered.
    private func handle(_ request: Waiting, context: ChannelHandlerContext) {
        if closing { return }
        if busy {
            waiting.append(request)
        } else {
            run(request, context: context)
        }
    }

    private func run(_ request: Waiting, context: ChannelHandlerContext) {
        busy = true
        switch request {
        case .request(let head, let body):
            self.dispatch(context: context, head: head, body: body)
        case .tooLarge(let head):
            // 413 without reading the rest of the body: the connection closes after the answer.
            let text = "Request body over the limit of \(server.configuration.bodyLimitBytes) bytes\n"
            write(
                context: context, head: head, status: .payloadTooLarge,
                headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(text.utf8),
                keepAlive: false, started: MonotonicClock.nanoseconds())
        }
    }

    /// After an answer: the next waiting request, and reading again if it had paused.
    private func answered(context: ChannelHandlerContext) {
        busy = false
        guard !waiting.isEmpty else { return }
        let next = waiting.removeFirst()
        if readDeferred && waiting.count < Self.maximumWaiting {
            readDeferred = false
            context.read()
        }
        run(next, context: context)
    }

    private func dispatch(context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer?) {
        let started = MonotonicClock.nanoseconds()
        let path = head.uri.utf8.split(separator: UInt8(ascii: "?"), maxSplits: 1).first.map(Substring.init) ?? ""
        if head.method == .GET || head.method == .HEAD {
            if path == "/healthz" {
                let healthy = server.isHealthy
                write(
                    context: context, head: head, status: healthy ? .ok : .serviceUnavailable,
                    headers: [("Content-Type", "text/plain; charset=utf-8")],
                    body: Array((healthy ? "OK" : "Unavailable").utf8), keepAlive: head.isKeepAlive,
                    started: started)
                return
            }
            if path == "/metrics" {
                write(
                    context: context, head: head, status: .ok,
                    headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                    body: server.metricsText(), keepAlive: head.isKeepAlive,
                    started: started)
                return
            }
        }
        if head.method == .OPTIONS && server.configuration.answersCORS {
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
        let bytes = body.map { Array($0.readableBytesView) } ?? []
        let reply = PendingResponse(handler: self, context: context, head: head)
        let invocation = Invocation(
            method: head.method.rawValue, target: head.uri, headers: headers, body: bytes, sink: lane, reply: reply)
        lane.submit(invocation)
    }

    /// Writes the host's answer (on the event loop, through the lane).
    func answer(context: ChannelHandlerContext, head: HTTPRequestHead, invocation: Invocation, result: InvocationResult) {
        if let error = result.error, result.status >= 500 || error != "timeout" {
            server.logHandlerError(invocation: invocation, result: result)
        }
        write(
            context: context, head: head, status: HTTPResponseStatus(statusCode: result.status),
            headers: withCORS(result.headers), body: result.body, keepAlive: head.isKeepAlive,
            started: invocation.submittedAt)
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
        let chunked = head.version.major == 1 && head.version.minor >= 1
        let keepAlive = head.isKeepAlive && chunked && !server.isDraining
        var headers = HTTPHeaders()
        for (name, value) in withCORS(result.headers) where Self.isAllowed(name: name, value: value) {
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
        for event in events {
            switch event {
            case .bytes(let bytes):
                guard !bytes.isEmpty else { continue }
                streaming?.bytes += bytes.count
                if current.head.method == .HEAD {
                    if counted { stream.sent(bytes.count) }
                    continue
                }
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
        if let reason {
            // A chunked answer without its last chunk is how HTTP says "broken".
            if reason != "timeout" {
                server.logger.error("streamed answer broke off", metadata: [LogKeys.error: "\(reason)"])
            }
            context.flush()
            context.close(promise: nil)
            waiting.removeAll()
            closing = true
            busy = false
        } else if current.keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            waiting.removeAll()
            closing = true
        }
        lane.accessLog.record(
            remote: remote, head: current.head, status: current.status, bytes: current.bytes,
            nanoseconds: MonotonicClock.nanoseconds() &- current.started)
        if reason == nil && current.keepAlive {
            answered(context: context)
        } else {
            busy = false
        }
    }

    private func write(
        context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus,
        headers: [(String, String)], body: [UInt8], keepAlive: Bool, started: UInt64
    ) {
        let keepAlive = keepAlive && !server.isDraining
        var responseHeaders = HTTPHeaders()
        responseHeaders.reserveCapacity(headers.count + 2)
        for (name, value) in headers where Self.isAllowed(name: name, value: value) {
            responseHeaders.add(name: name, value: value)
        }
        responseHeaders.add(name: "Content-Length", value: String(body.count))
        if !keepAlive { responseHeaders.add(name: "Connection", value: "close") }
        var response = HTTPResponseHead(version: head.version, status: status, headers: responseHeaders)
        if head.version.major == 1 && head.version.minor == 0 && keepAlive {
            response.headers.add(name: "Connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if head.method != .HEAD && !body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            waiting.removeAll()
            closing = true
        }
        lane.accessLog.record(
            remote: remote, head: head, status: Int(status.code), bytes: body.count,
            nanoseconds: MonotonicClock.nanoseconds() &- started)
        if keepAlive {
            answered(context: context)
        } else {
            busy = false
        }
    }

    /// `funcd-kafka-*` carries a Kafka message's facts to the glue; a client cannot send them.
    static func isKafkaField(_ name: String) -> Bool {
        name.utf8.count > 12 && (name.utf8.first == UInt8(ascii: "f") || name.utf8.first == UInt8(ascii: "F"))
            && name.utf8.prefix(12).elementsEqual("funcd-kafka-".utf8, by: { ($0 | 0x20) == $1 })
    }

    /// Headers the handler may not set (framing is the server's) or that would split the response.
    static func isAllowed(name: String, value: String) -> Bool {
        if name.isEmpty || name.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 58 || $0 == 32 })
            || value.utf8.contains(where: { $0 == 13 || $0 == 10 })
        {
            return false
        }
        switch name.utf8.count {
        case 10: return !name.equalsIgnoringASCIICase("connection")
        case 14: return !name.equalsIgnoringASCIICase("content-length")
        case 17: return !name.equalsIgnoringASCIICase("transfer-encoding")
        default: return true
        }
    }

    /// Closes the connection if no request is in flight (used when draining).
    func closeIfIdle(context: ChannelHandlerContext) {
        if !busy && head == nil && waiting.isEmpty { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
