/// The supervisor's decisions as a value: which workers run in which slot and in what state, when
/// a crashed one starts again, when a slow or drained one is killed, how new code rolls out one
/// slot at a time and when a version is refused, how a shutdown ends. ``Supervisor`` tells it
/// what happened (a worker was spawned, said `ready` or `stuck`, ended; the loop came round; a
/// signal) and does what it returns; spawning, signals, logging and the counters' text are the
/// supervisor's, so the decisions are tested without a process (`SupervisorStateMachineTests`).
///
/// Times are monotonic nanoseconds, passed in by the caller.
struct SupervisorStateMachine {
    static let startTimeout: UInt64 = 60_000_000_000
    static let minimumBackoff: UInt64 = 100_000_000
    static let maximumBackoff: UInt64 = 5_000_000_000
    static let healthyAfter: UInt64 = 30_000_000_000
    static let killRepeat: UInt64 = 100_000_000

    /// What the configuration fixes, in the unit the machine counts in.
    struct Settings {
        /// FUNC_WORKERS: one slot each.
        var workers: Int
        /// How often the code on disk is looked at; sooner with --watch, where someone waits for
        /// the file they saved.
        var codeCheckInterval: UInt64
        /// How long a drain may take before SIGKILL: SHUTDOWN_TIMEOUT and two seconds, so that a
        /// worker ends by itself and stops what it started (the exec runtime's programs), which
        /// a SIGKILL would not.
        var drainTimeout: UInt64

        init(workers: Int, watch: Bool, shutdownTimeoutSeconds: Double) {
            self.workers = workers
            self.codeCheckInterval = watch ? 500_000_000 : 1_000_000_000
            self.drainTimeout = UInt64((shutdownTimeoutSeconds + 2) * 1e9)
        }
    }

    /// One worker process, as far as decisions go.
    struct Worker: Equatable {
        enum State: Equatable {
            case starting
            case ready
            case draining
        }

        let pid: Int32
        let slot: Int
        /// The rollout it was started in (0: the first workers and their restarts).
        let generation: Int
        /// The worker it takes over from once it is ready (a stuck one, or old code).
        let replaces: Int32?
        let startedAt: UInt64
        /// The code version on disk when it was started: what it loaded.
        let codeVersion: String?
        var state = State.starting
        /// It has a handler it cannot interrupt; its successor is on the way.
        var stuck = false
        /// It was killed for not being ready in time: said and done once, SIGKILL cannot be missed.
        var startTimedOut = false
        var drainDeadline: UInt64 = 0
    }

    /// What the supervisor has done, for /metrics.
    struct Counters: Equatable {
        var crashes = 0
        var stuck = 0
        var reloads = 0
        var reloadFailures = 0
        var readyWorkers = 0
    }

    /// A slot's next start, when it was left without a worker or a start of it failed.
    struct Restart: Equatable {
        var at: UInt64
        /// What the new worker takes over from once ready: a stuck worker left in the slot, or the
        /// old-code worker of a reload whose start failed.
        var replacing: Int32?
    }

    /// What happened that the supervisor logs. `status` is what waitpid said.
    enum Event: Equatable {
        case startTimedOut(pid: Int32)
        case shutdown(signal: Int32)
        case stuck(pid: Int32, slot: Int)
        case crashed(pid: Int32, slot: Int, status: Int32, restartIn: UInt64)
        case failedToStart(slot: Int, status: Int32)
        case drained(pid: Int32)
        case newCode(version: String)
        case reloadRefused(version: String?, status: Int32)
    }

    /// What the supervisor must do, in this order.
    enum Action: Equatable {
        /// Spawn a worker for `slot`, then call ``workerStarted(pid:slot:replacing:codeVersion:now:)``.
        case start(slot: Int, replacing: Int32?)
        /// SIGTERM: the worker drains and exits.
        case terminate(Int32)
        /// SIGKILL.
        case kill(Int32)
        /// Print the listening line, with what this worker said when it was ready.
        case announce(Int32)
        /// Send these counters to every ready worker (any of them may answer /metrics).
        case broadcastCounters(Counters)
        /// Close the listening socket: new connections are refused, not queued for nobody.
        case stopListening
        /// Read the code's version and call ``codeChecked(version:)``.
        case checkCode
        case log(Event)
        case exit(Int32)
    }

