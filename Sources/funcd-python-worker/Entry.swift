import FuncdCore
import FuncdSupervisor
import FuncdWorker
import PythonHost

/// Where python3 enters funcd-python: the `funcd-python` program has the interpreter load this
/// library as the extension module `_funcd_worker` and call its `run` with the program's name and
/// command line (see PythonHost+Extension). Named `funcd`, it is the front door, which runs a
/// Python worker in this very process instead of exec'ing another python3; otherwise the worker
/// starts here, on Swift's threads, while the interpreter's main thread waits to be given the
/// handler.
@_cdecl("PyInit__funcd_worker")
public func initialiseExtensionModule() -> UnsafeMutableRawPointer? {
    PythonHost.extensionModule { program, arguments in
        if FrontDoor.isFuncd(program: program) {
            FrontDoor.main(arguments: arguments) { language, arguments in
                guard language == .python else { return }
                startWorker(arguments)
                PythonHost.lendMainThread()
            }
        }
        startWorker(arguments)
    }
}

private func startWorker(_ arguments: [String]) {
    Task.detached {
        await Worker.main(.python, arguments: arguments) { launch in
            try PythonHost.start(
                configuration: launch.configuration, logger: launch.logger, printsToStderr: launch.isInvoke)
        }
    }
}
