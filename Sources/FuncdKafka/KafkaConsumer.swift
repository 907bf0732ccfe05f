internal import CRdKafka
import FuncdCore
import FuncdSystem
import Logging
import Prometheus
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The Kafka trigger: consumes the configured topics and calls the handler for every message
/// through the same Invoker (and deadline) as HTTP requests, losing none.
///
/// Delivery is at-least-once: a message's offset is stored (and then committed by librdkafka)
/// only after its handler has finished, and a partition has one message in flight at a time, so
/// its order is kept and a stored offset covers every earlier message. Different partitions run
/// concurrently up to `FUNC_CONCURRENCY`. A failed call (exception, timeout) is tried again
/// `KAFKA_MAX_RETRIES` times with a doubling backoff, then dead-lettered or logged and passed
/// over.
///
/// Throughput comes from never waiting between messages: the next message of a partition is
/// submitted by the hand-back of the previous one, on the host's own thread, so a busy host
/// goes from one message to the next without a thread switch; the poll thread takes messages
/// from librdkafka a batch at a time into a bounded backlog (see `KafkaConsumer+Polling`).
///
/// Threads: a poll thread owns the librdkafka handle's consumer calls; the Invoker hands
/// finished calls back on the host's threads (`deliver`); the producer's report thread answers
/// replies and dead letters (`sent`). Only the poll thread ever waits on the broker.
///
/// `@unchecked Sendable`: the scheduler and the flags beside it are guarded by `lock`;
/// librdkafka's handle is thread-safe for the calls made outside the poll thread
/// (`rd_kafka_offsets_store`, `rd_kafka_queue_yield`).
public final class KafkaConsumer: InvocationSink, Service, @unchecked Sendable {
    /// Lets librdkafka's rebalance callback, set up before the consumer exists, reach it.
    final class RebalanceLink: @unchecked Sendable {
        weak var consumer: KafkaConsumer?
    }

    let settings: KafkaConfiguration
    /// `FUNC_CLOUDEVENTS`: whether messages are read as CloudEvents.
    let readsCloudEvents: Bool
    let invoker: Invoker
    let logger: Logger
    let shutdownNanoseconds: UInt64
    let handle: OpaquePointer
    /// The consumer queue the poll thread reads (and a finished call may wake).
    let queue: OpaquePointer
    /// Sends replies (`reply-to`) and dead letters.
    let producer: KafkaProducer
    let metrics: KafkaMetrics
    /// What this worker has with its handler, shared with the supervisor (nil unsupervised).
    let inFlightTable: KafkaInFlightTable?
    var freeInFlightEntries: [Int]
    /// The messages workers died running, as the supervisor counts them (nil unsupervised).
    let workerDeaths: KafkaWorkerDeaths?
    /// The rebalance callback's reference to `RebalanceLink`, released with the handle.
    let linkReference: Unmanaged<RebalanceLink>
    var lagMeasuredAt: UInt64 = 0

    let lock = ConditionLock()
    /// Which message runs next, retries, dead letters, offsets: see PartitionScheduler.
    var scheduler: PartitionScheduler
    /// Since when the backlog has been full (0: it is not).
    var fullSince: UInt64 = 0
    var paused = false
    /// The poll thread waits for the backlog to drain to half: the call that takes it there wakes it.
    var pollWaiting = false
    /// Threads waiting for calls in flight to finish (SIGTERM, a rebalance): each finish wakes them.
    var drainWaiters = 0
    var pollExited = false
    /// Set once the handle is destroyed: late answers store nothing.
    var closed = false

    /// Messages held beyond those in flight; above it the poll thread stops taking more. Small on
    /// purpose: a message is cold in the cache by the time it leaves a long backlog (2,048 ran
    /// ~15 % slower than 512), and librdkafka keeps prefetching behind it anyway.
    static func backlogLimit(concurrency: Int) -> Int { max(512, 8 * concurrency) }
    static let backlogByteLimit = 32 * 1024 * 1024

