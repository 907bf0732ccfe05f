internal import CRdKafka
import FuncdCore
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// One consumed message, copied out of librdkafka.
struct KafkaMessage: Sendable {
    var topic: String
    var partition: Int32
    var offset: Int64
    var key: [UInt8]?
    var value: [UInt8]
    var timestamp: Int64
    var headers: [(String, String)]
    var attempts = 0
}

/// The Kafka trigger: consumes the configured topics and calls the handler for every message
/// through the same Invoker (and deadline) as HTTP requests, losing none.
///
/// Delivery is at-least-once: a message's offset is stored (and then committed by librdkafka)
/// only after its handler has finished, and a partition has one message in flight at a time, so
/// its order is kept and a stored offset covers every earlier message. Different partitions run
/// concurrently up to `FUNC_CONCURRENCY`; beyond a bounded backlog the consumer pauses its
/// partitions rather than buffer. A failed call (exception, timeout) is tried again
/// `KAFKA_MAX_RETRIES` times with a doubling backoff, then logged and passed over.
///
/// Threads: a poll thread owns the librdkafka handle's consumer calls; the Invoker hands
/// finished calls back on the host's threads (`deliver`). `@unchecked Sendable`: the partition
/// table and counters are guarded by `lock`; librdkafka's handle is thread-safe for the calls
/// made outside the poll thread (`rd_kafka_offsets_store`).
public final class KafkaConsumer: InvocationSink, Service, @unchecked Sendable {
    /// How a message travels through an Invocation.
    final class Reply {
        let message: KafkaMessage
        init(_ message: KafkaMessage) { self.message = message }
    }

    struct PartitionKey: Hashable {
        var topic: String
        var partition: Int32
    }

    final class Partition {
        var busy = false
        var pending: [KafkaMessage] = []
        /// Taken away by a rebalance: its message in flight may finish, nothing more starts.
        var revoked = false
    }

    /// Lets librdkafka's rebalance callback, set up before the consumer exists, reach it.
    final class RebalanceLink: @unchecked Sendable {
        weak var consumer: KafkaConsumer?
    }

    let settings: KafkaConfiguration
    let invoker: Invoker
    let logger: Logger
    let concurrency: Int
    let shutdownNanoseconds: UInt64
    let handle: OpaquePointer
    /// Sends replies (`reply-to`) and dead letters.
    let producer: KafkaProducer
    let metrics: KafkaMetrics
    var lagMeasuredAt: UInt64 = 0

    let lock = ConditionLock()
    var partitions: [PartitionKey: Partition] = [:]
    var ready: [PartitionKey] = []
    var retries: [(due: UInt64, key: PartitionKey)] = []
    var inFlight = 0
    var buffered = 0
    var paused = false
    var stopping = false
    var pollExited = false
    /// Set once the handle is destroyed: late answers store nothing.
    var closed = false

    /// Messages held beyond those in flight before the partitions are paused.
    var backlogLimit: Int { max(64, 8 * concurrency) }

