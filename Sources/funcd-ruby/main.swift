import FuncdCLI
import FuncdCore
import FuncdWorker
import RubyHost

#if canImport(Glibc)
import Glibc
#endif

// funcd-ruby: funcd with Ruby embedded. Ruby installs handlers for SIGTERM, SIGINT and more when
// it starts; the worker's own signal handling is set up after that, in Worker.run, so it is
// funcd's that hold. The process ends with _exit: Ruby's VM must not be torn down under running
// threads.
let launch = Worker.launch(language: .ruby)
let host: RubyHost
do {
    host = try RubyHost.start(
        configuration: launch.configuration, logger: launch.logger, printsToStderr: launch.isInvoke)
} catch {
    ProcessEnvironment.printError("funcd: error: \(error.message)")
    fflush(nil)
    _exit(1)
}
await Worker.run(launch, host: host) { code in
    fflush(nil)
    _exit(code)
}