    public init(
        configuration: Configuration, invoker: Invoker, logger: Logger, inFlight: KafkaInFlightTable? = nil,
        workerDeaths: KafkaWorkerDeaths? = nil
    ) throws(FuncdError) {
        guard let settings = configuration.kafka else {
            throw FuncdError(.configuration, "no Kafka configuration")
        }
        self.settings = settings
        self.readsCloudEvents = configuration.cloudEvents
        self.invoker = invoker
        self.logger = logger
        self.shutdownNanoseconds = UInt64(configuration.shutdownTimeoutSeconds * 1e9)
        let metrics = KafkaMetrics(registry: invoker.metrics.registry)
        self.metrics = metrics
        self.scheduler = PartitionScheduler(
            concurrency: configuration.concurrency, maxRetries: settings.maxRetries, deadLetterTopic: settings.deadLetterTopic,
            backlogLimit: Self.backlogLimit(concurrency: configuration.concurrency), backlogByteLimit: Self.backlogByteLimit,
            handledCounter: { metrics.counter(.handled, topic: $0) })
        self.inFlightTable = inFlight
        self.freeInFlightEntries = Array((0..<(inFlight?.capacity ?? 0)).reversed())
        self.workerDeaths = workerDeaths

        let conf = rd_kafka_conf_new()
        let link = RebalanceLink()
        // Released when the handle is destroyed, or below when it is never made.
        let linkReference = Unmanaged.passRetained(link)
        rd_kafka_conf_set_opaque(conf, linkReference.toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { handle, error, list, opaque in
            let link = Unmanaged<RebalanceLink>.fromOpaque(opaque!).takeUnretainedValue()
            link.consumer?.rebalance(error, list, handle: handle)
        }
        var error = [CChar](repeating: 0, count: 512)
        func text(_ buffer: [CChar]) -> String {
            String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        for (name, value) in settings.librdkafkaProperties {
            let result = rd_kafka_conf_set(conf, name, value, &error, error.count)
            if result == RD_KAFKA_CONF_UNKNOWN && settings.mayPassOver(name) {
                continue  // an older librdkafka (Debian's 2.0.2) has no such property
            }
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                linkReference.release()
                throw FuncdError(.configuration, "Kafka property \(name)=\(value): \(text(error))")
            }
        }
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &error, error.count) else {
            // rd_kafka_new takes the configuration only when it succeeds.
            rd_kafka_conf_destroy(conf)
            linkReference.release()
            throw FuncdError(.configuration, "cannot create the Kafka consumer: \(text(error))")
        }
        let queue = rd_kafka_queue_get_consumer(handle)!
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(settings: settings)
        } catch {
            rd_kafka_queue_destroy(queue)
            rd_kafka_destroy(handle)
            linkReference.release()
            throw error
        }
        self.handle = handle
        self.queue = queue
        self.producer = producer
        self.linkReference = linkReference
        link.consumer = self
        rd_kafka_poll_set_consumer(handle)
        let topics = rd_kafka_topic_partition_list_new(Int32(settings.topics.count))
        for topic in settings.topics {
            rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA)
        }
        let result = rd_kafka_subscribe(handle, topics)
        rd_kafka_topic_partition_list_destroy(topics)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            close()
            throw FuncdError(.configuration, "cannot subscribe to \(settings.topics): \(String(cString: rd_kafka_err2str(result)))")
        }
    }

    // MARK: - Service

    public func run() async throws {
        logger.info(
            "consuming", metadata: ["funcd.kafka.topics": "\(settings.topics)", "funcd.kafka.group": "\(settings.group)"])
        NativeThread.start(stackSize: 1024 * 1024) { [self] in poll() }
        try? await gracefulShutdown()
        await stop()
    }

    /// SIGTERM: no new message starts; those in flight finish, and their replies and dead
    /// letters already queued are acknowledged (up to SHUTDOWN_TIMEOUT); what was handled is
    /// committed; the group is left. What was fetched and not started, or whose send failed and
    /// waited to go again, is consumed again by whoever gets the partition.
    ///
    /// Called from the Service's task once shutdown is requested: the waiting happens on a
    /// thread of its own, not on the cooperative pool.
    func stop() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            NativeThread.start(stackSize: 256 * 1024) { [self] in
                drainAndClose()
                done.resume()
            }
        }
    }

    private func drainAndClose() {
        let deadline = MonotonicClock.nanoseconds() &+ shutdownNanoseconds
        lock.withLock {
            scheduler.stop()
            rd_kafka_queue_yield(queue)
            drainWaiters += 1
            while !scheduler.drained && MonotonicClock.nanoseconds() < deadline {
                lock.wait(untilNanoseconds: min(deadline, MonotonicClock.nanoseconds() &+ 50_000_000))
            }
            while !pollExited { lock.wait(untilNanoseconds: MonotonicClock.nanoseconds() &+ 50_000_000) }
            drainWaiters -= 1
        }
        close()
        logger.info("consumer closed")
    }

    /// Commits what was stored and frees the handles. Late answers (past SHUTDOWN_TIMEOUT) and
    /// late delivery reports do nothing from here on.
    private func close() {
        lock.withLock { closed = true }
        let committed = rd_kafka_commit(handle, nil, 0)
        if committed != RD_KAFKA_RESP_ERR_NO_ERROR && committed != RD_KAFKA_RESP_ERR__NO_OFFSET {
            logger.warning("final commit failed", metadata: [LogKeys.error: "\(String(cString: rd_kafka_err2str(committed)))"])
        }
        producer.close(timeoutMilliseconds: 0)
        rd_kafka_queue_destroy(queue)
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
        linkReference.release()
    }
}
