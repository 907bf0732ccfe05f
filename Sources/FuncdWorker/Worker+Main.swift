import FuncdCore

#if canImport(Glibc)
import Glibc
#endif

extension Worker {
    /// The life of a language executable once it knows it is not the front door: read the
    /// command line, start the host (its interpreter and the handler's module: a failure is one
    /// line and exit 1, before any port opens), then serve or invoke until the end.
    ///
    /// - `hardExit`: the interpreter keeps threads of its own (Node's loop, Ruby's VM) and must
    ///   not be finalised under them, so the process ends with `_exit`.
    /// - `beforeExit`: what the host must stop on the way out (the exec runtime's programs).
    /// - `arguments`: the command line without the program's name; funcd-python's worker, an
    ///   extension module of python3, gets its own from the interpreter.
    public static func main<Host: FunctionHost>(
        _ language: Language, arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        hardExit hard: Bool = false, beforeExit: @escaping (Host) -> Void = { _ in },
        start: (Launch) throws -> Host
    ) async -> Never {
        let launch = launch(language: language, arguments: arguments)
        let host = started(launch, hard: hard, start: start)
        let terminate: (Int32) -> Never = { code in
            beforeExit(host)
            if hard { hardExit(code) }
            exit(code)
        }
        await run(launch, host: host, terminate: terminate)
    }

    /// The host `start` makes, or the process ends with its error line.
    private static func started<Host: FunctionHost>(
        _ launch: Launch, hard: Bool, start: (Launch) throws -> Host
    ) -> Host {
        do {
            return try start(launch)
        } catch let error as FuncdError {
            failedToStart(error, hard: hard)
        } catch {
            failedToStart(FuncdError(.interpreter, "\(error)"), hard: hard)
        }
    }
}
