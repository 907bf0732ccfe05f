internal import CNodeEmbed
import FuncdCore
import FuncdSystem
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Stops JavaScript that holds the event loop past a call's deadline, and sees the loop back.
///
/// Whether the loop is held is read from its heartbeat (a 10 ms timer): an idle loop beats, one
/// stuck in any callback does not. When a call's deadline passes and the loop is held, what
/// holds it is stopped at once if the loop has not beaten since that call started (its own code
/// is what runs) or has been held for half a timeout already (a continuation spins, most likely
/// that call's: it cannot be told apart, and a callback holding every caller that long is
/// pathological anyway); else once the loop has been held for a whole timeout (no callback may
/// hold the loop longer than a call may take). A call that only waits is not terminated; its
/// late answer is dropped.
///
/// After a termination, a watcher waits for the heartbeat. Node 18 retries a timer callback
/// whose JavaScript was terminated for as long as the termination stands, so a termination the
/// loop does not come back from within 100 ms is withdrawn (the retry then runs what is left)
/// and, if the loop is still held, made again, a few times. After that the Invoker's grace
/// period declares the call stuck and the worker is replaced.
///
/// `@unchecked Sendable`: `watching` is guarded by `lock`; the node handle's functions used
/// here are the thread-safe ones.
final class Terminator: @unchecked Sendable {
    let node: OpaquePointer
    let logger: Logger
    private let lock = ConditionLock()
    private var watching = false

    /// Three missed heartbeats: the loop is held.
    static let heldNanoseconds: UInt64 = 30_000_000
    static let comeBackNanoseconds: UInt64 = 100_000_000
    static let attempts = 5

    init(node: OpaquePointer, logger: Logger) {
        self.node = node
        self.logger = logger
    }

    /// Called by the watchdog when `invocation`'s deadline passed.
    func considerStopping(_ invocation: Invocation, timeoutNanoseconds: UInt64) {
        let now = MonotonicClock.nanoseconds()
        let beat = funcd_node_last_beat(node)
        guard beat < now, now - beat >= Self.heldNanoseconds, claimWatch() else { return }
        let stopAt = beat <= invocation.startedAt || now - beat >= timeoutNanoseconds / 2 ? now : beat + timeoutNanoseconds
        NativeThread.start(stackSize: 256 * 1024) { [self] in
            defer { lock.withLock { watching = false } }
            while MonotonicClock.nanoseconds() < stopAt {
                if funcd_node_last_beat(node) != beat { return }
                usleep(5_000)
            }
            logger.warning(
                "stopping JavaScript that holds the event loop past a deadline",
                metadata: invocation.logMetadata())
            funcd_node_terminate(node)
            watch(lastBeat: beat)
        }
    }

    /// Called by the watchdog when `invocation` waited its whole timeout without being taken
    /// while no call was running. If the loop has not gone round since the call came, what holds
    /// it belongs to no call (a timer that a finished handler left spinning), and no deadline
    /// would ever stop it: it is stopped at once, and the loop, back, takes the calls after it.
    func considerStoppingHolder(of invocation: Invocation) {
        guard funcd_node_last_turn(node) < invocation.submittedAt, claimWatch() else { return }
        let beat = funcd_node_last_beat(node)
        NativeThread.start(stackSize: 256 * 1024) { [self] in
            defer { lock.withLock { watching = false } }
            logger.warning(
                "stopping JavaScript that holds the event loop outside any call: a call waited its whole timeout",
                metadata: invocation.logMetadata())
            funcd_node_terminate(node)
            watch(lastBeat: beat)
        }
    }

    /// Whether this caller is the one to stop and watch the loop: one at a time.
    private func claimWatch() -> Bool {
        lock.withLock {
            defer { watching = true }
            return !watching
        }
    }

    private func watch(lastBeat: UInt64) {
        for attempt in 1...Self.attempts {
            if waitForBeat(after: lastBeat) { return }
            funcd_node_cancel_terminate(node)
            if waitForBeat(after: lastBeat, within: 20_000_000) { return }
            if attempt < Self.attempts { funcd_node_terminate(node) }
        }
        logger.error("the JavaScript thread did not come back after its call was terminated")
    }

    private func waitForBeat(after beat: UInt64, within nanoseconds: UInt64 = Terminator.comeBackNanoseconds) -> Bool {
        let until = MonotonicClock.nanoseconds() + nanoseconds
        while MonotonicClock.nanoseconds() < until {
            if funcd_node_last_beat(node) != beat { return true }
            usleep(5_000)
        }
        return funcd_node_last_beat(node) != beat
    }
}
