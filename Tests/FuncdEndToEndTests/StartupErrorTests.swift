import Foundation
import Testing

/// A function that cannot be loaded must stop the pod at once with a clear reason, never come up
/// half-working: exit code 1 within a few seconds, a `funcd: error:` line on stderr naming the
/// file and the cause, and no listening line.
@Suite(.sharesMachine)
struct StartupErrorTests {
    /// One way for start-up to fail.
    struct Failure: Sendable, CustomTestStringConvertible {
        var name: String
        var fixtures: [String]
        /// `MOD_NAME`; nil leaves it unset.
        var module: String?
        var handler: String = "handler"
        /// Text the error line must contain to name the file (nil: there is no file to name).
        var file: String?
        /// Text the error line must contain to name the cause (nil: the spec names no wording).
        var cause: String?

        var testDescription: String { name }

        static let all: [Failure] = [
            Failure(name: "MOD_NAME unset", fixtures: ["app.py"], module: nil, file: nil, cause: "MOD_NAME"),
            Failure(name: "code file missing", fixtures: ["app.py"], module: "doesnotexist", file: "doesnotexist.py", cause: nil),
            Failure(name: "syntax error", fixtures: ["syntax_error.py"], module: "syntax_error", file: "syntax_error.py", cause: "SyntaxError"),
            Failure(name: "handler missing", fixtures: ["app.py"], module: "app", handler: "nope", file: "app.py", cause: "no function 'nope'"),
            Failure(name: "handler not callable", fixtures: ["not_callable.py"], module: "not_callable", file: "not_callable.py", cause: "not callable"),
            Failure(name: "import error in the module", fixtures: ["import_error.py"], module: "import_error", file: "import_error.py", cause: "ModuleNotFoundError"),
        ]
    }

    /// "Within a few seconds", with room for a loaded two-core machine.
    static let exitBound = 15.0

    @Test(
        "a worker binary whose FUNCD_LISTEN_FD / FUNCD_CONTROL_FD name no supervisor's sockets: exit 1, a line saying to unset them",
        arguments: [["97", "98"], ["0", "1"], ["x", nil]] as [[String?]]
    )
    func supervisorVariablesWithoutASupervisor(_ values: [String?]) throws {
        try Funcd.withServeProcess(
            env: ["FUNCD_LISTEN_FD": values[0], "FUNCD_CONTROL_FD": values[1]], executable: "funcd-python"
        ) { process in
            let code = try process.waitForExit(timeout: 30)
            #expect(code == 1, "\(values): exit code \(code)\n\(process.diagnostics)")
            let errorLines = process.stderrText.split(separator: "\n").filter { $0.hasPrefix("funcd: error: FUNCD_") }
            #expect(
                errorLines.contains { $0.contains("unset them") },
                "\(values): no 'funcd: error:' line naming the variables\n\(process.diagnostics)")
        }
    }

    @Test("start-up errors: exit 1, a funcd: error: line naming file and cause, no listening line", arguments: StartupErrorTests.Failure.all)
    func startupFails(_ failure: Failure) throws {
        let env: [String: String?] = failure.module == nil ? ["MOD_NAME": nil] : [:]
        try Funcd.withServeProcess(
            fixtures: failure.fixtures, module: failure.module ?? "", handler: failure.handler, env: env
        ) { process in
            let startedAt = Deadline.now
            let code = try process.waitForExit(timeout: 30)
            let seconds = (process.exitedAt ?? Deadline.now) - startedAt
            let stderr = process.stderrText

            #expect(code == 1, "\(failure.name): exit code \(code)\n\(process.diagnostics)")
            #expect(seconds < Self.exitBound, "\(failure.name): exited after \(seconds) s\n\(process.diagnostics)")

            let errorLines = stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("funcd: error:") }
            #expect(!errorLines.isEmpty, "\(failure.name): no line starting with 'funcd: error:'\n\(process.diagnostics)")
            let explaining = errorLines.filter { line in
                (failure.file.map { line.contains($0) } ?? true) && (failure.cause.map { line.contains($0) } ?? true)
            }
            #expect(
                !explaining.isEmpty,
                "\(failure.name): no 'funcd: error:' line names \(failure.file ?? "-") and \(failure.cause ?? "-"); got \(errorLines)\n\(process.diagnostics)"
            )

            let listened = FuncdProcess.parseListening(stderr) != nil
                || FuncdProcess.parseListening(process.stdoutText) != nil
            #expect(!listened, "\(failure.name): printed a listening line although it cannot serve\n\(process.diagnostics)")
        }
    }
}
