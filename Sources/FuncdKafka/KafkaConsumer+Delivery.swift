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
                if !partition.busy && partition.pending.isEmpty && !partition.backingOff && inFlight < concurrency && !stopping
                    && runningAlone == nil && solitary.isEmpty
                {
                    partition.busy = true
                    inFlight += 1
                    began(message)
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
        if stopping { return [] }
        if !solitary.isEmpty || runningAlone != nil {
            // A suspect runs once nothing else does, and nothing starts beside it.
            guard runningAlone == nil, inFlight == 0, sending == 0 else { return [] }
            guard soloCommitDone else {
                if !soloCommitWanted {
                    soloCommitWanted = true
                    rd_kafka_queue_yield(queue)
                    if pollWaiting { lock.broadcast() }
                }
                return []
            }
            soloCommitDone = false
            let message = solitary.removeFirst()
            runningAlone = message
            inFlight += 1
            began(message)
            return [message]
        }
        if ready.isEmpty || inFlight >= concurrency { return [] }
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
            began(message)
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

    /// The handler has `message` from now on: so says the in-flight table the supervisor reads
    /// if this worker dies. Called with `lock` held.
    private func began(_ message: KafkaMessage) {
        guard let inFlightTable, let entry = freeInFlightEntries.popLast() else { return }
        message.inFlightEntry = entry
        inFlightTable.record(entry, KafkaPlace(topic: message.topic, partition: message.record.partition, offset: message.offset))
    }

    /// The handler gave `message` back. Called with `lock` held.
    private func ended(_ message: KafkaMessage) {
        guard message.inFlightEntry >= 0, let inFlightTable else { return }
        inFlightTable.clear(message.inFlightEntry)
        freeInFlightEntries.append(message.inFlightEntry)
        message.inFlightEntry = -1
    }

    /// Sets aside, instead of running, the messages that killed KAFKA_MAX_RETRIES workers (a
    /// segfault, the OOM killer, a stuck handler): dead-lettered, or passed over. Those that were
    /// running when a worker died but not yet convicted run alone (`solitary`), so that a death
    /// while they run is theirs. The rest run as usual. Only when the supervisor knows of any.
    private func setAsidePoison(_ messages: [KafkaMessage], _ workerDeaths: KafkaWorkerDeaths) -> [KafkaMessage] {
        var runnable: [KafkaMessage] = []
        var letters: [Outgoing] = []
        var setAside = 0
        let starts: [KafkaMessage] = lock.withLock {
            for message in messages {
                guard
                    let deaths = workerDeaths.deaths(
                        KafkaPlace(topic: message.topic, partition: message.record.partition, offset: message.offset))
                else {
                    runnable.append(message)
                    continue
                }
                message.attempts = max(message.attempts, deaths)
                if deaths == 0 || deaths < settings.maxRetries {
                    if message === runningAlone {
                        runnable.append(message)
                    } else {
                        // Its partition stays busy while it waits: order holds.
                        ended(message)
                        inFlight -= 1
                        solitary.append(message)
                        setAside += 1
                    }
                    continue
                }
                setAside += 1
                ended(message)
                inFlight -= 1
                if message === runningAlone { runningAlone = nil }
                let reason = "a worker process died \(deaths) times while running it (crashed, killed, or stuck and replaced)"
                if let letter = deadLetter(message, reason) {
                    letters.append(letter)
                    sending += 1
                } else {
                    finish(message, failed: true, reason: reason)
                }
            }
            return setAside > 0 ? takeReady() : []
        }
        for letter in letters { transmit(letter) }
        if !starts.isEmpty { submit(starts) }
        return runnable
    }

    private func submit(_ messages: [KafkaMessage]) {
        var messages = messages
        if let workerDeaths, !workerDeaths.isEmpty {
            messages = setAsidePoison(messages, workerDeaths)
            if messages.isEmpty { return }
        }
        let direct = invoker.host.buildsKafkaEvents
        invoker.submit(
            messages.map { message in
                Invocation(
                    method: "POST", target: "/", headers: direct ? [] : KafkaEvent.headers(for: message.record),
                    body: direct ? [] : message.value, sink: self, reply: message, kafka: message.record)
            })
    }

    // MARK: - Finished calls (InvocationSink)

    /// On the host's hand-back thread (or the Invoker's watchdog, for a call that timed out):
    /// decides each message's fate under the lock and never waits on the broker. A reply or a
    /// dead letter is queued with the producer; its partition stays busy (order holds) but its
    /// slot is free, and its offset is stored when the broker acknowledges it (`sent`). Then the
    /// partitions' next messages are submitted from this same thread: a busy host goes straight
    /// on to them.
    public func deliver(_ batch: [Invocation]) {
        var sends: [Outgoing] = []
        let starts: [KafkaMessage] = lock.withLock {
            for invocation in batch {
                let message = unsafeDowncast(invocation.reply!, to: KafkaMessage.self)
                ended(message)
                inFlight -= 1
                if message === runningAlone { runningAlone = nil }
                let result = invocation.result
                var failed = result.map { $0.isFailure || $0.status >= 400 } ?? true
                var reason = result?.error ?? "status \(result?.status ?? 0)"
                let replyTo = failed || message.headers.isEmpty
                    ? nil : message.headers.first(where: { $0.0.equalsIgnoringASCIICase("reply-to") })?.1
                // A reply that may not go where it asks is final: trying the handler again would
                // not change where it asks to go.
                var refused = false
                if let replyTo, let refusal = settings.replyRefusal(replyTo) {
                    failed = true
                    refused = true
                    reason = refusal
                } else if let replyTo {
                    let correlation = message.headers.first { $0.0.equalsIgnoringASCIICase("correlation-id") }?.1
                        ?? "\(message.topic)/\(message.record.partition)/\(message.offset)"
                    sends.append(
                        Outgoing(message: message, topic: replyTo, isReply: true, value: result?.body ?? [],
                                 headers: [("correlation-id", correlation)], reason: ""))
                    sending += 1
                    continue
                }
                if failed, refused || message.attempts >= settings.maxRetries, let letter = deadLetter(message, reason) {
                    sends.append(letter)
                    sending += 1
                    continue
                }
                if refused {
                    // No retries for a refused reply: passed over now.
                    message.attempts = max(message.attempts, settings.maxRetries)
                }
                finish(message, failed: failed, reason: reason)
            }
            if drainWaiters > 0 { lock.broadcast() }
            return takeReady()
        }
        for outgoing in sends { transmit(outgoing) }
        if !starts.isEmpty { submit(starts) }
    }

    /// A reply or a dead letter for one consumed message, kept until the broker has it.
    struct Outgoing {
        let message: KafkaMessage
        let topic: String
        let isReply: Bool
        let value: [UInt8]
        let headers: [(String, String)]
        /// Why the message is dead-lettered (empty for a reply).
        let reason: String
        /// Failed sends so far.
        var failures = 0
    }

    /// The dead letter of `message` (nil without a dead-letter topic): the message with its own
    /// `funcd-*` headers dropped, so that the origin recorded is funcd's.
    func deadLetter(_ message: KafkaMessage, _ reason: String) -> Outgoing? {
        guard let topic = settings.deadLetterTopic else { return nil }
        let headers = message.headers.filter { !Self.isFuncdHeader($0.0) } + [
            ("funcd-error", String(reason.prefix(4000))), ("funcd-source-topic", message.topic),
            ("funcd-source-partition", String(message.record.partition)), ("funcd-source-offset", String(message.offset)),
            ("funcd-attempts", String(message.attempts + 1)),
        ]
        return Outgoing(message: message, topic: topic, isReply: false, value: message.value, headers: headers, reason: reason)
    }

    /// Queues `outgoing` with the producer; its outcome arrives in `sent`.
    func transmit(_ outgoing: Outgoing) {
        let refused = producer.send(
            topic: outgoing.topic, key: outgoing.message.key, value: outgoing.value, headers: outgoing.headers
        ) { [self] failure in sent(outgoing, failure) }
        if let refused { sent(outgoing, refused) }
    }

    /// The broker's answer to a reply or a dead letter (on the producer's report thread). Sent:
    /// the message is done and its offset stored. A reply that can never be delivered (no such
    /// topic, not allowed) makes the message a dead letter; any other failure sends the same
    /// thing again after a backoff, without running the handler again, until it goes through
    /// or the partition is taken away.
    func sent(_ outgoing: Outgoing, _ failure: KafkaProducer.Failure?) {
        var next: Outgoing?
        let starts: [KafkaMessage] = lock.withLock {
            if closed { return [] }
            let message = outgoing.message
            let partition = message.partition!
            if let failure {
                let what = outgoing.isReply ? "the reply to \(outgoing.topic)" : "the dead letter to \(outgoing.topic)"
                let reason = "\(what) was not delivered: \(failure.description)"
                if outgoing.isReply && failure.permanent {
                    if let letter = deadLetter(message, reason) {
                        next = letter
                        return []
                    }
                    sending -= 1
                    message.attempts = max(message.attempts, settings.maxRetries)
                    finish(message, failed: true, reason: reason)
                } else if stopping || partition.revoked {
                    // Not stored: whoever consumes the partition next handles the message again.
                    sending -= 1
                    partition.busy = false
                    logger.warning("Kafka send abandoned", metadata: Self.place(message, [LogKeys.error: "\(reason)"]))
                } else {
                    var again = outgoing
                    again.failures += 1
                    let backoff = UInt64(100_000_000) << UInt64(min(again.failures - 1, 6))
                    resends.append((MonotonicClock.nanoseconds() &+ backoff, again))
                    logger.warning(
                        "Kafka send failed; sending it again",
                        metadata: Self.place(message, ["funcd.kafka.send_failures": "\(again.failures)", LogKeys.error: "\(reason)"]))
                }
            } else {
                sending -= 1
                if outgoing.isReply {
                    finish(message, failed: false, reason: "")
                } else {
                    metrics.count(.deadLettered, topic: message.topic)
                    logger.error(
                        "Kafka message failed after its retries; sent to the dead-letter topic",
                        metadata: Self.place(message, ["funcd.kafka.dlq": "\(outgoing.topic)", LogKeys.error: "\(outgoing.reason)"]))
                    finish(message, failed: false, reason: "", deadLettered: true)
                }
            }
            if drainWaiters > 0 { lock.broadcast() }
            return takeReady()
        }
        if let next { transmit(next) }
        if !starts.isEmpty { submit(starts) }
    }

    /// Sends whose backoff is over, taken out of `resends`. Called with `lock` held.
    func takeDueResends(now: UInt64) -> [Outgoing] {
        guard !resends.isEmpty else { return [] }
        var due: [Outgoing] = []
        resends.removeAll { entry in
            guard entry.due <= now else { return false }
            due.append(entry.outgoing)
            return true
        }
        return due
    }

    /// Drops the suspects waiting to run alone of revoked partitions (or all, when stopping):
    /// not stored, consumed again by the partition's next owner. Called with `lock` held.
    func dropSolitary(all: Bool) {
        solitary.removeAll { message in
            guard all || message.partition!.revoked else { return false }
            message.partition!.busy = false
            return true
        }
    }

    /// Drops the waiting resends of revoked partitions (or all, when stopping): their messages
    /// are not stored and will be consumed again. Called with `lock` held.
    func dropResends(all: Bool) {
        resends.removeAll { entry in
            let partition = entry.outgoing.message.partition!
            guard all || partition.revoked else { return false }
            sending -= 1
            partition.busy = false
            return true
        }
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
    /// Its slot or send is already accounted for. Called with `lock` held.
    private func finish(_ message: KafkaMessage, failed: Bool, reason: String, deadLettered: Bool = false) {
        let partition = message.partition!
        partition.busy = false
        if failed && message.attempts < settings.maxRetries && !stopping && !partition.revoked {
            message.attempts += 1
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
