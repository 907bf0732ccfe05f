internal import CRdKafka
import FuncdCore
import Logging

extension KafkaConsumer {
    // MARK: - Scheduling

    /// Fetched messages arrive (poll thread): each runs now if its partition is free and there is
    /// a slot, else it waits in its partition's backlog.
    func accept(_ messages: [KafkaMessage]) {
        let starts: [KafkaMessage] = lock.withLock {
            var starts: [KafkaMessage] = []
            var current: Partition?
            for message in messages {
                // Messages come in runs of one partition: look it up once per run.
                if current?.key.partition != message.record.partition || current?.key.topic != message.topic {
                    current = partition(PartitionKey(topic: message.topic, partition: message.record.partition))
                }
                let partition = current!
                message.partition = partition
                if !partition.busy && partition.pending.isEmpty && !partition.backingOff && inFlight < concurrency && !stopping {
                    partition.busy = true
                    inFlight += 1
                    starts.append(message)
                    continue
                }
                partition.pending.append(message)
                buffered += 1
                bufferedBytes += message.size
                makeReady(partition)
            }
            return starts
        }
        if !starts.isEmpty { submit(starts) }
    }

    /// Queues `partition` for a slot if it has a message that may start. Called with `lock` held.
    func makeReady(_ partition: Partition) {
        guard !partition.busy, !partition.queued, !partition.backingOff, !partition.revoked, !partition.pending.isEmpty
        else { return }
        partition.queued = true
        ready.append(partition)
    }

    /// Starts the first waiting message of ready partitions while there are slots.
    func startReady() {
        let starts: [KafkaMessage] = lock.withLock { takeReady() }
        if !starts.isEmpty { submit(starts) }
    }

    /// The first waiting message of each ready partition, while there are slots, marked started.
    /// Called with `lock` held.
    private func takeReady() -> [KafkaMessage] {
        if stopping || ready.isEmpty || inFlight >= concurrency { return [] }
        let half = backlogLimit / 2
        let wasAboveHalf = buffered > half
        var starts: [KafkaMessage] = []
        var taken = 0
        while inFlight < concurrency, taken < ready.count {
            let partition = ready[taken]
            taken += 1
            partition.queued = false
            guard !partition.busy, !partition.backingOff, !partition.revoked, !partition.pending.isEmpty else { continue }
            let message = partition.pending.takeFirst()
            partition.busy = true
            inFlight += 1
            buffered -= 1
            bufferedBytes -= message.size
            starts.append(message)
        }
        if taken == ready.count { ready.removeAll(keepingCapacity: true) } else { ready.removeFirst(taken) }
        if wasAboveHalf && buffered <= half {
            // A paused consumer sits in a 100 ms poll: end it so that it resumes now.
            if paused { rd_kafka_queue_yield(queue) }
            if pollWaiting { lock.broadcast() }
        }
        return starts
    }

    private func submit(_ messages: [KafkaMessage]) {
        let direct = invoker.host.buildsKafkaEvents
        invoker.submit(
            messages.map { message in
                Invocation(
                    method: "POST", target: "/", headers: direct ? [] : KafkaEvent.headers(for: message.record),
                    body: direct ? [] : message.value, sink: self, reply: message, kafka: message.record)
            })
    }

    // MARK: - Finished calls (InvocationSink)

