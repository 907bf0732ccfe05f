import ArgumentParser
import FuncdCLI
import FuncdCore

#if canImport(Glibc)
import Glibc
#endif

// `funcd` links no interpreter: it parses the command line (so that errors and --help are the
// same as in every language executable), picks the language, and execs `funcd-<language>`
// from its own folder with the same arguments. The process keeps its PID (PID 1 in a pod).
let arguments = Array(CommandLine.arguments.dropFirst())
let configuration: Configuration
do {
    configuration = try FuncdCommand.resolve(arguments: arguments, environment: ProcessEnvironment.current()).0
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
var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
execv(executable, &argv)
ProcessEnvironment.fail("cannot start \(executable): \(String(cString: strerror(errno)))")
