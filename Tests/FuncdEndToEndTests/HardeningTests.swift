import Foundation
import Testing

/// Issue 12: a hostile or broken client cannot hurt a funcd pod. One test per row of the issue's
/// table, each played as the attacker or broken client would over loopback, each asserting the
/// bound the issue promises (not just "no crash"), and each checking that `/healthz` on a fresh
/// connection keeps answering within 1 s while the attack runs (``HealthWatch``).
///
/// The attacks that measure memory or CPU run alone, in ``HardeningLoadTests``.
@Suite(.sharesMachine)
struct HardeningTests {
    /// A complete response an attacker hides in a body, shaped like the real `/healthz` answer so
    /// that only its `X-Injected` header gives it away.
    static let injectedResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nX-Injected: yes\r\n\r\nOK"

    static let healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    // MARK: - Framing: no body on 204, 304, HEAD

    @Test("Python: a 204 or 304 echoing an attacker's body cannot inject a response before the next one")
    func pythonNoContentInjection() throws {
        try Funcd.withServer { server in
            try HealthWatch.during("framing attacks", on: server) {
                for status in [204, 304] {
                    try Self.expectNoInjection(
                        server, Self.post("/echo-status?status=\(status)", body: Self.injectedResponse),
                        firstStatuses: [status, 500], label: "Response(body, status=\(status))")
                }
            }
        }
    }

    @Test("Node: sendStatus(204), status(204).send(body) and a streamed HEAD send no body")
    func nodeNoContentInjection() throws {
        try NodeTests.withNodeServer { server in
            try HealthWatch.during("framing attacks", on: server) {
                try Self.expectNoInjection(
                    server, "GET /noContent HTTP/1.1\r\nHost: x\r\n\r\n", firstStatuses: [204, 500], label: "res.sendStatus(204)")
                try Self.expectNoInjection(
                    server, Self.post("/noContentEcho", body: Self.injectedResponse), firstStatuses: [204, 500],
                    label: "res.status(204).send(body)")
                try Self.expectNoInjection(
                    server, "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n", method: "HEAD", firstStatuses: [200],
                    label: "HEAD of a streamed answer")
            }
        }
    }

    @Test("Ruby: a [204, {}, [body]] triple echoing an attacker's body cannot inject a response")
    func rubyNoContentInjection() throws {
        try RubyTests.withRubyServer { server in
            try HealthWatch.during("a framing attack", on: server) {
                try Self.expectNoInjection(
                    server, Self.post("/no_content_echo", body: Self.injectedResponse), firstStatuses: [204, 500],
                    label: "[204, {}, [body]]")
            }
        }
    }

