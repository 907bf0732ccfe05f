import FuncdCLI
import FuncdCore
import FuncdHTTP
import FuncdKafka
import FuncdSystem
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What every language executable (`funcd-python`, `funcd-node`, ...) does around its host: read
/// the command line, then — once the host has started its interpreter and loaded the handler, so
/// that a broken module never opens the port — take over the signals and serve, or make the one
/// call of `funcd invoke`.
public enum Worker {
    /// The command line and environment, resolved; a bad one ends the process with one line.
    public struct Launch: Sendable {
        public let configuration: Configuration
        public let mode: Mode
        public let environment: [String: String]
        public let logger: Logger

        /// True for `funcd invoke`: the handler's own output then belongs on stderr.
        public var isInvoke: Bool {
            if case .invoke = mode { return true }
            return false
        }
    }

    /// Parses the command line of the executable that embeds `language`; a worker the supervisor
    /// started takes what the supervisor parsed instead (``ConfigurationInputs``).
    public static func launch(
        language: Language, arguments: [String] = Array(CommandLine.arguments.dropFirst())
    ) -> Launch {
        let environment = ProcessEnvironment.current()
        // Read once, here: a program the handler starts (a nested funcd) must not take the
        // supervisor's inputs for its own, nor descriptor numbers that are not its link (the
        // descriptors themselves are close-on-exec). Nothing else runs on another thread yet.
        for variable in WorkerEnvironment.all { unsetenv(variable) }
        let (configuration, mode): (Configuration, Mode)
        do {
            if environment[WorkerEnvironment.controlDescriptor] != nil,
                let inputs = environment[ConfigurationInputs.variable].flatMap(ConfigurationInputs.init(encoded:))
            {
                (configuration, mode) = (try inputs.configuration(environment: environment), .serve)
            } else {
                (configuration, mode) = try FuncdCommand.resolve(
                    arguments: arguments, environment: environment)
            }
        } catch let error as FuncdError {
            ProcessEnvironment.fail(error.message)
        } catch {
            FuncdCommand.exit(withError: error)
        }
        if case .serve = mode, let problem = SupervisorLink.problem(in: environment) {
            ProcessEnvironment.fail(problem)
        }
        guard configuration.language == language else {
            ProcessEnvironment.fail(
                "\(configuration.modulePath): \(language.executableName) runs \(language.rawValue) only; use funcd, which picks the runtime"
            )
        }
        ProcessEnvironment.bootstrapLogging(environment)
        return Launch(
            configuration: configuration, mode: mode, environment: environment, logger: Logger(label: "funcd"))
    }

    /// Ends the process at once, without tearing anything down: an interpreter with threads of
    /// its own (Node's loop, Ruby's VM) must not be finalised under them.
    public static func hardExit(_ code: Int32) -> Never {
        fflush(nil)
        _exit(code)
    }

    /// A host that could not start: its one line, exit 1.
    public static func failedToStart(_ error: FuncdError, hard: Bool) -> Never {
        ProcessEnvironment.printError("funcd: error: \(error.message)")
        if hard { hardExit(1) }
        exit(1)
    }

    /// Serves (or invokes) with `host`, whose interpreter has started; ends the process with
    /// `terminate` (an interpreter with threads of its own may need `_exit`).
    public static func run(
        _ launch: Launch, host: any FunctionHost, terminate: (Int32) -> Never = { exit($0) }
    ) async -> Never {
        signal(SIGPIPE, SIG_IGN)
        let configuration = launch.configuration
        let logger = launch.logger
        let metrics = FunctionMetrics(registry: PrometheusCollectorRegistry())

        if case .invoke(let request) = launch.mode {
            terminate(InvokeOnce.run(request, configuration: configuration, host: host, metrics: metrics, logger: logger))
        }

        // Under a supervisor (`funcd` with FUNC_WORKERS ≥ 1) this process is one worker: it accepts
        // on the supervisor's socket, reports ready and stuck, and is replaced rather than restarted.
        let link = SupervisorLink.fromEnvironment(launch.environment)
        let stuck = Atomic<Bool>(false)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: CPUAffinity.usableCPUs)
        let shutdown = ShutdownTrigger()
        let invoker = Invoker(
            host: host, timeoutSeconds: configuration.timeoutSeconds,
            graceSeconds: configuration.timeoutGraceSeconds, metrics: metrics, logger: logger
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
        invoker.startWatchdog()
        let module =
            configuration.handlerName.isEmpty ? configuration.moduleName : "\(configuration.moduleName).\(configuration.handlerName)"
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
            // What only start-up needed (most of an interpreter's start-up code) leaves the RSS.
            StartupPages.releaseSoon()
        }
        // A worker must not outlive its supervisor (killed with SIGKILL, say): drain and go.
        link?.startReading { shutdown.trigger(unhealthy: false) }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server), .init(service: shutdown)]
        if configuration.kafka != nil {
            // Every worker is one consumer of the group: Kafka spreads the partitions.
            do {
                services.append(
                    .init(
                        service: try KafkaConsumer(
                            configuration: configuration, invoker: invoker, logger: logger,
                            inFlight: KafkaInFlightTable.inherited(launch.environment), workerDeaths: link?.kafkaDeaths)))
            } catch {
                ProcessEnvironment.printError("funcd: error: \(error.message)")
                terminate(1)
            }
        }
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        shutdown.attach(serviceGroup) { server.markUnhealthy() }
        do {
            try await serviceGroup.run()
        } catch {
            ProcessEnvironment.printError("funcd: error: \(error)")
            terminate(1)
        }
        try? await group.shutdownGracefully()
        if stuck.load(ordering: .relaxed) {
            ProcessEnvironment.printError("funcd: exiting after a handler could not be interrupted")
            terminate(70)
        }
        terminate(0)
    }
}
