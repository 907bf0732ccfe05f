import Testing

@testable import FuncdSupervisor

/// The supervisor's decisions as a value: restarts and their backoff, timeouts, stuck workers,
/// rolling reloads and refused versions, start-up failure and shutdown, each checked on
/// `SupervisorStateMachine` alone, with pids made up here and time passed in (no process).
@Suite struct SupervisorStateMachineTests {
    typealias Machine = SupervisorStateMachine
    typealias Counters = SupervisorStateMachine.Counters

    private static let millisecond: UInt64 = 1_000_000
    private static let second: UInt64 = 1_000_000_000
    private static let segfault: Int32 = 11
    private static let killed: Int32 = 9
    private static let exitCode1: Int32 = 1 << 8

    /// A pod of `workers` slots whose first workers (pids 1, 2, ...) were started at 0 and, when
    /// `ready`, said so at 0; SHUTDOWN_TIMEOUT is 10 s.
    private static func pod(workers: Int = 1, ready: Bool = true, watch: Bool = false) -> Machine {
        var machine = Machine(settings: .init(workers: workers, watch: watch, shutdownTimeoutSeconds: 10))
        for case .start(let slot, let replacing) in machine.begin(codeVersion: "v1") {
            machine.workerStarted(pid: Int32(slot + 1), slot: slot, replacing: replacing, codeVersion: "v1", now: 0)
        }
        if ready {
            for pid in 1...Int32(workers) { _ = machine.workerReady(pid: pid, now: 0) }
        }
        return machine
    }

    /// The `start` actions among `actions`.
    private static func starts(_ actions: [Machine.Action]) -> [Machine.Action] {
        actions.filter { if case .start = $0 { true } else { false } }
    }

    private static func kills(_ actions: [Machine.Action]) -> [Machine.Action] {
        actions.filter { if case .kill = $0 { true } else { false } }
    }

