import FuncdCore

extension KafkaConfiguration {
    /// The consumer's librdkafka properties, in the order they are applied (later ones win):
    /// funcd's delivery rules, the user's settings, then `KAFKA_CONF_*` as given.
    var librdkafkaProperties: [(name: String, value: String)] {
        var properties: [(name: String, value: String)] = [
            ("bootstrap.servers", brokers),
            ("group.id", group),
            // At-least-once: an offset is stored only once its message (and every earlier one of
            // its partition) has been handled; librdkafka commits what is stored.
            ("enable.auto.offset.store", "false"),
            ("enable.auto.commit", "true"),
            // What was handled is committed within a second (librdkafka's default is 5 s): after a
            // kill -9 only about the last second's messages run again. One commit request a
            // second per consumer, made by librdkafka's own thread.
            ("auto.commit.interval.ms", "1000"),
            // librdkafka ≥ 2 otherwise stops fetching a partition for a second whenever its local
            // queue is full, and a consumer faster than the fetcher idles (docs/kafka-notes.md).
            ("fetch.queue.backoff.ms", "10"),
            ("auto.offset.reset", offsetReset.rawValue),
        ]
        if let sasl {
            properties.append(("security.protocol", tls ? "sasl_ssl" : "sasl_plaintext"))
            properties.append(("sasl.mechanisms", sasl.mechanism))
            if let username = sasl.username { properties.append(("sasl.username", username)) }
            if let password = sasl.password { properties.append(("sasl.password", password)) }
        } else if tls {
            properties.append(("security.protocol", "ssl"))
        }
        if let caFile { properties.append(("ssl.ca.location", caFile)) }
        return properties + clientProperties
    }

    /// funcd's own defaults that an older librdkafka may not know (Debian's 2.0.2); skipped
    /// there unless the user set them too.
    static let optionalProperties: Set<String> = ["fetch.queue.backoff.ms"]

    /// Whether an unknown `name` may be passed over: one of funcd's optional defaults that the
    /// user did not ask for.
    func mayPassOver(_ name: String) -> Bool {
        Self.optionalProperties.contains(name) && !clientProperties.contains { $0.name == name }
    }
}
