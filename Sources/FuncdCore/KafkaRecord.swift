/// One Kafka message as the Kafka trigger hands it to a host, with the event id and time the
/// kafka-trigger gave each message. A host that builds the kubeless event itself
/// (``FunctionHost/buildsKafkaEvents``) reads it from ``Invocation/kafka``; for any other, the
/// same facts travel as request headers.
///
/// The id and time are made once per message, so a message tried again keeps its id (a handler
/// can use it to recognise a retry).
public final class KafkaRecord: Sendable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    public let key: [UInt8]?
    public let value: [UInt8]
    /// Milliseconds since the epoch, or -1 when the message has none.
    public let timestamp: Int64
    public let headers: [(String, String)]
    public let eventID: String
    public let eventTime: String

    public init(
        topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], timestamp: Int64,
        headers: [(String, String)], eventID: String, eventTime: String
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.headers = headers
        self.eventID = eventID
        self.eventTime = eventTime
    }

    /// Whether `value` is one JSON value: the event's `data` is then parsed, else a string. Worked
    /// out on demand: a host that parses the value itself learns it from the parse.
    public var isJSON: Bool { JSONCheck.isJSON(value) }

    /// The trace of a call for this message: its `traceparent` and `tracestate` headers continued
    /// (a new trace without them).
    public func callTrace() -> CallTrace {
        var parent: String?
        var parents = 0
        var state: String?
        for (name, value) in headers {
            if name.equalsIgnoringASCIICase("traceparent") {
                parent = value
                parents += 1
            } else if name.equalsIgnoringASCIICase("tracestate") {
                state = state.map { $0 + "," + value } ?? value
            }
        }
        return CallTrace(traceparent: parents == 1 ? parent : nil, tracestate: state)
    }

    /// The message as a CloudEvent in the Kafka binding: binary mode (`ce_` headers), or
    /// structured mode (a `content-type` of `application/cloudevents+json`); nil when it is
    /// neither, or not a complete v1.0 event. A batch is no event here: it stays a message.
    public func cloudEvent() -> CloudEventInput? {
        let contentType = headers.first(where: { $0.0.equalsIgnoringASCIICase("content-type") })?.1
        switch CloudEvents.mode(contentType: contentType) {
        case .structured: return .structured
        case .batch: return nil
        case .binary:
            guard headers.contains(where: { CloudEvents.mayBeBinary($0.0, prefix: "ce_") }),
                let attributes = CloudEvents.binaryAttributes(headers, prefix: "ce_")
            else { return nil }
            return .binary(attributes)
        }
    }

    /// The event's `event-namespace`, as the kafka-trigger sent it.
    public static let namespace = "kafkatriggers.kubeless.io"
}