    /// On the host's hand-back thread. Replies and dead letters are sent here, before the offset
    /// is stored; their partition stays busy meanwhile, so order holds. Then the partitions'
    /// next messages are submitted from this same thread: a busy host goes straight on to them.
    public func deliver(_ batch: [Invocation]) {
        var outcomes: [(message: KafkaMessage, failed: Bool, reason: String, resend: Bool, deadLettered: Bool)] = []
        outcomes.reserveCapacity(batch.count)
        for invocation in batch {
            let message = unsafeDowncast(invocation.reply!, to: KafkaMessage.self)
            let result = invocation.result
            var failed = result.map { $0.isFailure || $0.status >= 400 } ?? true
            var reason = result?.error ?? "status \(result?.status ?? 0)"
            var resend = false
            // A reply that may not go where it asks is final: trying the handler again would not
            // change where it asks to go.
            var refused = false
            if !failed, !message.headers.isEmpty, let replyTo = message.headers.first(where: { $0.0.equalsIgnoringASCIICase("reply-to") })?.1,
                let refusal = settings.replyRefusal(replyTo)
            {
                failed = true
                refused = true
                reason = refusal
            } else if !failed, !message.headers.isEmpty, let replyTo = message.headers.first(where: { $0.0.equalsIgnoringASCIICase("reply-to") })?.1 {
                let correlation = message.headers.first { $0.0.equalsIgnoringASCIICase("correlation-id") }?.1
                    ?? "\(message.topic)/\(message.record.partition)/\(message.offset)"
                if let error = producer.send(
                    topic: replyTo, key: message.key, value: result?.body ?? [], headers: [("correlation-id", correlation)])
                {
                    failed = true
                    reason = "the reply to \(replyTo) was not delivered: \(error)"
                }
            }
            var deadLettered = false
            if failed, refused || message.attempts >= settings.maxRetries, let deadLetters = settings.deadLetterTopic {
                // The message's own `funcd-*` headers are dropped: the origin recorded is funcd's.
                let headers = message.headers.filter { !Self.isFuncdHeader($0.0) } + [
                    ("funcd-error", String(reason.prefix(4000))), ("funcd-source-topic", message.topic),
                    ("funcd-source-partition", String(message.record.partition)), ("funcd-source-offset", String(message.offset)),
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
                    deadLettered = true
                }
            }
            if refused && !deadLettered {
                // No retries for a refused reply: passed over now.
                message.attempts = max(message.attempts, settings.maxRetries)
            }
            outcomes.append((message, failed, reason, resend, deadLettered))
        }
        let starts: [KafkaMessage] = lock.withLock {
            for outcome in outcomes {
                finish(outcome.message, failed: outcome.failed, reason: outcome.reason, resend: outcome.resend,
                       deadLettered: outcome.deadLettered)
            }
            if drainWaiters > 0 { lock.broadcast() }
            return takeReady()
        }
        if !starts.isEmpty { submit(starts) }
    }

    /// `funcd-…`: the names funcd gives its own facts in a dead letter.
    static func isFuncdHeader(_ name: String) -> Bool {
        name.utf8.count >= 6 && name.utf8.prefix(6).elementsEqual("funcd-".utf8, by: { ($0 | 0x20) == $1 })
    }

    static func place(_ message: KafkaMessage, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "funcd.kafka.topic": "\(message.topic)", "funcd.kafka.partition": "\(message.record.partition)",
            "funcd.kafka.offset": "\(message.offset)",
        ]
        metadata.merge(extra) { _, new in new }
        return metadata
    }

    /// The books for one finished message: store its offset, or queue it again after a backoff.
    /// Called with `lock` held.
    private func finish(_ message: KafkaMessage, failed: Bool, reason: String, resend: Bool, deadLettered: Bool) {
        let partition = message.partition!
        partition.busy = false
        inFlight -= 1
        if (resend || (failed && message.attempts < settings.maxRetries)) && !stopping && !partition.revoked {
            if !resend { message.attempts += 1 }
            metrics.count(.retried, topic: message.topic)
            partition.pending.putBack(message)
            buffered += 1
            bufferedBytes += message.size
            partition.backingOff = true
            let backoff = UInt64(100_000_000) << UInt64(min(max(message.attempts, 1) - 1, 6))
            retries.append((MonotonicClock.nanoseconds() &+ backoff, partition))
            logger.warning(
                "Kafka message failed; trying again",
                metadata: Self.place(message, ["funcd.kafka.attempt": "\(message.attempts)", LogKeys.error: "\(reason)"]))
            return
        }
        if failed {
            metrics.count(.passedOver, topic: message.topic)
            logger.error(
                "Kafka message failed after its retries; passed over", metadata: Self.place(message, [LogKeys.error: "\(reason)"]))
        } else if !deadLettered {
            partition.handled.increment()
        }
        makeReady(partition)
        // Stored under the lock so that closing cannot race it; the call is quick.
        if !closed && !(failed && partition.revoked) { store(message) }
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
