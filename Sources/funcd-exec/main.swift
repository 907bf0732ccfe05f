import ExecHost
import FuncdSupervisor
import FuncdWorker

// Run as `funcd` (the exec image's link to this file), it is the front door instead.
if FrontDoor.isInvokedAsFuncd { FrontDoor.main() }

// funcd-exec: funcd running a program per call. It links no interpreter; the program is checked
// (it exists, and it is executable or names its interpreter with #!) before the port opens.
// Programs run in sessions of their own: whatever still runs when the worker ends goes with it.
await Worker.main(.exec, beforeExit: { $0.killAll() }) { launch in
    try ExecHost.start(configuration: launch.configuration, environment: launch.environment, logger: launch.logger)
}
