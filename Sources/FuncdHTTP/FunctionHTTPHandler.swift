import FuncdCore
import NIOCore
import NIOHTTP1

/// One connection: turns each request into an ``Invocation`` (or answers `/healthz` and
/// `/metrics` itself), enforces the body limit, and writes the answer when the host hands it
/// back. NIO's pipelining handler in front of it keeps one request per connection in flight, so
/// answers go out in order.
final class FunctionHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let lane: EventLoopLane
    private let server: ServerState
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var rejected = false
    private var busy = false
    private var remote = "-"

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
        context.fireChannelInactive()
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
                reject(context: context, head: head)
            }
        case .body(var chunk):
            guard !rejected, let head else { return }
            let size = (body?.readableBytes ?? 0) + chunk.readableBytes
            if size > server.configuration.bodyLimitBytes {
                reject(context: context, head: head)
                return
            }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard !rejected, let head else { return }
            self.head = nil
            dispatch(context: context, head: head)
        }
    }

    /// 413 at once, without reading the rest: the connection is closed after the answer.
    private func reject(context: ChannelHandlerContext, head: HTTPRequestHead) {
        rejected = true
        busy = true
        let text = "Request body over the limit of \(server.configuration.bodyLimitBytes) bytes\n"
        write(
            context: context, head: head, status: .payloadTooLarge,
            headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(text.utf8),
            keepAlive: false, started: MonotonicClock.nanoseconds())
    }

    private func dispatch(context: ChannelHandlerContext, head: HTTPRequestHead) {
        busy = true
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
        if server.isOverloaded(pendingOnLoop: lane.pendingCount) {
            // Beyond the bounded queue: say so at once rather than let every caller's latency grow.
            server.invoker.metrics.overloadRejections.increment()
            body = nil
            write(
                context: context, head: head, status: .serviceUnavailable,
                headers: [("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "1")],
                body: Array("Overloaded: too many calls waiting\n".utf8), keepAlive: head.isKeepAlive,
                started: started)
            return
        }
        var headers: [(String, String)] = []
        headers.reserveCapacity(head.headers.count)
        for (name, value) in head.headers { headers.append((name, value)) }
        let bytes = body.map { Array($0.readableBytesView) } ?? []
        body = nil
        let reply = PendingResponse(handler: self, context: context, head: head, bodyBytes: bytes.count)
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
            headers: result.headers, body: result.body, keepAlive: head.isKeepAlive,
            started: invocation.submittedAt)
    }

    private func write(
        context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus,
        headers: [(String, String)], body: [UInt8], keepAlive: Bool, started: UInt64
    ) {
        let keepAlive = keepAlive && !server.isDraining && !rejected
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
        }
        lane.accessLog.record(
            remote: remote, head: head, status: Int(status.code), bytes: body.count,
            nanoseconds: MonotonicClock.nanoseconds() &- started)
        busy = false
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
        if !busy && head == nil { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
