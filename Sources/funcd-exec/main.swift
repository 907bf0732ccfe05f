import ExecHost
import FuncdCore
import FuncdSupervisor
import FuncdWorker

#if canImport(Glibc)
import Glibc
#endif

// Run as `funcd` (the exec image's link to this file), it is the front door instead.
if FrontDoor.isInvokedAsFuncd { FrontDoor.main() }

// funcd-exec: funcd running a program per call. It links no interpreter; the program is checked
// (it exists, and it is executable or names its interpreter with #!) before the port opens.
let launch = Worker.launch(language: .exec)
let host: ExecHost
do {
    host = try ExecHost.start(configuration: launch.configuration, environment: launch.environment, logger: launch.logger)
} catch {
    Worker.failedToStart(error, hard: false)
}
// Programs run in sessions of their own: whatever still runs when the worker ends goes with it.
await Worker.run(launch, host: host) { code in
    host.killAll()
    exit(code)
}
