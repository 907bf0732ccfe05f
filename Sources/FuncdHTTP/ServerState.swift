import FuncdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What every connection of one server shares: configuration, the Invoker, health, the drain
/// flag and the set of open connections (to close idle ones when draining).
///
/// `@unchecked Sendable`: the flags are atomics-by-lock and the connection set is locked.
final class ServerState: @unchecked Sendable {
    let configuration: Configuration
    let invoker: Invoker
    let logger: Logger
    let connections = ConnectionSet()
    private let flags = NIOLockedValueBox((draining: false, healthy: true))

    init(configuration: Configuration, invoker: Invoker, logger: Logger) {
        self.configuration = configuration
        self.invoker = invoker
        self.logger = logger
    }

    var isDraining: Bool { flags.withLockedValue { $0.draining } }
    var isHealthy: Bool { flags.withLockedValue { $0.healthy && !$0.draining } }

    func startDraining() { flags.withLockedValue { $0.draining = true } }
    func markUnhealthy() { flags.withLockedValue { $0.healthy = false } }

    func logHandlerError(invocation: Invocation, result: InvocationResult) {
        logger.error(
            "function failed",
            metadata: [
                LogKeys.method: "\(invocation.method)", LogKeys.target: "\(invocation.target)",
                LogKeys.status: "\(result.status)", LogKeys.error: "\(result.error ?? "")",
            ])
    }
}

/// The open connections of a server.
final class ConnectionSet: Sendable {
    private let channels = NIOLockedValueBox([ObjectIdentifier: any Channel]())

    func add(_ channel: any Channel) {
        channels.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
    }

    func remove(_ channel: any Channel) {
        _ = channels.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    var all: [any Channel] { channels.withLockedValue { Array($0.values) } }
    var count: Int { channels.withLockedValue { $0.count } }
}
