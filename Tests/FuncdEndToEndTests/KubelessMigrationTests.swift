import Foundation
import Testing

/// Moving off kubeless through the real binary: kubeless's own example functions
/// (examples/kubeless/functions.yaml) converted, the manifests checked against the Kubernetes
/// schemas by images/check-manifests, and the code in the converted ConfigMaps served by
/// `funcd run` and answering as kubeless's examples document; a Function resource run directly.
@Suite(.sharesMachine)
struct KubelessMigrationTests {
    static let examples = TestPaths.packageRoot.appendingPathComponent("examples/kubeless")

    static func convert(_ arguments: [String], standardInput: Data? = nil) throws -> FuncdProcess.Outcome {
        try Funcd.run(arguments: ["kubeless", "convert"] + arguments, standardInput: standardInput)
    }

    /// The converted output in a file, checked by images/check-manifests (schemas, images, the
    /// CronJob's rules); then each ConfigMap's files in a folder of its own under `folder`.
    static func checkAndUnpack(_ yaml: String, into folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("converted.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let checked = try FuncdProcess(
            executableURL: TestPaths.packageRoot.appendingPathComponent("images/check-manifests"), arguments: [file.path]
        ).finish(timeout: 300)
        #expect(checked.exitCode == 0, "\(checked)")
        // check-manifests's venv has PyYAML (kubernetes-validate needs it).
        // Each key at the path the Deployment's volume gives it (its items), as the kubelet would.
        let unpack = """
            import os, sys, yaml
            documents = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
            paths = {}
            for d in documents:
                if d["kind"] == "Deployment":
                    for volume in d["spec"]["template"]["spec"]["volumes"]:
                        if volume["name"] == "function":
                            paths[volume["configMap"]["name"]] = {i["key"]: i["path"] for i in volume["configMap"].get("items", [])}
            for d in documents:
                if d["kind"] == "ConfigMap":
                    name = d["metadata"]["name"]
                    for key, text in d.get("data", {}).items():
                        path = os.path.join(sys.argv[2], name, paths.get(name, {}).get(key, key))
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        open(path, "w").write(text)
            """
        let unpacked = try FuncdProcess(
            executableURL: TestPaths.packageRoot.appendingPathComponent("images/.venv/bin/python3"),
            arguments: ["-c", unpack, file.path, folder.path]
        ).finish(timeout: 60)
        #expect(unpacked.exitCode == 0, "\(unpacked)")
    }

