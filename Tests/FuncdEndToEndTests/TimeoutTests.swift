import Foundation
import Testing

/// What happens to a handler at FUNC_TIMEOUT, with generous bounds (the spec's 0.3 s precision
/// is checked in ``TimeoutPrecisionTests``): Python interrupts it, its worker is reused, and a
/// handler that refuses to stop makes the process give up after FUNC_TIMEOUT_GRACE (without a
/// supervisor; with one, see ``WorkerTests``).
@Suite(.sharesMachine)
struct TimeoutTests {
    @Test("a handler in time.sleep is interrupted inside Python at FUNC_TIMEOUT, and serving goes on")
    func sleepingHandlerIsInterrupted() throws {
        try Funcd.withServer(env: ["FUNC_TIMEOUT": "1"]) { server in
            let response = try server.get("/sleep")
            #expect(response.status == 408, "GET /sleep → \(response)\n\(server.diagnostics)")
            #expect(response.text.contains("Timeout"), "the 408 body says Timeout: \(response)")
            #expect(
                server.waitForStdout(containing: "sleep-interrupted", timeout: 10),
                "Python must interrupt time.sleep (its finally: block prints sleep-interrupted)\n\(server.diagnostics)")

            let after = try server.get("/fast")
            #expect(after.status == 200 && after.text == "fast", "GET /fast after the timeout → \(after)\n\(server.diagnostics)")
            #expect(server.isRunning, "the process keeps running\n\(server.diagnostics)")
        }
    }

    @Test("repeated timeouts do not use up the workers (FUNC_CONCURRENCY=2, four timeouts in a row)")
    func repeatedTimeoutsFreeTheirWorkers() throws {
        try Funcd.withServer(env: ["FUNC_TIMEOUT": "0.5", "FUNC_CONCURRENCY": "2"]) { server in
            for attempt in 1...4 {
                let response = try server.get("/sleep", timeout: 20)
                #expect(response.status == 408, "timeout \(attempt): GET /sleep → \(response)\n\(server.diagnostics)")
            }
            let after = try server.get("/fast", timeout: 20)
            #expect(
                after.status == 200 && after.text == "fast",
                "after four timed-out handlers with two workers, GET /fast → \(after)\n\(server.diagnostics)")
        }
    }

    @Test("without a supervisor (FUNC_WORKERS=0), a handler that swallows the interruption: 408 at FUNC_TIMEOUT, then the process exits non-zero after the grace")
    func uninterruptibleHandlerMakesTheProcessGiveUp() throws {
        let timeout = 1.0
        let grace = 1.0
        try Funcd.withServer(env: ["FUNC_TIMEOUT": "\(timeout)", "FUNC_TIMEOUT_GRACE": "\(grace)", "FUNC_WORKERS": "0"]) { server in
            let port = try server.port()
            let request = try TimedRequest.get(port: port, path: "/stubborn")
            #expect(request.response.status == 408, "GET /stubborn → \(request.response)\n\(server.diagnostics)")
            #expect(request.elapsed >= timeout, "408 after \(request.elapsed) s, before FUNC_TIMEOUT=\(timeout)")

            // The worker cannot be recovered; the process must not linger half-broken but exit
            // so that the orchestrator restarts it.
            let code = try server.waitForExit(timeout: timeout + grace + 20)
            #expect(code != 0, "exit code \(code) after giving up on a handler\n\(server.diagnostics)")
        }
    }
}
