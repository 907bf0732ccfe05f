import Foundation

/// Scoped ways to run `funcd` for a test: each creates the code folder, starts the process,
/// hands it to the test's closure, and always kills the process and deletes the folder when the
/// closure returns or throws.
///
/// The scope matters: the process and the code folder must outlive every request the test makes,
/// and Swift may release a local object after its last use; a closure keeps both alive by
/// construction and makes the clean-up impossible to forget.
enum Funcd {
    /// `FUNC_RUNTIME` for every server the tests start, as kubeless sets it for a python function.
    static let runtime = "python3.11"

    /// How the code folder is laid out.
    enum Layout {
        /// A plain folder with regular files.
        case plain
        /// A Kubernetes ConfigMap volume (see ``ConfigMapVolume``).
        case configMap
    }

    /// Starts `funcd serve` in pod mode and runs `body` once it is listening.
    ///
    /// The environment is what kubeless gives a python function pod: `MOD_NAME`, `FUNC_HANDLER`,
    /// `FUNC_RUNTIME`, and the code folder in `KUBELESS_INSTALL_VOLUME` (or `codeVariable`), plus
    /// `FUNC_PORT=0` and `FUNC_HOST=127.0.0.1` so parallel tests never collide.
    ///
    /// - Parameters:
    ///   - fixtures: files from `Fixtures/` to put in the code folder.
    ///   - module: `MOD_NAME`.
    ///   - handler: `FUNC_HANDLER`.
    ///   - env: added last; a nil value removes a variable (`["MOD_NAME": nil]`).
    ///   - arguments: appended after `serve`.
    ///   - codeVariable: the variable that names the code folder (`MOD_ROOT_PATH` is an alias).
    ///   - executable: `funcd`, or `funcd-python` to bypass the dispatcher.
    static func withServer(
        fixtures: [String] = ["app.py"],
        module: String = "app",
        handler: String = "handler",
        env: [String: String?] = [:],
        arguments: [String] = [],
        layout: Layout = .plain,
        codeVariable: String = "KUBELESS_INSTALL_VOLUME",
        executable: String = "funcd",
        _ body: (FuncdProcess) throws -> Void
    ) throws {
        try withServeProcess(
            fixtures: fixtures, module: module, handler: handler, env: env, arguments: arguments,
            layout: layout, codeVariable: codeVariable, executable: executable
        ) { process in
            try process.waitForListening()
            try body(process)
        }
    }

    /// Like ``withServer(fixtures:module:handler:env:arguments:layout:codeVariable:executable:_:)``
    /// but without waiting for the start-up line, for tests of start-up failures.
    static func withServeProcess(
        fixtures: [String] = ["app.py"],
        module: String = "app",
        handler: String = "handler",
        env: [String: String?] = [:],
        arguments: [String] = [],
        layout: Layout = .plain,
        codeVariable: String = "KUBELESS_INSTALL_VOLUME",
        executable: String = "funcd",
        _ body: (FuncdProcess) throws -> Void
    ) throws {
        let code: any CodeLocation
        switch layout {
        case .plain: code = try CodeDirectory(fixtures: fixtures)
        case .configMap: code = try ConfigMapVolume(fixtures: fixtures)
        }
        defer { code.remove() }
        var environment: [String: String] = [
            "MOD_NAME": module,
            "FUNC_HANDLER": handler,
            "FUNC_RUNTIME": runtime,
            "FUNC_PORT": "0",
            "FUNC_HOST": "127.0.0.1",
        ]
        environment[codeVariable] = code.path
        for (name, value) in env {
            environment[name] = value
        }
        let process = try FuncdProcess(executable: executable, arguments: ["serve"] + arguments, environment: environment)
        defer { process.stop() }
        try body(process)
    }

    /// Starts `funcd run <folder>/<file> --port 0 --host 127.0.0.1 <arguments>` with a plain code
    /// folder holding `fixtures`, and runs `body` once it is listening.
    static func withRunServer(
        fixtures: [String],
        file: String,
        arguments: [String],
        _ body: (FuncdProcess) throws -> Void
    ) throws {
        let code = try CodeDirectory(fixtures: fixtures)
        defer { code.remove() }
        let process = try FuncdProcess(
            arguments: ["run", code.file(file), "--port", "0", "--host", "127.0.0.1"] + arguments)
        defer { process.stop() }
        try process.waitForListening()
        try body(process)
    }

    /// Runs `funcd invoke <folder>/<file> <arguments>` to completion and returns what it left.
    static func invoke(
        fixtures: [String] = ["invoke_app.py"],
        file: String = "invoke_app.py",
        arguments: [String],
        standardInput: Data? = nil,
        timeout: Double = 60
    ) throws -> FuncdProcess.Outcome {
        let code = try CodeDirectory(fixtures: fixtures)
        defer { code.remove() }
        return try run(arguments: ["invoke", code.file(file)] + arguments, standardInput: standardInput, timeout: timeout)
    }

    /// Runs `executable arguments` to completion (e.g. `--help`) and returns what it left.
    static func run(
        executable: String = "funcd",
        arguments: [String],
        environment: [String: String] = [:],
        standardInput: Data? = nil,
        timeout: Double = 60
    ) throws -> FuncdProcess.Outcome {
        let process = try FuncdProcess(
            executable: executable, arguments: arguments, environment: environment, standardInput: standardInput)
        defer { process.stop() }
        return try process.finish(timeout: timeout)
    }
}

extension FuncdProcess {
    /// `GET path` on a fresh connection to this server.
    func get(_ path: String, headers: KeyValuePairs<String, String> = [:], timeout: Double = 30) throws -> HTTPResponse {
        try HTTPClient.request(port: port(), method: "GET", path: path, headers: headers, timeout: timeout)
    }

    /// One request with a byte body on a fresh connection to this server.
    func request(
        _ method: String,
        _ path: String,
        headers: KeyValuePairs<String, String> = [:],
        body: [UInt8] = [],
        timeout: Double = 30
    ) throws -> HTTPResponse {
        try HTTPClient.request(port: port(), method: method, path: path, headers: headers, body: body, timeout: timeout)
    }

    /// One request with a UTF-8 text body on a fresh connection to this server.
    func request(
        _ method: String,
        _ path: String,
        headers: KeyValuePairs<String, String> = [:],
        body: String,
        timeout: Double = 30
    ) throws -> HTTPResponse {
        try request(method, path, headers: headers, body: Array(body.utf8), timeout: timeout)
    }

    /// A new keep-alive connection to this server.
    func connect(timeout: Double = 30) throws -> HTTPClient {
        try HTTPClient(port: port(), timeout: timeout)
    }
}
