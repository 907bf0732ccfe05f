import FuncdCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The request a Kafka message becomes for a host that does not build its event itself, with
/// the headers the kubeless kafka-trigger sent (`event-id`, `event-type`, `event-time`,
/// `event-namespace`, a JSON content type when the value is JSON) and the message's own facts as
/// `funcd-kafka-*` headers, which the glue turns into `extensions` (the HTTP server drops any such
/// header a client sends).
enum KafkaEvent {
    static let headerPrefix = "funcd-kafka-"

    static func headers(for record: KafkaRecord) -> [(String, String)] {
        var headers: [(String, String)] = [
            ("Content-Type", record.isJSON ? "application/json" : "text/plain; charset=utf-8"),
            ("event-id", record.eventID),
            ("event-type", "application/json"),
            ("event-time", record.eventTime),
            ("event-namespace", KafkaRecord.namespace),
            ("funcd-kafka-topic", record.topic),
            ("funcd-kafka-partition", String(record.partition)),
            ("funcd-kafka-offset", String(record.offset)),
            ("funcd-kafka-timestamp", String(record.timestamp)),
        ]
        if let key = record.key {
            headers.append(("funcd-kafka-key", String(decoding: key, as: UTF8.self)))
        }
        for (name, value) in record.headers {
            headers.append(("funcd-kafka-header-\(name)", value))
        }
        return headers
    }

    /// 15 URL-safe characters from 11 random bytes, as the kafka-trigger made them. The bytes
    /// come from a generator seeded by the system's (an id per message must not cost system
    /// calls); ids need to be unique, not secret.
    static func eventID() -> String {
        var bits = (EventIDSource.shared.next(), EventIDSource.shared.next())
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return String(unsafeUninitializedCapacity: 15) { buffer in
            for index in 0..<15 {
                // 6 random bits per character (90 bits; the kafka-trigger drew 88).
                let word = index < 10 ? bits.0 : bits.1
                buffer[index] = alphabet.utf8Start[Int(word & 63)]
                if index < 10 { bits.0 >>= 6 } else { bits.1 >>= 6 }
            }
            return 15
        }
    }

    /// Now in UTC, the way Go prints a time: `2018-05-18 05:40:42.881137473 +0000 UTC`.
    static func goTime() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(unsafeUninitializedCapacity: 39) { buffer in
            var index = 0
            func digits(_ value: Int, _ width: Int) {
                var rest = value
                for place in stride(from: width - 1, through: 0, by: -1) {
                    buffer[index + place] = UInt8(48 + rest % 10)
                    rest /= 10
                }
                index += width
            }
            func byte(_ character: UInt8) {
                buffer[index] = character
                index += 1
            }
            digits(Int(parts.tm_year) + 1900, 4)
            byte(UInt8(ascii: "-"))
            digits(Int(parts.tm_mon) + 1, 2)
            byte(UInt8(ascii: "-"))
            digits(Int(parts.tm_mday), 2)
            byte(UInt8(ascii: " "))
            digits(Int(parts.tm_hour), 2)
            byte(UInt8(ascii: ":"))
            digits(Int(parts.tm_min), 2)
            byte(UInt8(ascii: ":"))
            digits(Int(parts.tm_sec), 2)
            byte(UInt8(ascii: "."))
            digits(Int(now.tv_nsec), 9)
            for character in " +0000 UTC".utf8 { byte(character) }
            return index
        }
    }
}

/// xorshift64* seeded from the system generator: the random bits of event ids.
final class EventIDSource: Sendable {
    static let shared = EventIDSource()
    private let state: Mutex<UInt64>

    init() {
        var system = SystemRandomNumberGenerator()
        state = Mutex(system.next() | 1)
    }

    func next() -> UInt64 {
        state.withLock { state in
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
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
