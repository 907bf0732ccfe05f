import FuncdCLI
import FuncdCore
import FuncdSystem
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The `funcd` command: it parses the command line (so that errors and --help are the same as in
/// every language executable) and picks the language; then it either supervises worker processes
/// (`funcd-<language>` from its own folder, FUNC_WORKERS of them, default 1) or, for `invoke` and
/// `--workers 0`, execs that executable in its place, keeping the PID.
///
/// It is the `funcd` executable, which links no interpreter, and also each language executable
/// when that is run under the name `funcd` (the images install `funcd` as a link to their one
/// `funcd-<language>`, so that an image does not carry the front door's code twice).
public enum FrontDoor {
    /// Whether this process was started as `funcd` (its `argv[0]`, whatever the file is).
    public static var isInvokedAsFuncd: Bool {
        CommandLine.arguments.first.map { isFuncd(program: $0) } ?? false
    }

    /// Whether a program started under this name (an `argv[0]`) is the front door.
    public static func isFuncd(program: String) -> Bool {
        program.split(separator: "/").last == "funcd"
    }

    /// - `arguments`: the command line without the program's name (by default, this process's).
    /// - `serveHere`: the front door inside funcd-python's library, whose process (python3) can
    ///   become a worker of its language without exec'ing another: given the language and the
    ///   command line the language's executable would get (the environment is this process's),
    ///   it does not return when it can.
    public static func main(
        arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        serveHere: (Language, [String]) -> Void = { _, _ in }
    ) -> Never {
        let environment = ProcessEnvironment.current()
        let configuration: Configuration
        let inputs: ConfigurationInputs
        let mode: Mode
        do {
            if let plain = FuncdCommand.plainServe(arguments) {
                (inputs, mode) = plain
            } else {
                // Parsed once: ArgumentParser's reflection is the largest part of this process's start.
                let command = try FuncdCommand.parseAsRoot(arguments)
                if command is KubelessConvert || (command as? Run).map({ isKubelessManifest($0.file) }) == true {
                    handOverToKubeless(arguments)
                }
                (inputs, mode) = try FuncdCommand.inputs(of: command)
            }
            configuration = try inputs.configuration(environment: environment)
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
            // The workers take the command line's inputs from here, not from parsing it again.
            var workerEnvironment = environment
            workerEnvironment[ConfigurationInputs.variable] = inputs.encoded
            let supervisor = Supervisor(
                configuration: configuration, executable: executable, arguments: arguments,
                environment: workerEnvironment, logger: Logger(label: "funcd.supervisor"))
            exit(supervisor.run())
        }

        serveHere(configuration.language, arguments)
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        execv(executable, &argv)
        ProcessEnvironment.fail("cannot start \(executable): \(String(cString: strerror(errno)))")
    }

    /// `funcd kubeless convert …` and `funcd run function.yaml` are funcd-kubeless's (it reads
    /// YAML): exec'd from this folder, or one line saying this installation has none (an image).
    static func handOverToKubeless(_ arguments: [String]) -> Never {
        let executable = "\(RuntimeDirectory.executableDirectory())/funcd-kubeless"
        guard access(executable, X_OK) == 0 else {
            ProcessEnvironment.fail(
                "this installation has no funcd-kubeless (\(executable)), which reads kubeless resources: run funcd from a build (swift build) or a release, not an image")
        }
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        execv(executable, &argv)
        ProcessEnvironment.fail("cannot start \(executable): \(String(cString: strerror(errno)))")
    }
}
