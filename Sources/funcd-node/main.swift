import FuncdSupervisor
import FuncdWorker
import NodeHost

// Run as `funcd` (the images' link to this file), it is the front door instead.
if FrontDoor.isInvokedAsFuncd { FrontDoor.main() }

// funcd-node: funcd with Node.js embedded. Node is started without its own signal handling, so
// the worker's SIGTERM/SIGINT handling and ignored SIGPIPE hold once it serves. The process ends
// with a hard exit: Node's threads and static state must not be torn down under a running loop.
await Worker.main(.node, hardExit: true) { launch in
    try NodeHost.start(configuration: launch.configuration, logger: launch.logger, printsToStderr: launch.isInvoke)
}
