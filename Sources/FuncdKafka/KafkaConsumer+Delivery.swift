internal import CRdKafka
import FuncdCore
import Logging

extension KafkaConsumer {
    // MARK: - Starting

    /// Fetched messages arrive (poll thread): each runs now if its partition is free and there is
    /// a slot, else it waits in its partition's backlog.
    func accept(_ messages: [KafkaMessage]) {
        var actions = PartitionScheduler.Actions()
        lock.withLock {
            scheduler.accept(messages, into: &actions)
            apply(&actions)
        }
        carryOut(actions)
    }

    /// Starts the first waiting message of ready partitions while there are slots.
    func startReady() {
        var actions = PartitionScheduler.Actions()
        lock.withLock {
            scheduler.takeReady(into: &actions)
            apply(&actions)
        }
        carryOut(actions)
    }

    /// What must happen under the lock after a scheduling step: the in-flight table notes the
    /// calls that start, offsets are stored (before closing can race them; the call is quick),
    /// waiting threads are woken. Called with `lock` held.
    func apply(_ actions: inout PartitionScheduler.Actions) {
        for message in actions.starts { began(message) }
        if !closed {
            for message in actions.stores { store(message) }
        }
        if actions.wakePoll {
            // A paused consumer sits in a 100 ms poll: end it so that it resumes (or commits) now.
            if paused || scheduler.wantsSoloCommit { rd_kafka_queue_yield(queue) }
            if pollWaiting { lock.broadcast() }
        }
        if drainWaiters > 0 { lock.broadcast() }
    }

    /// The rest, outside the lock: log and count what happened, queue the sends, submit the calls.
    func carryOut(_ actions: PartitionScheduler.Actions) {
        for event in actions.events { record(event) }
        for outgoing in actions.sends { transmit(outgoing) }
        if !actions.starts.isEmpty { submit(actions.starts) }
    }

    private func record(_ event: PartitionScheduler.Event) {
        switch event {
        case .retried(let message, let reason):
            metrics.count(.retried, topic: message.topic)
            logger.warning(
                "Kafka message failed; trying again",
                metadata: Self.place(message, ["funcd.kafka.attempt": "\(message.attempts)", LogKeys.error: "\(reason)"]))
        case .passedOver(let message, let reason):
            metrics.count(.passedOver, topic: message.topic)
            logger.error(
                "Kafka message failed after its retries; passed over", metadata: Self.place(message, [LogKeys.error: "\(reason)"]))
        case .deadLettered(let message, let topic, let reason):
            metrics.count(.deadLettered, topic: message.topic)
            logger.error(
                "Kafka message failed after its retries; sent to the dead-letter topic",
                metadata: Self.place(message, ["funcd.kafka.dlq": "\(topic)", LogKeys.error: "\(reason)"]))
        case .sendFailed(let message, let reason, let failures):
            logger.warning(
                "Kafka send failed; sending it again",
                metadata: Self.place(message, ["funcd.kafka.send_failures": "\(failures)", LogKeys.error: "\(reason)"]))
        case .sendAbandoned(let message, let reason):
            logger.warning("Kafka send abandoned", metadata: Self.place(message, [LogKeys.error: "\(reason)"]))
        }
    }

    /// The handler has `message` from now on: so says the in-flight table the supervisor reads
    /// if this worker dies. Called with `lock` held.
    private func began(_ message: KafkaMessage) {
        guard let inFlightTable, let entry = freeInFlightEntries.popLast() else { return }
        message.inFlightEntry = entry
        inFlightTable.record(entry, KafkaPlace(topic: message.topic, partition: message.record.partition, offset: message.offset))
    }

    /// The handler gave `message` back (or it never reached it). Called with `lock` held.
    private func ended(_ message: KafkaMessage) {
        guard message.inFlightEntry >= 0, let inFlightTable else { return }
        inFlightTable.clear(message.inFlightEntry)
        freeInFlightEntries.append(message.inFlightEntry)
        message.inFlightEntry = -1
    }

    private func submit(_ messages: [KafkaMessage]) {
        var messages = messages
        if let workerDeaths, !workerDeaths.isEmpty {
            // Messages a worker died running: set aside, or run alone (see PartitionScheduler).
            var actions = PartitionScheduler.Actions()
            lock.withLock {
                let runnable = scheduler.screen(
                    messages,
                    deaths: { workerDeaths.deaths(KafkaPlace(topic: $0.topic, partition: $0.record.partition, offset: $0.offset)) },
                    now: MonotonicClock.nanoseconds(), into: &actions)
                for message in messages where !runnable.contains(where: { $0 === message }) { ended(message) }
                messages = runnable
                apply(&actions)
            }
            carryOut(actions)
            if messages.isEmpty { return }
        }
        let direct = invoker.host.buildsKafkaEvents
        invoker.submit(
            messages.map { message in
                let trace = message.record.callTrace()
                message.trace = trace
                return Invocation(
                    method: "POST", target: "/", headers: direct ? [] : KafkaEvent.headers(for: message.record),
                    body: direct ? [] : message.value, sink: self, reply: message, kafka: message.record,
                    trace: trace, cloudEvent: readsCloudEvents ? message.record.cloudEvent() : nil)
            })
    }