    @Test("kubeless's examples convert to manifests that validate, and their code answers as kubeless's examples document")
    func examplesConvertAndAnswer() throws {
        let outcome = try Self.convert([Self.examples.appendingPathComponent("functions.yaml").path, "--kafka-brokers", "kafka:9092"])
        #expect(outcome.exitCode == 0, "\(outcome)")
        let warnings = outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("funcd: warning: ") }
        #expect(warnings.count == 8, "a warning per version change: \(outcome.stderr)")
        #expect(outcome.stderr.contains("runtime nodejs12 runs as nodejs18"), "\(outcome.stderr)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("funcd-kubeless-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.checkAndUnpack(outcome.stdout, into: folder)
        // name, module file, handler, data (nil: a GET), what kubeless's Makefiles check for.
        let cases: [(String, String, String, String?, String)] = [
            ("get-python", "helloget.py", "foo", nil, "hello world"),
            ("post-python", "hellowithdata.py", "handler", "{\"it-s\": \"alive\"}", "{\"it-s\": \"alive\"}"),
            ("get-nodejs", "helloget.js", "foo", nil, "hello world!"),
            ("post-nodejs", "hellowithdata.js", "handler", "{\"it-s\": \"alive\"}", "{\"it-s\":\"alive\"}"),
            ("get-ruby", "helloget.rb", "foo", nil, "hello world"),
            ("post-ruby", "hellowithdata.rb", "handler", "{\"it-s\": \"alive\"}", "{\"it-s\":\"alive\"}"),
            ("hello-zip", "index.js", "helloGet", nil, "hello world!"),
            ("hello-tgz", "preload.py", "handler", nil, "hello world"),
        ]
        for (name, file, handler, data, expected) in cases {
            let path = folder.appendingPathComponent("\(name)/\(file)").path
            let process = try FuncdProcess(arguments: ["run", path, "--handler", handler, "--port", "0", "--workers", "0"])
            defer { process.stop() }
            try process.waitForListening()
            let response =
                try data.map {
                    try process.request("POST", "/", headers: ["Content-Type": "application/json"], body: $0)
                } ?? process.get("/")
            #expect(response.status == 200 && response.text == expected, "\(name): \(response)")
        }
    }

    @Test("funcd run serves a Function resource: its code, handler and timeout, an old runtime moved with a warning")
    func runFunctionResource() throws {
        let process = try FuncdProcess(
            arguments: ["run", Self.examples.appendingPathComponent("hello.yaml").path, "--port", "0", "--workers", "0"])
        defer { process.stop() }
        try process.waitForListening()
        let greeting = try process.get("/")
        #expect(greeting.status == 200 && greeting.text == "hello from a kubeless Function resource", "\(greeting)")
        let echoed = try process.request("POST", "/", headers: ["Content-Type": "application/json"], body: "{\"a\":1}")
        #expect(echoed.text == "{\"a\":1}", "\(echoed)")
        #expect(process.stderrText.contains("runtime nodejs8 runs as nodejs18"), "\(process.stderrText)")
    }

    @Test("what cannot be converted is one error line each, the rest is printed, exit 1; a bad file for run is one line")
    func errors() throws {
        let text = """
            apiVersion: kubeless.io/v1beta1
            kind: Function
            metadata: {name: gofn}
            spec: {handler: main.Handler, runtime: go1.14, function: "package main"}
            ---
            apiVersion: kubeless.io/v1beta1
            kind: Function
            metadata: {name: fine}
            spec: {handler: app.hello, runtime: python3.9, function: "def hello(e, c):\\n    return 'hi'\\n"}
            """
        let outcome = try Self.convert(["-"], standardInput: Data(text.utf8))
        #expect(outcome.exitCode == 1, "\(outcome)")
        let errors = outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("funcd: error: ") }
        #expect(errors.count == 1 && errors[0].contains("go1.14"), "\(outcome.stderr)")
        #expect(outcome.stdout.contains("name: fine") && outcome.stdout.contains("kind: Deployment"), "\(outcome.stdout)")
        let missing = try Funcd.run(arguments: ["run", "/nonexistent/function.yaml"])
        #expect(missing.exitCode == 1 && missing.stderr.contains("cannot be read"), "\(missing)")
        let help = try Funcd.run(arguments: ["kubeless", "convert", "--help"])
        #expect(help.exitCode == 0 && help.stdout.contains("--kafka-brokers"), "\(help)")
    }

    @Test("a local Python run sees the activated virtualenv, or a .venv beside the handler; a missing module says where funcd looked")
    func pythonVirtualenv() throws {
        let code = try CodeDirectory(files: [("app.py", "import greeting\n\ndef hello(event, context):\n    return greeting.text\n")])
        defer { code.remove() }
        let venv = URL(fileURLWithPath: code.path).appendingPathComponent(".venv/lib/python3.11/site-packages/greeting")
        try FileManager.default.createDirectory(at: venv, withIntermediateDirectories: true)
        try "text = 'from the .venv'\n".write(to: venv.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        let beside = try FuncdProcess(arguments: ["run", code.file("app.py"), "--handler", "hello", "--port", "0", "--workers", "0"])
        try beside.waitForListening()
        #expect(try beside.get("/").text == "from the .venv")
        beside.stop()
        // An activated virtualenv elsewhere comes first.
        let activated = FileManager.default.temporaryDirectory.appendingPathComponent("funcd-venv-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: activated) }
        let package = activated.appendingPathComponent("lib/python3.11/site-packages/greeting")
        try FileManager.default.createDirectory(at: package, withIntermediateDirectories: true)
        try "text = 'from VIRTUAL_ENV'\n".write(to: package.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        let active = try FuncdProcess(
            arguments: ["run", code.file("app.py"), "--handler", "hello", "--port", "0", "--workers", "0"],
            environment: ["VIRTUAL_ENV": activated.path])
        try active.waitForListening()
        #expect(try active.get("/").text == "from VIRTUAL_ENV")
        active.stop()
        // Without the package: one line naming the folders funcd looked in.
        try FileManager.default.removeItem(at: URL(fileURLWithPath: code.path).appendingPathComponent(".venv"))
        let missing = try Funcd.run(arguments: ["run", code.file("app.py"), "--handler", "hello", "--port", "0", "--workers", "0"])
        #expect(missing.exitCode == 1, "\(missing)")
        #expect(missing.stderr.contains("No module named 'greeting'") && missing.stderr.contains("no virtualenv"), "\(missing)")
    }

    @Test("a missing Node module or Ruby gem says where funcd looked")
    func missingDependencyHints() throws {
        let node = try CodeDirectory(files: [("app.js", "const _ = require('lodash');\nexports.hello = () => 'hi';\n")])
        defer { node.remove() }
        let nodeOutcome = try Funcd.run(arguments: ["run", node.file("app.js"), "--handler", "hello", "--port", "0", "--workers", "0"])
        #expect(nodeOutcome.exitCode == 1, "\(nodeOutcome)")
        #expect(nodeOutcome.stderr.contains("Cannot find module 'lodash'") && nodeOutcome.stderr.contains("looked in node_modules"), "\(nodeOutcome)")
        let ruby = try CodeDirectory(files: [("app.rb", "require 'no_such_gem_here'\ndef hello(event, context) 'hi' end\n")])
        defer { ruby.remove() }
        try FileManager.default.createDirectory(atPath: "\(ruby.path)/bundle/ruby/3.1.0", withIntermediateDirectories: true)
        let rubyOutcome = try Funcd.run(
            arguments: ["run", ruby.file("app.rb"), "--handler", "hello", "--port", "0", "--workers", "0"],
            environment: ["BUNDLE_PATH": "\(ruby.path)/bundle"])
        #expect(rubyOutcome.exitCode == 1, "\(rubyOutcome)")
        #expect(rubyOutcome.stderr.contains("no_such_gem_here") && rubyOutcome.stderr.contains("\(ruby.path)/bundle/ruby/3.1.0"), "\(rubyOutcome)")
    }
}
