import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The exec runtime through the real binary: real programs (sh scripts, a ConfigMap-style 0644
/// script run through its #! line, cat) over real pipes, real signals and process groups.
@Suite(.sharesMachine)
struct ExecTests {
    /// One program file: name, contents, and whether it gets its executable bit.
    struct Program {
        var name: String
        var source: String
        var executable = false
    }

    /// Serves `program` with `FUNC_RUNTIME=exec` as a pod would (MOD_NAME and FUNC_HANDLER from
    /// kubeless's `--handler <name>.<ext>`), and runs `body` with the server and the code folder.
    static func withExecServer(
        _ program: Program, env: [String: String] = [:], _ body: (FuncdProcess, CodeDirectory) throws -> Void
    ) throws {
        let code = try CodeDirectory(files: [(program.name, program.source)])
        defer { code.remove() }
        if program.executable { chmod(code.file(program.name), 0o755) }
        let dot = program.name.lastIndex(of: ".") ?? program.name.endIndex
        var environment = [
            "MOD_NAME": String(program.name[..<dot]),
            "FUNC_HANDLER": dot == program.name.endIndex ? "" : String(program.name[program.name.index(after: dot)...]),
            "FUNC_RUNTIME": "exec", "FUNC_PORT": "0", "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": code.path,
        ]
        environment.merge(env) { _, new in new }
        let process = try FuncdProcess(arguments: ["serve"], environment: environment)
        defer { process.stop() }
        try process.waitForListening()
        try body(process, code)
    }

    static let echo = Program(name: "echo.sh", source: "#!/bin/sh\nexec cat\n")

    @Test("a 0644 script runs through its #! line: stdin is the body, stdout the answer, binary-safe, up to a large body")
    func echoesBodies() throws {
        try Self.withExecServer(Self.echo) { server, _ in
            let bytes = (0..<256).map { UInt8($0) }
            let binary = try server.request("POST", "/", headers: ["Content-Type": "application/x-thing"], body: bytes)
            #expect(binary.status == 200 && binary.body == bytes, "\(binary)")
            #expect(binary.header("Content-Type") == "application/x-thing", "the request's type, as the classic watchdog answers")
            let large = (0..<(3 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let echoed = try server.request("PUT", "/", body: large)
            #expect(echoed.status == 200 && echoed.body == large, "3 MiB through the pipes: \(echoed.body.count) bytes")
            let empty = try server.get("/")
            #expect(empty.status == 200 && empty.body.isEmpty && empty.header("Content-Type") == "application/octet-stream")
        }
    }

    @Test("the request in the environment: Http_* as the watchdogs set them, kubeless variables, no Kafka secret")
    func environment() throws {
        let program = Program(
            name: "env.sh",
            source: """
                #!/bin/sh
                for name in Http_Method Http_Path Http_Query Http_X_Request_Id Http_Content_Type Http_Content_Length \\
                    Http_ContentLength EVENT_ID FUNC_HANDLER FUNC_TIMEOUT FUNC_RUNTIME KAFKA_PASSWORD; do
                  eval "printf '%s=%s\\n' $name \\"\\${$name-unset}\\""
                done
                """)
        try Self.withExecServer(program, env: ["FUNC_TIMEOUT": "9", "KAFKA_PASSWORD": "hunter2"]) { server, _ in
            let response = try server.request(
                "POST", "/some%20where/x?a=1&b=two",
                headers: ["X-Request-Id": "abc", "Content-Type": "text/plain", "Event-Id": "ev-1", "Method": "forged"],
                body: "12345")
            let lines = Set(response.text.split(separator: "\n").map(String.init))
            for expected in [
                "Http_Method=POST", "Http_Path=/some where/x", "Http_Query=a=1&b=two", "Http_X_Request_Id=abc",
                "Http_Content_Type=text/plain", "Http_Content_Length=5", "Http_ContentLength=5", "EVENT_ID=ev-1",
                "FUNC_HANDLER=sh", "FUNC_TIMEOUT=9", "FUNC_RUNTIME=exec", "KAFKA_PASSWORD=unset",
            ] {
                #expect(lines.contains(expected), "\(expected) in \(response.text)")
            }
        }
    }

    @Test("exit 0 → 200, non-zero → 500 with the status in the log, a signal → 500; stderr in the log, never in the answer")
    func exitStatuses() throws {
        let program = Program(
            name: "exits.sh",
            source: """
                #!/bin/sh
                echo "partial answer"
                echo "line one to stderr" >&2
                printf 'unfinished line' >&2
                case "$Http_Path" in
                  /fail) exit 3 ;;
                  /segv) kill -SEGV $$ ;;
                esac
                """)
        try Self.withExecServer(program) { server, _ in
            let good = try server.get("/ok")
            #expect(good.status == 200 && good.text == "partial answer\n", "\(good)")
            #expect(!good.text.contains("stderr"))
            let failed = try server.get("/fail")
            #expect(failed.status == 500 && !failed.text.contains("partial"), "\(failed)")
            #expect(server.waitForStderr(containing: "exited with status 3"), "\(server.diagnostics)")
            let killed = try server.get("/segv")
            #expect(killed.status == 500, "\(killed)")
            #expect(server.waitForStderr(containing: "was killed by signal 11"), "\(server.diagnostics)")
            #expect(server.waitForStderr(containing: "line one to stderr"), "\(server.diagnostics)")
            #expect(server.waitForStderr(containing: "unfinished line"), "a last line without its newline is logged too")
            let metrics = try server.get("/metrics").text
            for outcome in ["0", "3", "SIGSEGV"] {
                #expect(metrics.contains("funcd_exec_exits_total{outcome=\"\(outcome)\"} 1"), "\(outcome): \(metrics)")
            }
        }
    }

    @Test("at FUNC_TIMEOUT: 408 on time, SIGTERM then SIGKILL to the whole group (a child that ignores TERM included), the worker serves on")
    func timeoutKillsTheGroup() throws {
        let program = Program(
            name: "hangs.sh",
            source: """
                #!/bin/sh
                if [ "$Http_Path" = /quick ]; then echo quick; exit 0; fi
                trap '' TERM
                sleep 1000 &
                echo $! > "$PWD/child.pid"
                echo $$ > "$PWD/leader.pid"
                wait
                """)
        try Self.withExecServer(program, env: ["FUNC_TIMEOUT": "1", "FUNC_TIMEOUT_GRACE": "0.5"]) { server, code in
            let answer = try server.get("/")
            #expect(answer.status == 408, "\(answer)")
            let pids = try ["leader.pid", "child.pid"].map { name in
                try #require(Int32(try String(contentsOfFile: code.file(name), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            }
            let gone = Deadline.poll(timeout: 10) { pids.allSatisfy { !Self.isAlive($0) } }
            #expect(gone, "processes of the call left: \(pids.filter(Self.isAlive))")
            let next = try server.get("/quick")
            #expect(next.status == 200 && next.text == "quick\n", "the same worker answers: \(next)")
            // Past two grace periods, when a stuck handler would have been declared.
            Thread.sleep(forTimeInterval: 1.2)
            #expect(!server.stderrText.contains("could not be interrupted"), "\(server.diagnostics)")
        }
    }

    @Test("a program's background child does not outlive its call")
    func backgroundChildKilledAtExit() throws {
        let program = Program(
            name: "leaves.sh",
            source: "#!/bin/sh\nsleep 1000 > /dev/null 2>&1 &\necho $! > \"$PWD/child.pid\"\necho done\n")
        try Self.withExecServer(program) { server, code in
            let answer = try server.get("/")
            #expect(answer.status == 200 && answer.text == "done\n", "\(answer)")
            let pid = try #require(Int32(try String(contentsOfFile: code.file("child.pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(Deadline.poll(timeout: 10) { !Self.isAlive(pid) }, "the background sleep \(pid) still runs")
        }
    }

    @Test("SIGTERM: a program still running when SHUTDOWN_TIMEOUT ends is killed with the worker, not left behind")
    func shutdownKillsRunningPrograms() throws {
        let program = Program(name: "long.sh", source: "#!/bin/sh\necho $$ > \"$PWD/leader.pid\"\nexec sleep 1000\n")
        try Self.withExecServer(program, env: ["SHUTDOWN_TIMEOUT": "1"]) { server, code in
            let call = BackgroundCall { try server.get("/", timeout: 60) }
            let started = Deadline.poll(timeout: 10) { FileManager.default.fileExists(atPath: code.file("leader.pid")) }
            #expect(started, "\(server.diagnostics)")
            let pid = try #require(Int32(try String(contentsOfFile: code.file("leader.pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            server.sendSignal(SIGTERM)
            #expect(try server.waitForExit(timeout: 30) == 0, "\(server.diagnostics)")
            _ = try? call.wait(timeout: 30)
            #expect(Deadline.poll(timeout: 10) { !Self.isAlive(pid) }, "the program \(pid) outlived funcd")
        }
    }

    @Test("streaming: the answer goes out as the program writes it, chunked; a failure after the head breaks the answer")
    func streaming() throws {
        let program = Program(
            name: "slow.sh",
            source: """
                #!/bin/sh
                echo first
                while [ ! -e "$PWD/go" ]; do sleep 0.02; done
                echo second
                if [ "$Http_Path" = /fail ]; then exit 1; fi
                """)
        try Self.withExecServer(program, env: ["FUNC_EXEC_MODE": "streaming"]) { server, code in
            for path in ["/", "/fail"] {
                try? FileManager.default.removeItem(atPath: code.file("go"))
                let socket = try AttackSocket(port: try server.port())
                defer { socket.close() }
                _ = socket.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
                let sawFirst = socket.read(timeout: 10) { String(decoding: $0, as: UTF8.self).contains("first\n") }
                #expect(sawFirst, "the first line arrives while the program still runs")
                #expect(!String(decoding: socket.received, as: UTF8.self).contains("second"))
                _ = FileManager.default.createFile(atPath: code.file("go"), contents: Data())
                if path == "/" {
                    let complete = socket.read(timeout: 10) { String(decoding: $0, as: UTF8.self).hasSuffix("0\r\n\r\n") }
                    #expect(complete, "a complete chunked answer: \(socket.receivedDescription)")
                } else {
                    let end = socket.readToEnd(timeout: 10)
                    #expect(end != .open, "the connection is closed: \(socket.receivedDescription)")
                    #expect(!String(decoding: socket.received, as: UTF8.self).hasSuffix("0\r\n\r\n"), "no last chunk after a failure")
                }
                let text = String(decoding: socket.received, as: UTF8.self)
                #expect(text.lowercased().contains("transfer-encoding: chunked"), "\(text)")
                #expect(text.contains("second"), "\(text)")
            }
        }
    }

    @Test("a CGI head sets status and fields; a bad head is a 500")
    func cgiHead() throws {
        let program = Program(
            name: "cgi.sh",
            source: """
                #!/bin/sh
                if [ "$Http_Path" = /bad ]; then echo "not a head"; echo; exit 0; fi
                printf 'Status: 201 Created\\r\\nContent-Type: text/x-made\\r\\nX-Made-By: sh\\r\\n\\r\\nmade'
                """)
        try Self.withExecServer(program, env: ["FUNC_EXEC_CGI": "true"]) { server, _ in
            let made = try server.get("/")
            #expect(made.status == 201 && made.text == "made", "\(made)")
            #expect(made.header("Content-Type") == "text/x-made" && made.header("X-Made-By") == "sh", "\(made)")
            let bad = try server.get("/bad")
            #expect(bad.status == 500, "\(bad)")
        }
    }

    @Test("stdout over FUNC_EXEC_OUTPUT_LIMIT stops the call with a 500; the next call is served")
    func outputLimit() throws {
        let program = Program(name: "flood.sh", source: "#!/bin/sh\nif [ \"$Http_Path\" = /small ]; then echo ok; exit; fi\nexec cat /dev/zero\n")
        try Self.withExecServer(program, env: ["FUNC_EXEC_OUTPUT_LIMIT": "1000000"]) { server, _ in
            let flood = try server.get("/")
            #expect(flood.status == 500, "\(flood.status) \(flood.body.count) bytes")
            #expect(server.waitForStderr(containing: "FUNC_EXEC_OUTPUT_LIMIT"), "\(server.diagnostics)")
            let small = try server.get("/small")
            #expect(small.status == 200 && small.text == "ok\n")
        }
    }

    @Test("FUNC_CONCURRENCY bounds the programs running at once")
    func concurrencyBound() throws {
        // Each call marks itself running and records how many were; overlap is seen, never more
        // than the bound.
        let program = Program(
            name: "count.sh",
            source: """
                #!/bin/sh
                mkdir -p "$PWD/running"
                touch "$PWD/running/$$"
                ls "$PWD/running" | wc -l >> "$PWD/seen"
                sleep 0.3
                rm "$PWD/running/$$"
                """)
        try Self.withExecServer(program, env: ["FUNC_CONCURRENCY": "2"]) { server, code in
            let calls = (0..<6).map { _ in BackgroundCall { try server.get("/").status } }
            for call in calls { #expect(try call.wait(timeout: 30) == 200) }
            let seen = try String(contentsOfFile: code.file("seen"), encoding: .utf8)
                .split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            #expect(seen.count == 6 && seen.max() == 2, "running at once: \(seen)")
        }
    }

    @Test("a ConfigMap update reaches the next call; a version that cannot start is reported as a failed reload")
    func configMapReload() throws {
        let volume = try ConfigMapVolume(files: [(name: "version.sh", contents: "#!/bin/sh\necho v1\n")])
        defer { volume.remove() }
        let server = try FuncdProcess(
            arguments: ["serve"],
            environment: [
                "MOD_NAME": "version", "FUNC_HANDLER": "sh", "FUNC_RUNTIME": "exec", "FUNC_PORT": "0",
                "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": volume.path,
            ])
        defer { server.stop() }
        try server.waitForListening()
        #expect(try server.get("/").text == "v1\n")
        try volume.update(files: [(name: "version.sh", contents: "#!/bin/sh\necho v2\n")], version: 2)
        let switched = Deadline.poll(timeout: 20) { (try? server.get("/").text) == "v2\n" }
        #expect(switched, "\(server.diagnostics)")
        // The program is read at each call: the running worker runs what the volume now holds.
        try volume.update(files: [(name: "version.sh", contents: "no interpreter named here\n")], version: 3)
        #expect(server.waitForStderr(containing: "new code failed to load", timeout: 15), "\(server.diagnostics)")
        #expect(try server.get("/").status == 500)
    }

    @Test("a program that is not executable and has no #! line: one error line, exit 1")
    func notRunnable() throws {
        let code = try CodeDirectory(files: [("plain.txt", "echo hi\n")])
        defer { code.remove() }
        let process = try FuncdProcess(
            arguments: ["serve"],
            environment: [
                "MOD_NAME": "plain", "FUNC_HANDLER": "txt", "FUNC_RUNTIME": "exec", "FUNC_PORT": "0",
                "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": code.path,
            ])
        defer { process.stop() }
        #expect(try process.waitForExit(timeout: 30) == 1, "\(process.diagnostics)")
        let errors = process.stderrText.split(separator: "\n").filter { $0.hasPrefix("funcd: error:") }
        #expect(errors.count == 1 && errors[0].contains("plain.txt") && errors[0].contains("#!"), "\(process.diagnostics)")
    }

    @Test("funcd run ./script.sh serves a program with no --handler; invoke prints its answer")
    func localRun() throws {
        let code = try CodeDirectory(files: [("hello.sh", "#!/bin/sh\necho \"hello $(cat)\"\n")])
        defer { code.remove() }
        let process = try FuncdProcess(arguments: ["run", code.file("hello.sh"), "--port", "0"])
        defer { process.stop() }
        try process.waitForListening()
        let answer = try process.request("POST", "/", body: "world")
        #expect(answer.status == 200 && answer.text == "hello world\n", "\(answer)")
        let invoked = try Funcd.run(arguments: ["invoke", code.file("hello.sh"), "--data", "there"])
        #expect(invoked.exitCode == 0 && invoked.stdout == "hello there\n", "\(invoked)")
    }

    /// Whether `pid` names a process that has not exited (a zombie has).
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        guard let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }
}
