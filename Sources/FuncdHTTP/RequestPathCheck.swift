import FuncdCore
import FuncdSystem
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Prometheus

/// Runs arbitrary bytes, as one client connection would send them, through funcd's real HTTP
/// pipeline (guard, NIO's parser, ``FunctionHTTPHandler``) with a host that answers from the
/// request, and stops the process when an invariant breaks. It is what the fuzz target
/// (`funcd-fuzz`, libFuzzer) calls for each input and what its corpus replay runs in the tests.
///
/// The host echoes the request body as the answer body and takes its answer from the request:
/// `x-status: N` sets the status and each `x-answer-<name>: <percent-encoded value>` header
/// becomes an answer header with the decoded bytes, so the fuzzer can make a handler answer
/// anything (204 with a body, CR LF or NUL in a value, a bad name).
///
/// Invariants: the bytes written back parse as a clean sequence of HTTP/1.1 responses (nothing
/// injected, framing right), no more of them than requests plus the parser's own 400; every head
/// survives the header hand-off to the glue and back byte for byte; the access log's quoted
/// fields carry no quote, backslash or control byte.
package enum RequestPathCheck {
    /// One server state for every input: an Invoker starts a watchdog thread.
    private static let server: ServerState = {
        let logger = Logger(label: "funcd-fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
        let environment = [
            "MOD_NAME": "fuzz", "FUNC_HANDLER": "handler", "FUNC_RUNTIME": "nodejs18", "FUNC_MAX_HEADERS": "64",
            "FUNC_MAX_HEADER_BYTES": "8192", "FUNC_MEMFILE_MAX": "65536", "FUNC_BODY_BUDGET": "131072",
        ]
        // Node's runtime: the CORS answers are on the path too.
        let configuration = try! Configuration(environment: environment, fileExists: { _ in false })
        let invoker = Invoker(
            host: EchoHost(), timeoutSeconds: 60, graceSeconds: 1,
            metrics: FunctionMetrics(registry: PrometheusCollectorRegistry()), logger: logger, onStuck: { _ in })
        invoker.startWatchdog()
        return ServerState(configuration: configuration, invoker: invoker, logger: logger, extraMetrics: nil)
    }()

    package static func run(_ bytes: [UInt8]) {
        let server = Self.server
        let channel = EmbeddedChannel()
        let lane = EventLoopLane(
            eventLoop: channel.embeddedEventLoop, invoker: server.invoker,
            accessLog: AccessLog(format: .off, eventLoop: channel.embeddedEventLoop),
            limits: server.configuration.limits)
        let recorder = HeadRecorder()
        try! channel.pipeline.syncOperations.addFunctionHTTPHandlers(lane: lane, server: server, inspector: recorder)
        _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()

        var input = channel.allocator.buffer(capacity: bytes.count)
        input.writeBytes(bytes)
        _ = try? channel.writeInbound(input)
        channel.embeddedEventLoop.run()
        var output = channel.allocator.buffer(capacity: 1024)
        while let part = try? channel.readOutbound(as: ByteBuffer.self) {
            output.writeImmutableBuffer(part)
        }
        _ = try? channel.finish()
        // The pipeline is torn down in a task of the loop (when the channel closed itself).
        channel.embeddedEventLoop.run()
        server.bodyBudget.release(server.bodyBudget.inUse)

        for head in recorder.heads {
            checkHandOff(head)
            checkAccessLog(head)
        }
        // A response to HEAD is framed by the request: a lone response parser cannot follow it.
        if !recorder.heads.contains(where: { $0.method == .HEAD }) {
            checkResponses(output, requests: recorder.heads.count)
        }
    }

    /// The headers a handler gets must come back from the glue's encoding exactly.
    private static func checkHandOff(_ head: HTTPRequestHead) {
        var packed: [UInt8] = []
        let headers = head.headers.map { ($0.name, $0.value) }
        HeaderPacking.pack(headers, into: &packed)
        let unpacked = packed.withUnsafeBytes { HeaderPacking.unpack($0) }
        precondition(unpacked.count == headers.count, "header hand-off lost or made fields")
        for (sent, received) in zip(headers, unpacked) {
            precondition(sent.0.lowercased() == received.0 && sent.1 == received.1, "header hand-off changed a field")
        }
    }

    private static func checkAccessLog(_ head: HTTPRequestHead) {
        var line: [UInt8] = []
        AccessLog.appendEscaped(head.uri, to: &line)
        for (_, value) in head.headers { AccessLog.appendEscaped(value, to: &line) }
        precondition(
            !line.contains(where: { $0 < 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "\"") }),
            "an access-log field can end early or break the line")
    }

    /// The answers must parse as whole responses, no more than were asked for.
    private static func checkResponses(_ output: ByteBuffer, requests: Int) {
        guard output.readableBytes > 0 else { return }
        let client = EmbeddedChannel()
        let counter = ResponseCounter()
        try! client.pipeline.syncOperations.addHTTPClientHandlers()
        try! client.pipeline.syncOperations.addHandler(counter)
        // The response parser pairs each answer with a request sent on its channel: as many as
        // funcd could answer (its own 400 for unparsable bytes included).
        for _ in 0...requests {
            _ = try? client.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
            _ = try? client.writeOutbound(HTTPClientRequestPart.end(nil))
        }
        do {
            try client.writeInbound(output)
        } catch HTTPParserError.closedConnection {
            // Bytes after an answer that said `Connection: close`: funcd closes (or shuts its
            // side) once that answer is flushed, so on a socket they never leave; the embedded
            // channel, which cannot half-close, still records them (NIO's error handler answering
            // the parser's error once more as the channel goes).
        } catch {
            preconditionFailure(
                "funcd wrote bytes that are not HTTP responses: \(error)\n\(String(decoding: output.readableBytesView, as: UTF8.self))")
        }
        _ = try? client.finish()
        precondition(counter.heads <= requests + 1, "more answers than requests: a response was injected")
        precondition(counter.heads == counter.ends || counter.heads == counter.ends + 1, "an answer was cut short")
    }

    /// Notes each request head on its way to the handler.
    private final class HeadRecorder: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        var heads: [HTTPRequestHead] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head(let head) = unwrapInboundIn(data) { heads.append(head) }
            context.fireChannelRead(data)
        }
    }

    private final class ResponseCounter: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        var heads = 0
        var ends = 0

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head: heads += 1
            case .body: break
            case .end: ends += 1
            }
        }
    }

    /// Answers each call at once from its request (see the type's comment).
    private final class EchoHost: FunctionHost, @unchecked Sendable {
        private var invoker: Invoker?

        var versionDescription: String { "echo" }
        func attach(_ invoker: Invoker) { self.invoker = invoker }
        func interrupt(_ invocation: Invocation) {}

        func submit(_ batch: [Invocation]) {
            var finished: [Invocation] = []
            for invocation in batch where invocation.tryStart() {
                var status = 200
                var headers: [(String, String)] = []
                for (name, value) in invocation.headers {
                    let lower = name.lowercased()
                    if lower == "x-status" {
                        status = Int(value) ?? 200
                    } else if lower.hasPrefix("x-answer-") {
                        headers.append((String(name.dropFirst(9)), Self.percentDecoded(value)))
                    }
                }
                invocation.complete(with: InvocationResult(status: status, headers: headers, body: invocation.body))
                finished.append(invocation)
            }
            invoker?.finished(finished)
        }

        private static func percentDecoded(_ text: String) -> String {
            var bytes: [UInt8] = []
            var iterator = Array(text.utf8).makeIterator()
            while let byte = iterator.next() {
                if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                {
                    bytes.append(value)
                } else {
                    bytes.append(byte)
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
