import FuncdHTTP
import ServiceLifecycle
import Synchronization

/// Lets a thread outside Swift concurrency (the Invoker's watchdog, the supervisor link) start
/// the graceful shutdown of the service group, marking the server unhealthy first if asked.
final class ShutdownTrigger: Service, Sendable {
    private let state = Mutex<(group: ServiceGroup?, server: HTTPServer?, pending: Bool)>((nil, nil, false))

    func attach(_ group: ServiceGroup, server: HTTPServer) {
        state.withLock {
            $0.group = group
            $0.server = server
        }
    }

    func trigger(unhealthy: Bool) {
        let (group, server) = state.withLock { ($0.group, $0.server) }
        if unhealthy { server?.markUnhealthy() }
        guard let group else { return }
        Task { await group.triggerGracefulShutdown() }
    }

    /// Stays up until the group shuts down; it exists only to be triggered.
    func run() async throws {
        try? await gracefulShutdown()
    }
}
