import FuncdSupervisor
import FuncdWorker
import PythonHost

// Run as `funcd` (the images' link to this file), it is the front door instead.
if FrontDoor.isInvokedAsFuncd { FrontDoor.main() }

// funcd-python: funcd with CPython embedded. Python is configured to install no signal handlers,
// so the worker's own SIGTERM/SIGINT handling and ignored SIGPIPE hold once it starts serving.
await Worker.main(.python) { launch in
    try PythonHost.start(configuration: launch.configuration, logger: launch.logger, printsToStderr: launch.isInvoke)
}
