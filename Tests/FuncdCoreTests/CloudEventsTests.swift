import Testing

@testable import FuncdCore

@Suite("CloudEvents: the mode a request names, and binary-mode attributes")
struct CloudEventsTests {
    static let complete: [(String, String)] = [
        ("Host", "x"), ("ce-id", "42"), ("CE-Source", "/my/src"), ("ce-specversion", "1.0"), ("ce-type", "com.example"),
        ("Content-Type", "application/json"),
    ]

    func names(_ attributes: [(String, String)]?) -> [String]? { attributes?.map(\.0) }

    @Test("the mode comes from the media type's prefix, in any case")
    func modes() {
        #expect(CloudEvents.mode(contentType: nil) == .binary)
        #expect(CloudEvents.mode(contentType: "application/json") == .binary)
        #expect(CloudEvents.mode(contentType: "application/cloudevents+json; charset=utf-8") == .structured)
        #expect(CloudEvents.mode(contentType: "Application/CloudEvents+JSON") == .structured)
        #expect(CloudEvents.mode(contentType: " application/cloudevents-batch+json") == .batch)
        #expect(CloudEvents.mode(contentType: "application/cloudevent") == .binary)
    }

    @Test("a complete binary event: names lower-cased, in order, datacontenttype from Content-Type")
    func binary() {
        let attributes = CloudEvents.binaryAttributes(Self.complete, prefix: "ce-")
        #expect(names(attributes) == ["id", "source", "specversion", "type", "datacontenttype"])
        #expect(attributes?.first { $0.0 == "datacontenttype" }?.1 == "application/json")
    }

    @Test("values are percent-decoded once")
    func percent() {
        let attributes = CloudEvents.binaryAttributes(Self.complete + [("ce-note", "caf%C3%A9%20%2525")], prefix: "ce-")
        #expect(attributes?.first { $0.0 == "note" }?.1 == "café %25")
    }

    @Test(
        "anything but a complete, readable v1.0 event is no event",
        arguments: [
            ("ce-source", nil),  // a required attribute missing
            ("ce-specversion", "0.3"),  // another version
            ("ce-id", ""),  // empty id
            ("ce-id", "%zz"),  // a broken escape
            ("ce-id", "%FF"),  // not UTF-8 once decoded
        ] as [(String, String?)])
    func incomplete(_ change: (String, String?)) {
        var headers = Self.complete.filter { $0.0.lowercased() != change.0 }
        if let value = change.1 { headers.append((change.0, value)) }
        #expect(CloudEvents.binaryAttributes(headers, prefix: "ce-") == nil)
    }

    @Test("a bad attribute name or a repeated attribute makes no event")
    func badNames() {
        #expect(CloudEvents.binaryAttributes(Self.complete + [("ce-my_ext", "1")], prefix: "ce-") == nil)
        #expect(CloudEvents.binaryAttributes(Self.complete + [("ce-ID", "43")], prefix: "ce-") == nil)
    }

    @Test("Kafka's binding: ce_ headers")
    func kafka() {
        let headers = Self.complete.map { name, value in
            (name.lowercased().hasPrefix("ce-") ? "ce_" + name.dropFirst(3) : name, value)
        }
        #expect(names(CloudEvents.binaryAttributes(headers, prefix: "ce_")) == ["id", "source", "specversion", "type", "datacontenttype"])
        #expect(CloudEvents.binaryAttributes(headers, prefix: "ce-") == nil)
    }

    @Test("an answer's ce-* fields become the Kafka reply's ce_ headers")
    func answer() {
        let kafka = CloudEvents.kafkaHeaders(forAnswer: [("Content-Type", "text/plain"), ("CE-Id", "r%201"), ("ce-bad_name", "x")])
        #expect(kafka.map(\.0) == ["ce_id"])
        #expect(kafka.first?.1 == "r 1")
    }

    @Test("a Kafka record names its trace and its event")
    func record() {
        let record = KafkaRecord(
            topic: "t", partition: 0, offset: 1, key: nil, value: [], timestamp: 0,
            headers: [
                ("traceparent", CallTraceTests.parent), ("tracestate", "a=1"), ("tracestate", "b=2"),
                ("ce_id", "1"), ("ce_source", "s"), ("ce_specversion", "1.0"), ("ce_type", "t"),
            ], eventID: "e", eventTime: "now")
        let trace = record.callTrace()
        #expect(trace.traceIDText == "0af7651916cd43dd8448eb211c80319c")
        #expect(trace.tracestate == "a=1, b=2")
        guard case .binary(let attributes) = record.cloudEvent() else {
            Issue.record("no binary event")
            return
        }
        #expect(names(attributes) == ["id", "source", "specversion", "type"])
        let structured = KafkaRecord(
            topic: "t", partition: 0, offset: 1, key: nil, value: [], timestamp: 0,
            headers: [("content-type", "application/cloudevents+json")], eventID: "e", eventTime: "now")
        guard case .structured = structured.cloudEvent() else {
            Issue.record("no structured event")
            return
        }
    }
}
