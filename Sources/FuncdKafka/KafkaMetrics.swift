import Prometheus
import Synchronization

/// The trigger's own series on /metrics, beside the function's (a message also counts as a call
/// in `function_calls_total`, as it did when the kubeless kafka-trigger POSTed it):
/// messages by topic and outcome, and the consumer lag of each assigned partition.
final class KafkaMetrics: Sendable {
    enum Outcome: String {
        case handled
        case retried
        case deadLettered = "dead_lettered"
        case passedOver = "passed_over"
    }

    let registry: PrometheusCollectorRegistry
    /// The counters by topic and outcome, looked up in the registry once (it is called per message).
    private let counters = Mutex<[CounterKey: Counter]>([:])

    private struct CounterKey: Hashable {
        var topic: String
        var outcome: Outcome
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    static var messages: MetricNameDescriptor {
        MetricNameDescriptor(
        metricName: "funcd_kafka_messages", unitName: "total",
        helpText: "Kafka messages by what became of them: handled, retried, dead_lettered, passed_over")
    }
    static var lagDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "funcd_kafka_consumer_lag", unitName: "messages",
            helpText: "Messages not yet consumed in each assigned partition (high watermark minus position)")
    }

    func count(_ outcome: Outcome, topic: String) {
        counter(outcome, topic: topic).increment()
    }

    func counter(_ outcome: Outcome, topic: String) -> Counter {
        counters.withLock { counters in
            let name = CounterKey(topic: topic, outcome: outcome)
            if let counter = counters[name] { return counter }
            let counter = registry.makeCounter(
                descriptor: Self.messages, labels: [("topic", topic), ("outcome", outcome.rawValue)])
            counters[name] = counter
            return counter
        }
    }

    /// Messages behind the partition's high watermark, as librdkafka last heard it.
    func lag(_ messages: Int64, topic: String, partition: Int32) {
        registry.makeGauge(descriptor: Self.lagDescriptor, labels: [("topic", topic), ("partition", String(partition))])
            .set(Double(messages))
    }
}
