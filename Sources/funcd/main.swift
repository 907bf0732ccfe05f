import ArgumentParser
import FuncdCLI
import FuncdCore
import FuncdSupervisor
import Logging

#if canImport(Glibc)
import Glibc
#endif

// `funcd` links no interpreter. It parses the command line (so that errors and --help are the
// same as in every language executable) and picks the language; then it either supervises
// worker processes (`funcd-<language>` from its own folder, FUNC_WORKERS of them, default 1)
// or, for `invoke` and `--workers 0`, execs that executable in its place, keeping the PID.
let arguments = Array(CommandLine.arguments.dropFirst())
let environment = ProcessEnvironment.current()
let configuration: Configuration
let mode: Mode
do {
    (configuration, mode) = try FuncdCommand.resolve(arguments: arguments, environment: environment)
} catch let error as FuncdError {
    ProcessEnvironment.fail(error.message)
} catch {
    FuncdCommand.exit(withError: error)
}

let executable = "\(RuntimeDirectory.executableDirectory())/\(configuration.language.executableName)"
guard access(executable, X_OK) == 0 else {
    ProcessEnvironment.fail(
        "\(configuration.modulePath): this installation has no \(configuration.language.rawValue) runtime (\(executable) is missing)"
    )
}

if case .serve = mode, configuration.workers > 0 {
    ProcessEnvironment.bootstrapLogging(environment)
    let supervisor = Supervisor(
        configuration: configuration, executable: executable, arguments: arguments, environment: environment,
        logger: Logger(label: "funcd.supervisor"))
    exit(supervisor.run())
}

var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
execv(executable, &argv)
ProcessEnvironment.fail("cannot start \(executable): \(String(cString: strerror(errno)))")
