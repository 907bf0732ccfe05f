import ArgumentParser
import FuncdCLI
import FuncdCore
import FuncdHTTP
import Logging
import NIOCore
import NIOPosix
import Prometheus
import PythonHost
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// funcd-python: funcd with CPython embedded. Order matters: parse, start the interpreter and load
// the handler (so a broken module never opens the port), then take over the signals (Python is
// configured not to install any; SIGPIPE must be ignored by us), then serve.

let environment = ProcessEnvironment.current()
let (configuration, mode): (Configuration, Mode)
do {
    (configuration, mode) = try FuncdCommand.resolve(
        arguments: Array(CommandLine.arguments.dropFirst()), environment: environment)
} catch let error as FuncdError {
    ProcessEnvironment.fail(error.message)
} catch {
    FuncdCommand.exit(withError: error)
}
guard configuration.language == .python else {
    ProcessEnvironment.fail("\(configuration.modulePath): funcd-python runs Python only; use funcd, which picks the runtime")
}

ProcessEnvironment.bootstrapLogging(environment)
let logger = Logger(label: "funcd")

var isInvoke = false
if case .invoke = mode { isInvoke = true }
let host: PythonHost
do {
    host = try PythonHost.start(configuration: configuration, logger: logger, printsToStderr: isInvoke)
} catch let error as FuncdError {
    ProcessEnvironment.fail(error.message)
}
signal(SIGPIPE, SIG_IGN)

let metrics = FunctionMetrics(registry: PrometheusCollectorRegistry())

switch mode {
case .invoke(let request):
    exit(InvokeOnce.run(request, configuration: configuration, host: host, metrics: metrics, logger: logger))

case .serve:
    // Under a supervisor (`funcd` with FUNC_WORKERS ≥ 1) this process is one worker: it accepts
    // on the supervisor's socket, reports ready and stuck, and is replaced rather than restarted.
    let link = SupervisorLink.fromEnvironment(environment)
    let stuck = Atomic<Bool>(false)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: CPUAffinity.usableCPUs)
    let shutdown = ShutdownTrigger()
    let invoker = Invoker(
        host: host, timeoutSeconds: configuration.timeoutSeconds, graceSeconds: configuration.timeoutGraceSeconds,
        metrics: metrics, logger: logger
    ) { _ in
        // A handler the interpreter cannot stop holds a thread for good. Supervised: ask for a
        // replacement and keep serving the other calls until it is ready (the supervisor then
        // sends SIGTERM). Alone: answer what is in flight, then exit non-zero so that Kubernetes
        // starts a fresh process.
        if let link {
            link.send("stuck")
        } else {
            stuck.store(true, ordering: .relaxed)
            shutdown.trigger(unhealthy: true)
        }
    }
    let module = "\(configuration.moduleName).\(configuration.handlerName)"
    var supervisorMetrics: (@Sendable () -> [UInt8])? = nil
    if let link {
        supervisorMetrics = { link.supervisorMetrics }
    }
    let server = HTTPServer(
        configuration: configuration, invoker: invoker, group: group, logger: logger,
        listenDescriptor: link?.listenDescriptor, extraMetrics: supervisorMetrics
    ) { address, port in
        if let link {
            link.send("ready \(host.versionDescription)")
        } else {
            ProcessEnvironment.printError(
                "funcd: \(module) listening on http://\(address):\(port) (\(host.versionDescription), timeout \(configuration.timeoutSeconds)s)"
            )
        }
    }
    // A worker must not outlive its supervisor (killed with SIGKILL, say): drain and go.
    link?.startReading { shutdown.trigger(unhealthy: false) }
    let services = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: [.init(service: server), .init(service: shutdown)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
    shutdown.attach(services, server: server)
    do {
        try await services.run()
    } catch {
        ProcessEnvironment.fail("\(error)")
    }
    try? await group.shutdownGracefully()
    if stuck.load(ordering: .relaxed) {
        ProcessEnvironment.printError("funcd: exiting after a handler could not be interrupted")
        exit(70)
    }
    exit(0)
}
