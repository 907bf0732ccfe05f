import Prometheus

/// The metrics the kubeless dashboards read (`function_calls_total`, `function_failures_total`,
/// `function_duration_seconds`, each labelled by `method`) plus funcd's own. Created once with a
/// bounded label set: unknown methods share the label `other`, so a client cannot grow the
/// registry.
public final class FunctionMetrics: Sendable {
    /// The series of one `method` label value.
    struct Series: Sendable {
        let calls: Counter
        let failures: Counter
        let timeouts: Counter
        let duration: DurationHistogram
    }

    public let registry: PrometheusCollectorRegistry
    private let series: [String: Series]
    private let other: Series
    public let stuckHandlers: Counter
    /// Requests answered 503 because `FUNC_CONCURRENCY` + `FUNC_QUEUE` calls were waiting.
    public let overloadRejections: Counter
    /// Calls dropped before they ran because their client disconnected.
    public let abandonedCalls: Counter
    /// Connections funcd closed to keep a bound, by reason (a fixed set; see ``ConnectionClose``).
    public let closedConnections: [ConnectionClose: Counter]
    /// Requests refused from their head: 413, 431, or 503 because the body budget was spent.
    public let refusedRequests: [RequestRefusal: Counter]

    /// Buckets of the Python prometheus_client the kubeless runtimes used, with finer ones below
    /// 5 ms because embedded calls are that fast.
    static let buckets: [Duration] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
    ].map { Duration.nanoseconds(Int64($0 * 1e9)) }

    public static let knownMethods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        let calls = MetricNameDescriptor(
            metricName: "function_calls", unitName: "total", helpText: "Number of calls to user function")
        let failures = MetricNameDescriptor(
            metricName: "function_failures", unitName: "total", helpText: "Number of exceptions in user function")
        let timeouts = MetricNameDescriptor(
            metricName: "function_timeouts", unitName: "total",
            helpText: "Number of calls answered 408 because the function ran past its timeout")
        let duration = MetricNameDescriptor(
            metricName: "function_duration", unitName: "seconds", helpText: "Duration of user function in seconds")
        func make(_ method: String) -> Series {
            let labels = [("method", method)]
            return Series(
                calls: registry.makeCounter(descriptor: calls, labels: labels),
                failures: registry.makeCounter(descriptor: failures, labels: labels),
                timeouts: registry.makeCounter(descriptor: timeouts, labels: labels),
                duration: registry.makeDurationHistogram(descriptor: duration, labels: labels, buckets: Self.buckets)
            )
        }
        var series: [String: Series] = [:]
        for method in Self.knownMethods { series[method] = make(method) }
        self.series = series
        self.other = make("other")
        self.stuckHandlers = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "funcd_stuck_handlers", unitName: "total",
                helpText: "Handlers that could not be interrupted after their timeout (the worker is then replaced)"))
        self.overloadRejections = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "funcd_overload_rejections", unitName: "total",
                helpText: "Requests answered 503 because the concurrency and the queue were full"))
        self.abandonedCalls = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "funcd_abandoned_calls", unitName: "total",
                helpText: "Calls dropped before they ran because their client disconnected"))
        self.closedConnections = Self.counters(
            registry,
            MetricNameDescriptor(
                metricName: "funcd_http_connections_closed", unitName: "total",
                helpText: "Connections funcd closed to keep a bound (timeouts, the connection cap)"))
        self.refusedRequests = Self.counters(
            registry,
            MetricNameDescriptor(
                metricName: "funcd_http_refused_requests", unitName: "total",
                helpText: "Requests refused from their head, before their body was read"))
    }

    /// One counter per `reason` label value, all of `descriptor`.
    private static func counters<Reason: CaseIterable & RawRepresentable<String> & Hashable>(
        _ registry: PrometheusCollectorRegistry, _ descriptor: MetricNameDescriptor
    ) -> [Reason: Counter] {
        var counters: [Reason: Counter] = [:]
        for reason in Reason.allCases {
            counters[reason] = registry.makeCounter(descriptor: descriptor, labels: [("reason", reason.rawValue)])
        }
        return counters
    }

    /// Records one finished call.
    public func record(method: String, nanoseconds: UInt64, failed: Bool, timedOut: Bool) {
        let series = self.series[method] ?? other
        series.calls.increment()
        series.duration.recordNanoseconds(Int64(nanoseconds))
        if failed { series.failures.increment() }
        if timedOut { series.timeouts.increment() }
    }
}

/// Why funcd closed a connection itself (the `reason` label of `funcd_http_connections_closed_total`).
public enum ConnectionClose: String, Sendable, CaseIterable {
    case headerTimeout = "header_timeout"
    case bodyTimeout = "body_timeout"
    case sendTimeout = "send_timeout"
    case idleTimeout = "idle_timeout"
    /// Closed to admit a new connection at `FUNC_MAX_CONNECTIONS`.
    case evicted
    /// A new connection refused at `FUNC_MAX_CONNECTIONS` with nothing to close for it.
    case refused
}

/// Why a request was refused from its head (the `reason` label of `funcd_http_refused_requests_total`).
public enum RequestRefusal: String, Sendable, CaseIterable {
    case bodyTooLarge = "body_too_large"
    case headersTooLarge = "headers_too_large"
    case bodyBudget = "body_budget"
}
