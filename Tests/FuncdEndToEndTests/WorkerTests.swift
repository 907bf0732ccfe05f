import Foundation
import Testing

/// The supervisor (`funcd` with FUNC_WORKERS ≥ 1, the default): worker processes that are
/// replaced when stuck, restarted when killed, rolled over to new code, drained on SIGTERM, and
/// a bounded queue that answers 503 instead of letting latency grow. Real processes, real
/// signals, real HTTP.
@Suite(.sharesMachine)
struct WorkerTests {
    /// `n` GETs of `path`, each on a fresh connection, counting the answers by status (0 for a
    /// failed connection).
    static func statuses(port: Int, path: String, count: Int) -> [Int: Int] {
        let tally = Tally()
        for _ in 0..<count { tally.get(port: port, path: path) }
        return tally.counts
    }

    /// GETs of `path` on fresh connections for `seconds`, counted by status.
    static func statuses(port: Int, path: String, seconds: Double) -> [Int: Int] {
        let tally = Tally()
        let end = Deadline.now + seconds
        while Deadline.now < end { tally.get(port: port, path: path) }
        return tally.counts
    }

    /// Answers counted by what they were: the status, or the body of a 200 when `byBody`.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var statusCounts: [Int: Int] = [:]
        private var bodyCounts: [String: Int] = [:]

        var counts: [Int: Int] { lock.withLock { statusCounts } }
        var bodies: [String: Int] { lock.withLock { bodyCounts } }

        /// Keeps asking until `count` answers were `body` (at most 15 s): whether they were.
        func waitFor(_ body: String, count: Int, port: Int) -> Bool {
            Deadline.poll(timeout: 15) {
                get(port: port, path: "/")
                return (bodies[body] ?? 0) >= count
            }
        }

