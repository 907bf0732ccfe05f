import Foundation
import Testing

/// The programs in `examples/exec/` through the real binary, as their README and headers say to
/// run them: the shell script from a ConfigMap volume (0644, through its `#!` line) in pod mode
/// and through `funcd invoke`, the Python program with `funcd run` and from a ConfigMap, the C
/// program compiled here with `cc` and served with `funcd run`.
@Suite(.sharesMachine)
struct ExecExamplesTests {
    /// `examples/exec/<name>` in this checkout.
    static func example(_ name: String) -> String {
        TestPaths.packageRoot.appendingPathComponent("examples/exec/\(name)").path
    }

    /// Serves the example `name` from a ConfigMap-shaped folder (a 0644 copy) as a pod does with
    /// kubeless's `--handler <name>`: MOD_NAME and FUNC_HANDLER split at the dot, FUNC_RUNTIME exec.
    static func withPod(_ name: String, env: [String: String] = [:], _ body: (FuncdProcess) throws -> Void) throws {
        let source = try String(contentsOfFile: example(name), encoding: .utf8)
        let volume = try ConfigMapVolume(files: [(name, source)])
        defer { volume.remove() }
        let dot = try #require(name.lastIndex(of: "."))
        var environment = [
            "MOD_NAME": String(name[..<dot]), "FUNC_HANDLER": String(name[name.index(after: dot)...]),
            "FUNC_RUNTIME": "exec", "FUNC_PORT": "0", "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": volume.path,
        ]
        environment.merge(env) { _, new in new }
        let process = try FuncdProcess(arguments: ["serve"], environment: environment)
        defer { process.stop() }
        try process.waitForListening()
        try body(process)
    }

    /// `funcd run <file> --port 0 --host 127.0.0.1` (in `directory`, if given): no --handler, the
    /// file is a program.
    static func withRun(_ file: String, in directory: URL? = nil, _ body: (FuncdProcess) throws -> Void) throws {
        let process = try FuncdProcess(
            arguments: ["run", file, "--port", "0", "--host", "127.0.0.1"], currentDirectory: directory)
        defer { process.stop() }
        try process.waitForListening()
        try body(process)
    }

    // MARK: - hello.sh

