import FuncdCLI
import FuncdCore
import FuncdSystem
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `funcd` with `FUNC_WORKERS ≥ 1`: starts the workers, keeps them serving, and never lets the
/// pod stop answering.
///
/// - A worker that reports a stuck handler gets a successor; once the successor is ready the
///   stuck one is told to drain (SIGTERM) and killed after `SHUTDOWN_TIMEOUT`. The stuck worker
///   keeps serving its other calls meanwhile, so even with one worker the port always answers.
/// - A worker that dies (a crash in a C extension, the OOM killer) is restarted with backoff, and
///   the reason is logged and counted.
/// - New code (the ConfigMap's `..data` swapped, or a saved file with `--watch`) replaces the
///   workers one by one; a version that fails to load is refused and the old workers go on.
/// - SIGTERM/SIGINT: every worker drains; the supervisor exits 0 when they are gone. As PID 1
///   it also reaps any orphan that ends up its child.
///
/// One thread, one `poll` loop: signals arrive through a self-pipe, workers speak through their
/// control sockets.
public final class Supervisor {
    private let configuration: Configuration
    private let executable: String
    private let arguments: [String]
    private let environment: [String: String]
    private let logger: Logger
    private let watcher: CodeWatcher

    private var listening: ListeningSocket?
    private var workers: [WorkerProcess] = []
    private var generation = 0
    private var announced = false
    private var draining = false
    private var drainDeadline: UInt64 = 0
    private var restartAt: [Int: UInt64] = [:]
    private var backoff: [Int: UInt64] = [:]
    private var codeVersion: String?
    private var refusedVersion: String?
    private var reloadQueue: [Int] = []
    private var nextWatch: UInt64 = 0
    private var counters = Counters()
    /// The Kafka messages workers died running (workers learn of them: see `KafkaWorkerDeaths`).
    private let kafkaDeaths = KafkaWorkerDeaths()

    static let startTimeoutNanoseconds: UInt64 = 60_000_000_000
    static let minimumBackoff: UInt64 = 100_000_000
    static let maximumBackoff: UInt64 = 5_000_000_000
    static let healthyAfter: UInt64 = 30_000_000_000

    /// What the supervisor has done, for /metrics.
    struct Counters {
        var crashes = 0
        var stuck = 0
        var reloads = 0
        var reloadFailures = 0
        var readyWorkers = 0
    }

    public init(
        configuration: Configuration, executable: String, arguments: [String], environment: [String: String],
        logger: Logger
    ) {
        self.configuration = configuration
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.logger = logger
        self.watcher = CodeWatcher(directory: configuration.codeDirectory, watchFiles: configuration.watch)
    }

    /// Runs until SIGTERM/SIGINT (exit code 0) or until the first workers cannot start (1).
    public func run() -> Int32 {
        do {
            listening = try ListeningSocket.bind(host: configuration.host, port: configuration.port)
        } catch let error as FuncdError {
            ProcessEnvironment.fail(error.message)
        } catch {
            ProcessEnvironment.fail("\(error)")
        }
        SignalPipe.install()
        codeVersion = watcher.version()
        for slot in 0..<configuration.workers {
            guard start(slot: slot, replacing: nil) else { return 1 }
        }
        return loop()
    }

    // MARK: - The loop

