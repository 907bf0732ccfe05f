internal import CRdKafka
import FuncdCore
import FuncdSystem

/// Produces the few messages the trigger itself sends: a handler's result to a `reply-to` topic
/// and a message that failed all its tries to the dead-letter topic.
///
/// Sending never waits for the broker: `send` queues the message and returns, and its delivery
/// report (acknowledged, or failed once librdkafka gave up after `message.timeout.ms`) is handed
/// to the sender's completion on the producer's own thread, which does nothing but serve those
/// reports. So no interpreter thread, host hand-back or Invoker watchdog ever waits on a slow or
/// frozen broker; the consumer stores the consumed message's offset from the completion.
///
/// `@unchecked Sendable`: librdkafka's producer handle is thread-safe; `stopping` is under `lock`.
final class KafkaProducer: @unchecked Sendable {
    let handle: OpaquePointer

    /// Why a send failed.
    struct Failure: Error {
        var description: String
        /// Sending the same message again cannot succeed: the topic does not exist or may not be
        /// written, or the message is too large. Anything else (a timeout, a broker away) may
        /// pass on a later try.
        var permanent: Bool
    }

    /// One send's completion, owned by librdkafka's copy of the message (its opaque) until the
    /// delivery report runs it, exactly once.
    final class Delivery {
        let completion: (Failure?) -> Void
        init(_ completion: @escaping (Failure?) -> Void) { self.completion = completion }
    }

    private let lock = ConditionLock()
    private var stopping = false
    private var reportThreadExited = false

    init(settings: KafkaConfiguration) throws(FuncdError) {
        let conf = rd_kafka_conf_new()
        var error = [CChar](repeating: 0, count: 512)
        func text(_ buffer: [CChar]) -> String {
            String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        // The connection settings only: the consumer's own properties mean nothing to a producer.
        for (name, value) in settings.librdkafkaProperties where Self.shared(name) {
            if rd_kafka_conf_set(conf, name, value, &error, error.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw FuncdError(.configuration, "Kafka property \(name)=\(value): \(text(error))")
            }
        }
        // How long librdkafka keeps trying one message (connection losses and leader changes
        // included) before reporting it failed (KAFKA_SEND_TIMEOUT); the consumer then sends it
        // again. Not idempotent: each reply or dead letter is one message that funcd itself sends
        // again, so idempotence would save nothing, and an idempotent producer whose send timed
        // out is fenced by the broker and refuses every later message (seen with tansu).
        rd_kafka_conf_set(conf, "message.timeout.ms", "\(settings.sendTimeoutMilliseconds)", &error, error.count)
        // Replies are sent as they come: one at a time, not lingering for a batch.
        rd_kafka_conf_set(conf, "linger.ms", "1", &error, error.count)
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
            guard let message, let opaque = message.pointee._private else { return }
            let delivery = Unmanaged<Delivery>.fromOpaque(opaque).takeRetainedValue()
            let error = message.pointee.err
            delivery.completion(error == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaProducer.failure(error))
        }
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &error, error.count) else {
            // rd_kafka_new frees the configuration only when it succeeds.
            rd_kafka_conf_destroy(conf)
            throw FuncdError(.configuration, "cannot create the Kafka producer: \(text(error))")
        }
        self.handle = handle
        NativeThread.start(stackSize: 256 * 1024) { [self] in serveReports() }
    }

    static func shared(_ property: String) -> Bool {
        property == "bootstrap.servers" || property.hasPrefix("security.") || property.hasPrefix("sasl.")
            || property.hasPrefix("ssl.") || property == "client.id"
    }

    static func failure(_ error: rd_kafka_resp_err_t) -> Failure {
        Failure(
            description: "\(String(cString: rd_kafka_err2str(error))) (\(String(cString: rd_kafka_err2name(error))))",
            permanent: isPermanent(error))
    }

    static func isPermanent(_ error: rd_kafka_resp_err_t) -> Bool {
        switch error {
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION,
            RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
            RD_KAFKA_RESP_ERR_INVALID_RECORD, RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
            return true
        default:
            return false
        }
    }

    /// Queues one message. Returns nil when queued: `completion` then runs exactly once, on the
    /// producer's report thread, with nil (acknowledged) or the failure. Returns the failure when
    /// librdkafka did not take the message (its queue full, say): `completion` never runs.
    func send(
        topic: String, key: [UInt8]?, value: [UInt8], headers: [(String, String)],
        completion: @escaping (Failure?) -> Void
    ) -> Failure? {
        let list = rd_kafka_headers_new(headers.count)
        for (name, content) in headers {
            var bytes = Array(content.utf8)
            rd_kafka_header_add(list, name, -1, &bytes, bytes.count)
        }
        // Released by the delivery report (or below, if librdkafka never took the message).
        let opaque = Unmanaged.passRetained(Delivery(completion)).toOpaque()
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
        guard let produced else { return nil }
        let failure = Self.failure(rd_kafka_error_code(produced))
        rd_kafka_error_destroy(produced)
        rd_kafka_headers_destroy(list)
        Unmanaged<Delivery>.fromOpaque(opaque).release()
        return failure
    }

    /// The report thread: serves delivery reports until the producer closes.
    private func serveReports() {
        while !lock.withLock({ stopping }) {
            rd_kafka_poll(handle, 100)
        }
        lock.withLock {
            reportThreadExited = true
            lock.broadcast()
        }
    }

    /// Waits up to `timeoutMilliseconds` for what is queued to be delivered (their completions
    /// run), then stops the report thread and destroys the handle. What is still queued is
    /// purged: its completions run with a failure, once, here. Call once, after no more sends.
    func close(timeoutMilliseconds: Int32) {
        rd_kafka_flush(handle, timeoutMilliseconds)
        lock.withLock {
            stopping = true
            while !reportThreadExited { lock.wait(untilNanoseconds: MonotonicClock.nanoseconds() &+ 200_000_000) }
        }
        // Their reports release the completions' owners; the consumer, closed by now, does
        // nothing else with them.
        rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        rd_kafka_poll(handle, 0)
        rd_kafka_destroy(handle)
    }
}