    @Test("hello.sh from a ConfigMap: Hello world! to a GET, jq greets the JSON body's name, a bad body is a 500 with jq's complaint in the log")
    func shellScriptInAPod() throws {
        try Self.withPod("hello.sh") { server in
            let get = try server.get("/")
            #expect(get.status == 200 && get.text == "Hello world!\n", "\(get)")
            let named = try server.request("POST", "/greet", headers: ["Content-Type": "application/json"], body: #"{"name":"funcd"}"#)
            #expect(named.status == 200 && named.text == "Hello funcd!\n", "\(named)")
            #expect(named.header("Content-Type") == "application/json", "the request's type, as the classic watchdog answers")
            let unnamed = try server.request("PUT", "/", body: #"{"other": 1}"#)
            #expect(unnamed.status == 200 && unnamed.text == "Hello world!\n", "\(unnamed)")
            let empty = try server.request("POST", "/", body: "")
            #expect(empty.status == 200 && empty.text == "Hello world!\n", "an empty body is no name: \(empty)")
            let bad = try server.request("POST", "/bad", body: "not JSON")
            #expect(bad.status == 500 && !bad.text.contains("parse error"), "\(bad)")
            #expect(server.waitForStderr(containing: "parse error"), "jq's complaint is in the log: \(server.diagnostics)")
            #expect(server.waitForStderr(containing: "exited with status"), "\(server.diagnostics)")
            #expect(server.waitForStderr(containing: "hello.sh: GET /"), "the script's stderr line: \(server.diagnostics)")
            #expect(server.waitForStderr(containing: "hello.sh: POST /greet"), "\(server.diagnostics)")
        }
    }

    @Test("funcd run examples/exec/hello.sh and funcd invoke, as its header says: the committed file (executable), a path relative to where funcd starts")
    func shellScriptRunLocally() throws {
        // Each call's program starts in the code folder; the relative path is the one typed in
        // the package's folder (it once made every call a 500: 'cannot start ...').
        try Self.withRun("examples/exec/hello.sh", in: TestPaths.packageRoot) { server in
            let answer = try server.request("POST", "/", body: #"{"name":"you"}"#)
            #expect(answer.status == 200 && answer.text == "Hello you!\n", "\(answer) \(server.diagnostics)")
        }
        let invoked = try FuncdProcess(
            arguments: ["invoke", "examples/exec/hello.sh", "--data", #"{"name":"there"}"#], currentDirectory: TestPaths.packageRoot
        ).finish(timeout: 60)
        #expect(invoked.exitCode == 0 && invoked.stdout == "Hello there!\n", "\(invoked)")
    }

    // MARK: - wordcount.py

    @Test("wordcount.py is a program, not a handler: funcd run with no --handler counts the body (text and binary) as JSON")
    func pythonProgramRun() throws {
        try Self.withRun(Self.example("wordcount.py")) { server in
            let text = try server.request("POST", "/", body: "one two\nthree\n")
            #expect(text.status == 200, "\(text)")
            let counts = try JSONSerialization.jsonObject(with: Data(text.body)) as? [String: Any]
            #expect(counts?["lines"] as? Int == 2 && counts?["words"] as? Int == 3, "\(text)")
            #expect(counts?["bytes"] as? Int == 14 && counts?["method"] as? String == "POST", "\(text)")
            // Bytes that are not UTF-8, and more than a pipe holds.
            let binary = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 128) }
            let counted = try server.request("PUT", "/", body: binary)
            let binaryCounts = try JSONSerialization.jsonObject(with: Data(counted.body)) as? [String: Any]
            #expect(binaryCounts?["bytes"] as? Int == binary.count, "\(counted)")
            #expect(binaryCounts?["lines"] as? Int == binary.count { $0 == 10 }, "\(counted)")
            #expect(server.waitForStderr(containing: "wordcount.py: 14 bytes"), "\(server.diagnostics)")
        }
    }

    @Test("wordcount.py from a ConfigMap (0644) runs through its #!/usr/bin/env python3 line")
    func pythonProgramInAPod() throws {
        try Self.withPod("wordcount.py", env: ["FUNC_EXEC_CONTENT_TYPE": "application/json"]) { server in
            let answer = try server.request("POST", "/", body: "a b c d")
            #expect(answer.status == 200 && answer.header("Content-Type") == "application/json", "\(answer)")
            let counts = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
            #expect(counts?["words"] as? Int == 4 && counts?["lines"] as? Int == 0, "\(answer)")
        }
    }

    // MARK: - upper.c

    @Test("upper.c compiled with cc (the README's line, warnings as errors) and served by funcd run: ASCII letters upper-cased, every other byte kept")
    func compiledProgram() throws {
        let folder = try TestPaths.makeTemporaryDirectory(prefix: "funcd-e2e-upper")
        defer { try? FileManager.default.removeItem(at: folder) }
        let binary = folder.appendingPathComponent("upper").path
        let compiled = try FuncdProcess(
            executableURL: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, Self.example("upper.c")]
        ).finish(timeout: 120)
        try #require(compiled.exitCode == 0, "cc failed: \(compiled)")

        try Self.withRun(binary) { server in
            let text = try server.request("POST", "/", body: "hello, wörld 123\n")
            #expect(text.status == 200 && text.text == "HELLO, WöRLD 123\n", "\(text)")
            let bytes = (0..<256).map { UInt8($0) }
            let expected = bytes.map { (97...122).contains($0) ? $0 - 32 : $0 }
            let binary = try server.request("POST", "/", headers: ["Content-Type": "application/octet-stream"], body: bytes)
            #expect(binary.status == 200 && binary.body == expected, "\(binary)")
            let large = (0..<(2 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
            let upper = try server.request("PUT", "/", body: large)
            #expect(upper.status == 200 && upper.body == large.map { (97...122).contains($0) ? $0 - 32 : $0 }, "2 MiB: \(upper.body.count) bytes")
            let get = try server.get("/")
            #expect(get.status == 200 && get.body.isEmpty, "\(get)")
            #expect(server.waitForStderr(containing: "upper: POST, 256 bytes"), "\(server.diagnostics)")
            #expect(server.waitForStderr(containing: "upper: GET, 0 bytes"), "\(server.diagnostics)")
        }
    }
}