    public init(configuration: Configuration, invoker: Invoker, logger: Logger) throws(FuncdError) {
        guard let settings = configuration.kafka else {
            throw FuncdError(.configuration, "no Kafka configuration")
        }
        self.settings = settings
        self.invoker = invoker
        self.logger = logger
        self.concurrency = configuration.concurrency
        self.shutdownNanoseconds = UInt64(configuration.shutdownTimeoutSeconds * 1e9)
        self.metrics = KafkaMetrics(registry: invoker.metrics.registry)

        let conf = rd_kafka_conf_new()
        let link = RebalanceLink()
        rd_kafka_conf_set_opaque(conf, Unmanaged.passRetained(link).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { handle, error, list, opaque in
            let link = Unmanaged<RebalanceLink>.fromOpaque(opaque!).takeUnretainedValue()
            link.consumer?.rebalance(error, list, handle: handle)
        }
        var error = [CChar](repeating: 0, count: 512)
        func text(_ buffer: [CChar]) -> String {
            String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let userSet = Set(settings.properties.dropFirst().map(\.0)).subtracting(KafkaConfiguration.optionalProperties)
        for (name, value) in settings.properties {
            let result = rd_kafka_conf_set(conf, name, value, &error, error.count)
            if result == RD_KAFKA_CONF_UNKNOWN && KafkaConfiguration.optionalProperties.contains(name) && !userSet.contains(name) {
                continue  // an older librdkafka (Debian's 2.0.2) has no such property
            }
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw FuncdError(.configuration, "Kafka property \(name)=\(value): \(text(error))")
            }
        }
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &error, error.count) else {
            throw FuncdError(.configuration, "cannot create the Kafka consumer: \(text(error))")
        }
        self.handle = handle
        self.producer = try KafkaProducer(settings: settings)
        link.consumer = self
        rd_kafka_poll_set_consumer(handle)
        let topics = rd_kafka_topic_partition_list_new(Int32(settings.topics.count))
        for topic in settings.topics {
            rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA)
        }
        let result = rd_kafka_subscribe(handle, topics)
        rd_kafka_topic_partition_list_destroy(topics)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw FuncdError(.configuration, "cannot subscribe to \(settings.topics): \(String(cString: rd_kafka_err2str(result)))")
        }
    }

    // MARK: - Service

    public func run() async throws {
        logger.info(
            "consuming", metadata: ["funcd.kafka.topics": "\(settings.topics)", "funcd.kafka.group": "\(settings.group)"])
        NativeThread.start(stackSize: 1024 * 1024) { [self] in poll() }
        try? await gracefulShutdown()
        stop()
    }

    /// SIGTERM: no new message starts; those in flight finish (up to SHUTDOWN_TIMEOUT); what was
    /// handled is committed; the group is left. What was fetched and not started is consumed
    /// again by whoever gets the partition.
    func stop() {
        let deadline = MonotonicClock.nanoseconds() &+ shutdownNanoseconds
        lock.withLock {
            stopping = true
            while inFlight > 0 && MonotonicClock.nanoseconds() < deadline {
                lock.wait(untilNanoseconds: min(deadline, MonotonicClock.nanoseconds() &+ 50_000_000))
            }
            while !pollExited { lock.wait(untilNanoseconds: MonotonicClock.nanoseconds() &+ 50_000_000) }
        }
        // Late answers (past SHUTDOWN_TIMEOUT) must not touch the handle from here on.
        lock.withLock { closed = true }
        let committed = rd_kafka_commit(handle, nil, 0)
        if committed != RD_KAFKA_RESP_ERR_NO_ERROR && committed != RD_KAFKA_RESP_ERR__NO_OFFSET {
            logger.warning("final commit failed", metadata: [LogKeys.error: "\(String(cString: rd_kafka_err2str(committed)))"])
        }
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
        logger.info("consumer closed")
    }

    // MARK: - The poll thread

    private func poll() {
        while true {
            let (stop, pause, resume, due) = lock.withLock { () -> (Bool, Bool, Bool, [PartitionKey]) in
                if stopping { return (true, false, false, []) }
                let now = MonotonicClock.nanoseconds()
                var due: [PartitionKey] = []
                retries.removeAll { entry in
                    guard entry.due <= now else { return false }
                    due.append(entry.key)
                    return true
                }
                let pause = !paused && buffered >= backlogLimit
                let resume = paused && buffered <= backlogLimit / 2
                if pause { paused = true }
                if resume { paused = false }
                return (false, pause, resume, due)
            }
            if stop { break }
            if pause { setPaused(true) }
            if resume { setPaused(false) }
            if !due.isEmpty { startReady(adding: due) }
            measureLag()

            guard let pointer = rd_kafka_consumer_poll(handle, 100) else { continue }
            let message = pointer.pointee
            if message.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if message.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    logger.warning(
                        "Kafka consumer error", metadata: [LogKeys.error: "\(String(cString: rd_kafka_err2str(message.err)))"])
                }
                rd_kafka_message_destroy(pointer)
                continue
            }
            let copied = Self.copy(pointer)
            rd_kafka_message_destroy(pointer)
            accept(copied)
        }
        lock.withLock {
            pollExited = true
            lock.signal()
        }
    }

    /// Every few seconds: each assigned partition's lag, from librdkafka's cached watermarks.
    private func measureLag() {
        let now = MonotonicClock.nanoseconds()
        guard now &- lagMeasuredAt >= 5_000_000_000 else { return }
        lagMeasuredAt = now
        var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>? = nil
        guard rd_kafka_assignment(handle, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR, let assignment else { return }
        defer { rd_kafka_topic_partition_list_destroy(assignment) }
        guard rd_kafka_position(handle, assignment) == RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        for index in 0..<Int(assignment.pointee.cnt) {
            let entry = assignment.pointee.elems[index]
            var low: Int64 = 0
            var high: Int64 = 0
            guard entry.offset >= 0,
                rd_kafka_get_watermark_offsets(handle, entry.topic, entry.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
                high >= 0
            else { continue }
            metrics.lag(max(0, high - entry.offset), topic: String(cString: entry.topic), partition: entry.partition)
        }
    }

    private static func copy(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaMessage {
        let message = pointer.pointee
        let topic = String(cString: rd_kafka_topic_name(message.rkt))
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
        return KafkaMessage(
            topic: topic, partition: message.partition, offset: message.offset, key: key, value: value,
            timestamp: timestamp, headers: headers)
    }

    private func setPaused(_ pause: Bool) {
        var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>? = nil
        guard rd_kafka_assignment(handle, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR, let assignment else { return }
        defer { rd_kafka_topic_partition_list_destroy(assignment) }
        _ = pause ? rd_kafka_pause_partitions(handle, assignment) : rd_kafka_resume_partitions(handle, assignment)
    }

    // MARK: - Rebalance (on the poll thread, inside rd_kafka_consumer_poll)

    func rebalance(
        _ error: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
        handle: OpaquePointer?
    ) {
        var keys: [PartitionKey] = []
        if let list {
            for index in 0..<Int(list.pointee.cnt) {
                let entry = list.pointee.elems[index]
                keys.append(PartitionKey(topic: String(cString: entry.topic), partition: entry.partition))
            }
        }
        if error == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            lock.withLock {
                for key in keys { partitions[key] = Partition() }
            }
            rd_kafka_assign(handle, list)
            logger.info("partitions assigned", metadata: ["funcd.kafka.partitions": "\(keys.map { "\($0.topic)/\($0.partition)" })"])
            return
        }
        // Revoked: what was fetched and not started is dropped (the next owner fetches it from
        // the committed offset); what is in flight finishes (up to SHUTDOWN_TIMEOUT) and is
        // committed before the partitions go.
        let deadline = MonotonicClock.nanoseconds() &+ shutdownNanoseconds
        lock.withLock {
            for key in keys {
                guard let partition = partitions[key] else { continue }
                partition.revoked = true
                buffered -= partition.pending.count
                partition.pending.removeAll()
            }
            ready.removeAll { keys.contains($0) }
            while keys.contains(where: { partitions[$0]?.busy == true }) && MonotonicClock.nanoseconds() < deadline {
                lock.wait(untilNanoseconds: min(deadline, MonotonicClock.nanoseconds() &+ 50_000_000))
            }
            for key in keys { partitions[key] = nil }
        }
        let committed = rd_kafka_commit(handle, nil, 0)
        if committed != RD_KAFKA_RESP_ERR_NO_ERROR && committed != RD_KAFKA_RESP_ERR__NO_OFFSET {
            logger.warning("commit before a rebalance failed", metadata: [LogKeys.error: "\(String(cString: rd_kafka_err2str(committed)))"])
        }
        rd_kafka_assign(handle, nil)
        logger.info("partitions revoked", metadata: ["funcd.kafka.partitions": "\(keys.map { "\($0.topic)/\($0.partition)" })"])
    }

    // MARK: - Scheduling

    /// A message arrives: it runs now if its partition is free and there is room, else it waits.
    private func accept(_ message: KafkaMessage) {
        let key = PartitionKey(topic: message.topic, partition: message.partition)
        logger.trace("fetched", metadata: ["funcd.kafka.partition": "\(message.partition)", "funcd.kafka.offset": "\(message.offset)"])
        let start: KafkaMessage? = lock.withLock {
            let partition = partitions[key] ?? {
                let created = Partition()
                partitions[key] = created
                return created
            }()
            if !partition.busy && partition.pending.isEmpty && inFlight < concurrency && !stopping {
                partition.busy = true
                inFlight += 1
                return message
            }
            partition.pending.append(message)
            buffered += 1
            if !partition.busy { ready.append(key) }
            return nil
        }
        if let start { submit([start]) }
    }

    /// Starts waiting messages of free partitions while there is room.
    private func startReady(adding keys: [PartitionKey] = []) {
        let starts: [KafkaMessage] = lock.withLock {
            ready.append(contentsOf: keys)
            if stopping { return [] }
            var starts: [KafkaMessage] = []
            while inFlight < concurrency, !ready.isEmpty {
                let key = ready.removeFirst()
                guard let partition = partitions[key], !partition.busy, !partition.pending.isEmpty else { continue }
                partition.busy = true
                inFlight += 1
                buffered -= 1
                starts.append(partition.pending.removeFirst())
            }
            return starts
        }
        if !starts.isEmpty { submit(starts) }
    }

    private func submit(_ messages: [KafkaMessage]) {
        invoker.submit(
            messages.map { message in
                Invocation(
                    method: "POST", target: "/", headers: KafkaEvent.headers(for: message), body: message.value,
                    sink: self, reply: Reply(message))
            })
    }

    // MARK: - Finished calls (InvocationSink)

    public func deliver(_ batch: [Invocation]) {
        // Replies and dead letters are sent here, on the host's hand-back thread, before the
        // offset is stored; their partition stays busy meanwhile, so order holds.
        for invocation in batch {
            guard let reply = invocation.reply as? Reply else { continue }
            let message = reply.message
            let result = invocation.result
            var failed = result.map { $0.isFailure || $0.status >= 400 } ?? true
            var reason = result?.error ?? "status \(result?.status ?? 0)"
            var resend = false
            if !failed, let replyTo = message.headers.first(where: { $0.0.equalsIgnoringASCIICase("reply-to") })?.1 {
                let correlation = message.headers.first { $0.0.equalsIgnoringASCIICase("correlation-id") }?.1
                    ?? "\(message.topic)/\(message.partition)/\(message.offset)"
                if let error = producer.send(
                    topic: replyTo, key: message.key, value: result?.body ?? [], headers: [("correlation-id", correlation)])
                {
                    failed = true
                    reason = "the reply to \(replyTo) was not delivered: \(error)"
                }
            }
            if failed, message.attempts >= settings.maxRetries, let deadLetters = settings.deadLetterTopic {
                let headers = message.headers + [
                    ("funcd-error", String(reason.prefix(4000))), ("funcd-source-topic", message.topic),
                    ("funcd-source-partition", String(message.partition)), ("funcd-source-offset", String(message.offset)),
                    ("funcd-attempts", String(message.attempts + 1)),
                ]
                if let error = producer.send(topic: deadLetters, key: message.key, value: message.value, headers: headers) {
                    // Not stored: tried again (handler included) until the dead letter goes out.
                    resend = true
                    reason = "dead letter to \(deadLetters) not delivered: \(error)"
                } else {
                    metrics.count(.deadLettered, topic: message.topic)
                    logger.error(
                        "Kafka message failed after its retries; sent to the dead-letter topic",
                        metadata: Self.place(message, ["funcd.kafka.dlq": "\(deadLetters)", LogKeys.error: "\(reason)"]))
                    failed = false
                }
            }
            finish(message, failed: failed, reason: reason, resend: resend)
        }
        startReady()
    }

    static func place(_ message: KafkaMessage, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "funcd.kafka.topic": "\(message.topic)", "funcd.kafka.partition": "\(message.partition)",
            "funcd.kafka.offset": "\(message.offset)",
        ]
        metadata.merge(extra) { _, new in new }
        return metadata
    }

    /// The books for one finished message: store its offset, or queue it again after a backoff.
    private func finish(_ original: KafkaMessage, failed: Bool, reason: String, resend: Bool) {
        var message = original
        let key = PartitionKey(topic: message.topic, partition: message.partition)
        lock.withLock {
            defer { lock.signal() }
            guard let partition = partitions[key] else { return }
            partition.busy = false
            inFlight -= 1
            if (resend || (failed && message.attempts < settings.maxRetries)) && !stopping && !partition.revoked {
                if !resend { message.attempts += 1 }
                metrics.count(.retried, topic: message.topic)
                partition.pending.insert(message, at: 0)
                buffered += 1
                let backoff = UInt64(100_000_000) << UInt64(min(max(message.attempts, 1) - 1, 6))
                retries.append((MonotonicClock.nanoseconds() &+ backoff, key))
                logger.warning(
                    "Kafka message failed; trying again",
                    metadata: Self.place(message, ["funcd.kafka.attempt": "\(message.attempts)", LogKeys.error: "\(reason)"]))
                return
            }
            if failed {
                metrics.count(.passedOver, topic: message.topic)
                logger.error(
                    "Kafka message failed after its retries; passed over", metadata: Self.place(message, [LogKeys.error: "\(reason)"]))
            } else if !reason.hasPrefix("dead letter") {
                metrics.count(.handled, topic: message.topic)
            }
            if !partition.pending.isEmpty && !partition.revoked { ready.append(key) }
            // Stored under the lock so that closing cannot race it; the call is quick.
            if !closed && !(failed && partition.revoked) { store(message) }
        }
    }

    /// Marks `message` handled: its partition resumes after it at the next commit.
    private func store(_ message: KafkaMessage) {
        let list = rd_kafka_topic_partition_list_new(1)
        let entry = rd_kafka_topic_partition_list_add(list, message.topic, message.partition)
        entry?.pointee.offset = message.offset + 1
        let result = rd_kafka_offsets_store(handle, list)
        logger.trace("stored", metadata: ["funcd.kafka.partition": "\(message.partition)", "funcd.kafka.offset": "\(message.offset + 1)", "funcd.kafka.result": "\(result.rawValue)"])
        rd_kafka_topic_partition_list_destroy(list)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            // The partition went to another member (a rebalance): it will see this message again.
            logger.debug("offset not stored", metadata: [LogKeys.error: "\(String(cString: rd_kafka_err2str(result)))"])
        }
    }
}
