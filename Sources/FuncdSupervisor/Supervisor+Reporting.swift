import FuncdCLI
import FuncdCore
import FuncdSystem
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What the supervisor says: the listening line, its log lines, and its counters in every
/// ready worker's /metrics.
extension Supervisor {
    func announce(_ worker: WorkerProcess) {
        let port = listening?.port ?? configuration.port
        let described = worker.description.isEmpty ? "" : "\(worker.description), "
        ProcessEnvironment.printError(
            "funcd: \(configuration.moduleName).\(configuration.handlerName) listening on http://\(configuration.host):\(port) (\(described)\(configuration.workers) worker\(configuration.workers == 1 ? "" : "s"), timeout \(configuration.timeoutSeconds)s)"
        )
        // The supervisor's own start-up code is not needed again.
        StartupPages.releaseSoon()
    }

    func log(_ event: SupervisorStateMachine.Event) {
        switch event {
        case .startTimedOut(let pid):
            logger.error("worker did not become ready in time; stopping it", metadata: ["funcd.pid": "\(pid)"])
        case .shutdown(let signal):
            logger.info("draining workers", metadata: ["funcd.signal": "\(signal)"])
        case .stuck(let pid, let slot):
            logger.warning(
                "worker has a handler it cannot interrupt; starting its replacement",
                metadata: ["funcd.pid": "\(pid)", "funcd.slot": "\(slot)"])
        case .crashed(let pid, let slot, let status, let restartIn):
            logger.error(
                "worker ended unexpectedly; restarting it",
                metadata: [
                    "funcd.pid": "\(pid)", "funcd.slot": "\(slot)", "funcd.reason": "\(Self.describe(status: status))",
                    "funcd.restart_in_ms": "\(restartIn / 1_000_000)",
                ])
        case .failedToStart(let slot, let status):
            logger.error(
                "worker failed to start",
                metadata: ["funcd.slot": "\(slot)", "funcd.reason": "\(Self.describe(status: status))"])
        case .drained(let pid):
            logger.debug("worker drained", metadata: ["funcd.pid": "\(pid)"])
        case .newCode(let version):
            logger.info("new code; replacing workers one by one", metadata: ["funcd.version": "\(version)"])
        case .reloadRefused(let version, let status):
            logger.error(
                "new code failed to load; the running version keeps serving",
                metadata: ["funcd.version": "\(version ?? "")", "funcd.reason": "\(Self.describe(status: status))"])
        }
    }

    /// To every ready worker, as `m` lines closed by `end` (see `SupervisorLink`).
    func broadcast(_ counters: SupervisorStateMachine.Counters) {
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
        for worker in machine.workers where worker.state == .ready { processes[worker.pid]?.send(message) }
    }

    static func describe(status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exit code \((status >> 8) & 0xff)" }
        return "signal \(signal)\(signal == SIGKILL ? " (killed, e.g. out of memory)" : signal == SIGSEGV ? " (segmentation fault)" : "")"
    }
}
