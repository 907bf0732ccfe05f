import Foundation
import Testing

/// Servers over a whole fixture folder (`Fixtures/node`, `Fixtures/ruby`: a module with its
/// helpers and installed packages), as a kubeless pod of that runtime runs it.
extension Funcd {
    /// Serves `Fixtures/<folder>`'s `app` module with `FUNC_RUNTIME=runtime` and runs `body` once
    /// it listens.
    static func withFixtureFolderServer(
        _ folder: String, runtime: String, handler: String, env: [String: String] = [:], layout: Layout = .plain,
        _ body: (FuncdProcess) throws -> Void
    ) throws {
        let code: any CodeLocation =
            layout == .configMap
            ? try ConfigMapVolume(copyingFixtureFolder: folder) : try CodeDirectory(copyingFixtureFolder: folder)
        defer { code.remove() }
        var environment = [
            "MOD_NAME": "app", "FUNC_HANDLER": handler, "FUNC_RUNTIME": runtime, "FUNC_PORT": "0",
            "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": code.path,
        ]
        environment.merge(env) { _, new in new }
        let process = try FuncdProcess(arguments: ["serve"], environment: environment)
        defer { process.stop() }
        try process.waitForListening()
        try body(process)
    }

    /// Serves a module `file` with `source` that cannot start: expects exit 1 and exactly one
    /// `funcd: error:` line naming the file and `cause`, and no listening line.
    static func expectStartupFailure(
        _ name: String, file: String, source: String, runtime: String, handler: String = "handler", cause: String
    ) throws {
        let code = try CodeDirectory(files: [(file, source)])
        defer { code.remove() }
        let module = String(file[..<(file.lastIndex(of: ".") ?? file.endIndex)])
        let process = try FuncdProcess(
            arguments: ["serve"],
            environment: [
                "MOD_NAME": module, "FUNC_HANDLER": handler, "FUNC_RUNTIME": runtime, "FUNC_PORT": "0",
                "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": code.path,
            ])
        defer { process.stop() }
        let exit = try process.waitForExit(timeout: 30)
        #expect(exit == 1, "\(name): exit \(exit)\n\(process.diagnostics)")
        let lines = process.stderrText.split(separator: "\n").filter { $0.hasPrefix("funcd: error:") }
        #expect(lines.count == 1, "\(name): \(process.diagnostics)")
        #expect(
            lines.first.map { $0.contains(file) && $0.contains(cause) } == true,
            "\(name): \(lines)\n\(process.diagnostics)")
        #expect(FuncdProcess.parseListening(process.stderrText) == nil)
    }
}