        func get(port: Int, path: String) {
            let response = try? HTTPClient.request(port: port, method: "GET", path: path, timeout: 10)
            let body = response.map { $0.status == 200 ? $0.text : "status \($0.status)" } ?? "connection failed"
            lock.withLock {
                statusCounts[response?.status ?? 0, default: 0] += 1
                bodyCounts[body, default: 0] += 1
            }
        }
    }

    @Test("FUNC_WORKERS=2: two worker processes serve one port, and /metrics counts them")
    func twoWorkersServe() throws {
        try Funcd.withServer(env: ["FUNC_WORKERS": "2"]) { server in
            let workers = ProcessTree.children(of: server.pid)
            #expect(workers.count == 2, "worker processes: \(workers)\n\(server.diagnostics)")
            let seen = Self.statuses(port: try server.port(), path: "/fast", count: 40)
            #expect(seen == [200: 40], "answers: \(seen)\n\(server.diagnostics)")
            // The second worker may still be starting when the first has served all 40 (the
            // pod listens once one is ready): wait for the supervisor to count both.
            var metrics = ""
            let both = Deadline.poll(timeout: 20) {
                metrics = (try? server.get("/metrics").text) ?? ""
                return metrics.contains("funcd_workers_ready 2")
            }
            #expect(both, "\(metrics)")
        }
    }

    @Test("an idle pod sleeps: the supervisor wakes about once a second (its look at the code), not ten times; the worker's accept thread not at all")
    func idlePod() throws {
        try Funcd.withServer { server in
            let first = try server.get("/fast")
            #expect(first.status == 200, "\(first)\n\(server.diagnostics)")
            let worker = try #require(ProcessTree.worker(of: server.pid), "\(server.diagnostics)")
            // The supervisor's main thread (the only one that polls) has the process's own id.
            let supervisor = ProcessTree.wakeUps(server.pid, thread: server.pid, over: 3)
            #expect(supervisor <= 8, "the supervisor woke \(supervisor) times in 3 s of an idle pod")
            // About 7 here (54 when the accept thread looked every 100 ms); a sanitizer's own
            // thread adds some.
            let threads = ProcessTree.wakeUps(worker, over: 3)
            #expect(threads <= 25, "the worker's threads woke \(threads) times in 3 s of an idle pod")
            let after = try server.get("/fast")
            #expect(after.status == 200, "\(after)\n\(server.diagnostics)")
        }
    }

    @Test("a stuck handler with one worker: 408 on time, every other request succeeds meanwhile, a fresh worker takes over")
    func stuckWorkerIsReplacedWithoutDowntime() throws {
        try Funcd.withServer(env: ["FUNC_TIMEOUT": "1", "FUNC_TIMEOUT_GRACE": "0.5", "SHUTDOWN_TIMEOUT": "2"]) {
            server in
            let port = try server.port()
            let before = ProcessTree.children(of: server.pid)
            #expect(before.count == 1)
            let stuck = BackgroundCall { try TimedRequest.get(port: port, path: "/stubborn") }
            // Requests all through the timeout, the grace, the replacement and the drain.
            let seen = Self.statuses(port: port, path: "/fast", seconds: 4)
            let stuckAnswer = try stuck.wait(timeout: 30)
            #expect(stuckAnswer.response.status == 408, "\(stuckAnswer.response)\n\(server.diagnostics)")
            #expect(stuckAnswer.elapsed >= 1.0 && stuckAnswer.elapsed < 1.5, "408 after \(stuckAnswer.elapsed) s")
            #expect(seen.keys.sorted() == [200], "while the worker was replaced: \(seen)\n\(server.diagnostics)")

            let replaced = Deadline.poll(timeout: 10) {
                let now = ProcessTree.children(of: server.pid)
                return now.count == 1 && now != before
            }
            #expect(replaced, "workers before \(before), now \(ProcessTree.children(of: server.pid))\n\(server.diagnostics)")
            let metrics = try server.get("/metrics").text
            #expect(metrics.contains("funcd_worker_restarts_total{reason=\"stuck\"} 1"), "\(metrics)")
            #expect(server.isRunning)
        }
    }

    @Test("one worker: a successor killed while the stuck worker it replaced drains is restarted, and the port answers again")
    func successorKilledWhilePredecessorDrains() throws {
        // SHUTDOWN_TIMEOUT 60: the stuck worker (its handler never ends) drains past every wait here.
        try Funcd.withServer(env: ["FUNC_TIMEOUT": "1", "FUNC_TIMEOUT_GRACE": "0.5", "SHUTDOWN_TIMEOUT": "60"]) {
            server in
            let port = try server.port()
            let stuckWorker = try #require(ProcessTree.children(of: server.pid).first, "\(server.diagnostics)")
            // A keep-alive connection to that worker: its answers say `Connection: close` once it
            // drains, which it does once its successor is ready.
            let connection = try server.connect()
            defer { connection.close() }
            #expect(try connection.request(path: "/fast").header("Connection") != "close")
            let stuck = try TimedRequest.get(port: port, path: "/stubborn")
            #expect(stuck.response.status == 408, "\(stuck.response)\n\(server.diagnostics)")
            let drains = Deadline.poll(timeout: 30, interval: 0.1) {
                (try? connection.request(path: "/fast").header("Connection")) == "close"
            }
            #expect(drains, "the stuck worker never drained\n\(server.diagnostics)")
            let successor = try #require(
                ProcessTree.children(of: server.pid).first { $0 != stuckWorker }, "\(server.diagnostics)")
            kill(successor, SIGKILL)

            let answered = Deadline.poll(timeout: 30, interval: 0.1) {
                (try? HTTPClient.request(port: port, method: "GET", path: "/fast", timeout: 2).status) == 200
            }
            #expect(answered, "nobody serves after the successor died\n\(server.diagnostics)")
            let workers = ProcessTree.children(of: server.pid)
            #expect(workers.contains { $0 != stuckWorker && $0 != successor }, "workers \(workers)")
            #expect(server.waitForStderr(containing: "worker ended unexpectedly"), "\(server.diagnostics)")
        }
    }

    @Test("one worker: a stuck worker whose successor fails to start is still replaced, and drains once a retry is ready")
    func stuckWorkerReplacedAfterFailedStart() throws {
        let markers = try CodeDirectory(files: [])
        defer { markers.remove() }
        let gate = markers.file("no-start")
        try Funcd.withServer(
            fixtures: ["app.py", "gated_start.py"], module: "gated_start",
            env: ["FUNC_TIMEOUT": "1", "FUNC_TIMEOUT_GRACE": "0.5", "SHUTDOWN_TIMEOUT": "2", "FUNCD_TEST_NO_START": gate]
        ) { server in
            let port = try server.port()
            let stuckWorker = try #require(ProcessTree.children(of: server.pid).first, "\(server.diagnostics)")
            try Data().write(to: URL(fileURLWithPath: gate))
            let stuck = try TimedRequest.get(port: port, path: "/stubborn")
            #expect(stuck.response.status == 408, "\(stuck.response)\n\(server.diagnostics)")
            #expect(server.waitForStderr(containing: "worker failed to start", timeout: 30), "\(server.diagnostics)")
            try FileManager.default.removeItem(atPath: gate)

            // The next retry comes within the backoff (5 s at most) and then starts; once it is ready
            // the stuck worker drains, and is killed SHUTDOWN_TIMEOUT + 2 s later at the latest.
            let replaced = Deadline.poll(timeout: 30, interval: 0.1) {
                let workers = ProcessTree.children(of: server.pid)
                return workers.count == 1 && !workers.contains(stuckWorker)
            }
            #expect(replaced, "workers \(ProcessTree.children(of: server.pid))\n\(server.diagnostics)")
            #expect(try server.get("/fast", timeout: 10).status == 200)
        }
    }

    @Test("kill -9 of a worker: at most its own requests fail, a replacement serves within 1 s")
    func killedWorkerIsRestarted() throws {
        try Funcd.withServer(env: ["FUNC_WORKERS": "2"]) { server in
            let port = try server.port()
            // The start-up line comes with the first ready worker; kill one that is serving.
            let bothReady = Deadline.poll(timeout: 10) {
                (try? server.get("/metrics").text.contains("funcd_workers_ready 2")) ?? false
            }
            #expect(bothReady, "\(server.diagnostics)")
            let workers = ProcessTree.children(of: server.pid)
            #expect(workers.count == 2)
            let load = BackgroundCall { Self.statuses(port: port, path: "/fast", count: 300) }
            kill(workers[0], SIGKILL)
            let killedAt = Deadline.now
            let back = Deadline.poll(timeout: 5) {
                let now = ProcessTree.children(of: server.pid)
                guard now.count == 2, !now.contains(workers[0]) else { return false }
                return (try? server.get("/metrics").text.contains("funcd_workers_ready 2")) ?? false
            }
            let took = Deadline.now - killedAt
            #expect(back && took < 1.0, "replacement serving after \(took) s\n\(server.diagnostics)")
            let seen = try load.wait(timeout: 60)
            #expect((seen[200] ?? 0) >= 299, "only the killed worker's request may fail: \(seen)")
            // The supervisor's counters reach each worker over its control socket, a moment later.
            let counted = Deadline.poll(timeout: 5) {
                (try? server.get("/metrics").text.contains("funcd_worker_restarts_total{reason=\"crash\"} 1")) ?? false
            }
            #expect(counted, "\((try? server.get("/metrics").text) ?? "")\n\(server.diagnostics)")
            #expect(server.waitForStderr(containing: "signal 9"), "the reason is logged\n\(server.diagnostics)")
        }
    }

    @Test("ConfigMap swap during load: zero failed requests, the new code answers; a broken version is refused")
    func configMapSwapReloadsWithoutFailures() throws {
        let v1 = try CodeDirectory.fixtureText("version_v1.py")
        let volume = try ConfigMapVolume(files: [(name: "version.py", contents: v1)])
        defer { volume.remove() }
        let server = try FuncdProcess(
            arguments: ["serve"],
            environment: [
                "MOD_NAME": "version", "FUNC_HANDLER": "handler", "FUNC_RUNTIME": Funcd.runtime, "FUNC_PORT": "0",
                "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": volume.path, "FUNC_WORKERS": "2",
            ])
        defer { server.stop() }
        let port = try server.waitForListening()

        let tally = Tally()
        for _ in 0..<20 { tally.get(port: port, path: "/") }
        try volume.update(files: [(name: "version.py", contents: v1.replacingOccurrences(of: "'v1'", with: "'v2'"))], version: 2)
        // The rollout is over when both workers answer v2: twenty v2 answers in a row (a worker
        // still on v1 would answer about half of them).
        let switched = Deadline.poll(timeout: 20) {
            let before = tally.bodies["v2"] ?? 0
            for _ in 0..<20 { tally.get(port: port, path: "/") }
            return (tally.bodies["v2"] ?? 0) - before == 20 && ProcessTree.children(of: server.pid).count == 2
        }
        #expect(switched, "answers: \(tally.bodies)\n\(server.diagnostics)")

        try volume.update(files: [(name: "version.py", contents: "def handler(event, context)\n    return 'v3'\n")], version: 3)
        #expect(
            server.waitForStderr(containing: "new code failed to load", timeout: 15),
            "the broken version is refused\n\(server.diagnostics)")
        for _ in 0..<20 { tally.get(port: port, path: "/") }
        let seen = tally.bodies
        #expect(Set(seen.keys).isSubset(of: ["v1", "v2"]), "no failed request, never v3: \(seen)\n\(server.diagnostics)")
        #expect((seen["v2"] ?? 0) >= 40, "the last answers come from v2: \(seen)")
        let metrics = try HTTPClient.request(port: port, method: "GET", path: "/metrics").text
        #expect(metrics.contains("funcd_reload_failures_total 1"), "\(metrics)")
    }

    @Test("SIGTERM during load: in-flight requests complete, new connections are refused, exit code 0")
    func sigtermDrainsEveryWorker() throws {
        let markers = try CodeDirectory(files: [])
        defer { markers.remove() }
        let marker = markers.file("slow-started")
        try Funcd.withServer(env: ["FUNC_WORKERS": "2", "SHUTDOWN_TIMEOUT": "5"]) { server in
            let port = try server.port()
            let slow = BackgroundCall { try TimedRequest.get(port: port, path: "/slow?marker=\(marker)") }
            let started = Deadline.poll(timeout: 10) { FileManager.default.fileExists(atPath: marker) }
            #expect(started, "the /slow handler never started\n\(server.diagnostics)")
            server.sendSignal(SIGTERM)
            let answer = try slow.wait(timeout: 30)
            #expect(answer.response.status == 200, "the in-flight request: \(answer.response)\n\(server.diagnostics)")
            let code = try server.waitForExit(timeout: 10)
            #expect(code == 0, "exit code \(code)\n\(server.diagnostics)")
            #expect(throws: (any Error).self, "a new connection after the drain is refused") {
                try HTTPClient.request(port: port, method: "GET", path: "/fast", timeout: 2)
            }
            #expect(ProcessTree.children(of: server.pid).isEmpty)
        }
    }

    @Test("overload: beyond FUNC_CONCURRENCY + FUNC_QUEUE calls, 503 with Retry-After at once")
    func overloadAnswers503() throws {
        try Funcd.withServer(env: ["FUNC_CONCURRENCY": "1", "FUNC_QUEUE": "1"]) { server in
            let port = try server.port()
            let calls = (0..<5).map { _ in BackgroundCall { try TimedRequest.get(port: port, path: "/slow") } }
            let answers = try calls.map { try $0.wait(timeout: 30) }
            let rejected = answers.filter { $0.response.status == 503 }
            let served = answers.filter { $0.response.status == 200 }
            #expect(served.count >= 2, "\(answers.map { $0.response.status })\n\(server.diagnostics)")
            #expect(rejected.count >= 1, "\(answers.map { $0.response.status })\n\(server.diagnostics)")
            for answer in rejected {
                #expect(answer.response.header("Retry-After") == "1")
                #expect(answer.elapsed < 0.9, "a 503 must not wait: \(answer.elapsed) s")
            }
            let metrics = try server.get("/metrics").text
            #expect(metrics.contains("funcd_overload_rejections_total \(rejected.count)"), "\(metrics)")
        }
    }

    @Test("funcd run --watch: saving the file brings in the new code, no failed request")
    func runWatchReloadsOnSave() throws {
        let v1 = try CodeDirectory.fixtureText("version_v1.py")
        let code = try CodeDirectory(files: [(name: "version.py", contents: v1)])
        defer { code.remove() }
        let server = try FuncdProcess(
            arguments: ["run", code.file("version.py"), "--handler", "handler", "--watch", "--port", "0"])
        defer { server.stop() }
        let port = try server.waitForListening()
        let tally = Tally()
        for _ in 0..<10 { tally.get(port: port, path: "/") }
        try Data(v1.replacingOccurrences(of: "'v1'", with: "'v2'").utf8).write(to: URL(fileURLWithPath: code.file("version.py")))
        let switched = tally.waitFor("v2", count: 10, port: port)
        #expect(switched, "answers: \(tally.bodies)\n\(server.diagnostics)")
        #expect(Set(tally.bodies.keys).isSubset(of: ["v1", "v2"]), "no failed request: \(tally.bodies)")
    }

    @Test("funcd run --watch sees a module saved in a subfolder; a cache folder's churn is not a change")
    func runWatchSeesSubfolders() throws {
        let code = try CodeDirectory(files: [
            (name: "version.py", contents: "from lib import answer\n\ndef handler(event, context):\n    return answer.TEXT\n")
        ])
        defer { code.remove() }
        for folder in ["lib", "lib/__pycache__", "node_modules"] {
            try FileManager.default.createDirectory(atPath: code.file(folder), withIntermediateDirectories: true)
        }
        try Data("".utf8).write(to: URL(fileURLWithPath: code.file("lib/__init__.py")))
        try Data("TEXT = 'v1'\n".utf8).write(to: URL(fileURLWithPath: code.file("lib/answer.py")))
        let server = try FuncdProcess(
            arguments: ["run", code.file("version.py"), "--handler", "handler", "--watch", "--port", "0"])
        defer { server.stop() }
        let port = try server.waitForListening()
        let tally = Tally()
        tally.get(port: port, path: "/")
        #expect(tally.bodies == ["v1": 1], "\(server.diagnostics)")

        // Files written where --watch does not look start no reload.
        try Data("x".utf8).write(to: URL(fileURLWithPath: code.file("lib/__pycache__/junk.pyc")))
        try Data("x".utf8).write(to: URL(fileURLWithPath: code.file("node_modules/junk.js")))
        Thread.sleep(forTimeInterval: 2)
        #expect(!server.stderrText.contains("new code"), "\(server.diagnostics)")

        try Data("TEXT = 'v2'\n".utf8).write(to: URL(fileURLWithPath: code.file("lib/answer.py")))
        let switched = tally.waitFor("v2", count: 3, port: port)
        #expect(switched, "answers: \(tally.bodies)\n\(server.diagnostics)")
        #expect(Set(tally.bodies.keys).isSubset(of: ["v1", "v2"]), "no failed request: \(tally.bodies)")
    }

    @Test("FUNC_WATCH_MAX_FILES bounds the walk: a tree past it gets one warning and funcd goes on serving")
    func watchBound() throws {
        let v1 = try CodeDirectory.fixtureText("version_v1.py")
        let code = try CodeDirectory(files: [(name: "version.py", contents: v1)])
        defer { code.remove() }
        // A deep, wide tree, as a home folder served by mistake would be.
        var folder = code.path
        for depth in 0..<40 {
            folder += "/d\(depth)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
            for index in 0..<5 { try Data().write(to: URL(fileURLWithPath: "\(folder)/f\(index)")) }
        }
        let server = try FuncdProcess(
            arguments: ["run", code.file("version.py"), "--handler", "handler", "--watch", "--port", "0"],
            environment: ["FUNC_WATCH_MAX_FILES": "50"])
        defer { server.stop() }
        let port = try server.waitForListening()
        #expect(server.waitForStderr(containing: "FUNC_WATCH_MAX_FILES", timeout: 10), "\(server.diagnostics)")
        let tally = Tally()
        for _ in 0..<20 { tally.get(port: port, path: "/") }
        Thread.sleep(forTimeInterval: 1.5)  // three more walks, no second warning
        #expect(tally.bodies == ["v1": 20], "\(tally.bodies)\n\(server.diagnostics)")
        #expect(server.stderrText.components(separatedBy: "FUNC_WATCH_MAX_FILES entries").count == 2, "\(server.diagnostics)")
        // The top-level module is within the bound: saving it still reloads.
        try Data(v1.replacingOccurrences(of: "'v1'", with: "'v2'").utf8).write(to: URL(fileURLWithPath: code.file("version.py")))
        let switched = tally.waitFor("v2", count: 3, port: port)
        #expect(switched, "answers: \(tally.bodies)\n\(server.diagnostics)")
    }
}

