import Prometheus

/// The trigger's own series on /metrics, beside the function's (a message also counts as a call
/// in `function_calls_total`, as it did when the kubeless kafka-trigger POSTed it):
/// messages by topic and outcome, and the consumer lag of each assigned partition.
struct KafkaMetrics: Sendable {
    enum Outcome: String {
        case handled
        case retried
        case deadLettered = "dead_lettered"
        case passedOver = "passed_over"
    }

    let registry: PrometheusCollectorRegistry

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
        registry.makeCounter(descriptor: Self.messages, labels: [("topic", topic), ("outcome", outcome.rawValue)]).increment()
    }

    /// Messages behind the partition's high watermark, as librdkafka last heard it.
    func lag(_ messages: Int64, topic: String, partition: Int32) {
        registry.makeGauge(descriptor: Self.lagDescriptor, labels: [("topic", topic), ("partition", String(partition))])
            .set(Double(messages))
    }
}
