import FuncdCore
import FuncdSupervisor
import FuncdWorker
import NodeHost

// Run as `funcd` (the images' link to this file), it is the front door instead.
if FrontDoor.isInvokedAsFuncd { FrontDoor.main() }

// funcd-node: funcd with Node.js embedded. Node is started without its own signal handling, so
// the worker's SIGTERM/SIGINT handling and ignored SIGPIPE hold once it serves. The process ends
// with a hard exit: Node's threads and static state must not be torn down under a running loop.
let launch = Worker.launch(language: .node)
let host: NodeHost
do {
    host = try NodeHost.start(
        configuration: launch.configuration, logger: launch.logger, printsToStderr: launch.isInvoke)
} catch {
    Worker.failedToStart(error, hard: true)
}
await Worker.run(launch, host: host, terminate: Worker.hardExit)
