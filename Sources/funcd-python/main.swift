import FuncdCore
import FuncdSupervisor
import FuncdWorker
import PythonHost

// Run as `funcd` (the images' link to this file), it is the front door instead.
if FrontDoor.isInvokedAsFuncd { FrontDoor.main() }

// funcd-python: funcd with CPython embedded. Python is configured to install no signal handlers,
// so the worker's own SIGTERM/SIGINT handling and ignored SIGPIPE hold once it starts serving.
let launch = Worker.launch(language: .python)
let host: PythonHost
do {
    host = try PythonHost.start(configuration: launch.configuration, logger: launch.logger, printsToStderr: launch.isInvoke)
} catch let error as FuncdError {
    Worker.failedToStart(error, hard: false)
}
await Worker.run(launch, host: host)
