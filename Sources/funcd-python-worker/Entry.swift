import FuncdWorker
import PythonHost

/// Where python3 enters funcd-python's worker: funcd-python's launcher has the interpreter load
/// this library as the extension module `_funcd_worker` and call its `run` with the command
/// line (see PythonHost+Extension). The worker then starts here, on Swift's threads, while the
/// interpreter's main thread waits to be given the handler.
@_cdecl("PyInit__funcd_worker")
public func initialiseExtensionModule() -> UnsafeMutableRawPointer? {
    PythonHost.extensionModule { arguments in
        Task.detached {
            await Worker.main(.python, arguments: arguments) { launch in
                try PythonHost.start(
                    configuration: launch.configuration, logger: launch.logger, printsToStderr: launch.isInvoke)
            }
        }
    }
}