    private func loop() -> Int32 {
        while true {
            let now = MonotonicClock.nanoseconds()
            if draining {
                if workers.isEmpty { return 0 }
                if now >= drainDeadline {
                    for worker in workers { kill(worker.pid, SIGKILL) }
                }
            }
            for worker in workers where worker.state == .draining && now >= worker.drainDeadline {
                kill(worker.pid, SIGKILL)
            }
            for worker in workers where worker.state == .starting && now &- worker.startedAt > Self.startTimeoutNanoseconds {
                logger.error("worker did not become ready in time; stopping it", metadata: ["funcd.pid": "\(worker.pid)"])
                kill(worker.pid, SIGKILL)
            }
            for (slot, at) in restartAt where now >= at && !draining {
                restartAt[slot] = nil
                _ = start(slot: slot, replacing: nil)
            }
            if !draining && now >= nextWatch {
                nextWatch = now &+ (configuration.watch ? 500_000_000 : 1_000_000_000)
                checkForNewCode()
            }

            var descriptors = [pollfd(fd: SignalPipe.readDescriptor, events: Int16(POLLIN), revents: 0)]
            for worker in workers {
                descriptors.append(pollfd(fd: worker.control, events: Int16(POLLIN), revents: 0))
            }
            _ = poll(&descriptors, nfds_t(descriptors.count), 100)
            if descriptors[0].revents != 0 { handleSignals() }
            for (index, descriptor) in descriptors.enumerated().dropFirst() where descriptor.revents != 0 {
                guard index - 1 < workers.count else { continue }
                let worker = workers[index - 1]
                if let lines = worker.readLines() {
                    for line in lines { handle(line, from: worker) }
                }
            }
            reap()
        }
    }

    private func handleSignals() {
        for signal in SignalPipe.drain() {
            switch signal {
            case SIGTERM, SIGINT:
                guard !draining else { continue }
                logger.info("draining workers", metadata: ["funcd.signal": "\(signal)"])
                draining = true
                drainDeadline = MonotonicClock.nanoseconds() &+ UInt64((configuration.shutdownTimeoutSeconds + 2) * 1e9)
                if let listening { close(listening.descriptor) }
                listening = nil
                for worker in workers { kill(worker.pid, SIGTERM) }
            default:
                continue  // SIGCHLD: reap() runs after every wake-up
            }
        }
    }

    // MARK: - Workers

    @discardableResult
    private func start(slot: Int, replacing: WorkerProcess?) -> Bool {
        guard let listening else { return false }
        do {
            var environment = environment
            var inFlight: KafkaInFlightTable?
            if configuration.kafka != nil {
                inFlight = KafkaInFlightTable.create(capacity: configuration.concurrency)
                if inFlight == nil { logger.warning("no memfd: a Kafka message that kills its worker will not be caught") }
                if !kafkaDeaths.isEmpty { environment["FUNCD_KAFKA_DEATHS"] = kafkaDeaths.encoded() }
            }
            let worker = try WorkerProcess.spawn(
                executable: executable, arguments: arguments, environment: environment, listen: listening.descriptor,
                slot: slot, generation: generation, replaces: replacing?.pid, inFlight: inFlight)
            worker.codeVersion = watcher.version()
            workers.append(worker)
            return true
        } catch let error as FuncdError {
            logger.error("cannot start a worker", metadata: [LogKeys.error: "\(error.message)"])
        } catch {
            logger.error("cannot start a worker", metadata: [LogKeys.error: "\(error)"])
        }
        return false
    }

    private func handle(_ line: String, from worker: WorkerProcess) {
        if line.hasPrefix("ready") {
            guard worker.state == .starting else { return }
            worker.state = .ready
            worker.description = String(line.dropFirst("ready".count)).trimmingASCIIWhitespace
            counters.readyWorkers += 1
            if let old = worker.replaces, let predecessor = workers.first(where: { $0.pid == old }) {
                drain(predecessor)
            }
            if !announced {
                announced = true
                announce(worker)
            }
            broadcastCounters()
            continueReload()
        } else if line == "stuck" {
            guard !worker.stuck, worker.state == .ready else { return }
            worker.stuck = true
            counters.stuck += 1
            logger.warning(
                "worker has a handler it cannot interrupt; starting its replacement",
                metadata: ["funcd.pid": "\(worker.pid)", "funcd.slot": "\(worker.slot)"])
            if !workers.contains(where: { $0.replaces == worker.pid }) {
                start(slot: worker.slot, replacing: worker)
            }
            broadcastCounters()
        }
    }