    let settings: Settings
    /// In start order, which is the order messages go out to them.
    private(set) var workers: [Worker] = []
    /// The current rollout: one more for each new code version taken.
    private(set) var generation = 0
    /// Whether the listening line went out (it does once, for the first worker ready).
    private(set) var announced = false
    private(set) var draining = false
    private(set) var drainDeadline: UInt64 = 0
    /// The slots that get a worker again, and when.
    private(set) var restarts: [Int: Restart] = [:]
    /// A slot's next restart delay. None yet: a crash restarts at once, a failed start waits the
    /// minimum.
    private(set) var backoff: [Int: UInt64] = [:]
    private(set) var codeVersion: String?
    /// What a worker of a rollout failed to load: not tried again until the code changes again.
    private(set) var refusedVersion: String?
    /// The slots the rollout has yet to give a worker running the new code.
    private(set) var reloadQueue: [Int] = []
    private(set) var nextCodeCheck: UInt64 = 0
    private(set) var counters = Counters()

    init(settings: Settings) {
        self.settings = settings
    }

    /// The supervisor starts with `codeVersion` on disk: one worker per slot.
    mutating func begin(codeVersion: String?) -> [Action] {
        self.codeVersion = codeVersion
        return (0..<settings.workers).map { .start(slot: $0, replacing: nil) }
    }

    // MARK: - What workers do

    /// A `start` action was carried out: `pid` runs.
    mutating func workerStarted(pid: Int32, slot: Int, replacing: Int32?, codeVersion: String?, now: UInt64) {
        workers.append(
            Worker(
                pid: pid, slot: slot, generation: generation, replaces: replacing, startedAt: now,
                codeVersion: codeVersion))
    }

    /// A `start` action could not be carried out (posix_spawn failed): the same start is tried
    /// again after the failed-start backoff, so that a restart is not dropped, a stuck worker
    /// still gets its successor and a reload goes on once the retry is ready. Not counted: no
    /// worker ended.
    mutating func startFailed(slot: Int, replacing: Int32?, now: UInt64) {
        guard !draining else { return }
        restarts[slot] = Restart(at: now &+ failedStartDelay(slot), replacing: replacing)
    }

    /// The worker said `ready`: it serves, and whatever it replaces drains.
    mutating func workerReady(pid: Int32, now: UInt64) -> [Action] {
        guard let index = index(of: pid), workers[index].state == .starting else { return [] }
        workers[index].state = .ready
        counters.readyWorkers += 1
        var actions: [Action] = []
        if let old = workers[index].replaces, let predecessor = self.index(of: old) {
            drain(predecessor, now: now, into: &actions)
        }
        if !announced {
            announced = true
            actions.append(.announce(pid))
        }
        actions.append(.broadcastCounters(counters))
        continueReload(into: &actions)
        return actions
    }

    /// The worker said `stuck`: a handler cannot be interrupted. It keeps serving its other calls
    /// until its successor is ready, so that even one worker never leaves the port unanswered.
    /// While shutting down nothing would start, so it is not taken (nor counted, nor logged).
    mutating func workerStuck(pid: Int32) -> [Action] {
        guard !draining, let index = index(of: pid), !workers[index].stuck, workers[index].state == .ready else {
            return []
        }
        workers[index].stuck = true
        counters.stuck += 1
        let slot = workers[index].slot
        var actions: [Action] = [.log(.stuck(pid: pid, slot: slot))]
        if !workers.contains(where: { $0.replaces == pid }) {
            start(slot: slot, replacing: pid, into: &actions)
        }
        actions.append(.broadcastCounters(counters))
        return actions
    }

    /// waitpid returned `pid` with `status`. Not one of ours (an orphan reaped as PID 1): nothing.
    mutating func workerEnded(pid: Int32, status: Int32, now: UInt64) -> [Action] {
        guard let index = index(of: pid) else { return [] }
        let worker = workers.remove(at: index)
        if worker.state == .ready { counters.readyWorkers -= 1 }
        guard !draining else { return [] }
        var actions: [Action] = []
        switch worker.state {
        case .draining:
            actions.append(.log(.drained(pid: pid)))
        case .starting:
            if !announced && worker.replaces == nil && worker.generation == 0 {
                // The function cannot load at all (its error line is already on stderr): the pod
                // must not look ready, and a restart will not help.
                return workers.map { .kill($0.pid) } + [.exit(1)]
            }
            failedToStart(worker, status: status, now: now, into: &actions)
        case .ready:
            crashed(worker, status: status, now: now, into: &actions)
        }
        actions.append(.broadcastCounters(counters))
        return actions
    }