    @Test("one worker starts per slot; the first ready one is announced, and only it")
    func firstStart() {
        var machine = Machine(settings: .init(workers: 2, watch: false, shutdownTimeoutSeconds: 10))
        #expect(machine.begin(codeVersion: "v1") == [.start(slot: 0, replacing: nil), .start(slot: 1, replacing: nil)])
        machine.workerStarted(pid: 1, slot: 0, replacing: nil, codeVersion: "v1", now: 0)
        machine.workerStarted(pid: 2, slot: 1, replacing: nil, codeVersion: "v1", now: 0)
        #expect(
            machine.workerReady(pid: 2, now: Self.second) == [.announce(2), .broadcastCounters(Counters(readyWorkers: 1))])
        #expect(machine.workerReady(pid: 1, now: Self.second) == [.broadcastCounters(Counters(readyWorkers: 2))])
        #expect(machine.workerReady(pid: 1, now: Self.second) == [], "a worker is ready once")
    }

    @Test("a crash restarts at once; crashing again soon backs off from 100 ms, doubling, to 5 s; 30 s alive resets it")
    func crashBackoff() {
        var machine = Self.pod()
        var pid: Int32 = 1
        var now = Self.second
        let expected: [UInt64] = [0, 100, 200, 400, 800, 1600, 3200, 5000, 5000].map { $0 * Self.millisecond }
        for (crash, delay) in expected.enumerated() {
            let ended = machine.workerEnded(pid: pid, status: Self.segfault, now: now)
            #expect(
                ended == [
                    .log(.crashed(pid: pid, slot: 0, status: Self.segfault, restartIn: delay)),
                    .broadcastCounters(Counters(crashes: crash + 1)),
                ])
            if delay > 0 {
                #expect(Self.starts(machine.tick(now: now + delay - 1)) == [], "crash \(crash + 1): not before \(delay) ns")
            }
            #expect(Self.starts(machine.tick(now: now + delay)) == [.start(slot: 0, replacing: nil)])
            #expect(Self.starts(machine.tick(now: now + delay)) == [], "started once")
            now += delay
            pid += 1
            machine.workerStarted(pid: pid, slot: 0, replacing: nil, codeVersion: "v1", now: now)
            _ = machine.workerReady(pid: pid, now: now)
            now += Self.second
        }
        now += 30 * Self.second
        let ended = machine.workerEnded(pid: pid, status: Self.segfault, now: now)
        #expect(ended.first == .log(.crashed(pid: pid, slot: 0, status: Self.segfault, restartIn: 0)), "it lived 31 s")
        #expect(Self.starts(machine.tick(now: now)) == [.start(slot: 0, replacing: nil)])
    }

    @Test("a worker that ends while starting, once the pod serves, starts again after 100 ms, doubling")
    func failedStartBackoff() {
        var machine = Self.pod(workers: 2, ready: false)
        _ = machine.workerReady(pid: 1, now: 0)
        #expect(
            machine.workerEnded(pid: 2, status: Self.exitCode1, now: Self.second) == [
                .log(.failedToStart(slot: 1, status: Self.exitCode1)),
                .broadcastCounters(Counters(crashes: 1, readyWorkers: 1)),
            ])
        #expect(machine.restarts == [1: .init(at: Self.second + 100 * Self.millisecond)])
        #expect(machine.backoff[1] == 200 * Self.millisecond)
    }

    @Test("a crash while the slot's successor is already starting starts nothing more")
    func crashWithSuccessorStarting() {
        var machine = Self.pod()
        #expect(Self.starts(machine.workerStuck(pid: 1)) == [.start(slot: 0, replacing: 1)])
        machine.workerStarted(pid: 2, slot: 0, replacing: 1, codeVersion: "v1", now: Self.second)
        let ended = machine.workerEnded(pid: 1, status: Self.segfault, now: 2 * Self.second)
        #expect(ended.first == .log(.crashed(pid: 1, slot: 0, status: Self.segfault, restartIn: 0)))
        #expect(machine.restarts.isEmpty)
        #expect(Self.starts(machine.tick(now: 3 * Self.second)) == [])
        #expect(
            machine.workerReady(pid: 2, now: 3 * Self.second) == [
                .broadcastCounters(Counters(crashes: 1, stuck: 1, readyWorkers: 1))
            ],
            "its predecessor is gone: nothing to drain")
    }

    @Test("a successor that crashes while its predecessor drains is restarted: a draining worker does not serve the slot")
    func successorCrashesWhilePredecessorDrains() {
        for reload in [false, true] {
            var machine = Self.pod()
            let successor = reload ? machine.codeChecked(version: "v2") : machine.workerStuck(pid: 1)
            #expect(Self.starts(successor) == [.start(slot: 0, replacing: 1)])
            machine.workerStarted(pid: 2, slot: 0, replacing: 1, codeVersion: "v2", now: Self.second)
            #expect(machine.workerReady(pid: 2, now: 2 * Self.second).first == .terminate(1))
            let ended = machine.workerEnded(pid: 2, status: Self.segfault, now: 3 * Self.second)
            #expect(ended.first == .log(.crashed(pid: 2, slot: 0, status: Self.segfault, restartIn: 0)))
            #expect(
                Self.starts(machine.tick(now: 3 * Self.second)) == [.start(slot: 0, replacing: nil)], "reload: \(reload)")
        }
    }

    @Test("a refused version's worker whose predecessor crashed meanwhile leaves its slot a restart, not nothing")
    func refusedAfterPredecessorCrashed() {
        var machine = Self.pod()
        _ = machine.codeChecked(version: "v2")
        machine.workerStarted(pid: 2, slot: 0, replacing: 1, codeVersion: "v2", now: Self.second)
        _ = machine.workerEnded(pid: 1, status: Self.segfault, now: 2 * Self.second)
        #expect(machine.restarts.isEmpty, "its successor is starting")
        let ended = machine.workerEnded(pid: 2, status: Self.exitCode1, now: 3 * Self.second)
        #expect(ended.first == .log(.reloadRefused(version: "v2", status: Self.exitCode1)))
        #expect(machine.restarts == [0: .init(at: 3 * Self.second + 100 * Self.millisecond)])
    }

    @Test("a stuck worker's successor that fails to start is started again, still to replace it, which then drains")
    func stuckWorkersSuccessorFailsToStart() {
        // Its own successor, and a reload's that was already on the way when it got stuck.
        for reload in [false, true] {
            var machine = Self.pod()
            if reload {
                _ = machine.codeChecked(version: "v2")
                machine.workerStarted(pid: 2, slot: 0, replacing: 1, codeVersion: "v2", now: Self.second)
                #expect(Self.starts(machine.workerStuck(pid: 1)) == [], "its successor is on the way")
            } else {
                _ = machine.workerStuck(pid: 1)
                machine.workerStarted(pid: 2, slot: 0, replacing: 1, codeVersion: "v1", now: Self.second)
            }
            _ = machine.workerEnded(pid: 2, status: Self.exitCode1, now: 2 * Self.second)
            #expect(
                Self.starts(machine.tick(now: 2 * Self.second + 100 * Self.millisecond)) == [.start(slot: 0, replacing: 1)],
                "reload: \(reload)")
            machine.workerStarted(pid: 3, slot: 0, replacing: 1, codeVersion: "v2", now: 3 * Self.second)
            #expect(machine.workerReady(pid: 3, now: 4 * Self.second).first == .terminate(1), "reload: \(reload)")
        }
    }

    @Test("a worker not ready 60 s after it started is killed")
    func startTimeout() {
        var machine = Self.pod(ready: false)
        #expect(Self.kills(machine.tick(now: 60 * Self.second)) == [])
        #expect(machine.tick(now: 60 * Self.second + 1) == [.log(.startTimedOut(pid: 1)), .kill(1)])
    }

    @Test("a start timeout is logged and killed once, not on every tick until the worker is reaped")
    func startTimeoutOnce() {
        var machine = Self.pod(ready: false)
        #expect(machine.tick(now: 60 * Self.second + 1) == [.log(.startTimedOut(pid: 1)), .kill(1), .checkCode])
        #expect(machine.tick(now: 60 * Self.second + 100 * Self.millisecond) == [])
    }

    @Test("a stuck worker gets one successor; it drains once that is ready and is killed at its drain deadline")
    func stuckWorker() {
        var machine = Self.pod()
        #expect(
            machine.workerStuck(pid: 1) == [
                .log(.stuck(pid: 1, slot: 0)), .start(slot: 0, replacing: 1),
                .broadcastCounters(Counters(stuck: 1, readyWorkers: 1)),
            ])
        #expect(machine.workerStuck(pid: 1) == [], "a second stuck changes nothing")
        machine.workerStarted(pid: 2, slot: 0, replacing: 1, codeVersion: "v1", now: Self.second)
        #expect(machine.workerStuck(pid: 1) == [])
        #expect(
            machine.workerReady(pid: 2, now: 5 * Self.second) == [
                .terminate(1), .broadcastCounters(Counters(stuck: 1, readyWorkers: 1)),
            ])
        // SHUTDOWN_TIMEOUT (10 s) and 2 s.
        #expect(Self.kills(machine.tick(now: 17 * Self.second - 1)) == [])
        #expect(Self.kills(machine.tick(now: 17 * Self.second)) == [.kill(1)])
        #expect(
            machine.workerEnded(pid: 1, status: Self.killed, now: 17 * Self.second) == [
                .log(.drained(pid: 1)), .broadcastCounters(Counters(stuck: 1, readyWorkers: 1)),
            ])
        #expect(machine.restarts.isEmpty, "a drained worker is not restarted")
    }

    @Test("new code replaces the workers slot by slot, each once the previous successor is ready")
    func rollingReload() {
        var machine = Self.pod(workers: 2)
        #expect(machine.codeChecked(version: "v1") == [], "the same code")
        #expect(machine.codeChecked(version: nil) == [], "no version to tell")
        #expect(machine.codeChecked(version: "v2") == [.log(.newCode(version: "v2")), .start(slot: 0, replacing: 1)])
        machine.workerStarted(pid: 3, slot: 0, replacing: 1, codeVersion: "v2", now: Self.second)
        #expect(machine.codeChecked(version: "v3") == [], "one rollout at a time")
        #expect(
            machine.workerReady(pid: 3, now: 2 * Self.second) == [
                .terminate(1), .broadcastCounters(Counters(reloads: 1, readyWorkers: 2)), .start(slot: 1, replacing: 2),
            ])
        machine.workerStarted(pid: 4, slot: 1, replacing: 2, codeVersion: "v2", now: 2 * Self.second)
        #expect(
            machine.workerReady(pid: 4, now: 3 * Self.second) == [
                .terminate(2), .broadcastCounters(Counters(reloads: 2, readyWorkers: 2)),
            ])
        #expect(machine.reloadQueue.isEmpty && machine.generation == 1 && machine.codeVersion == "v2")
    }

    @Test("new code waits while a worker is starting")
    func reloadWaitsForStarting() {
        var machine = Self.pod()
        _ = machine.workerEnded(pid: 1, status: Self.segfault, now: Self.second)
        #expect(machine.tick(now: Self.second) == [.start(slot: 0, replacing: nil), .checkCode])
        machine.workerStarted(pid: 2, slot: 0, replacing: nil, codeVersion: "v2", now: Self.second)
        #expect(machine.codeChecked(version: "v2") == [])
        _ = machine.workerReady(pid: 2, now: 2 * Self.second)
        #expect(machine.codeChecked(version: "v2") == [.log(.newCode(version: "v2")), .start(slot: 0, replacing: 2)])
    }

    @Test("a version whose worker fails to load is refused: the rollout stops, the version is not tried again, a newer one is")
    func refusedVersion() {
        var machine = Self.pod(workers: 2)
        _ = machine.codeChecked(version: "v2")
        machine.workerStarted(pid: 3, slot: 0, replacing: 1, codeVersion: "v2", now: Self.second)
        #expect(
            machine.workerEnded(pid: 3, status: Self.exitCode1, now: 2 * Self.second) == [
                .log(.reloadRefused(version: "v2", status: Self.exitCode1)),
                .broadcastCounters(Counters(reloads: 1, reloadFailures: 1, readyWorkers: 2)),
            ])
        #expect(machine.reloadQueue.isEmpty && machine.restarts.isEmpty)
        #expect(machine.counters.reloadFailures == 1)
        #expect(Self.starts(machine.tick(now: 3 * Self.second)) == [], "neither slot 1 nor slot 0 again")
        #expect(machine.codeChecked(version: "v2") == [])
        #expect(machine.codeChecked(version: "v3") == [.log(.newCode(version: "v3")), .start(slot: 0, replacing: 1)])
        #expect(machine.refusedVersion == nil && machine.generation == 2)
    }

    @Test("the first worker failing to load before anything was announced ends the supervisor with 1")
    func firstWorkerFails() {
        var machine = Self.pod(workers: 2, ready: false)
        #expect(machine.workerEnded(pid: 1, status: Self.exitCode1, now: Self.second) == [.kill(2), .exit(1)])
    }

    @Test("SIGTERM: every worker drains and nothing starts; the rest is killed at the deadline; exit 0 once all are gone")
    func shutdown() {
        var machine = Self.pod(workers: 2)
        _ = machine.workerEnded(pid: 2, status: Self.segfault, now: Self.second)
        #expect(machine.restarts == [1: .init(at: Self.second)], "due at once")
        #expect(
            machine.shutdownRequested(signal: 15, now: Self.second) == [
                .log(.shutdown(signal: 15)), .stopListening, .terminate(1),
            ])
        #expect(machine.shutdownRequested(signal: 2, now: Self.second) == [], "once")
        #expect(machine.tick(now: Self.second) == [], "no restart, no look at the code")
        #expect(Self.starts(machine.workerStuck(pid: 1)) == [], "no successor either")
        #expect(machine.tick(now: 13 * Self.second - 1) == [])
        #expect(machine.tick(now: 13 * Self.second) == [.kill(1)])
        #expect(machine.workerEnded(pid: 1, status: Self.killed, now: 13 * Self.second) == [], "not restarted")
        #expect(machine.tick(now: 13 * Self.second) == [.exit(0)])
    }

    @Test("the supervisor sleeps until the next thing tick has to do: a code check, a restart, a start timeout, a drain deadline, then every 100 ms while its worker lives")
    func nextDue() {
        var machine = Self.pod(ready: false)
        #expect(machine.tick(now: 0) == [.checkCode])
        // Starting: the code check (every second) comes before the start timeout.
        #expect(machine.nextDue(now: 0) == Self.second)
        _ = machine.workerReady(pid: 1, now: 0)
        #expect(machine.tick(now: Self.second - 1) == [])
        #expect(machine.tick(now: Self.second) == [.checkCode])
        #expect(machine.nextDue(now: Self.second) == 2 * Self.second)
        // A second crash soon after the first waits 100 ms: that comes first.
        _ = machine.workerEnded(pid: 1, status: Self.segfault, now: Self.second + 1)
        _ = machine.tick(now: Self.second + 1)
        machine.workerStarted(pid: 2, slot: 0, replacing: nil, codeVersion: "v1", now: Self.second + 1)
        _ = machine.workerEnded(pid: 2, status: Self.segfault, now: Self.second + 2)
        let restart = Self.second + 2 + 100 * Self.millisecond
        #expect(machine.nextDue(now: Self.second + 2) == restart)
        #expect(Self.starts(machine.tick(now: restart - 1)) == [])
        #expect(Self.starts(machine.tick(now: restart)) == [.start(slot: 0, replacing: nil)])
        machine.workerStarted(pid: 3, slot: 0, replacing: nil, codeVersion: "v1", now: restart)
        _ = machine.workerReady(pid: 3, now: restart)
        // Draining: the deadline (SHUTDOWN_TIMEOUT and 2 s), no code check; once it has passed,
        // the kill is repeated every 100 ms until the worker is gone.
        _ = machine.shutdownRequested(signal: 15, now: 2 * Self.second)
        #expect(machine.nextDue(now: 2 * Self.second) == 14 * Self.second)
        #expect(machine.tick(now: 14 * Self.second) == [.kill(3)])
        #expect(machine.nextDue(now: 14 * Self.second) == 14 * Self.second + 100 * Self.millisecond)
        #expect(Supervisor.pollTimeout(until: 14 * Self.second + 100 * Self.millisecond, now: 14 * Self.second) == 100)
        #expect(Supervisor.pollTimeout(until: 14 * Self.second + 1, now: 14 * Self.second) == 1, "rounded up")
        #expect(Supervisor.pollTimeout(until: 14 * Self.second, now: 14 * Self.second + 1) == 0)
        #expect(Supervisor.pollTimeout(until: .max, now: 0) == 60_000)
    }

    @Test("a stuck line while shutting down is not taken: nothing would start, so nothing is counted or logged")
    func stuckWhileShuttingDown() {
        var machine = Self.pod()
        _ = machine.shutdownRequested(signal: 15, now: Self.second)
        #expect(machine.workerStuck(pid: 1) == [])
        #expect(machine.counters.stuck == 0)
    }

    @Test("a restart that cannot be spawned is tried again after the failed-start backoff, uncounted")
    func restartSpawnFails() {
        var machine = Self.pod()
        _ = machine.workerEnded(pid: 1, status: Self.segfault, now: Self.second)
        #expect(Self.starts(machine.tick(now: Self.second)) == [.start(slot: 0, replacing: nil)])
        machine.startFailed(slot: 0, replacing: nil, now: Self.second)
        #expect(Self.starts(machine.tick(now: Self.second + 100 * Self.millisecond - 1)) == [])
        #expect(Self.starts(machine.tick(now: Self.second + 100 * Self.millisecond)) == [.start(slot: 0, replacing: nil)])
        #expect(machine.counters.crashes == 1)
    }

    @Test("a reload whose worker cannot be spawned tries that slot again, replacing the old worker, then goes on")
    func reloadSpawnFails() {
        var machine = Self.pod(workers: 2)
        #expect(Self.starts(machine.codeChecked(version: "v2")) == [.start(slot: 0, replacing: 1)])
        machine.startFailed(slot: 0, replacing: 1, now: Self.second)
        #expect(Self.starts(machine.tick(now: Self.second + 100 * Self.millisecond)) == [.start(slot: 0, replacing: 1)])
        machine.workerStarted(pid: 3, slot: 0, replacing: 1, codeVersion: "v2", now: 2 * Self.second)
        #expect(
            machine.workerReady(pid: 3, now: 3 * Self.second) == [
                .terminate(1), .broadcastCounters(Counters(reloads: 1, readyWorkers: 2)), .start(slot: 1, replacing: 2),
            ])
        machine.workerStarted(pid: 4, slot: 1, replacing: 2, codeVersion: "v2", now: 3 * Self.second)
        _ = machine.workerReady(pid: 4, now: 4 * Self.second)
        #expect(machine.reloadQueue.isEmpty && machine.counters.reloads == 2)
        #expect(machine.codeChecked(version: "v3").first == .log(.newCode(version: "v3")), "a later version is taken")
    }

    @Test("a start for a slot whose retry is due is that retry: a stuck worker gets one successor, not two")
    func startTakesThePlaceOfTheRetry() {
        // A reload's spawn failed, then the worker it was to replace got stuck.
        var machine = Self.pod()
        _ = machine.codeChecked(version: "v2")
        machine.startFailed(slot: 0, replacing: 1, now: Self.second)
        #expect(machine.restarts == [0: .init(at: Self.second + 100 * Self.millisecond, replacing: 1)])
        #expect(Self.starts(machine.workerStuck(pid: 1)) == [.start(slot: 0, replacing: 1)])
        #expect(machine.restarts.isEmpty, "that start is the retry: one successor, not two")
        machine.startFailed(slot: 0, replacing: 1, now: 2 * Self.second)
        #expect(machine.restarts == [0: .init(at: 2 * Self.second + 200 * Self.millisecond, replacing: 1)])
    }

    @Test("the code is looked at every second, every half second with --watch")
    func codeCheckInterval() {
        for (watch, interval) in [(false, Self.second), (true, 500 * Self.millisecond)] {
            var machine = Self.pod(watch: watch)
            #expect(machine.tick(now: 0) == [.checkCode])
            #expect(machine.tick(now: interval - 1) == [])
            #expect(machine.tick(now: interval) == [.checkCode])
        }
    }

    @Test("a child that is not a worker (an orphan reaped as PID 1) changes nothing")
    func orphan() {
        var machine = Self.pod()
        #expect(machine.workerEnded(pid: 99, status: 0, now: Self.second) == [])
        #expect(machine.workers.count == 1)
    }
}
