/// The Kafka trigger's settings, from the environment (the kubeless kafka-trigger's names).
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `KAFKA_BROKERS` | bootstrap servers, comma list; set → funcd consumes | — (no consumer) |
/// | `KAFKA_TOPICS` | topics to consume, comma list | required with KAFKA_BROKERS |
/// | `KAFKA_GROUP` | consumer group | the function's module name |
/// | `KAFKA_OFFSET_RESET` | `earliest` or `latest`, for a group with no committed offset | earliest |
/// | `KAFKA_MAX_RETRIES` | tries after the first for a message whose handler failed | 3 |
/// | `KAFKA_DLQ_TOPIC` | where a message goes after its last failed try, the error in its headers | — (logged and passed over) |
/// | `KAFKA_REPLY_TOPICS` | topics a `reply-to` header may name, comma list, `*` and `?` globs | any but those consumed, the DLQ and `__*` |
/// | `KAFKA_SEND_TIMEOUT` | seconds librdkafka tries one reply or dead letter before funcd sends it again | 30 |
/// | `KAFKA_SASL_MECHANISM`, `KAFKA_USERNAME`, `KAFKA_PASSWORD` | SASL (`PLAIN`, `SCRAM-SHA-256`, ...) | — |
/// | `KAFKA_TLS`, `KAFKA_CA_FILE` | TLS to the brokers, and its CA bundle | off |
/// | `KAFKA_CONF_<property>` | any librdkafka property, dots written as underscores | — |
public struct KafkaConfiguration: Sendable, Equatable {
    public var brokers: String
    public var topics: [String]
    public var group: String
    public var maxRetries: Int
    public var deadLetterTopic: String?
    /// The topics a message's `reply-to` may name (globs); nil: any but the consumed ones, the
    /// dead-letter topic and internal `__*` topics. Whoever can produce to the input topic picks
    /// the reply's topic, and funcd writes there with the function's credentials.
    public var replyTopics: [String]?
    /// How long one send of a reply or a dead letter may take (librdkafka's `message.timeout.ms`)
    /// before funcd gives it up and sends it again after a backoff; the partition waits meanwhile.
    public var sendTimeoutMilliseconds: Int
    /// Where a group with no committed offset starts (`KAFKA_OFFSET_RESET`).
    public var offsetReset: OffsetReset
    /// SASL to the brokers (`KAFKA_SASL_MECHANISM`, `KAFKA_USERNAME`, `KAFKA_PASSWORD`).
    public var sasl: SASL?
    /// TLS to the brokers (`KAFKA_TLS`), checked against `caFile` when set (`KAFKA_CA_FILE`).
    public var tls: Bool
    public var caFile: String?
    /// `KAFKA_CONF_<property>`: the user's own client properties, under the client library's
    /// names (dots written as underscores in the variable), sorted by name; applied last, so
    /// they win. FuncdKafka turns everything else into the library's names.
    public var clientProperties: [(name: String, value: String)]

    public enum OffsetReset: String, Sendable {
        case earliest, latest
    }

    public struct SASL: Sendable, Equatable {
        public var mechanism: String
        public var username: String?
        public var password: String?
    }

    public static func == (lhs: KafkaConfiguration, rhs: KafkaConfiguration) -> Bool {
        lhs.brokers == rhs.brokers && lhs.topics == rhs.topics && lhs.group == rhs.group
            && lhs.maxRetries == rhs.maxRetries && lhs.deadLetterTopic == rhs.deadLetterTopic
            && lhs.replyTopics == rhs.replyTopics && lhs.sendTimeoutMilliseconds == rhs.sendTimeoutMilliseconds
            && lhs.offsetReset == rhs.offsetReset && lhs.sasl == rhs.sasl && lhs.tls == rhs.tls
            && lhs.caFile == rhs.caFile
            && lhs.clientProperties.map { "\($0.name)=\($0.value)" } == rhs.clientProperties.map { "\($0.name)=\($0.value)" }
    }