    /// Sends `request` and `GET /healthz` in one write on one connection and expects exactly two
    /// answers: the first with one of `firstStatuses`, the second the real `/healthz` answer, no
    /// `X-Injected` anywhere, and no byte beyond them.
    private static func expectNoInjection(
        _ server: FuncdProcess, _ request: String, method: String = "POST", firstStatuses: Set<Int>, label: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let socket = try AttackSocket(port: try server.port())
        defer { socket.close() }
        let sent = socket.send(request + healthz, timeout: 5)
        #expect(sent == .sent, "\(label): \(sent)", sourceLocation: sourceLocation)
        let methods = [method, "GET"]
        socket.read(timeout: 10) { WireResponse.parse($0, methods: methods).finalResponses.count >= 2 }
        // Whatever else arrives soon after two answers is a byte too many.
        socket.read(timeout: 0.3) { _ in false }
        let parsed = WireResponse.parse(socket.received, methods: methods)
        let answers = parsed.finalResponses
        let injected = socket.received.contains(text: "X-Injected")
        #expect(!injected, "\(label): the attacker's response reached the client: \(parsed)", sourceLocation: sourceLocation)
        #expect(
            answers.count == 2 && parsed.rest.isEmpty,
            "\(label): not exactly two framed answers: \(parsed)\n\(server.diagnostics)", sourceLocation: sourceLocation)
        #expect(
            answers.first.map { firstStatuses.contains($0.status) && $0.body.isEmpty } == true,
            "\(label): first answer \(answers.first.map(\.description) ?? "missing")", sourceLocation: sourceLocation)
        #expect(
            answers.count > 1 && answers[1].status == 200 && answers[1].text == "OK" && answers[1].header("X-Injected") == nil,
            "\(label): the second answer is not the real /healthz: \(parsed)", sourceLocation: sourceLocation)
    }

    // MARK: - Bodies over the limit

    @Test("30 uploads of 8 MB over a 1 MiB limit, each sent whole before reading: all 30 read 413, none a reset")
    func oversizedUploadsRead413() throws {
        try Funcd.withServer(env: ["FUNC_MEMFILE_MAX": "1048576"]) { server in
            let size = 8 * 1_048_576
            let body = [UInt8](repeating: 0x62, count: size)
            let head = "POST /size HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: \(size)\r\n\r\n"
            var answered = 0
            var failures: [String] = []
            try HealthWatch.during("oversized uploads", on: server) {
                for index in 0..<30 {
                    let socket = try AttackSocket(port: try server.port())
                    defer { socket.close() }
                    // As http.client and requests do: the whole request, then read.
                    var sent = socket.send(head, timeout: 5)
                    if sent == .sent { sent = socket.send(body, timeout: 5) }
                    let parsed = socket.readResponses(1, timeout: 5)
                    if sent == .sent, parsed.finalResponses.first?.status == 413 {
                        answered += 1
                    } else {
                        failures.append("upload \(index): \(sent); read \(socket.receivedDescription)")
                    }
                    if case .timedOut = sent { break }  // the server stopped reading: 5 s each would add up
                }
            }
            #expect(answered == 30, "\(answered) of 30 read their 413; \(failures.count) did not: \(failures.prefix(3))\n\(server.diagnostics)")
            #expect(server.isRunning, "\(server.diagnostics)")
        }
    }

    // MARK: - Timeouts

    @Test("FUNC_HEADER_TIMEOUT, FUNC_BODY_TIMEOUT, FUNC_IDLE_TIMEOUT = 1: slow heads, slow bodies and idle connections closed in 1-4 s")
    func slowClientsAreClosed() throws {
        try Funcd.withServer(env: ["FUNC_HEADER_TIMEOUT": "1", "FUNC_BODY_TIMEOUT": "1", "FUNC_IDLE_TIMEOUT": "1"]) { server in
            let port = try server.port()
            typealias Closing = (seconds: Double?, seen: String)
            let clients: [(String, BackgroundCall<Closing>)] = [
                ("half a request head", BackgroundCall { try Self.secondsUntilClosed(port: port, sending: "GET /fast HTTP/1.1\r\nHost: x\r\n") }),
                ("a connection that sends nothing", BackgroundCall { try Self.secondsUntilClosed(port: port, sending: "") }),
                ("a head dripped a byte every 0.2 s", BackgroundCall { try Self.secondsUntilClosedDripping(port: port) }),
                (
                    "10 of 100 body bytes, then a pause",
                    BackgroundCall {
                        try Self.secondsUntilClosed(
                            port: port, sending: "POST /size HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
                    }
                ),
                ("an idle keep-alive connection after one answer", BackgroundCall { try Self.secondsUntilIdleClosed(port: port) }),
            ]
            try HealthWatch.during("slow clients", on: server) {
                for (name, client) in clients {
                    let closing = try client.wait(timeout: 20)
                    let inBounds = closing.seconds.map { (0.8...4).contains($0) } ?? false
                    #expect(
                        inBounds,
                        "\(name): closed after \(closing.seconds.map { String(format: "%.2f s", $0) } ?? "never (6 s)"), want 1-4 s; \(closing.seen)\n\(server.diagnostics)"
                    )
                }
            }
        }
    }

    /// Connects, sends `text`, and returns the seconds from then until the server closed the
    /// connection (nil if it was still open after 6 s) and what it saw.
    private static func secondsUntilClosed(port: Int, sending text: String) throws -> (seconds: Double?, seen: String) {
        let socket = try AttackSocket(port: port)
        defer { socket.close() }
        let sent = socket.send(text, timeout: 2)
        guard sent == .sent else { return (nil, "\(sent)") }
        let started = Deadline.now
        let end = socket.readToEnd(timeout: 6)
        return (end == .open ? nil : Deadline.now - started, socket.receivedDescription)
    }

    /// A slowloris: one byte of a never-ending head every 0.2 s; seconds from connecting until the
    /// server closed (nil if still open after 6 s). Bytes that keep coming must not keep a head
    /// alive past the header timeout.
    private static func secondsUntilClosedDripping(port: Int) throws -> (seconds: Double?, seen: String) {
        let socket = try AttackSocket(port: port)
        defer { socket.close() }
        let started = Deadline.now
        let head = Array("GET /fast HTTP/1.1\r\nHost: x\r\nX-Drip: ".utf8) + [UInt8](repeating: 0x64, count: 100)
        for byte in head {
            if socket.sendNow([byte][...]) == nil { break }
            socket.read(timeout: 0.2) { _ in false }
            if socket.end != .open || Deadline.now - started > 6 { break }
        }
        return (socket.end == .open ? nil : Deadline.now - started, socket.receivedDescription)
    }

    /// One request and its answer, then nothing: seconds until the server closed after answering.
    private static func secondsUntilIdleClosed(port: Int) throws -> (seconds: Double?, seen: String) {
        let socket = try AttackSocket(port: port)
        defer { socket.close() }
        _ = socket.send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n", timeout: 2)
        let answer = socket.readResponses(1, timeout: 10)
        guard answer.finalResponses.first?.status == 200 else { return (nil, "no answer to GET /fast: \(answer)") }
        let started = Deadline.now
        let end = socket.readToEnd(timeout: 6)
        return (end == .open ? nil : Deadline.now - started, socket.receivedDescription)
    }

    // MARK: - Half-closed and vanished clients

    @Test("a client that sends two requests then shutdown(SHUT_WR) still reads both answers")
    func halfClosedClientGetsItsAnswers() throws {
        try Funcd.withServer { server in
            try HealthWatch.during("a half-closed client", on: server) {
                let socket = try AttackSocket(port: try server.port())
                defer { socket.close() }
                let sent = socket.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n", timeout: 5)
                #expect(sent == .sent)
                try socket.shutdownWrite()
                let parsed = socket.readResponses(2, timeout: 10)
                let answers = parsed.finalResponses
                #expect(
                    answers.map(\.status) == [200, 200] && answers.map(\.text) == ["slow done", "fast"],
                    "after shutdown(SHUT_WR): \(parsed); server side \(socket.end)\n\(server.diagnostics)")
            }
        }
    }

    @Test("10 clients that queue a slow call and vanish: their calls are dropped and counted, a new call answered within 2.5 s")
    func abandonedCallsAreDropped() throws {
        try Funcd.withServer(env: ["FUNC_CONCURRENCY": "1", "FUNC_QUEUE": "16"]) { server in
            let port = try server.port()
            let marker = FileManager.default.temporaryDirectory.appendingPathComponent("funcd-abandon-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: marker) }
            let before = try Self.abandonedCalls(server)

            let holder = try AttackSocket(port: port)
            defer { holder.close() }
            _ = holder.send("GET /slow?marker=\(marker) HTTP/1.1\r\nHost: x\r\n\r\n", timeout: 5)
            let running = Deadline.poll(timeout: 15) { FileManager.default.fileExists(atPath: marker) }
            try #require(running, "the first /slow call never started\n\(server.diagnostics)")

            var newCall: Result<TimedRequest, any Error>!
            try HealthWatch.during("vanishing clients", on: server) {
                // Ten more /slow calls wait behind the running one; the server reads every one of
                // them (its receive queues empty) before their clients reset the connections.
                let leavers = try (0..<10).map { _ in try AttackSocket(port: port) }
                for leaver in leavers {
                    _ = leaver.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", timeout: 5)
                }
                let read = Deadline.poll(timeout: 5) { ProcessTree.unreadSockets(port: port) == 0 }
                #expect(read, "the server did not read the ten requests")
                for leaver in leavers { leaver.abort() }
                newCall = Result { try TimedRequest.get(port: port, path: "/fast", timeout: 4) }
            }
            switch newCall! {
            case .success(let timed):
                #expect(
                    timed.response.status == 200 && timed.elapsed < 2.5,
                    "a new call after ten clients vanished: \(timed.response) after \(timed.elapsed) s (the running /slow has at most 1 s left)\n\(server.diagnostics)"
                )
            case .failure(let error):
                Issue.record("a new call after ten clients vanished was not answered within 4 s: \(error)\n\(server.diagnostics)")
            }
            var after = before
            Deadline.poll(timeout: 5, interval: 0.1) {
                after = (try? Self.abandonedCalls(server)) ?? after
                return after - before >= 10
            }
            #expect(after - before >= 10, "funcd_abandoned_calls_total went from \(before) to \(after), want +10\n\(server.diagnostics)")
            let first = holder.readResponses(1, timeout: 10)
            #expect(first.finalResponses.first?.text == "slow done", "the client that stayed: \(first)")
        }
    }

    /// The sum of `funcd_abandoned_calls_total` on `/metrics` (0 while it is absent).
    private static func abandonedCalls(_ server: FuncdProcess) throws -> Double {
        let metrics = try server.get("/metrics", timeout: 5)
        return PrometheusSample.parse(metrics.text).filter { $0.name == "funcd_abandoned_calls_total" }.reduce(0) { $0 + $1.value }
    }

    // MARK: - Expect: 100-continue

    @Test("Expect: 100-continue: 100 Continue before the body is sent, then 200; over the limit a 413 without 100")
    func expectContinue() throws {
        try Funcd.withServer(env: ["FUNC_MEMFILE_MAX": "1048576"]) { server in
            try HealthWatch.during("Expect: 100-continue", on: server) {
                let socket = try AttackSocket(port: try server.port())
                defer { socket.close() }
                let head =
                    "POST /size HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
                _ = socket.send(head, timeout: 5)
                socket.read(timeout: 2) { !WireResponse.parse($0).responses.isEmpty }
                let interim = WireResponse.parse(socket.received)
                #expect(
                    interim.responses.first?.status == 100,
                    "within 2 s of a head with Expect: 100-continue and no body: \(interim)\n\(server.diagnostics)")
                _ = socket.send([UInt8](repeating: 0x63, count: 1_000), timeout: 5)
                let parsed = socket.readResponses(1, methods: ["POST"], timeout: 10)
                let answer = parsed.finalResponses.first
                #expect(
                    answer?.status == 200 && answer.flatMap { JSONObject(text: $0.text) }?.int("length") == 1_000,
                    "after the body: \(parsed)\n\(server.diagnostics)")

                let tooBig = try AttackSocket(port: try server.port())
                defer { tooBig.close() }
                _ = tooBig.send(
                    "POST /size HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n", timeout: 5)
                let refused = tooBig.readResponses(1, methods: ["POST"], timeout: 2)
                #expect(
                    refused.responses.first?.status == 413,
                    "a head over the limit with Expect: 100-continue: want only a 413, got \(refused)\n\(server.diagnostics)")
            }
        }
    }

    // MARK: - Header limits

    @Test("150 headers → 431, 20,000 empty headers → 431 (or 400), 40 KB of headers → 431; 90 headers still fine")
    func headerLimits() throws {
        try Funcd.withServer { server in
            try HealthWatch.during("header floods", on: server) {
                let many = (0..<150).map { "X-H\($0): v\r\n" }.joined()
                try Self.expectHeadRefused(server, extraHeaders: many, statuses: [431], label: "150 headers")
                let empty = String(repeating: "a:\r\n", count: 20_000)
                try Self.expectHeadRefused(server, extraHeaders: empty, statuses: [431, 400], label: "20,000 empty headers")
                let big = "X-Big: " + String(repeating: "b", count: 40_000) + "\r\n"
                try Self.expectHeadRefused(server, extraHeaders: big, statuses: [431], label: "one 40,000-byte header")

                let fine = (0..<90).map { "X-H\($0): v\r\n" }.joined()
                let socket = try AttackSocket(port: try server.port())
                defer { socket.close() }
                _ = socket.send("GET /fast HTTP/1.1\r\nHost: x\r\n\(fine)\r\n", timeout: 5)
                let parsed = socket.readResponses(1, timeout: 10)
                #expect(parsed.finalResponses.first?.status == 200, "91 headers, under the default 100: \(parsed)")
            }
        }
    }

    /// Sends `GET /fast` with `extraHeaders` (reading while sending, as the server may answer
    /// early) and expects one of `statuses`, then the connection closed by the server.
    private static func expectHeadRefused(
        _ server: FuncdProcess, extraHeaders: String, statuses: Set<Int>, label: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let socket = try AttackSocket(port: try server.port())
        defer { socket.close() }
        let sent = socket.send("GET /fast HTTP/1.1\r\nHost: x\r\n\(extraHeaders)\r\n", timeout: 10, readingMeanwhile: true)
        let parsed = socket.readResponses(1, timeout: 10)
        let status = parsed.finalResponses.first?.status
        #expect(
            status.map(statuses.contains) == true,
            "\(label): want \(statuses.sorted()), got \(parsed) (send: \(sent))\n\(server.diagnostics)",
            sourceLocation: sourceLocation)
        if status.map(statuses.contains) == true {
            #expect(socket.readToEnd(timeout: 5) != .open, "\(label): the connection stays open after \(status!)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Access log

    @Test(#"the combined access log escapes " \ and control bytes (\x22 \x5C \x09) and keeps its nine fields"#)
    func accessLogEscapes() throws {
        try Funcd.withServer { server in
            try HealthWatch.during("log forging", on: server) {
                let socket = try AttackSocket(port: try server.port())
                defer { socket.close() }
                let request =
                    "GET /log-escape\"quote HTTP/1.1\r\nHost: x\r\nUser-Agent: agent\" 200 1 \"evil\tback\\slash\r\nReferer: ref\"erer\r\n\r\n"
                _ = socket.send(request, timeout: 5)
                let parsed = socket.readResponses(1, timeout: 10)
                #expect(parsed.finalResponses.first?.status == 200, "GET with a quote in the path: \(parsed)\n\(server.diagnostics)")
            }
            let logged = server.waitForStdout(containing: "/log-escape", timeout: 10)
            #expect(logged, "no access-log line for /log-escape\n\(server.diagnostics)")
            let line = server.stdoutText.split(separator: "\n").map(String.init).first { $0.contains("/log-escape") } ?? ""
            #expect(line.contains(#""GET /log-escape\x22quote HTTP/1.1""#), "the path's quote as \\x22: \(line)")
            #expect(line.contains(#""agent\x22 200 1 \x22evil\x09back\x5Cslash""#), "the user agent escaped: \(line)")
            #expect(line.contains(#""ref\x22erer""#), "the referer escaped: \(line)")
            // host ident user [time] "request" status bytes "referer" "user agent", nothing else.
            let combined = #/\S+ \S+ \S+ \[[^\]]+\] "[^"]*" \d{3} \S+ "[^"]*" "[^"]*"/#
            #expect(line.wholeMatch(of: combined) != nil, "not exactly the combined format's fields: \(line)")
        }
    }

    // MARK: - Headers a handler sets

    @Test("Node: res.redirect(req.query.next) with %00 in it sends no Set-Cookie: 500, and a log line names Location")
    func nodeRedirectWithNul() throws {
        try NodeTests.withNodeServer { server in
            try HealthWatch.during("a header injection", on: server) {
                let response = try server.get("/redirect?next=/home%00Set-Cookie%00session=attacker", timeout: 10)
                #expect(response.headerValues("Set-Cookie").isEmpty, "a header injected through NUL: \(response)")
                #expect(response.status == 500, "a Location with a NUL: \(response)\n\(server.diagnostics)")
                let named = server.waitForStderr(containing: "Location", timeout: 5)
                    || server.waitForStderr(containing: "location", timeout: 0)
                #expect(named, "no stderr line names the Location header\n\(server.diagnostics)")
            }
        }
    }

    @Test("Ruby: a JSON POST with Access-Control-Request-Headers: content-type arrives as a Hash")
    func rubyCorsPreflightHeaderValue() throws {
        try RubyTests.withRubyServer { server in
            try HealthWatch.during("a CORS header", on: server) {
                // Browsers send the CORS header before Content-Type; the header value "content-type"
                // must not be taken for the header name.
                let response = try server.request(
                    "POST", "/event",
                    headers: ["Access-Control-Request-Headers": "content-type", "Content-Type": "application/json"],
                    body: #"{"a":1}"#, timeout: 10)
                let event = response.jsonObject
                #expect(response.status == 200, "\(response)\n\(server.diagnostics)")
                #expect(event?["dataClass"] as? String == "Hash", "the data as the handler got it: \(response)")
                #expect((event?["data"] as? [String: Any])?["a"] as? Int == 1, "\(response)")
            }
        }
    }

    @Test("Python: a status outside 200-599 → 500; a header with CR, LF, NUL or a bad name → 500, nothing injected, one stderr line naming it")
    func pythonInvalidStatusAndHeaders() throws {
        try Funcd.withServer { server in
            try HealthWatch.during("invalid handler answers", on: server) {
                for status in [99, 100, 101, 600, 999] {
                    let parsed = try Self.exchange(server, "GET /echo-status?status=\(status) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    #expect(
                        parsed.responses.map(\.status) == [500] && parsed.rest.isEmpty,
                        "a handler status \(status): \(parsed)\n\(server.diagnostics)")
                }
                for kind in ["crlf", "lf", "nul", "name"] {
                    let linesBefore = Self.stderrLines(server, naming: "X-Bad")
                    let parsed = try Self.exchange(server, "GET /bad-header?kind=\(kind) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    let injected = parsed.responses.contains { $0.header("Injected") != nil } || Array(parsed.rest).contains(text: "Injected")
                    #expect(!injected, "header kind \(kind): a header was injected: \(parsed)")
                    #expect(
                        parsed.responses.map(\.status) == [500] && parsed.rest.isEmpty,
                        "header kind \(kind): \(parsed)\n\(server.diagnostics)")
                    Deadline.poll(timeout: 2) { Self.stderrLines(server, naming: "X-Bad") > linesBefore }
                    let named = Self.stderrLines(server, naming: "X-Bad") - linesBefore
                    #expect(named == 1, "header kind \(kind): \(named) new stderr lines name X-Bad, want 1\n\(server.diagnostics)")
                }
            }
        }
    }

    /// Sends `request` on a fresh connection and parses what comes back: the first answer (within
    /// 10 s) and whatever follows it closely.
    private static func exchange(_ server: FuncdProcess, _ request: String) throws -> WireResponse.Parsed {
        let socket = try AttackSocket(port: try server.port())
        defer { socket.close() }
        _ = socket.send(request, timeout: 5)
        _ = socket.readResponses(1, timeout: 10)
        socket.read(timeout: 0.3) { _ in false }
        return WireResponse.parse(socket.received)
    }

    private static func stderrLines(_ server: FuncdProcess, naming text: String) -> Int {
        server.stderrText.split(separator: "\n").filter { $0.contains(text) }.count
    }

    // MARK: - Helpers

    /// A POST of `body` as an octet stream.
    static func post(_ path: String, body: String) -> String {
        "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }
}
