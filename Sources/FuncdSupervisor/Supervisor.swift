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
/// control sockets. What follows from each is decided by ``SupervisorStateMachine``; this class
/// spawns, signals, reaps, logs and talks to the workers as it says.
public final class Supervisor {
    let configuration: Configuration
    private let executable: String
    private let arguments: [String]
    private let environment: [String: String]
    let logger: Logger
    private let watcher: CodeWatcher

    private(set) var listening: ListeningSocket?
    private(set) var machine: SupervisorStateMachine
    /// The workers' processes, by pid; the machine holds their records, in start order.
    private(set) var processes: [pid_t: WorkerProcess] = [:]
    /// The Kafka messages workers died running (workers learn of them: see `KafkaWorkerDeaths`).
    private let kafkaDeaths = KafkaWorkerDeaths()

    public init(
        configuration: Configuration, executable: String, arguments: [String], environment: [String: String],
        logger: Logger
    ) {
        self.configuration = configuration
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.logger = logger
        self.watcher = CodeWatcher(
            directory: configuration.codeDirectory, watchFiles: configuration.watch,
            maximumEntries: configuration.watchMaxFiles, logger: logger)
        self.machine = SupervisorStateMachine(
            settings: .init(
                workers: configuration.workers, watch: configuration.watch,
                shutdownTimeoutSeconds: configuration.shutdownTimeoutSeconds))
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
        for action in machine.begin(codeVersion: watcher.version()) {
            guard case .start(let slot, let replacing) = action, start(slot: slot, replacing: replacing) else {
                return 1
            }
        }
        return loop()
    }

    // MARK: - The loop

    private func loop() -> Int32 {
        while true {
            let now = MonotonicClock.nanoseconds()
            if let code = perform(machine.tick(now: now)) { return code }

            let polled = machine.workers.compactMap { processes[$0.pid] }
            var descriptors = [pollfd(fd: SignalPipe.readDescriptor, events: Int16(POLLIN), revents: 0)]
            for process in polled {
                descriptors.append(pollfd(fd: process.control, events: Int16(POLLIN), revents: 0))
            }
            _ = poll(&descriptors, nfds_t(descriptors.count), Self.pollTimeout(until: machine.nextDue(now: now)))
            if descriptors[0].revents != 0 { handleSignals() }
            for (process, descriptor) in zip(polled, descriptors.dropFirst()) where descriptor.revents != 0 {
                if let lines = process.readLines() {
                    for line in lines { handle(line, from: process) }
                }
            }
            if let code = reap() { return code }
        }
    }

    /// Milliseconds until `due`, rounded up so that the loop does not wake just before it and
    /// spin; at most a minute, a bound on every sleep here whatever the machine says.
    static func pollTimeout(until due: UInt64, now: UInt64 = MonotonicClock.nanoseconds()) -> Int32 {
        guard due > now else { return 0 }
        let wait = due - now
        return wait >= 60_000_000_000 ? 60_000 : Int32((wait + 999_999) / 1_000_000)
    }

    private func handleSignals() {
        for signal in SignalPipe.drain() {
            switch signal {
            case SIGTERM, SIGINT:
                perform(machine.shutdownRequested(signal: signal, now: MonotonicClock.nanoseconds()))
            default:
                continue  // SIGCHLD: reap() runs after every wake-up
            }
        }
    }

    private func handle(_ line: String, from process: WorkerProcess) {
        if line.hasPrefix("ready") {
            process.description = String(line.dropFirst("ready".count)).trimmingASCIIWhitespace
            perform(machine.workerReady(pid: process.pid, now: MonotonicClock.nanoseconds()))
        } else if line == "stuck" {
            perform(machine.workerStuck(pid: process.pid))
        }
    }

    /// Collects every child that ended (workers and, as PID 1, orphans) and does what follows;
    /// returns the exit code when that is the end.
    private func reap() -> Int32? {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return nil }
            guard let process = processes.removeValue(forKey: pid) else { continue }
            close(process.control)
            let actions = machine.workerEnded(pid: pid, status: status, now: MonotonicClock.nanoseconds())
            // Once draining no worker fetches a message again: nobody is left to tell.
            if !machine.draining { countKafkaDeaths(process, status: status) }
            if let code = perform(actions) { return code }
        }
    }

    /// Does what the machine decided, in order; returns the exit code when it says to exit.
    @discardableResult
    private func perform(_ actions: [SupervisorStateMachine.Action]) -> Int32? {
        for action in actions {
            switch action {
            case .start(let slot, let replacing):
                if !start(slot: slot, replacing: replacing) {
                    machine.startFailed(slot: slot, replacing: replacing, now: MonotonicClock.nanoseconds())
                }
            case .terminate(let pid):
                kill(pid, SIGTERM)
            case .kill(let pid):
                kill(pid, SIGKILL)
            case .announce(let pid):
                if let process = processes[pid] { announce(process) }
            case .broadcastCounters(let counters):
                broadcast(counters)
            case .stopListening:
                if let listening { close(listening.descriptor) }
                listening = nil
            case .checkCode:
                perform(machine.codeChecked(version: watcher.version()))
            case .log(let event):
                log(event)
            case .exit(let code):
                return code
            }
        }
        return nil
    }

    // MARK: - Workers

    /// Spawns a worker and tells the machine; false (logged) when it could not be spawned.
    private func start(slot: Int, replacing: pid_t?) -> Bool {
        guard let listening else { return false }
        do {
            var environment = environment
            var inFlight: KafkaInFlightTable?
            if configuration.kafka != nil {
                inFlight = KafkaInFlightTable.create(capacity: configuration.concurrency)
                if inFlight == nil { logger.warning("no memfd: a Kafka message that kills its worker will not be caught") }
                if !kafkaDeaths.isEmpty { environment[WorkerEnvironment.kafkaDeaths] = kafkaDeaths.encoded() }
            }
            let process = try WorkerProcess.spawn(
                executable: executable, arguments: arguments, environment: environment, listen: listening.descriptor,
                slot: slot, inFlight: inFlight)
            processes[process.pid] = process
            machine.workerStarted(
                pid: process.pid, slot: slot, replacing: replacing, codeVersion: watcher.version(),
                now: MonotonicClock.nanoseconds())
            return true
        } catch let error as FuncdError {
            logger.error("cannot start a worker", metadata: [LogKeys.error: "\(error.message)"])
        } catch {
            logger.error("cannot start a worker", metadata: [LogKeys.error: "\(error)"])
        }
        return false
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
            for other in machine.workers { processes[other.pid]?.send(line) }
        }
    }
}