    /// nil when `KAFKA_BROKERS` is not set: no consumer.
    public init?(environment: [String: String], functionName: String) throws(FuncdError) {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingASCIIWhitespace, !text.isEmpty else { return nil }
            return text
        }
        guard let brokers = value("KAFKA_BROKERS") else {
            if value("KAFKA_TOPICS") != nil {
                throw FuncdError(.configuration, "KAFKA_TOPICS is set but KAFKA_BROKERS is not: which brokers?")
            }
            return nil
        }
        guard let topicList = value("KAFKA_TOPICS") else {
            throw FuncdError(.configuration, "KAFKA_BROKERS is set but KAFKA_TOPICS is not: which topics?")
        }
        self.brokers = brokers
        self.topics = topicList.split(separator: ",").map { String($0).trimmingASCIIWhitespace }.filter { !$0.isEmpty }
        self.group = value("KAFKA_GROUP") ?? functionName
        if let retries = value("KAFKA_MAX_RETRIES") {
            guard let count = Int(retries), (0...100).contains(count) else {
                throw FuncdError(.configuration, "KAFKA_MAX_RETRIES=\(retries) is not a whole number in 0...100")
            }
            self.maxRetries = count
        } else {
            self.maxRetries = 3
        }

        self.deadLetterTopic = value("KAFKA_DLQ_TOPIC")
        if let text = value("KAFKA_SEND_TIMEOUT") {
            guard let seconds = Double(text), seconds >= 1, seconds <= 3600 else {
                throw FuncdError(.configuration, "KAFKA_SEND_TIMEOUT=\(text) is not a number of seconds in 1...3600")
            }
            self.sendTimeoutMilliseconds = Int(seconds * 1000)
        } else {
            self.sendTimeoutMilliseconds = 30_000
        }
        self.replyTopics = value("KAFKA_REPLY_TOPICS").map {
            $0.split(separator: ",").map { String($0).trimmingASCIIWhitespace }.filter { !$0.isEmpty }
        }

        let reset = value("KAFKA_OFFSET_RESET")?.lowercased() ?? "earliest"
        guard let offsetReset = OffsetReset(rawValue: reset) else {
            throw FuncdError(.configuration, "KAFKA_OFFSET_RESET=\(reset) is not earliest or latest")
        }
        self.offsetReset = offsetReset
        self.tls = ["1", "true", "yes", "on"].contains(value("KAFKA_TLS")?.lowercased() ?? "")
        self.sasl = value("KAFKA_SASL_MECHANISM").map {
            SASL(mechanism: $0, username: value("KAFKA_USERNAME"), password: environment["KAFKA_PASSWORD"])
        }
        self.caFile = value("KAFKA_CA_FILE")
        self.clientProperties = environment.sorted { $0.key < $1.key }.compactMap { name, text in
            guard name.hasPrefix("KAFKA_CONF_") else { return nil }
            let property = name.dropFirst("KAFKA_CONF_".count).replacingUnderscores()
            return property.isEmpty ? nil : (property, text)
        }
    }

    /// Why a `reply-to` naming `topic` is refused, or nil when it may go there.
    public func replyRefusal(_ topic: String) -> String? {
        if let replyTopics {
            return replyTopics.contains { Self.glob($0, matches: topic) }
                ? nil : "reply-to \(topic) is not among KAFKA_REPLY_TOPICS"
        }
        if topics.contains(topic) { return "reply-to \(topic) names a topic this function consumes" }
        if topic == deadLetterTopic { return "reply-to \(topic) names the dead-letter topic" }
        if topic.hasPrefix("__") { return "reply-to \(topic) names an internal topic" }
        return nil
    }

    /// `*` any run of characters, `?` any one; everything else itself.
    static func glob(_ pattern: String, matches text: String) -> Bool {
        let pattern = Array(pattern.unicodeScalars)
        let text = Array(text.unicodeScalars)
        var p = 0
        var t = 0
        var star: (pattern: Int, text: Int)?
        while t < text.count {
            if p < pattern.count, pattern[p] == "?" || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = (p, t)
                p += 1
            } else if let last = star {
                p = last.pattern + 1
                t = last.text + 1
                star = (last.pattern, last.text + 1)
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}

extension Substring {
    fileprivate func replacingUnderscores() -> String {
        String(map { $0 == "_" ? "." : $0 })
    }
}
