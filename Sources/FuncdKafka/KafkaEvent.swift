import FuncdCore

#if canImport(Glibc)
import Glibc
#endif

/// The request a Kafka message becomes for a host that does not build its event itself, with
/// the headers the kubeless kafka-trigger sent (`event-id`, `event-type`, `event-time`,
/// `event-namespace`, a JSON content type when the value is JSON) and the message's own facts as
/// `funcd-kafka-*` headers, which the glue turns into `extensions` (the HTTP server drops any such
/// header a client sends).
enum KafkaEvent {
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

    /// The headers that carry `trace` to whoever reads a message funcd sends.
    static func traceHeaders(_ trace: CallTrace) -> [(String, String)] {
        var headers = [("traceparent", trace.traceparent)]
        if let state = trace.tracestate { headers.append(("tracestate", state)) }
        return headers
    }

    /// 15 URL-safe characters from 11 random bytes, as the kafka-trigger made them. The bytes
    /// come from a generator seeded by the system's (an id per message must not cost system
    /// calls); ids need to be unique, not secret.
    static func eventID() -> String {
        var bits = RandomBits.shared.next128()
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
