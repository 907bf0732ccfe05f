/// CloudEvents v1.0 as the HTTP and Kafka protocol bindings carry them, read at the transport so
/// that every host gets the same answer.
///
/// Only a complete, valid v1.0 event is treated as one: `id`, `source`, `type` present and
/// `specversion` `1.0`, every attribute name `[a-z0-9]`, every value readable. Anything else stays
/// the ordinary kubeless request it was before funcd knew CloudEvents, so no existing caller gets
/// a new error.
///
/// - Binary mode: the attributes are headers (`ce-id`, or `ce_id` on Kafka) and `Content-Type` is
///   `datacontenttype`; the body is the data. Read here, into ``Invocation/cloudEvent``.
/// - Structured mode (`application/cloudevents+json`): attributes and data are one JSON object in
///   the body. Each glue parses it with its own JSON parser, where the body is parsed anyway; the
///   transport only names the mode.
/// - Batch mode (`application/cloudevents-batch+json`): refused with 415, which the HTTP binding
///   asks of a receiver that did not solicit batches.
public enum CloudEvents {
    /// The modes a request's `Content-Type` can name.
    public enum Mode: Sendable, Equatable {
        case binary
        case structured
        case batch
    }

    /// `application/cloudevents+json`: a structured-mode event.
    public static let structuredMediaType = "application/cloudevents+json"
    /// `application/cloudevents-batch+json`: a batch of structured events.
    public static let batchMediaType = "application/cloudevents-batch+json"

    /// The attributes the specification requires, beside `specversion`.
    static let required = ["id", "source", "type"]

    /// The mode `contentType` names (the binding matches the media type's prefix, any case):
    /// `application/cloudevents-batch…` batch, `application/cloudevents…` structured, else binary.
    public static func mode(contentType: String?) -> Mode {
        guard let contentType else { return .binary }
        let type = contentType.drop(while: { $0 == " " || $0 == "\t" })
        if type.hasPrefixIgnoringASCIICase("application/cloudevents-batch") { return .batch }
        if type.hasPrefixIgnoringASCIICase("application/cloudevents") { return .structured }
        return .binary
    }

    /// The attributes of a binary-mode event from `headers` whose names start with `prefix`
    /// (`ce-` over HTTP, `ce_` on Kafka; any case), with `datacontenttype` from `Content-Type`;
    /// nil unless they make a complete v1.0 event. Values are percent-decoded (the HTTP binding
    /// escapes spaces, quotes, `%` and non-printable characters); names are lower-cased, in the
    /// order the headers had them. A repeated attribute makes the event invalid.
    public static func binaryAttributes(_ headers: [(String, String)], prefix: String) -> [(String, String)]? {
        var attributes: [(String, String)] = []
        var contentType: String?
        var specVersion: String?
        let prefixLength = prefix.utf8.count
        for (name, value) in headers {
            let nameBytes = name.utf8
            if nameBytes.count == 12, name.equalsIgnoringASCIICase("content-type") {
                contentType = value
                continue
            }
            guard nameBytes.count > prefixLength, name.hasPrefixIgnoringASCIICase(prefix) else { continue }
            guard let attribute = attributeName(nameBytes.dropFirst(prefixLength)),
                let decoded = value.percentDecoded,
                !attributes.contains(where: { $0.0 == attribute })
            else { return nil }
            if attribute == "specversion" { specVersion = decoded }
            attributes.append((attribute, decoded))
        }
        guard specVersion == "1.0",
            required.allSatisfy({ name in attributes.contains(where: { $0.0 == name && !$0.1.isEmpty }) })
        else { return nil }
        if let contentType, !attributes.contains(where: { $0.0 == "datacontenttype" }) {
            attributes.append(("datacontenttype", contentType))
        }
        return attributes
    }

    /// Whether `headers` hold the one field every binary-mode event must have, `<prefix>specversion`:
    /// the cheap test made on every request before ``binaryAttributes(_:prefix:)``.
    public static func mayBeBinary(_ name: String, prefix: String) -> Bool {
        name.utf8.count == prefix.utf8.count + 11 && name.equalsIgnoringASCIICase(prefix + "specversion")
    }

    /// An attribute name lower-cased, nil when it is not `[a-z0-9]+` (any case on the wire).
    static func attributeName(_ bytes: Substring.UTF8View) -> String? {
        var name: [UInt8] = []
        name.reserveCapacity(bytes.count)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): name.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): name.append(byte | 0x20)
            default: return nil
            }
        }
        return String(decoding: name, as: UTF8.self)
    }

    /// The Kafka headers for an answer's `ce-*` HTTP fields (`ce_id`, …) and its Content-Type,
    /// so that a `reply-to` message is a binary-mode event in the Kafka binding when the handler
    /// answered with one. Values are percent-decoded as they would be read over HTTP.
    public static func kafkaHeaders(forAnswer headers: [(String, String)]) -> [(String, String)] {
        var kafka: [(String, String)] = []
        for (name, value) in headers {
            guard name.utf8.count > 3, name.hasPrefixIgnoringASCIICase("ce-"),
                let attribute = attributeName(Substring(name).utf8.dropFirst(3))
            else { continue }
            kafka.append(("ce_" + attribute, value.percentDecoded ?? value))
        }
        return kafka
    }
}

/// How a call's request carries a CloudEvent, as the glue needs to know it.
public enum CloudEventInput: Sendable {
    /// Binary mode: the attributes, read and checked (``CloudEvents/binaryAttributes(_:prefix:)``).
    case binary([(String, String)])
    /// Structured mode: the body is the event, for the glue to parse and check.
    case structured
}
