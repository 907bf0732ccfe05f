import FuncdCore

#if canImport(Glibc)
import Glibc
#endif

/// The request a Kafka message becomes, with the headers the kubeless kafka-trigger sent
/// (`event-id`, `event-type`, `event-time`, `event-namespace`, a JSON content type when the
/// value is JSON) and the message's own facts as `funcd-kafka-*` headers, which the glue turns
/// into `extensions` (the HTTP server drops any such header a client sends).
enum KafkaEvent {
    static let namespace = "kafkatriggers.kubeless.io"
    static let headerPrefix = "funcd-kafka-"

    static func headers(for message: KafkaMessage) -> [(String, String)] {
        var headers: [(String, String)] = [
            ("Content-Type", JSONCheck.isJSON(message.value) ? "application/json" : "text/plain; charset=utf-8"),
            ("event-id", eventID()),
            ("event-type", "application/json"),
            ("event-time", goTime()),
            ("event-namespace", namespace),
            ("funcd-kafka-topic", message.topic),
            ("funcd-kafka-partition", String(message.partition)),
            ("funcd-kafka-offset", String(message.offset)),
            ("funcd-kafka-timestamp", String(message.timestamp)),
        ]
        if let key = message.key {
            headers.append(("funcd-kafka-key", String(decoding: key, as: UTF8.self)))
        }
        for (name, value) in message.headers {
            headers.append(("funcd-kafka-header-\(name)", value))
        }
        return headers
    }

    /// 15 URL-safe characters from 11 random bytes, as the kafka-trigger made them.
    static func eventID() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<11).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var characters: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in bytes {
            accumulator = (accumulator << 8) | UInt32(byte)
            bits += 8
            while bits >= 6 {
                bits -= 6
                characters.append(alphabet[Int((accumulator >> UInt32(bits)) & 63)])
            }
        }
        if bits > 0 { characters.append(alphabet[Int((accumulator << UInt32(6 - bits)) & 63)]) }
        return String(decoding: characters, as: UTF8.self)
    }

    /// Now in UTC, the way Go prints a time: `2018-05-18 05:40:42.881137473 +0000 UTC`.
    static func goTime() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let nanoseconds = String(now.tv_nsec)
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2)) "
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: 9 - nanoseconds.count) + nanoseconds + " +0000 UTC"
    }
}

/// Whether bytes are one JSON value (RFC 8259), without building it: the kafka-trigger sent a
/// JSON content type only for values that parse, and the interpreters parse them themselves.
enum JSONCheck {
    static func isJSON(_ bytes: [UInt8]) -> Bool {
        var index = 0
        var depth = 0
        guard value(bytes, &index, &depth) else { return false }
        skipSpace(bytes, &index)
        return index == bytes.count
    }

    private static func skipSpace(_ bytes: [UInt8], _ index: inout Int) {
        while index < bytes.count, [32, 9, 10, 13].contains(bytes[index]) { index += 1 }
    }

    private static func value(_ bytes: [UInt8], _ index: inout Int, _ depth: inout Int) -> Bool {
        skipSpace(bytes, &index)
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = bytes[index] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            let object = close == UInt8(ascii: "}")
            depth += 1
            guard depth < 512 else { return false }
            index += 1
            skipSpace(bytes, &index)
            if index < bytes.count, bytes[index] == close {
                index += 1
                depth -= 1
                return true
            }
            while true {
                if object {
                    skipSpace(bytes, &index)
                    guard string(bytes, &index) else { return false }
                    skipSpace(bytes, &index)
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
                    index += 1
                }
                guard value(bytes, &index, &depth) else { return false }
                skipSpace(bytes, &index)
                guard index < bytes.count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == close else { return false }
                index += 1
                depth -= 1
                return true
            }
        case UInt8(ascii: "\""):
            return string(bytes, &index)
        case UInt8(ascii: "t"): return literal(bytes, &index, "true")
        case UInt8(ascii: "f"): return literal(bytes, &index, "false")
        case UInt8(ascii: "n"): return literal(bytes, &index, "null")
        default:
            return number(bytes, &index)
        }
    }

    private static func literal(_ bytes: [UInt8], _ index: inout Int, _ word: String) -> Bool {
        let expected = Array(word.utf8)
        guard bytes.count - index >= expected.count, Array(bytes[index..<index + expected.count]) == expected else {
            return false
        }
        index += expected.count
        return true
    }

    private static func string(_ bytes: [UInt8], _ index: inout Int) -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return true
            }
            if byte < 0x20 { return false }
            index += byte == UInt8(ascii: "\\") ? 2 : 1
        }
        return false
    }

    private static func number(_ bytes: [UInt8], _ index: inout Int) -> Bool {
        let start = index
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        let digitsStart = index
        while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
        guard index > digitsStart else { return false }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let fraction = index
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
            guard index > fraction else { return false }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            let exponent = index
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
            guard index > exponent else { return false }
        }
        return index > start
    }
}
