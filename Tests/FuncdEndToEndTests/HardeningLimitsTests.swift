import Foundation
import Testing

/// Issue 12's bounds, set small through their variables and flags: each is a setting an operator
/// can change, and each holds at the value given, not only at its default. The attacks at the
/// defaults are in ``HardeningTests`` and ``HardeningLoadTests``.
@Suite(.sharesMachine)
struct HardeningLimitsTests {
    @Test("FUNC_MAX_HEADERS=10 and FUNC_MAX_HEADER_BYTES=2048: 12 headers → 431, 3 KB of headers → 431, 9 headers fine")
    func configuredHeaderLimits() throws {
        try Funcd.withServer(env: ["FUNC_MAX_HEADERS": "10", "FUNC_MAX_HEADER_BYTES": "2048"]) { server in
            try HealthWatch.during("header limits", on: server) {
                let twelve = (0..<11).map { "X-H\($0): v\r\n" }.joined()
                let tooMany = try Self.exchange(server, "GET /fast HTTP/1.1\r\nHost: x\r\n\(twelve)\r\n")
                #expect(tooMany.finalResponses.first?.status == 431, "12 headers over FUNC_MAX_HEADERS=10: \(tooMany)\n\(server.diagnostics)")

                let big = "X-Big: " + String(repeating: "b", count: 3_000) + "\r\n"
                let tooBig = try Self.exchange(server, "GET /fast HTTP/1.1\r\nHost: x\r\n\(big)\r\n")
                #expect(tooBig.finalResponses.first?.status == 431, "3 KB of headers over FUNC_MAX_HEADER_BYTES=2048: \(tooBig)\n\(server.diagnostics)")

                let nine = (0..<8).map { "X-H\($0): v\r\n" }.joined()
                let fine = try Self.exchange(server, "GET /fast HTTP/1.1\r\nHost: x\r\n\(nine)\r\n")
                #expect(fine.finalResponses.first?.status == 200, "9 headers under FUNC_MAX_HEADERS=10: \(fine)\n\(server.diagnostics)")
            }
        }
    }

