import ServiceLifecycle
import Synchronization

/// Lets a thread outside Swift concurrency (the Invoker's watchdog, the supervisor link) start
/// the graceful shutdown of the service group, marking the server unhealthy first if asked.
///
/// A trigger may come before ``attach(_:markUnhealthy:)``: the supervisor's link can be lost, or
/// a handler found stuck, while the worker is still starting. It is remembered (with the
/// unhealthy mark, if any trigger asked for it) and acted on at attach. The group takes a
/// shutdown asked for before its `run` as well: its services then start and drain at once.
final class ShutdownTrigger: Service, Sendable {
    private struct State {
        var group: ServiceGroup?
        var markUnhealthy: (@Sendable () -> Void)?
        /// A trigger came before attach.
        var pending = false
        /// One of those triggers asked for the unhealthy mark.
        var pendingUnhealthy = false
    }

    private let state = Mutex(State())

    /// `markUnhealthy` makes /healthz answer 503 (the server's).
    func attach(_ group: ServiceGroup, markUnhealthy: @escaping @Sendable () -> Void) {
        let (pending, unhealthy) = state.withLock { state in
            state.group = group
            state.markUnhealthy = markUnhealthy
            return (state.pending, state.pendingUnhealthy)
        }
        if pending { Self.shutDown(group, markUnhealthy: unhealthy ? markUnhealthy : nil) }
    }

    func trigger(unhealthy: Bool) {
        // Under the lock: either attach sees the pending trigger, or this sees the group.
        let attached: (ServiceGroup, (@Sendable () -> Void)?)? = state.withLock { state in
            guard let group = state.group else {
                state.pending = true
                state.pendingUnhealthy = state.pendingUnhealthy || unhealthy
                return nil
            }
            return (group, unhealthy ? state.markUnhealthy : nil)
        }
        guard let (group, markUnhealthy) = attached else { return }
        Self.shutDown(group, markUnhealthy: markUnhealthy)
    }

    private static func shutDown(_ group: ServiceGroup, markUnhealthy: (@Sendable () -> Void)?) {
        markUnhealthy?()
        Task { await group.triggerGracefulShutdown() }
    }

    /// Stays up until the group shuts down; it exists only to be triggered.
    func run() async throws {
        try? await gracefulShutdown()
    }
}
