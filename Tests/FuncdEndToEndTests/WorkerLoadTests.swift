import Foundation
import Testing

/// The load test: a 30 s wrk run (loopback, bounded) against two workers while one
/// request in fifty hits a handler that cannot be interrupted.
@Suite(.needsQuietMachine)
struct WorkerLoadTests {
    @Test("30 s of wrk, 1 request in 50 stuck: every healthy request succeeds, each stuck one gets 408 on time, pod RSS grows < 10 %")
    func stuckHandlersUnderLoad() throws {
        let script = TestPaths.fixturesDirectory.appendingPathComponent("one_in_fifty_stuck.lua").path
        try Funcd.withServer(env: [
            "FUNC_WORKERS": "2", "FUNC_TIMEOUT": "1", "FUNC_TIMEOUT_GRACE": "0.5", "SHUTDOWN_TIMEOUT": "2",
            "FUNC_ACCESS_LOG": "off",
        ]) { server in
            let port = try server.port()
            // Warm the workers, then take the pod's memory as the baseline.
            _ = WorkerTests.statuses(port: port, path: "/fast", count: 200)
            let before = ProcessTree.podResidentKiB(server.pid)

            let wrk = try FuncdProcess(
                executableURL: URL(fileURLWithPath: "/usr/bin/wrk"),
                arguments: ["-t2", "-c4", "-d30s", "--timeout", "5s", "-s", script, "http://127.0.0.1:\(port)/"])
            let outcome = try wrk.finish(timeout: 90)
            let loadEnded = Deadline.now
            let line = outcome.stdout.split(separator: "\n").first { $0.hasPrefix("funcd-result") } ?? ""
            var figures: [String: Int] = [:]
            for field in line.split(separator: " ").dropFirst() {
                let parts = field.split(separator: "=")
                if parts.count == 2 { figures[String(parts[0])] = Int(parts[1]) }
            }
            #expect(outcome.exitCode == 0 && !figures.isEmpty, "wrk: \(outcome)")
            let sentStuck = figures["sent_stuck"] ?? 0
            let timedOut = figures["timed_out"] ?? 0
            #expect(sentStuck >= 20, "enough stuck calls to matter: \(figures)")
            #expect(figures["other"] == 0, "every healthy request succeeds: \(figures)\n\(server.diagnostics)")
            #expect(
                (figures["connect_errors"] ?? 1) + (figures["read_errors"] ?? 1) + (figures["write_errors"] ?? 1)
                    + (figures["timeouts"] ?? 1) == 0,
                "no socket errors: \(figures)")
            // wrk abandons what is in flight when the run ends: up to one call per connection.
            #expect(timedOut <= sentStuck && timedOut >= sentStuck - 4, "each stuck call answered 408: \(figures)")
            let ok = figures["ok"] ?? 0
            let sentFast = figures["sent_fast"] ?? 0
            #expect(ok <= sentFast && ok >= sentFast - 4, "each healthy call answered 200: \(figures)")
            let maxLatency = Double(figures["max_latency_us"] ?? 0) / 1e6
            #expect(maxLatency < 1.3, "the slowest answer (a 408) took \(maxLatency) s for FUNC_TIMEOUT=1")

            // Calls sent just before the end are declared stuck up to FUNC_TIMEOUT + grace later
            // (1.5 s); past that, and once two ready workers are all there is, compare memory.
            let settled = Deadline.poll(timeout: 20) {
                Deadline.now > loadEnded + 2.5 && ProcessTree.children(of: server.pid).count == 2
                    && ((try? server.get("/metrics").text.contains("funcd_workers_ready 2")) ?? false)
            }
            #expect(settled, "two workers again: \(ProcessTree.children(of: server.pid))")
            _ = WorkerTests.statuses(port: port, path: "/fast", count: 50)
            let after = ProcessTree.podResidentKiB(server.pid)
            #expect(
                Double(after) <= Double(before) * 1.10,
                "pod RSS \(before) KiB before, \(after) KiB after\n\(server.diagnostics)")
            let metrics = try server.get("/metrics").text
            #expect(metrics.contains("funcd_worker_restarts_total{reason=\"stuck\"}"), "\(metrics)")
        }
    }
}