    @Test("FUNC_BODY_BUDGET=1000000: while one body holds the budget a second gets 503 + Retry-After from its head; a lone body over the budget is admitted")
    func bodyBudget() throws {
        try Funcd.withServer(env: ["FUNC_BODY_BUDGET": "1000000", "FUNC_MEMFILE_MAX": "4000000"]) { server in
            try HealthWatch.during("a body budget", on: server) {
                let holder = try AttackSocket(port: try server.port())
                defer { holder.close() }
                let holderSent = holder.send(
                    Self.uploadHead(length: 800_000) + String(repeating: "h", count: 400_000), timeout: 5)
                #expect(holderSent == .sent)
                let holding = Deadline.poll(timeout: 5) { ProcessTree.unreadSockets(port: (try? server.port()) ?? 0) == 0 }
                #expect(holding, "the server did not read the first half of the first body")

                // Only the head: the 503 must not wait for a body.
                let second = try AttackSocket(port: try server.port())
                defer { second.close() }
                _ = second.send(Self.uploadHead(length: 800_000), timeout: 5)
                let refused = second.readResponses(1, methods: ["POST"], timeout: 3)
                let answer = refused.finalResponses.first
                #expect(
                    answer?.status == 503 && answer?.header("Retry-After") != nil,
                    "800 KB more while 800 KB are buffered, budget 1 MB: want 503 with Retry-After from the head, got \(refused)\n\(server.diagnostics)"
                )

                _ = holder.send(String(repeating: "h", count: 400_000), timeout: 5)
                let held = holder.readResponses(1, methods: ["POST"], timeout: 10)
                #expect(
                    held.finalResponses.first.flatMap { JSONObject(text: $0.text) }?.int("length") == 800_000,
                    "the body that held the budget: \(held)\n\(server.diagnostics)")

                let lone = try server.request(
                    "POST", "/size", headers: ["Content-Type": "application/octet-stream"],
                    body: [UInt8](repeating: 0x6c, count: 3_000_000), timeout: 10)
                #expect(
                    lone.status == 200 && JSONObject(lone)?.int("length") == 3_000_000,
                    "a lone 3 MB body, over the budget but under the limit: \(lone)\n\(server.diagnostics)")
            }
        }
    }

    @Test("FUNC_MAX_CONNECTIONS=8: with eight idle keep-alive connections open, a ninth is served and an idle one closed")
    func connectionCap() throws {
        try Funcd.withServer(env: ["FUNC_MAX_CONNECTIONS": "8"]) { server in
            try HealthWatch.during("a full connection table", on: server) {
                var idle: [AttackSocket] = []
                defer { idle.forEach { $0.close() } }
                for index in 0..<8 {
                    let socket = try AttackSocket(port: try server.port())
                    _ = socket.send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n", timeout: 5)
                    let answer = socket.readResponses(1, timeout: 10)
                    #expect(answer.finalResponses.first?.status == 200, "keep-alive connection \(index): \(answer)")
                    idle.append(socket)
                }
                // The watch's probes are the ninth connection; one more, timed by hand:
                let ninth = HealthWatch.probe(port: try server.port())
                #expect(ninth.answered, "a ninth connection at FUNC_MAX_CONNECTIONS=8: \(ninth)\n\(server.diagnostics)")
                // Eviction picks the connection that has waited longest on the newcomer's event loop
                // (a worker runs one per core), so which of the eight goes depends on the loops.
                let oneClosed = Deadline.poll(timeout: 3) {
                    idle.forEach { $0.readAvailable() }
                    return idle.contains { $0.end != .open }
                }
                #expect(oneClosed, "every idle keep-alive connection is still open at the cap\n\(server.diagnostics)")
            }
        }
    }

    @Test("FUNC_LINGER_TIMEOUT=1: after an early 413 the drain is bounded: a client that keeps sending is closed within 1-4 s")
    func lingerIsBounded() throws {
        try Funcd.withServer(env: ["FUNC_LINGER_TIMEOUT": "1", "FUNC_MEMFILE_MAX": "1048576"]) { server in
            try HealthWatch.during("an endless body after a 413", on: server) {
                let socket = try AttackSocket(port: try server.port())
                defer { socket.close() }
                _ = socket.send(Self.uploadHead(length: 1_000_000_000), timeout: 5)
                let chunk = [UInt8](repeating: 0x65, count: 16_384)
                let started = Deadline.now
                // Keep sending, reading what comes, until the server ends the connection (or 6 s).
                while socket.end == .open && Deadline.now - started < 6 {
                    if socket.sendNow(chunk[...]) == nil { break }
                    socket.read(timeout: 0.01) { _ in false }
                }
                let elapsed = Deadline.now - started
                socket.readAvailable()
                let parsed = WireResponse.parse(socket.received, methods: ["POST"])
                #expect(parsed.finalResponses.first?.status == 413, "a 1 GB Content-Length over a 1 MiB limit: \(parsed)\n\(server.diagnostics)")
                #expect(
                    socket.end != .open || socket.lastSendError != 0,
                    "still connected after \(String(format: "%.1f", elapsed)) s of sending after the 413\n\(server.diagnostics)")
                #expect(elapsed < 4, "the drain after the 413 lasted \(String(format: "%.1f", elapsed)) s with FUNC_LINGER_TIMEOUT=1")
            }
        }
    }

    @Test("every bound has its flag: serve starts with all of them, and --header-timeout 1 closes half a head in 1-4 s")
    func flags() throws {
        let arguments = [
            "--header-timeout", "1", "--body-timeout", "30", "--idle-timeout", "620", "--linger-timeout", "10",
            "--max-connections", "100", "--body-budget", "134217728", "--max-headers", "100",
            "--max-header-bytes", "32768", "--max-pipelined", "16", "--send-buffer", "65536",
        ]
        try Funcd.withServer(arguments: arguments) { server in
            let socket = try AttackSocket(port: try server.port())
            defer { socket.close() }
            _ = socket.send("GET /fast HTTP/1.1\r\nHost: x\r\n", timeout: 5)
            let started = Deadline.now
            let end = socket.readToEnd(timeout: 6)
            let elapsed = Deadline.now - started
            #expect(
                end != .open && (0.8...4).contains(elapsed),
                "half a head with --header-timeout 1: \(end) after \(String(format: "%.2f", elapsed)) s\n\(server.diagnostics)")
        }
    }

    // MARK: - Helpers

    static func uploadHead(length: Int) -> String {
        "POST /size HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: \(length)\r\n\r\n"
    }

    /// Sends `request` (reading while sending) on a fresh connection; parses the first answer.
    private static func exchange(_ server: FuncdProcess, _ request: String) throws -> WireResponse.Parsed {
        let socket = try AttackSocket(port: try server.port())
        defer { socket.close() }
        _ = socket.send(request, timeout: 5, readingMeanwhile: true)
        return socket.readResponses(1, timeout: 10)
    }
}
