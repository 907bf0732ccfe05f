import FuncdCore
import FuncdSystem
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Prometheus
import Testing

@testable import FuncdHTTP

/// The connection handler over NIO's embedded channel: framing of what handlers answer, limits
/// judged from the head, `Expect: 100-continue`. The host is a Swift closure standing in for
/// an interpreter (the real hosts are covered end to end); it answers inside `submit`.
@Suite struct FunctionHTTPHandlerTests {
    /// Answers every call with `answer(invocation)` at once, on the submitting thread.
    final class ClosureHost: FunctionHost, @unchecked Sendable {
        let answer: @Sendable (Invocation) -> InvocationResult
        private var invoker: Invoker?

        init(_ answer: @escaping @Sendable (Invocation) -> InvocationResult) { self.answer = answer }

        var versionDescription: String { "closure" }
        func attach(_ invoker: Invoker) { self.invoker = invoker }
        func interrupt(_ invocation: Invocation) {}
        func submit(_ batch: [Invocation]) {
            var finished: [Invocation] = []
            for invocation in batch where invocation.tryStart() {
                invocation.complete(with: answer(invocation))
                finished.append(invocation)
            }
            invoker?.finished(finished)
        }
    }

    /// Starts every call and answers it only when told: a handler that is still running.
    final class HeldHost: FunctionHost, @unchecked Sendable {
        private var invoker: Invoker?
        private(set) var running: [Invocation] = []

        var versionDescription: String { "held" }
        func attach(_ invoker: Invoker) { self.invoker = invoker }
        func interrupt(_ invocation: Invocation) {}
        func submit(_ batch: [Invocation]) {
            running += batch.filter { $0.tryStart() }
        }

        func finishAll() {
            for invocation in running { invocation.complete(with: InvocationResult(status: 200)) }
            invoker?.finished(running)
            running = []
        }
    }

    /// A channel with funcd's HTTP pipeline on an embedded loop.
    struct Connection {
        let channel: EmbeddedChannel
        let server: ServerState

        init(
            environment: [String: String] = [:],
            answer: @escaping @Sendable (Invocation) -> InvocationResult = { _ in
                InvocationResult(status: 200, body: Array("hello".utf8))
            }
        ) throws {
            try self.init(environment: environment, host: ClosureHost(answer))
        }

        init(environment: [String: String] = [:], host: any FunctionHost) throws {
            var env = ["MOD_NAME": "app", "FUNC_HANDLER": "handler", "FUNC_RUNTIME": "python3.11"]
            env.merge(environment) { _, new in new }
            let configuration = try Configuration(environment: env, fileExists: { _ in false })
            let logger = Logger(label: "test")
            let invoker = Invoker(
                host: host, timeoutSeconds: 60, graceSeconds: 1,
                metrics: FunctionMetrics(registry: PrometheusCollectorRegistry()), logger: logger, onStuck: { _ in })
            invoker.startWatchdog()
            server = ServerState(configuration: configuration, invoker: invoker, logger: logger, extraMetrics: nil)
            channel = EmbeddedChannel()
            let lane = EventLoopLane(
                eventLoop: channel.embeddedEventLoop, invoker: invoker,
                accessLog: AccessLog(format: .off, eventLoop: channel.embeddedEventLoop),
                limits: configuration.limits)
            try channel.pipeline.syncOperations.addFunctionHTTPHandlers(lane: lane, server: server)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        /// Sends `text` and returns everything written back once the loop has settled.
        func exchange(_ text: String) throws -> String {
            try channel.writeInbound(ByteBuffer(string: text))
            channel.embeddedEventLoop.run()
            var answer = ""
            while let part = try channel.readOutbound(as: ByteBuffer.self) {
                answer += String(buffer: part)
            }
            return answer
        }
    }

