import Foundation
import Testing

/// The command line: `funcd run FILE` (a server for one file), `funcd invoke FILE` (one call, no
/// server), flags overriding environment variables on `serve`, `--help` everywhere, and the
/// `funcd-python` executable that the `funcd` dispatcher execs.
@Suite(.sharesMachine)
struct CommandTests {
    // MARK: run

    @Test("funcd run FILE --handler NAME serves the file, with the file's folder as the code folder")
    func runServesAFile() throws {
        try Funcd.withRunServer(fixtures: ["uses_helper.py", "helper.py"], file: "uses_helper.py", arguments: ["--handler", "handler"]) {
            server in
            let response = try server.get("/")
            #expect(
                response.status == 200 && response.text == "hello configmap from helper",
                "GET / → \(response)\n\(server.diagnostics)")
            let health = try server.get("/healthz")
            #expect(health.status == 200 && health.text == "OK", "GET /healthz → \(health)\n\(server.diagnostics)")
        }
    }

    @Test("funcd run --timeout sets the handler timeout")
    func runTimeoutFlag() throws {
        try Funcd.withRunServer(fixtures: ["app.py"], file: "app.py", arguments: ["--handler", "handler", "--timeout", "1.5"]) {
            server in
            let described = try server.get("/context")
            let event = try #require(JSONObject(described), "GET /context → \(described)\n\(server.diagnostics)")
            #expect(event.object("context")?.number("timeout") == 1.5, "--timeout 1.5: \(event)")

            let slow = try server.get("/sleep")
            #expect(slow.status == 408, "GET /sleep with --timeout 1.5 → \(slow)\n\(server.diagnostics)")
        }
    }

    // MARK: serve

    @Test("funcd serve: flags win over the environment")
    func serveFlagsWinOverEnvironment() throws {
        try Funcd.withServer(
            env: ["FUNC_TIMEOUT": "100", "FUNC_PORT": "1", "FUNC_HOST": "0.0.0.0"],
            arguments: ["--timeout", "2.5", "--port", "0", "--host", "127.0.0.1"]
        ) { server in
            let port = try server.port()
            #expect(port != 1, "--port 0 must win over FUNC_PORT=1\n\(server.diagnostics)")
            #expect(server.listeningHost == "127.0.0.1", "--host must win over FUNC_HOST\n\(server.diagnostics)")
            let described = try server.get("/context")
            let event = try #require(JSONObject(described), "GET /context → \(described)\n\(server.diagnostics)")
            #expect(event.object("context")?.number("timeout") == 2.5, "--timeout 2.5 must win over FUNC_TIMEOUT=100: \(event)")
        }
    }

    @Test("a supervised worker takes its flags from the supervisor, and its handler sees none of the supervisor's variables")
    func workerHandOver() throws {
        let code = try CodeDirectory(files: [
            (
                "env.py",
                """
                import os

                LINK = ("FUNCD_CONFIGURATION", "FUNCD_LISTEN_FD", "FUNCD_CONTROL_FD", "FUNCD_WORKER",
                        "FUNCD_KAFKA_INFLIGHT_FD", "FUNCD_KAFKA_DEATHS")

                def handler(event, context):
                    return {"seen": sorted(name for name in LINK if name in os.environ), "timeout": context["timeout"]}

                """
            )
        ])
        defer { code.remove() }
        let process = try FuncdProcess(
            arguments: ["run", code.file("env.py"), "--handler", "handler", "--port", "0", "--timeout", "7.5"])
        defer { process.stop() }
        try process.waitForListening()
        let answer = try process.get("/")
        let object = try #require(JSONObject(answer), "\(answer)\n\(process.diagnostics)")
        #expect(object.number("timeout") == 7.5, "\(object)")
        #expect(answer.text.contains(#""seen": []"#), "the handler saw the supervisor's variables: \(answer.text)")
    }

    @Test("funcd-python serve works on its own (the program the dispatcher execs)")
    func funcdPythonDirectly() throws {
        try Funcd.withServer(executable: "funcd-python") { server in
            let health = try server.get("/healthz")
            #expect(health.status == 200 && health.text == "OK", "GET /healthz → \(health)\n\(server.diagnostics)")
            let fast = try server.get("/fast")
            #expect(fast.status == 200 && fast.text == "fast", "GET /fast → \(fast)\n\(server.diagnostics)")
        }
    }

    @Test("handlers run in Debian's python3.11 (sys.executable), with -u -s and no working directory on sys.path")
    func handlersRunInPython3() throws {
        try Funcd.withServer(executable: "funcd-python") { server in
            let answer = try server.get("/interpreter")
            let facts = try #require(JSONObject(answer), "GET /interpreter → \(answer)\n\(server.diagnostics)")
            #expect(facts.string("executable") == "/usr/bin/python3.11", "\(facts)")
            #expect(facts.canonical("argv") == JSONObject.canonicalText(json: #"[""]"#), "sys.argv as an embedded interpreter's: \(facts)")
            #expect(facts.number("unbuffered") == 1 && facts.number("no_user_site") == 1, "\(facts)")
            #expect(facts.string("path0") != "" && facts.string("path0") != ".", "no working directory first on sys.path: \(facts)")
            #expect(facts.number("pid").map { Int32($0) } == server.pid, "funcd-python became python3 (exec): \(facts)")
            let comm = try String(contentsOfFile: "/proc/\(server.pid)/comm", encoding: .utf8)
            #expect(comm == "funcd-python\n", "ps shows funcd-python, not python3.11: \(comm)")
        }
    }

    @Test(
        "funcd-python named funcd (the Python image's entry point) is the front door: a supervisor over a worker, or with FUNC_WORKERS=0 the worker itself",
        arguments: ["1", "0"])
    func funcdPythonAsFrontDoor(workers: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("funcd-link-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let link = folder.appendingPathComponent("funcd")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: TestPaths.executable("funcd-python"))
        let code = try CodeDirectory(fixtures: ["app.py"])
        defer { code.remove() }
        let process = try FuncdProcess(
            executableURL: link, arguments: ["serve"],
            environment: [
                "MOD_NAME": "app", "FUNC_HANDLER": "handler", "FUNC_RUNTIME": "python3.11", "FUNC_PORT": "0",
                "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": code.path, "FUNC_WORKERS": workers,
            ])
        defer { process.stop() }
        try process.waitForListening()
        let answer = try process.get("/interpreter")
        let facts = try #require(JSONObject(answer), "GET /interpreter → \(answer)\n\(process.diagnostics)")
        let children = ProcessTree.children(of: process.pid)
        let comm = try String(contentsOfFile: "/proc/\(process.pid)/comm", encoding: .utf8)
        #expect(comm == "funcd\n", "\(comm)")
        if workers == "0" {
            #expect(facts.number("pid").map { Int32($0) } == process.pid, "served in the front door's process: \(facts)")
            #expect(children.isEmpty, "no worker process: \(children)")
        } else {
            #expect(children.count == 1, "one worker: \(children)\n\(process.diagnostics)")
            #expect(facts.number("pid").map { Int32($0) } == children.first, "the worker answers: \(facts)")
            let workerComm = try children.first.map { try String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8) }
            #expect(workerComm == "funcd-python\n", "\(workerComm ?? "none")")
        }
        #expect(facts.string("executable") == "/usr/bin/python3.11", "\(facts)")
    }

    // MARK: invoke

    @Test("funcd invoke --data JSON: result on stdout, the handler's prints on stderr, exit 0")
    func invokeWithJSONData() throws {
        let outcome = try Funcd.invoke(arguments: ["--handler", "echo", "--data", #"{"a": 1}"#])
        #expect(outcome.exitCode == 0, "\(outcome)")
        let result = JSONObject(text: outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(result?.string("type") == "dict", "JSON data is decoded for application/json: \(outcome)")
        #expect(result?.canonical("data") == JSONObject.canonicalText(json: #"{"a": 1}"#), "\(outcome)")
        #expect(outcome.stderr.contains("handler-side-output"), "the handler's print goes to stderr: \(outcome)")
        #expect(!outcome.stdout.contains("handler-side-output"), "stdout holds only the result: \(outcome)")
    }

    @Test("funcd invoke --data TEXT: non-JSON data arrives as bytes")
    func invokeWithTextData() throws {
        let outcome = try Funcd.invoke(arguments: ["--handler", "echo", "--data", "hello there"])
        #expect(outcome.exitCode == 0, "\(outcome)")
        let result = JSONObject(text: outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(result?.string("type") == "bytes", "text/plain data is bytes: \(outcome)")
        #expect(result?.string("data") == "hello there", "\(outcome)")
    }

    @Test("funcd invoke --content-type text/plain keeps JSON-looking data as bytes")
    func invokeContentTypeOverride() throws {
        let outcome = try Funcd.invoke(
            arguments: ["--handler", "echo", "--data", #"{"a": 1}"#, "--content-type", "text/plain"])
        #expect(outcome.exitCode == 0, "\(outcome)")
        let result = JSONObject(text: outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(result?.string("type") == "bytes", "\(outcome)")
        #expect(result?.string("data") == #"{"a": 1}"#, "\(outcome)")
    }

    @Test("funcd invoke --data-file PATH reads the data from a file")
    func invokeDataFile() throws {
        let folder = try CodeDirectory(files: [(name: "event.json", contents: #"{"from": "file"}"#)])
        defer { folder.remove() }
        let outcome = try Funcd.invoke(arguments: ["--handler", "echo", "--data-file", folder.file("event.json")])
        #expect(outcome.exitCode == 0, "\(outcome)")
        let result = JSONObject(text: outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(result?.string("type") == "dict", "\(outcome)")
        #expect(result?.object("data")?.string("from") == "file", "\(outcome)")
    }

    @Test("funcd invoke --data-file - reads the data from stdin")
    func invokeDataFromStdin() throws {
        let outcome = try Funcd.invoke(
            arguments: ["--handler", "echo", "--data-file", "-"], standardInput: Data(#"{"from": "stdin"}"#.utf8))
        #expect(outcome.exitCode == 0, "\(outcome)")
        let result = JSONObject(text: outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(result?.string("type") == "dict", "\(outcome)")
        #expect(result?.object("data")?.string("from") == "stdin", "\(outcome)")
    }

    @Test("funcd invoke prints a str result as it is")
    func invokeTextResult() throws {
        let outcome = try Funcd.invoke(arguments: ["--handler", "text"])
        #expect(outcome.exitCode == 0, "\(outcome)")
        #expect(outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "plain text result", "\(outcome)")
    }

    @Test("funcd invoke with a raising handler: exit 1 and the traceback on stderr")
    func invokeFailure() throws {
        let outcome = try Funcd.invoke(arguments: ["--handler", "fail", "--data", "x"])
        #expect(outcome.exitCode == 1, "\(outcome)")
        #expect(outcome.stderr.contains("Traceback"), "\(outcome)")
        #expect(outcome.stderr.contains("RuntimeError"), "\(outcome)")
        #expect(outcome.stderr.contains("invoke-failure-xyz"), "\(outcome)")
        #expect(!outcome.stdout.contains("invoke-failure-xyz"), "the traceback does not go to stdout: \(outcome)")
    }

    // MARK: --help

    /// One `--help` invocation and the words its output must contain.
    struct HelpCase: Sendable, CustomTestStringConvertible {
        var arguments: [String]
        var mentions: [String]

        var testDescription: String { "funcd " + arguments.joined(separator: " ") }

        static let all: [HelpCase] = [
            HelpCase(arguments: ["--help"], mentions: ["serve", "run", "invoke"]),
            HelpCase(arguments: ["serve", "--help"], mentions: ["--port", "--host", "--timeout"]),
            HelpCase(arguments: ["run", "--help"], mentions: ["--handler", "--port", "--host", "--timeout"]),
            HelpCase(arguments: ["invoke", "--help"], mentions: ["--handler", "--data", "--data-file", "--content-type"]),
        ]
    }

    @Test("--help exits 0 and lists the options", arguments: CommandTests.HelpCase.all)
    func help(_ help: HelpCase) throws {
        let outcome = try Funcd.run(arguments: help.arguments)
        #expect(outcome.exitCode == 0, "\(help.testDescription): \(outcome)")
        let text = outcome.stdout + outcome.stderr
        for word in help.mentions {
            #expect(text.contains(word), "\(help.testDescription) does not mention \(word): \(outcome)")
        }
    }
}
