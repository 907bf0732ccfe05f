internal import CRdKafka
import FuncdCore

/// One consumed message on its way through the trigger: the record the host sees, the
/// partition it belongs to and how often it was tried. It travels as its Invocation's `reply`.
///
/// `@unchecked Sendable`: `attempts` and `partition` are only touched under the consumer's lock
/// (set before the message is submitted, read after it is handed back).
final class KafkaMessage: @unchecked Sendable {
    let record: KafkaRecord
    /// What the message holds in memory, for the backlog's byte bound (kept here: the record is
    /// cold in the cache by the time its message leaves the backlog).
    let size: Int
    var partition: KafkaPartition?
    var attempts = 0
    /// Its entry in the worker's in-flight table while the handler has it (-1: none).
    var inFlightEntry = -1
    /// The trace of its last call (each try is a call, with a span of its own), for the headers
    /// of its dead letter; nil until it is first handed to the handler.
    var trace: CallTrace?

    init(record: KafkaRecord) {
        self.record = record
        self.size = record.value.count + (record.key?.count ?? 0) + 256
    }

    var topic: String { record.topic }
    var offset: Int64 { record.offset }
    var key: [UInt8]? { record.key }
    var value: [UInt8] { record.value }
    var headers: [(String, String)] { record.headers }
}

/// Copies messages out of librdkafka on the poll thread. Topic names are looked up once per
/// topic handle rather than decoded for every message.
struct KafkaMessageReader {
    private var topics: [OpaquePointer: String] = [:]

    mutating func copy(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaMessage {
        let message = pointer.pointee
        let topic: String
        if let known = topics[message.rkt] {
            topic = known
        } else {
            topic = String(cString: rd_kafka_topic_name(message.rkt))
            topics[message.rkt] = topic
        }
        let value = message.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: message.len)) } ?? []
        let key = message.key.map { Array(UnsafeRawBufferPointer(start: $0, count: message.key_len)) }
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(pointer, &type)
        var headers: [(String, String)] = []
        var list: OpaquePointer? = nil
        if rd_kafka_message_headers(pointer, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>? = nil
            var bytes: UnsafeRawPointer? = nil
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &bytes, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                if let name {
                    let text = bytes.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: size), as: UTF8.self) } ?? ""
                    headers.append((String(cString: name), text))
                }
                index += 1
            }
        }
        let record = KafkaRecord(
            topic: topic, partition: message.partition, offset: message.offset, key: key, value: value,
            timestamp: timestamp, headers: headers, eventID: KafkaEvent.eventID(),
            eventTime: KafkaEvent.goTime())
        return KafkaMessage(record: record)
    }
}

/// A partition's messages waiting their turn, oldest first: a ring buffer (a backlog holds
/// thousands, taken one at a time) that takes a failed message back in front. Its capacity is a
/// power of two, so positions wrap with a mask.
struct PendingMessages {
    private var slots: [KafkaMessage?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ message: KafkaMessage) {
        if count == slots.count { grow() }
        slots[(head + count) & (slots.count - 1)] = message
        count += 1
    }

    mutating func takeFirst() -> KafkaMessage {
        let message = slots[head].take()!
        head = (head + 1) & (slots.count - 1)
        count -= 1
        return message
    }

    mutating func putBack(_ message: KafkaMessage) {
        if count == slots.count { grow() }
        head = (head + slots.count - 1) & (slots.count - 1)
        slots[head] = message
        count += 1
    }

    /// Empties the queue; returns the bytes it held.
    mutating func removeAll() -> Int {
        var bytes = 0
        while !isEmpty { bytes += takeFirst().size }
        slots = []
        head = 0
        return bytes
    }

    private mutating func grow() {
        var larger = [KafkaMessage?](repeating: nil, count: max(16, slots.count * 2))
        for index in 0..<count { larger[index] = slots[(head + index) & (slots.count - 1)] }
        slots = larger
        head = 0
    }
}