    @Test("a 204 answer carries no body even when the handler gave one, and the next answer is intact")
    func noContentHasNoBody() throws {
        let connection = try Connection { invocation in
            InvocationResult(status: 204, body: invocation.body)
        }
        let injected = "HTTP/1.1 200 OK\r\nX-Injected: yes\r\nContent-Length: 0\r\n\r\n"
        let answer = try connection.exchange(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(injected.utf8.count)\r\n\r\n\(injected)"
                + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 204 No Content\r\n"), "\(answer)")
        #expect(!answer.contains("X-Injected"), "\(answer)")
        #expect(answer.hasSuffix("\r\n\r\nOK"), "the second answer is /healthz's: \(answer)")
    }

    @Test("a status HTTP does not allow, or a header that would split the head, becomes a 500")
    func unsafeAnswersRefused() throws {
        for result in [
            InvocationResult(status: 99, body: Array("x".utf8)),
            InvocationResult(status: 600),
            InvocationResult(status: 200, headers: [("X-Bad", "a\r\nInjected: 1")]),
            InvocationResult(status: 200, headers: [("X-Bad", "a\0b")]),
            InvocationResult(status: 200, headers: [("Bad Name", "x")]),
        ] {
            let connection = try Connection { _ in result }
            let answer = try connection.exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 500 Internal Server Error\r\n"), "\(result.status) \(result.headers): \(answer)")
            #expect(!answer.contains("Injected"), "\(answer)")
        }
    }

    @Test("more header fields than FUNC_MAX_HEADERS get 431 and the connection closes")
    func tooManyHeaders() throws {
        let connection = try Connection(environment: ["FUNC_MAX_HEADERS": "10"])
        let headers = (0..<11).map { "X-\($0): y\r\n" }.joined()
        let answer = try connection.exchange("GET / HTTP/1.1\r\n\(headers)\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "\(answer)")
        #expect(answer.lowercased().contains("connection: close"), "\(answer)")
    }

    @Test("a body over the limit is refused from its head, before any of it arrives")
    func earlyPayloadTooLarge() throws {
        let connection = try Connection(environment: ["FUNC_MEMFILE_MAX": "100"])
        let answer = try connection.exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"), "\(answer)")
        #expect(answer.lowercased().contains("connection: close"), "\(answer)")
    }

    @Test("a body that does not fit the worker's budget beside another gets 503 and Retry-After")
    func bodyBudget() throws {
        let first = try Connection(environment: ["FUNC_BODY_BUDGET": "1000"])
        // The first body is taken (alone, it is always admitted) and stays half sent.
        #expect(try first.exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\n\r\nabc").isEmpty)
        #expect(first.server.bodyBudget.inUse == 800)
        #expect(first.server.bodyBudget.reserve(300) == false, "800 + 300 is over the budget of 1000")
        #expect(first.server.bodyBudget.reserve(200), "800 + 200 fits")
        first.server.bodyBudget.release(200)
        _ = try first.channel.finish()
        #expect(first.server.bodyBudget.inUse == 0, "a closed connection gives its body's budget back")
    }

    @Test("a running call keeps its body's budget after its client leaves, until its answer comes back")
    func budgetOfARunningCall() throws {
        let host = HeldHost()
        let connection = try Connection(host: host)
        _ = try connection.exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        #expect(host.running.count == 1)
        #expect(connection.server.bodyBudget.inUse == 5)
        _ = try? connection.channel.finish()
        #expect(connection.server.bodyBudget.inUse == 5, "the handler still holds the body")
        host.finishAll()
        connection.channel.embeddedEventLoop.run()
        #expect(connection.server.bodyBudget.inUse == 0, "the answer went nowhere, the budget came back")
    }

    @Test("Expect: 100-continue is answered before the body, the answer follows it")
    func expectContinue() throws {
        let connection = try Connection()
        let interim = try connection.exchange(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        #expect(interim == "HTTP/1.1 100 Continue\r\n\r\n", "\(interim)")
        let answer = try connection.exchange("hello")
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.hasSuffix("hello"), "\(answer)")
    }

    @Test("Expect: 100-continue over the limit gets the 413 and no 100")
    func expectContinueOverLimit() throws {
        let connection = try Connection(environment: ["FUNC_MEMFILE_MAX": "4"])
        let answer = try connection.exchange(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 413 "), "\(answer)")
        #expect(!answer.contains("100 Continue"), "\(answer)")
    }

    @Test("HEAD answers say the length but send no body")
    func headHasNoBody() throws {
        let connection = try Connection()
        let answer = try connection.exchange("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.hasSuffix("\r\n\r\n"), "\(answer)")
        #expect(answer.contains("Content-Length: 5"), "\(answer)")
    }

    @Test("a whole answer leaves as one buffer, head and body together")
    func wholeAnswerIsOneWrite() throws {
        let connection = try Connection()
        try connection.channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        connection.channel.embeddedEventLoop.run()
        var parts: [String] = []
        while let part = try connection.channel.readOutbound(as: ByteBuffer.self) {
            parts.append(String(buffer: part))
        }
        #expect(
            parts == ["HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK"],
            "\(parts)")
    }

    @Test("a request the decoder cannot read gets a 400 and the connection closes; what follows is not read")
    func unreadableRequest() throws {
        let connection = try Connection()
        let answer = try connection.exchange("GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n")
        #expect(answer == "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", "\(answer)")
        #expect(!connection.channel.isActive)
    }

    @Test("an HTTP/1.0 request asking to keep the connection is told it is kept")
    func http10KeepAlive() throws {
        let connection = try Connection()
        let answer = try connection.exchange("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(
            answer
                == "HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nOK",
            "\(answer)")
        #expect(connection.channel.isActive)
        let closing = try connection.exchange("GET /healthz HTTP/1.0\r\n\r\n")
        #expect(closing.contains("\r\nConnection: close\r\n\r\nOK"), "\(closing)")
    }

    @Test("the access log escapes what it quotes as nginx does")
    func accessLogEscaping() {
        var line: [UInt8] = []
        AccessLog.appendEscaped("/a\"b\\c\n\u{7F}é", to: &line)
        #expect(String(decoding: line, as: UTF8.self) == "/a\\x22b\\x5Cc\\x0A\\x7F\\xC3\\xA9")
    }
}
