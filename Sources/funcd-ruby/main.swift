import FuncdSupervisor
import FuncdWorker
import RubyHost

// Run as `funcd` (the images' link to this file), it is the front door instead.
if FrontDoor.isInvokedAsFuncd { FrontDoor.main() }

// funcd-ruby: funcd with Ruby embedded. Ruby installs handlers for SIGTERM, SIGINT and more when
// it starts; the worker's own signal handling is set up after that, in Worker.run, so it is
// funcd's that hold. The process ends with a hard exit: Ruby's VM must not be torn down under
// running threads.
await Worker.main(.ruby, hardExit: true) { launch in
    try RubyHost.start(configuration: launch.configuration, logger: launch.logger, printsToStderr: launch.isInvoke)
}
