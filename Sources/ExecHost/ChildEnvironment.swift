import FuncdCore

/// The environment of one call's process: funcd's own, without its secrets, then the request
/// described the way both OpenFaaS watchdogs describe it (`Http_Method`, `Http_Path`,
/// `Http_Query`, `Http_<Header>`, ...), then the kubeless variables and the call's trace
/// (`TRACEPARENT`, `TRACESTATE`). What the call sets comes
/// last, so a header named `Method` cannot pass for the method.
struct ChildEnvironment {
    /// The names and `NAME=value` entries that every call gets, already filtered.
    private let base: [(name: String, entry: [UInt8])]

    /// Variables a program must not see: the Kafka trigger's credentials and settings, and
    /// funcd's own plumbing (descriptor numbers of its supervisor link and shared tables).
    static func isWithheld(_ name: Substring) -> Bool {
        name.hasPrefix("KAFKA_") || name.hasPrefix("FUNCD_")
    }

    /// `environment` is funcd's own (`NAME=value` strings); the kubeless variables come from
    /// `configuration`, so that a local run sets them as a pod does.
    init(environment: [String], configuration: Configuration) {
        var entries: [String: [UInt8]] = [:]
        var order: [String] = []
        func set(_ name: String, _ value: [UInt8]) {
            if entries.updateValue(Array(name.utf8) + [UInt8(ascii: "=")] + value, forKey: name) == nil { order.append(name) }
        }
        for entry in environment {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            let name = entry[..<equals]
            if Self.isWithheld(name) { continue }
            set(String(name), Array(entry[entry.index(after: equals)...].utf8))
        }
        set("FUNC_HANDLER", Array(configuration.handlerName.utf8))
        set("FUNC_TIMEOUT", Array(Self.seconds(configuration.timeoutSeconds).utf8))
        set("FUNC_RUNTIME", Array((configuration.runtime ?? "exec").utf8))
        if let memory = configuration.memoryLimit { set("FUNC_MEMORY_LIMIT", Array(memory.utf8)) }
        base = order.map { ($0, entries[$0]!) }
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() && value < 1e15 ? String(Int(value)) : String(value)
    }

    /// The `NAME=value` entries of a call: the base, then the request's. Header values are the
    /// bytes the client sent (`values` `.latin1` for HTTP), or UTF-8 (`.utf8`, a Kafka message's).
    func entries(
        method: String, target: String, headers: [(String, String)], bodyCount: Int, values: HeaderPacking.ValueBytes,
        trace: CallTrace? = nil
    ) -> [[UInt8]] {
        var call: [(String, [UInt8])] = []
        var seen: [String: Int] = [:]
        func add(_ name: String, _ value: [UInt8]) {
            if let index = seen[name] {
                // A repeated header: joined as HTTP allows (RFC 9110 §5.3).
                call[index].1 += Array(", ".utf8) + value
            } else {
                seen[name] = call.count
                call.append((name, value))
            }
        }
        var event: [(String, [UInt8])] = []
        for (name, value) in headers {
            let lower = name.lowercased()
            if lower.hasPrefix("funcd-kafka-") {
                // A Kafka message's facts (see FuncdKafka's KafkaEvent): Kafka_Topic,
                // Kafka_Partition, Kafka_Offset, Kafka_Timestamp, Kafka_Key, Kafka_Header_<name>.
                add("Kafka_" + Self.canonical(String(lower.dropFirst("funcd-kafka-".count))), HeaderPacking.valueBytes(value, values))
                continue
            }
            if lower == "event-id" || lower == "event-type" || lower == "event-time" || lower == "event-namespace" {
                event.append((Self.canonical(lower).uppercased(), HeaderPacking.valueBytes(value, values)))
            }
            let name = "Http_" + Self.canonical(lower)
            // The call's own variables are never a header's, even when the call leaves one unset
            // (a target without a query has no Http_Query; a `Query` header must not make one).
            if Self.callNames.contains(name) { continue }
            add(name, HeaderPacking.valueBytes(value, values))
        }
        // The call's own facts replace a header of the same variable name.
        func set(_ name: String, _ value: [UInt8]) {
            if let index = seen[name] {
                call[index].1 = value
            } else {
                add(name, value)
            }
        }
        let question = target.firstIndex(of: "?")
        let path = question.map { String(target[..<$0]) } ?? target
        set("Http_Method", Array(method.utf8))
        set("Http_Path", Array((path.percentDecoded ?? path).utf8))
        if let question {
            set("Http_Query", Array(target[target.index(after: question)...].utf8))
        }
        // Both spellings: the classic watchdog's and of-watchdog's.
        set("Http_Content_Length", Array(String(bodyCount).utf8))
        set("Http_ContentLength", Array(String(bodyCount).utf8))
        for (name, value) in event where seen[name] == nil { add(name, value) }
        if let trace {
            // The call's trace, as OpenTelemetry's environment carrier passes it to a process.
            set("TRACEPARENT", Array(trace.traceparent.utf8))
            if let state = trace.tracestate { set("TRACESTATE", Array(state.utf8)) }
        }
        var entries: [[UInt8]] = []
        entries.reserveCapacity(base.count + call.count)
        for (name, entry) in base where seen[name] == nil { entries.append(entry) }
        for (name, value) in call { entries.append(Array(name.utf8) + [UInt8(ascii: "=")] + value) }
        return entries
    }

    /// The variables a call sets itself.
    static let callNames: Set<String> = ["Http_Method", "Http_Path", "Http_Query", "Http_Content_Length", "Http_ContentLength"]

    /// Go's canonical header form with `-` as `_`: `x-request-id` → `X_Request_Id`. Any byte
    /// that is not a letter, a digit or `_` becomes `_` too: HTTP names are tokens, but a Kafka
    /// header's name is any bytes, and `=` in a variable's name would make it another variable.
    static func canonical(_ lower: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(lower.utf8.count)
        var upper = true
        for byte in lower.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"):
                bytes.append(upper ? byte - 32 : byte)
                upper = false
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                bytes.append(byte)
                upper = false
            default:
                bytes.append(UInt8(ascii: "_"))
                upper = true
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
