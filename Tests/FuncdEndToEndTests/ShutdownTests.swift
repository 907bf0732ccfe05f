import Foundation
import Testing

/// Graceful shutdown on SIGTERM, as Kubernetes stops a pod: requests in flight finish, then the
/// process exits 0; SHUTDOWN_TIMEOUT bounds the wait when a handler does not finish.
@Suite(.sharesMachine)
struct ShutdownTests {
    @Test("SIGTERM with a request in flight: it completes with 200 and the process exits 0 within SHUTDOWN_TIMEOUT")
    func sigtermDrainsTheRequestInFlight() throws {
        let markers = try CodeDirectory(files: [])
        defer { markers.remove() }
        let marker = markers.file("slow-started")
        let shutdownTimeout = 10.0

        try Funcd.withServer(env: ["SHUTDOWN_TIMEOUT": "\(Int(shutdownTimeout))"]) { server in
            let port = try server.port()
            let inFlight = BackgroundCall { try TimedRequest.get(port: port, path: "/slow?marker=\(marker)") }
            let started = Deadline.poll(timeout: 20) { FileManager.default.fileExists(atPath: marker) }
            try #require(started, "the /slow handler never started\n\(server.diagnostics)")

            let signalledAt = Deadline.now
            server.sendSignal(SIGTERM)

            let request = try inFlight.wait(timeout: 30)
            #expect(
                request.response.status == 200 && request.response.text == "slow done",
                "the request in flight at SIGTERM → \(request.response)\n\(server.diagnostics)")

            let code = try server.waitForExit(timeout: shutdownTimeout + 20)
            let seconds = (server.exitedAt ?? Deadline.now) - signalledAt
            #expect(code == 0, "exit code after SIGTERM: \(code)\n\(server.diagnostics)")
            #expect(seconds < shutdownTimeout, "exited \(seconds) s after SIGTERM, SHUTDOWN_TIMEOUT=\(shutdownTimeout)\n\(server.diagnostics)")
        }
    }

    @Test("SIGTERM when idle: the process exits 0 promptly")
    func sigtermWhenIdle() throws {
        try Funcd.withServer { server in
            let warmUp = try server.get("/fast")
            #expect(warmUp.status == 200, "GET /fast → \(warmUp)\n\(server.diagnostics)")

            let signalledAt = Deadline.now
            server.sendSignal(SIGTERM)
            let code = try server.waitForExit(timeout: 30)
            let seconds = (server.exitedAt ?? Deadline.now) - signalledAt
            #expect(code == 0, "exit code after SIGTERM: \(code)\n\(server.diagnostics)")
            #expect(seconds < 10, "exited \(seconds) s after SIGTERM with nothing to drain (default SHUTDOWN_TIMEOUT is 10 s)")
        }
    }

    @Test("SIGTERM with a handler that does not finish: the process still exits once SHUTDOWN_TIMEOUT is over")
    func shutdownTimeoutBoundsTheDrain() throws {
        let markers = try CodeDirectory(files: [])
        defer { markers.remove() }
        let marker = markers.file("sleep-started")
        let shutdownTimeout = 2.0

        try Funcd.withServer(env: ["FUNC_TIMEOUT": "100", "SHUTDOWN_TIMEOUT": "\(Int(shutdownTimeout))"]) { server in
            let port = try server.port()
            // The client's own outcome does not matter here (the connection may be cut).
            _ = BackgroundCall { try TimedRequest.get(port: port, path: "/sleep?marker=\(marker)", timeout: 60) }
            let started = Deadline.poll(timeout: 20) { FileManager.default.fileExists(atPath: marker) }
            try #require(started, "the /sleep handler never started\n\(server.diagnostics)")

            let signalledAt = Deadline.now
            server.sendSignal(SIGTERM)
            _ = try server.waitForExit(timeout: shutdownTimeout + 30)
            let seconds = (server.exitedAt ?? Deadline.now) - signalledAt
            #expect(
                seconds < shutdownTimeout + 5,
                "exited \(seconds) s after SIGTERM, SHUTDOWN_TIMEOUT=\(shutdownTimeout)\n\(server.diagnostics)")
        }
    }
}
