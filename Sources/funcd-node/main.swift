import FuncdCLI
import FuncdCore
import FuncdWorker
import NodeHost

#if canImport(Glibc)
import Glibc
#endif

// funcd-node: funcd with Node.js embedded. Node is started without its own signal handling, so
// the worker's SIGTERM/SIGINT handling and ignored SIGPIPE hold once it serves. The process ends
// with _exit: Node's threads and static state must not be torn down under a running loop.
let launch = Worker.launch(language: .node)
let host: NodeHost
do {
    host = try NodeHost.start(
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