    private mutating func crashed(_ worker: Worker, status: Int32, now: UInt64, into actions: inout [Action]) {
        counters.crashes += 1
        // A first crash is restarted at once; crashing again soon after backs off (100 ms,
        // doubling, at most 5 s) until a worker has lived 30 s.
        if now &- worker.startedAt > Self.healthyAfter { backoff[worker.slot] = nil }
        let delay = backoff[worker.slot] ?? 0
        backoff[worker.slot] = min(max(delay * 2, Self.minimumBackoff), Self.maximumBackoff)
        actions.append(.log(.crashed(pid: worker.pid, slot: worker.slot, status: status, restartIn: delay)))
        // A successor already starting for this slot takes over; a draining or stuck one is on its
        // way out, so one starts.
        restartIfUnserved(worker.slot, at: now &+ delay)
    }

    private mutating func failedToStart(_ worker: Worker, status: Int32, now: UInt64, into actions: inout [Action]) {
        if worker.generation > 0 && worker.generation == generation && refusedVersion == nil {
            refuseReload(version: worker.codeVersion ?? codeVersion, status: status, into: &actions)
            // The worker it was to replace serves on, unless it crashed or got stuck meanwhile:
            // then the slot needs a worker even if the code on disk may not load.
            if !isServed(worker.slot) { restartIfUnserved(worker.slot, at: now &+ failedStartDelay(worker.slot)) }
            return
        }
        // A worker that died before it was ready (killed, crashed while importing): started
        // again, with backoff, and counted like any other crash.
        counters.crashes += 1
        restartIfUnserved(worker.slot, at: now &+ failedStartDelay(worker.slot))
        actions.append(.log(.failedToStart(slot: worker.slot, status: status)))
    }

    // MARK: - Time and code

    /// The loop came round (at least every 100 ms): deadlines past, restarts due, and whether it
    /// is time to look at the code. A drain's kill is asked for again on every tick until the
    /// worker is reaped; a start timeout is logged and killed once.
    mutating func tick(now: UInt64) -> [Action] {
        var actions: [Action] = []
        if draining {
            if workers.isEmpty { return [.exit(0)] }
            if now >= drainDeadline { actions += workers.map { .kill($0.pid) } }
        }
        for worker in workers where worker.state == .draining && now >= worker.drainDeadline {
            actions.append(.kill(worker.pid))
        }
        for index in workers.indices where workers[index].state == .starting && !workers[index].startTimedOut {
            guard now &- workers[index].startedAt > Self.startTimeout else { continue }
            workers[index].startTimedOut = true
            actions += [.log(.startTimedOut(pid: workers[index].pid)), .kill(workers[index].pid)]
        }
        guard !draining else { return actions }
        for (slot, restart) in restarts.sorted(by: { $0.key < $1.key }) where now >= restart.at {
            start(slot: slot, replacing: restart.replacing, into: &actions)
        }
        if now >= nextCodeCheck {
            nextCodeCheck = now &+ settings.codeCheckInterval
            actions.append(.checkCode)
        }
        return actions
    }

    /// The earliest time after a ``tick(now:)`` at `now` at which the next one has something to
    /// do, given no other event: the supervisor sleeps until then (or until a signal or a
    /// worker's line) rather than looking every so often for nothing. A drain deadline that has
    /// passed kills its workers at every tick until they are gone: every `killRepeat` then.
    func nextDue(now: UInt64) -> UInt64 {
        var due = UInt64.max
        func deadline(_ at: UInt64) { due = min(due, at > now ? at : now &+ Self.killRepeat) }
        if draining { deadline(drainDeadline) }
        for worker in workers {
            if worker.state == .draining { deadline(worker.drainDeadline) }
            if worker.state == .starting && !worker.startTimedOut {
                due = min(due, worker.startedAt &+ Self.startTimeout &+ 1)
            }
        }
        guard !draining else { return due }
        for restart in restarts.values { due = min(due, restart.at) }
        return min(due, nextCodeCheck)
    }

