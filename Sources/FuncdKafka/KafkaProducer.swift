internal import CRdKafka
import FuncdCore

/// Produces the few messages the trigger itself sends: a handler's result to a `reply-to` topic
/// and a message that failed all its tries to the dead-letter topic. Each send waits for the
/// broker's acknowledgement, because the consumed message's offset is stored only after it: a
/// reply or a dead letter is never lost to a crash in between (at worst sent twice).
///
/// `@unchecked Sendable`: librdkafka's producer handle is thread-safe.
final class KafkaProducer: @unchecked Sendable {
    let handle: OpaquePointer

    /// Sends time out after this long; the consumed message is then tried again.
    static let timeoutMilliseconds: Int32 = 10_000

    init(settings: KafkaConfiguration) throws(FuncdError) {
        let conf = rd_kafka_conf_new()
        var error = [CChar](repeating: 0, count: 512)
        func text(_ buffer: [CChar]) -> String {
            String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        // The connection settings only: the consumer's own properties mean nothing to a producer.
        for (name, value) in settings.properties where Self.shared(name) {
            if rd_kafka_conf_set(conf, name, value, &error, error.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw FuncdError(.configuration, "Kafka property \(name)=\(value): \(text(error))")
            }
        }
        rd_kafka_conf_set(conf, "enable.idempotence", "true", &error, error.count)
        // Each send learns its own outcome through the delivery report, served by whichever
        // thread's flush (or poll) runs it. The report owns the reference `send` retained for it:
        // a message still queued when its sender gave up keeps its outcome alive until then.
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
            guard let message, let opaque = message.pointee._private else { return }
            let outcome = Unmanaged<Outcome>.fromOpaque(opaque).takeRetainedValue()
            let error = message.pointee.err
            outcome.report(error == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : String(cString: rd_kafka_err2str(error)))
        }
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &error, error.count) else {
            throw FuncdError(.configuration, "cannot create the Kafka producer: \(text(error))")
        }
        self.handle = handle
    }

    static func shared(_ property: String) -> Bool {
        property == "bootstrap.servers" || property.hasPrefix("security.") || property.hasPrefix("sasl.")
            || property.hasPrefix("ssl.") || property == "client.id"
    }

    /// What the delivery report said about one send. Written by whichever thread serves the
    /// report, read by the sender: under a lock, and waited for, since another sender's flush
    /// may serve this one's report after this one's flush returned.
    final class Outcome: @unchecked Sendable {
        private let lock = ConditionLock()
        private var done = false
        private var error: String?

        func report(_ error: String?) {
            lock.withLock {
                self.error = error
                done = true
            }
            lock.broadcast()
        }

        /// The report's error (nil: acknowledged), or nil and false if none came by `deadline`.
        func wait(untilNanoseconds deadline: UInt64) -> (reported: Bool, error: String?) {
            lock.lock()
            defer { lock.unlock() }
            while !done && MonotonicClock.nanoseconds() < deadline {
                lock.wait(untilNanoseconds: deadline)
            }
            return (done, error)
        }
    }

    /// Sends one message and waits for it to be acknowledged; nil when it was, else the error.
    func send(topic: String, key: [UInt8]?, value: [UInt8], headers: [(String, String)]) -> String? {
        let list = rd_kafka_headers_new(headers.count)
        for (name, content) in headers {
            var bytes = Array(content.utf8)
            rd_kafka_header_add(list, name, -1, &bytes, bytes.count)
        }
        let outcome = Outcome()
        let deadline = MonotonicClock.nanoseconds() + UInt64(Self.timeoutMilliseconds) * 1_000_000
        // Released by the delivery report (or below, if librdkafka never took the message).
        let opaque = Unmanaged.passRetained(outcome).toOpaque()
        let produced: OpaquePointer? = topic.withCString { topicName in
            value.withUnsafeBytes { payload in
                (key ?? []).withUnsafeBytes { keyBytes in
                    var fields = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: key == nil ? 5 : 6)
                    fields[0].vtype = RD_KAFKA_VTYPE_TOPIC
                    fields[0].u.cstr = topicName
                    fields[1].vtype = RD_KAFKA_VTYPE_VALUE
                    fields[1].u.mem.ptr = UnsafeMutableRawPointer(mutating: payload.baseAddress)
                    fields[1].u.mem.size = payload.count
                    fields[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                    fields[2].u.i = RD_KAFKA_MSG_F_COPY
                    // librdkafka owns the headers once the call succeeds.
                    fields[3].vtype = RD_KAFKA_VTYPE_HEADERS
                    fields[3].u.headers = list
                    fields[4].vtype = RD_KAFKA_VTYPE_OPAQUE
                    fields[4].u.ptr = opaque
                    if key != nil {
                        fields[5].vtype = RD_KAFKA_VTYPE_KEY
                        fields[5].u.mem.ptr = UnsafeMutableRawPointer(mutating: keyBytes.baseAddress)
                        fields[5].u.mem.size = keyBytes.count
                    }
                    return rd_kafka_produceva(handle, fields, fields.count)
                }
            }
        }
        if let produced {
            let message = String(cString: rd_kafka_error_string(produced))
            rd_kafka_error_destroy(produced)
            rd_kafka_headers_destroy(list)
            Unmanaged<Outcome>.fromOpaque(opaque).release()
            return message
        }
        // Serve delivery reports until this message's has come (another sender's poll may serve
        // it instead) or the time is up. Not rd_kafka_flush: that waits for every queued message,
        // so one stuck message (a reply-to topic that does not exist waits for its metadata) would
        // hold every later send for the whole timeout.
        while true {
            let (reported, error) = outcome.wait(untilNanoseconds: MonotonicClock.nanoseconds())
            if reported { return error }
            if MonotonicClock.nanoseconds() >= deadline { break }
            rd_kafka_poll(handle, 20)
        }
        return "no delivery report within \(Self.timeoutMilliseconds) ms"
    }

    deinit {
        rd_kafka_flush(handle, Self.timeoutMilliseconds)
        rd_kafka_destroy(handle)
    }
}