/// funcd as PID 1, the way it runs in a container: orphans end up its children and must be reaped.
@Suite(.sharesMachine)
struct PIDOneTests {
    @Test("as PID 1 (a PID namespace of its own), the supervisor reaps the orphans a handler leaves behind")
    func reapsOrphans() throws {
        let code = try CodeDirectory(fixtures: ["app.py"])
        defer { code.remove() }
        let funcd = TestPaths.executable("funcd").path
        let namespace = try FuncdProcess(
            executableURL: URL(fileURLWithPath: "/usr/bin/unshare"),
            arguments: ["--pid", "--fork", "--kill-child", funcd, "serve"],
            environment: [
                "MOD_NAME": "app", "FUNC_HANDLER": "handler", "FUNC_RUNTIME": Funcd.runtime, "FUNC_PORT": "0",
                "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": code.path,
            ])
        defer { namespace.stop() }
        let port = try namespace.waitForListening()
        let supervisor = try #require(ProcessTree.children(of: namespace.pid).first, "\(namespace.diagnostics)")

        for _ in 0..<3 {
            let response = try HTTPClient.request(port: port, method: "GET", path: "/orphan", timeout: 10)
            #expect(response.status == 200 && response.text == "orphaned", "\(response)\n\(namespace.diagnostics)")
        }
        // The grandchildren exit 0.3 s later as children of PID 1; none may stay a zombie.
        let reaped = Deadline.poll(timeout: 10) {
            ProcessTree.children(of: supervisor).allSatisfy { ProcessTree.state($0) != "Z" }
                && ProcessTree.children(of: supervisor).count == 1
        }
        #expect(
            reaped,
            "children of PID 1: \(ProcessTree.children(of: supervisor).map { "\($0) \(ProcessTree.state($0))" })\n\(namespace.diagnostics)")
    }
}