    // MARK: - Finished calls (InvocationSink)

    /// On the host's hand-back thread (or the Invoker's watchdog, for a call that timed out):
    /// judges each result and hands it to the scheduler, never waiting on the broker. A reply or
    /// a dead letter is queued with the producer; its partition stays busy (order holds) but its
    /// slot is free, and its offset is stored when the broker acknowledges it (`sent`). Then the
    /// partitions' next messages are submitted from this same thread: a busy host goes straight
    /// on to them.
    public func deliver(_ batch: [Invocation]) {
        var actions = PartitionScheduler.Actions()
        let now = MonotonicClock.nanoseconds()
        lock.withLock {
            for invocation in batch {
                let message = unsafeDowncast(invocation.reply!, to: KafkaMessage.self)
                ended(message)
                scheduler.handedBack(message, verdict(for: message, invocation.result), now: now, into: &actions)
            }
            scheduler.takeReady(into: &actions)
            apply(&actions)
        }
        carryOut(actions)
    }

    /// What a call's result means for its message.
    private func verdict(for message: KafkaMessage, _ result: InvocationResult?) -> PartitionScheduler.Verdict {
        guard let result, !result.isFailure, result.status < 400 else {
            return .failed(reason: result?.error ?? "status \(result?.status ?? 0)")
        }
        guard !message.headers.isEmpty, let replyTo = message.headers.first(where: { $0.0.equalsIgnoringASCIICase("reply-to") })?.1
        else { return .succeeded }
        // A reply that may not go where it asks is final: trying the handler again would not
        // change where it asks to go.
        if let refusal = settings.replyRefusal(replyTo) { return .refused(reason: refusal) }
        let correlation = message.headers.first { $0.0.equalsIgnoringASCIICase("correlation-id") }?.1
            ?? "\(message.topic)/\(message.record.partition)/\(message.offset)"
        var headers = [("correlation-id", correlation)]
        if let trace = message.trace { headers += KafkaEvent.traceHeaders(trace) }
        // An answer that is a CloudEvent stays one in the Kafka binding: a binary-mode one's ce-*
        // fields become ce_ headers; either mode keeps its content type (a structured one's says
        // it is one).
        let event = CloudEvents.kafkaHeaders(forAnswer: result.headers)
        let type = result.headers.first(where: { $0.0.equalsIgnoringASCIICase("content-type") })?.1
        headers += event
        if let type, !event.isEmpty || CloudEvents.mode(contentType: type) == .structured {
            headers.append(("content-type", type))
        }
        return .reply(topic: replyTo, value: result.body, headers: headers)
    }

    /// Queues `outgoing` with the producer; its outcome arrives in `sent`.
    func transmit(_ outgoing: Outgoing) {
        let refused = producer.send(
            topic: outgoing.topic, key: outgoing.message.key, value: outgoing.value, headers: outgoing.headers
        ) { [self] failure in sent(outgoing, failure) }
        if let refused { sent(outgoing, refused) }
    }

    /// The broker's answer to a reply or a dead letter (on the producer's report thread).
    func sent(_ outgoing: Outgoing, _ failure: KafkaProducer.Failure?) {
        var actions = PartitionScheduler.Actions()
        let now = MonotonicClock.nanoseconds()
        let open: Bool = lock.withLock {
            if closed { return false }
            scheduler.sent(outgoing, failure: failure, now: now, into: &actions)
            scheduler.takeReady(into: &actions)
            apply(&actions)
            return true
        }
        if open { carryOut(actions) }
    }

    static func place(_ message: KafkaMessage, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "funcd.kafka.topic": "\(message.topic)", "funcd.kafka.partition": "\(message.record.partition)",
            "funcd.kafka.offset": "\(message.offset)",
        ]
        metadata.merge(extra) { _, new in new }
        return metadata
    }

    /// Marks `message` handled: its partition resumes after it at the next commit.
    private func store(_ message: KafkaMessage) {
        let list = rd_kafka_topic_partition_list_new(1)
        let entry = rd_kafka_topic_partition_list_add(list, message.topic, message.record.partition)
        entry?.pointee.offset = message.offset + 1
        let result = rd_kafka_offsets_store(handle, list)
        rd_kafka_topic_partition_list_destroy(list)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            // The partition went to another member (a rebalance): it will see this message again.
            logger.debug("offset not stored", metadata: [LogKeys.error: "\(String(cString: rd_kafka_err2str(result)))"])
        }
    }
}