    /// The code on disk is at `version` (nil: it cannot be told). A new version, not refused,
    /// replaces the workers one by one; it waits while a rollout is under way or any worker is
    /// starting, whose code would be neither the old nor surely the new.
    mutating func codeChecked(version: String?) -> [Action] {
        guard let version, version != codeVersion, version != refusedVersion else { return [] }
        guard reloadQueue.isEmpty, !workers.contains(where: { $0.state == .starting }) else { return [] }
        var actions: [Action] = [.log(.newCode(version: version))]
        codeVersion = version
        refusedVersion = nil
        generation += 1
        reloadQueue = Array(0..<settings.workers)
        continueReload(into: &actions)
        return actions
    }

    /// Starts the next slot's successor once no worker is starting (the previous one is ready).
    private mutating func continueReload(into actions: inout [Action]) {
        guard !reloadQueue.isEmpty, !workers.contains(where: { $0.state == .starting }) else { return }
        let slot = reloadQueue.removeFirst()
        let current = workers.first { $0.slot == slot && $0.state == .ready }
        counters.reloads += 1
        start(slot: slot, replacing: current?.pid, into: &actions)
    }

    /// Stops the rollout: `version` (what the failed worker loaded) is not tried again until the
    /// code changes once more. Workers already on the new version and the old ones not yet
    /// replaced keep serving, as after any halted rolling update.
    private mutating func refuseReload(version: String?, status: Int32, into actions: inout [Action]) {
        counters.reloadFailures += 1
        refusedVersion = version
        reloadQueue.removeAll()
        actions.append(.log(.reloadRefused(version: version, status: status)))
    }

    // MARK: - Shutdown

    /// SIGTERM or SIGINT: every worker drains and nothing starts again; what is left at the
    /// deadline is killed, and the supervisor exits 0 once no worker is left.
    mutating func shutdownRequested(signal: Int32, now: UInt64) -> [Action] {
        guard !draining else { return [] }
        draining = true
        drainDeadline = now &+ settings.drainTimeout
        return [.log(.shutdown(signal: signal)), .stopListening] + workers.map { .terminate($0.pid) }
    }

    // MARK: - Helpers

    private func index(of pid: Int32) -> Int? {
        workers.firstIndex { $0.pid == pid }
    }

    /// The listening socket is closed once draining: nothing could accept on a new worker. A
    /// restart due for the slot is the same start: a second would be a worker too many.
    private mutating func start(slot: Int, replacing: Int32?, into actions: inout [Action]) {
        guard !draining else { return }
        restarts[slot] = nil
        actions.append(.start(slot: slot, replacing: replacing))
    }

    /// Whether `slot` has a worker that serves or soon will: starting, or ready and not stuck. A
    /// draining one is leaving, and a stuck one stays only until its successor is ready.
    private func isServed(_ slot: Int) -> Bool {
        workers.contains { $0.slot == slot && $0.state != .draining && !$0.stuck }
    }

    /// Gives `slot` a worker again at `at` unless it is served; the new one takes over from a
    /// stuck worker left there, which then drains (a stuck one sends `stuck` only once).
    private mutating func restartIfUnserved(_ slot: Int, at: UInt64) {
        guard !isServed(slot) else { return }
        let stuck = workers.first { $0.slot == slot && $0.state == .ready && $0.stuck }
        restarts[slot] = Restart(at: at, replacing: stuck?.pid)
    }

    /// The wait before a slot's next start after one failed: 100 ms, doubling, at most 5 s.
    private mutating func failedStartDelay(_ slot: Int) -> UInt64 {
        let delay = backoff[slot] ?? Self.minimumBackoff
        backoff[slot] = min(delay * 2, Self.maximumBackoff)
        return delay
    }

    private mutating func drain(_ index: Int, now: UInt64, into actions: inout [Action]) {
        guard workers[index].state != .draining else { return }
        if workers[index].state == .ready { counters.readyWorkers -= 1 }
        workers[index].state = .draining
        workers[index].drainDeadline = now &+ settings.drainTimeout
        actions.append(.terminate(workers[index].pid))
    }
}
