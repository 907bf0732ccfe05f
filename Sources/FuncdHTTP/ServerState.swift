import FuncdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// What every connection of one server shares: configuration, the Invoker, health, the drain
/// flag and the set of open connections (to close idle ones when draining).
///
/// `@unchecked Sendable`: the flags are atomics-by-lock and the connection set is locked.
final class ServerState: @unchecked Sendable {
    let configuration: Configuration
    let invoker: Invoker
    let logger: Logger
    let connections = ConnectionSet()
    /// More calls than this in flight (running plus queued) and a request gets 503.
    let overloadLimit: Int
    /// Text appended to /metrics (the supervisor's counters, when supervised).
    let extraMetrics: (@Sendable () -> [UInt8])?
    /// The request bodies buffered by this worker's connections, against `FUNC_BODY_BUDGET`.
    let bodyBudget: BodyBudget
    let machineLimits: ConnectionStateMachine.Limits
    private let flags = NIOLockedValueBox((draining: false, healthy: true))

    init(
        configuration: Configuration, invoker: Invoker, logger: Logger,
        extraMetrics: (@Sendable () -> [UInt8])?
    ) {
        self.configuration = configuration
        self.invoker = invoker
        self.logger = logger
        self.overloadLimit = configuration.concurrency + configuration.queueLimit
        self.extraMetrics = extraMetrics
        self.bodyBudget = BodyBudget(limit: configuration.limits.bodyBudgetBytes)
        self.machineLimits = ConnectionStateMachine.Limits(configuration.limits)
    }

    /// Whether another call would go past `FUNC_CONCURRENCY` + `FUNC_QUEUE`, counting the calls
    /// this loop has read but not yet handed over (they reach the Invoker at the end of the tick).
    func isOverloaded(pendingOnLoop: Int) -> Bool {
        invoker.inFlightCount + pendingOnLoop >= overloadLimit
    }

    func metricsText() -> [UInt8] {
        var text = invoker.metrics.registry.emitToBuffer()
        if let extraMetrics { text.append(contentsOf: extraMetrics()) }
        return text
    }

    var isDraining: Bool { flags.withLockedValue { $0.draining } }
    var isHealthy: Bool { flags.withLockedValue { $0.healthy && !$0.draining } }

    func startDraining() { flags.withLockedValue { $0.draining = true } }
    func markUnhealthy() { flags.withLockedValue { $0.healthy = false } }

    func logHandlerError(invocation: Invocation, result: InvocationResult) {
        logger.error(
            "function failed",
            metadata: invocation.logMetadata([
                LogKeys.status: "\(result.status)", LogKeys.error: "\(result.error ?? "")",
            ]))
    }
}

/// The open connections of a server.
final class ConnectionSet: Sendable {
    private let channels = NIOLockedValueBox([ObjectIdentifier: any Channel]())

    /// Adds `channel`; returns how many are open with it.
    func add(_ channel: any Channel) -> Int {
        channels.withLockedValue {
            $0[ObjectIdentifier(channel)] = channel
            return $0.count
        }
    }

    func remove(_ channel: any Channel) {
        _ = channels.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    var all: [any Channel] { channels.withLockedValue { Array($0.values) } }
    var count: Int { channels.withLockedValue { $0.count } }
}

/// The bytes of request bodies a worker holds at once (`FUNC_BODY_BUDGET`), shared by all its
/// connections and event loops. A body is admitted when it fits beside the others, or when it is
/// alone (so any body up to the body limit can be taken, one at a time).
final class BodyBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    var inUse: Int { used.load(ordering: .relaxed) }

    /// Takes `bytes` of the budget if they fit; false when they do not.
    func reserve(_ bytes: Int) -> Bool {
        guard bytes > 0 else { return true }
        var current = used.load(ordering: .relaxed)
        while true {
            if current > 0 && current + bytes > limit { return false }
            let (exchanged, original) = used.compareExchange(
                expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        used.subtract(bytes, ordering: .relaxed)
    }
}
