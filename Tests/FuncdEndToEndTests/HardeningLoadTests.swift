import Foundation
import Testing

/// Issue 12's attacks that are about memory and CPU: each runs alone (`.needsQuietMachine`), so
/// that what /proc shows for the worker is the attack's doing and `/healthz`'s one-second bound
/// is not eaten by other tests' start-ups. The other rows are in ``HardeningTests``.
@Suite(.needsQuietMachine)
struct HardeningLoadTests {
    @Test("a client pipelining GET /metrics for 4 s with a 4 KB receive buffer, never reading: worker RSS under baseline + 32 MB")
    func pipelinedMetricsNeverRead() throws {
        try Funcd.withServer { server in
            let worker = try #require(ProcessTree.waitForWorker(of: server.pid), "no worker process\n\(server.diagnostics)")
            #expect(try server.get("/metrics").status == 200)  // the metrics page exists before the baseline
            let baseline = ProcessTree.residentKiB(worker)
            let ceiling = baseline + 32 * 1_024
            var peak = baseline
            var sent = 0
            var closedAfter: Double?

            let attacker = try AttackSocket(port: try server.port(), receiveBuffer: 4_096)
            defer { attacker.close() }
            let requests = Array(String(repeating: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", count: 200).utf8)
            try HealthWatch.during("a /metrics pipeline that is never read", on: server) {
                let started = Deadline.now
                let end = Deadline(in: 4)
                var pending = requests[...]
                var nextSample = 0.0
                while !end.hasPassed {
                    guard let taken = attacker.sendNow(pending) else {
                        closedAfter = Deadline.now - started  // the server gave up on this client: also bounded
                        break
                    }
                    sent += taken
                    pending = pending.dropFirst(taken)
                    if pending.isEmpty { pending = requests[...] }
                    if taken == 0 { _ = attacker.waitUntilWritable(timeout: 0.02) }
                    if Deadline.now >= nextSample {
                        peak = max(peak, ProcessTree.residentKiB(worker))
                        nextSample = Deadline.now + 0.02
                    }
                }
            }
            peak = max(peak, ProcessTree.residentKiB(worker))
            let summary =
                "worker RSS \(baseline / 1_024) MB before, peak \(peak / 1_024) MB, ceiling \(ceiling / 1_024) MB; "
                + "\(sent / 1_000) KB of requests sent\(closedAfter.map { String(format: ", then closed by the server after %.1f s", $0) } ?? "")"
            #expect(peak < ceiling, "\(summary)\n\(server.diagnostics)")
            #expect(ProcessTree.worker(of: server.pid) == worker, "the worker was replaced during the attack: \(summary)\n\(server.diagnostics)")
            attacker.close()
            #expect(try server.get("/healthz", timeout: 5).status == 200, "after the attack\n\(server.diagnostics)")
        }
    }

    @Test("four concurrent 100 MB POSTs: worker peak RSS under 450 MB, each client a complete answer (200, or 503 with Retry-After)")
    func fourConcurrentLargeUploads() throws {
        try Funcd.withServer { server in
            let worker = try #require(ProcessTree.waitForWorker(of: server.pid), "no worker process\n\(server.diagnostics)")
            let port = try server.port()
            let size = 100 * 1_000_000
            let body = [UInt8](repeating: 0x61, count: size)
            let head = "POST /fast HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: \(size)\r\n\r\n"

            // All four bodies are in flight at once: each client holds back its last byte until
            // the others have sent theirs but one.
            let allButLastSent = Rendezvous(parties: 4)
            let outcomes = try HealthWatch.during("four 100 MB uploads", on: server) {
                let uploads = (0..<4).map { _ in
                    BackgroundCall { try Self.upload(port: port, head: head, body: body, beforeLastByte: allButLastSent) }
                }
                return try uploads.map { try $0.wait(timeout: 120) }
            }
            let peakKiB = ProcessTree.peakResidentKiB(worker)
            #expect(
                peakKiB < 450 * 1_024,
                "worker peak RSS (VmHWM) \(peakKiB / 1_024) MB, want < 450 MB; answers: \(outcomes)\n\(server.diagnostics)")
            #expect(ProcessTree.worker(of: server.pid) == worker, "the worker was replaced\n\(server.diagnostics)")
            for (index, outcome) in outcomes.enumerated() {
                #expect(outcome.isCompleteAnswer, "upload \(index): \(outcome)\n\(server.diagnostics)")
            }
        }
    }

    /// What one upload's client saw.
    struct UploadOutcome: Sendable, CustomStringConvertible {
        var sent: AttackSocket.SendOutcome
        var status: Int?
        var retryAfter: String?
        var seen: String

        /// Sent in full, then a 200, or a 503 that says when to come back.
        var isCompleteAnswer: Bool {
            sent == .sent && (status == 200 || (status == 503 && retryAfter != nil))
        }

        var description: String {
            "\(sent); status \(status.map(String.init) ?? "none"); Retry-After \(retryAfter ?? "none"); \(seen)"
        }
    }

    /// Sends `head` and `body`, then reads the answer, as Python's requests does; before the
    /// body's last byte it waits (up to 10 s) at `beforeLastByte`.
    private static func upload(port: Int, head: String, body: [UInt8], beforeLastByte: Rendezvous) throws -> UploadOutcome {
        let socket = try AttackSocket(port: port)
        defer { socket.close() }
        var sent = socket.send(head, timeout: 5)
        if sent == .sent { sent = socket.send(body.dropLast(), timeout: 60) }
        beforeLastByte.arriveAndWait(timeout: 10)
        if sent == .sent { sent = socket.send(body.suffix(1), timeout: 5) }
        let parsed = socket.readResponses(1, methods: ["POST"], timeout: 60)
        let answer = parsed.finalResponses.first
        return UploadOutcome(
            sent: sent, status: answer?.status, retryAfter: answer?.header("Retry-After"),
            seen: answer?.description ?? socket.receivedDescription)
    }

    @Test("under prlimit --nofile=256:256, 300 connections holding half-sent heads: /healthz within 1 s, the pod under 30 % of a core")
    func descriptorExhaustion() throws {
        let prlimit = URL(fileURLWithPath: "/usr/bin/prlimit")
        try #require(FileManager.default.isExecutableFile(atPath: prlimit.path), "prlimit (util-linux) is needed")
        let code = try CodeDirectory(fixtures: ["app.py"])
        defer { code.remove() }
        let server = try FuncdProcess(
            executableURL: prlimit,
            arguments: ["--nofile=256:256", "--", TestPaths.executable("funcd").path, "serve"],
            environment: [
                "MOD_NAME": "app", "FUNC_HANDLER": "handler", "FUNC_RUNTIME": Funcd.runtime, "FUNC_PORT": "0",
                "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": code.path,
            ])
        defer { server.stop() }
        try server.waitForListening()
        let port = try server.port()
        #expect(try server.get("/healthz", timeout: 5).status == 200, "before the attack\n\(server.diagnostics)")

        var holders: [AttackSocket] = []
        defer { holders.forEach { $0.close() } }
        var notConnected: [String] = []
        let opening = Deadline(in: 10)
        for _ in 0..<300 where !opening.hasPassed && notConnected.count < 5 {
            do {
                let socket = try AttackSocket(port: port, timeout: 0.5)
                _ = socket.send("GET /fast HTTP/1.1\r\nHost: x\r\nX-Never-Ends: ", timeout: 0.5)
                holders.append(socket)
            } catch {
                notConnected.append("\(error)")
            }
        }

        let cpuBefore = ProcessTree.podCPUSeconds(server.pid)
        let started = Deadline.now
        try HealthWatch.during("300 half-sent heads under a 256-descriptor limit", on: server) {
            // The measurement window: the pod's CPU time over 3 s while the heads are held.
            Deadline.poll(timeout: 3, interval: 0.1) { !server.isRunning }
        }
        let cpuShare = (ProcessTree.podCPUSeconds(server.pid) - cpuBefore) / (Deadline.now - started)
        for holder in holders { holder.readAvailable() }
        let closedByServer = holders.filter { $0.end != .open }.count
        let summary =
            "\(holders.count) connections held (\(notConnected.count) not connected: \(notConnected.prefix(2))), "
            + "\(closedByServer) closed by the server; pod CPU \(Int(cpuShare * 100)) % of a core"
        #expect(cpuShare < 0.30, "\(summary)\n\(server.diagnostics)")
        #expect(server.isRunning, "\(summary)\n\(server.diagnostics)")
    }
}