    private func drain(_ worker: WorkerProcess) {
        guard worker.state != .draining else { return }
        if worker.state == .ready { counters.readyWorkers -= 1 }
        worker.state = .draining
        // Two seconds past the worker's own drain, as for a shutdown: a worker that ends by
        // itself stops what it started (the exec runtime's programs), a SIGKILL would not.
        worker.drainDeadline = MonotonicClock.nanoseconds() &+ UInt64((configuration.shutdownTimeoutSeconds + 2) * 1e9)
        kill(worker.pid, SIGTERM)
    }

    /// Collects every child that ended (workers and, as PID 1, orphans) and decides what follows.
    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return }
            guard let index = workers.firstIndex(where: { $0.pid == pid }) else { continue }
            let worker = workers.remove(at: index)
            close(worker.control)
            if worker.state == .ready { counters.readyWorkers -= 1 }
            guard !draining else { continue }
            countKafkaDeaths(worker, status: status)
            let reason = Self.describe(status: status)
            switch worker.state {
            case .draining:
                logger.debug("worker drained", metadata: ["funcd.pid": "\(pid)"])
            case .starting:
                workerFailedToStart(worker, reason: reason)
            case .ready:
                counters.crashes += 1
                // A first crash is restarted at once; crashing again soon after backs off
                // (100 ms, doubling, at most 5 s) until a worker has lived 30 s.
                let lived = MonotonicClock.nanoseconds() &- worker.startedAt
                if lived > Self.healthyAfter { backoff[worker.slot] = nil }
                let delay = backoff[worker.slot] ?? 0
                backoff[worker.slot] = min(max(delay * 2, Self.minimumBackoff), Self.maximumBackoff)
                logger.error(
                    "worker ended unexpectedly; restarting it",
                    metadata: [
                        "funcd.pid": "\(pid)", "funcd.slot": "\(worker.slot)", "funcd.reason": "\(reason)",
                        "funcd.restart_in_ms": "\(delay / 1_000_000)",
                    ])
                // A successor already starting for this slot takes over; otherwise start one.
                if !workers.contains(where: { $0.slot == worker.slot }) {
                    restartAt[worker.slot] = MonotonicClock.nanoseconds() &+ delay
                }
            }
            broadcastCounters()
        }
    }

    /// The Kafka messages `worker` was running when it ended (none for a clean exit): a lone one
    /// counts one death, several become suspects that run alone from then on. Every worker hears
    /// of it, so that whichever fetches the message again can set it aside once it has killed
    /// KAFKA_MAX_RETRIES workers.
    private func countKafkaDeaths(_ worker: WorkerProcess, status: Int32) {
        guard let running = worker.inFlight?.running(), !running.isEmpty else { return }
        for place in running {
            let count = kafkaDeaths.record(place, alone: running.count == 1)
            logger.error(
                "a worker ended while running a Kafka message",
                metadata: [
                    "funcd.pid": "\(worker.pid)", "funcd.reason": "\(Self.describe(status: status))",
                    "funcd.kafka.topic": "\(place.topic)", "funcd.kafka.partition": "\(place.partition)",
                    "funcd.kafka.offset": "\(place.offset)", "funcd.kafka.worker_deaths": "\(count)",
                    "funcd.kafka.running_beside": "\(running.count - 1)",
                ])
            let line = "kafka-death \(KafkaWorkerDeaths.encode(place, count))\n"
            for other in workers { other.send(line) }
        }
    }

    private func workerFailedToStart(_ worker: WorkerProcess, reason: String) {
        if !announced && worker.replaces == nil && worker.generation == 0 {
            // The function cannot load at all (its error line is already on stderr): the pod
            // must not look ready, and a restart will not help.
            for other in workers { kill(other.pid, SIGKILL) }
            exit(1)
        }
        if worker.generation > 0 && worker.generation == generation && refusedVersion == nil {
            refuseReload(version: worker.codeVersion ?? codeVersion, reason: reason)
            return
        }
        // A worker that died before it was ready (killed, crashed while importing): started
        // again, with backoff, and counted like any other crash.
        counters.crashes += 1
        let delay = backoff[worker.slot] ?? Self.minimumBackoff
        backoff[worker.slot] = min(delay * 2, Self.maximumBackoff)
        let slotServed = workers.contains { $0.slot == worker.slot && $0.state != .draining && !$0.stuck }
        if !slotServed {
            restartAt[worker.slot] = MonotonicClock.nanoseconds() &+ delay
        } else if let old = worker.replaces, let stuck = workers.first(where: { $0.pid == old }), stuck.stuck {
            restartAt[worker.slot] = MonotonicClock.nanoseconds() &+ delay
        }
        logger.error("worker failed to start", metadata: ["funcd.slot": "\(worker.slot)", "funcd.reason": "\(reason)"])
    }

    // MARK: - New code

    private func checkForNewCode() {
        guard let version = watcher.version(), version != codeVersion, version != refusedVersion else { return }
        guard reloadQueue.isEmpty, !workers.contains(where: { $0.state == .starting }) else { return }
        logger.info("new code; replacing workers one by one", metadata: ["funcd.version": "\(version)"])
        codeVersion = version
        refusedVersion = nil
        generation += 1
        reloadQueue = Array(0..<configuration.workers)
        continueReload()
    }

    /// Starts the next slot's successor once the previous one is ready.
    private func continueReload() {
        guard !reloadQueue.isEmpty, !workers.contains(where: { $0.state == .starting }) else { return }
        let slot = reloadQueue.removeFirst()
        let current = workers.first { $0.slot == slot && $0.state == .ready }
        counters.reloads += 1
        start(slot: slot, replacing: current)
    }

    /// Stops the rollout: `version` (what the failed worker loaded) is not tried again until the
    /// code changes once more. Workers already on the new version and the old ones not yet
    /// replaced keep serving, as after any halted rolling update.
    private func refuseReload(version: String?, reason: String) {
        counters.reloadFailures += 1
        refusedVersion = version
        reloadQueue.removeAll()
        logger.error(
            "new code failed to load; the running version keeps serving",
            metadata: ["funcd.version": "\(version ?? "")", "funcd.reason": "\(reason)"])
    }

    // MARK: - Reporting

    private func announce(_ worker: WorkerProcess) {
        let port = listening?.port ?? configuration.port
        let described = worker.description.isEmpty ? "" : "\(worker.description), "
        ProcessEnvironment.printError(
            "funcd: \(configuration.moduleName).\(configuration.handlerName) listening on http://\(configuration.host):\(port) (\(described)\(configuration.workers) worker\(configuration.workers == 1 ? "" : "s"), timeout \(configuration.timeoutSeconds)s)"
        )
        // The supervisor's own start-up code is not needed again.
        StartupPages.releaseSoon()
    }

    private func broadcastCounters() {
        sendCounters(to: workers.filter { $0.state == .ready })
    }

    private func sendCounters(to targets: [WorkerProcess]) {
        let lines = [
            "# HELP funcd_worker_restarts_total Workers the supervisor started again, by reason",
            "# TYPE funcd_worker_restarts_total counter",
            "funcd_worker_restarts_total{reason=\"crash\"} \(counters.crashes)",
            "funcd_worker_restarts_total{reason=\"stuck\"} \(counters.stuck)",
            "funcd_worker_restarts_total{reason=\"reload\"} \(counters.reloads)",
            "# HELP funcd_reload_failures_total New code versions refused because they failed to load",
            "# TYPE funcd_reload_failures_total counter",
            "funcd_reload_failures_total \(counters.reloadFailures)",
            "# HELP funcd_workers_ready Worker processes serving",
            "# TYPE funcd_workers_ready gauge",
            "funcd_workers_ready \(counters.readyWorkers)",
        ]
        let message = lines.map { "m \($0)\n" }.joined() + "end\n"
        for worker in targets { worker.send(message) }
    }

    static func describe(status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exit code \((status >> 8) & 0xff)" }
        return "signal \(signal)\(signal == SIGKILL ? " (killed, e.g. out of memory)" : signal == SIGSEGV ? " (segmentation fault)" : "")"
    }
}
