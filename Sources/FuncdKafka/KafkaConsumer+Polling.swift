internal import CRdKafka
import FuncdCore
import Logging

extension KafkaConsumer {
    /// Messages taken from librdkafka per call.
    static let pollBatch = 256
    /// How long a full backlog may keep the poll thread from polling before the partitions are
    /// paused. Not polling keeps librdkafka's prefetched messages (pausing drops them, and each
    /// resume fetches again), but librdkafka must be polled well within max.poll.interval.ms and
    /// for rebalances, so a backlog that stays full (slow handlers) pauses instead.
    static let pauseAfterNanoseconds: UInt64 = 1_000_000_000

    // MARK: - The poll thread

    func poll() {
        var reader = KafkaMessageReader()
        var pointers = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: Self.pollBatch)
        var messages: [KafkaMessage] = []
        messages.reserveCapacity(Self.pollBatch)
        while let step = nextPoll() {
            if step != .poll { setPaused(step == .pauseAndPoll) }
            let due = lock.withLock { scheduler.dueResends(now: MonotonicClock.nanoseconds()) }
            for outgoing in due { transmit(outgoing) }
            if lock.withLock({ scheduler.wantsSoloCommit }) { commitBeforeSolo() }
            startReady()
            measureLag()

            let count = take(into: &pointers)
            guard count > 0 else { continue }
            for index in 0..<count {
                let pointer = pointers[index]!
                let error = pointer.pointee.err
                if error == RD_KAFKA_RESP_ERR_NO_ERROR {
                    messages.append(reader.copy(pointer))
                } else if error != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    logger.warning(
                        "Kafka consumer error", metadata: [LogKeys.error: "\(String(cString: rd_kafka_err2str(error)))"])
                }
                rd_kafka_message_destroy(pointer)
            }
            if !messages.isEmpty { accept(messages) }
            messages.removeAll(keepingCapacity: true)
        }
        lock.withLock {
            pollExited = true
            lock.broadcast()
        }
    }

    /// Takes what librdkafka has ready, up to `pollBatch`, or waits up to 100 ms for one message
    /// (a batch call with a longer batch waits for the whole batch, or the timeout: latency).
    private func take(into pointers: inout [UnsafeMutablePointer<rd_kafka_message_t>?]) -> Int {
        pointers.withUnsafeMutableBufferPointer { buffer in
            let ready = rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress, buffer.count)
            guard ready == 0 else { return ready }
            guard rd_kafka_consume_batch_queue(queue, 100, buffer.baseAddress, 1) == 1 else { return 0 }
            let more = rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress! + 1, buffer.count - 1)
            return 1 + max(0, more)
        }
    }

    /// What the poll thread does next.
    private enum PollStep {
        case poll
        case pauseAndPoll
        case resumeAndPoll
    }

    /// Waits until the poll thread may poll again (nil: it must stop), saying whether the
    /// partitions are to be paused or resumed first. Retries whose backoff is over are made ready
    /// on the way.
    private func nextPoll() -> PollStep? {
        lock.lock()
        defer { lock.unlock() }
        while true {
            if scheduler.stopping { return nil }
            if scheduler.wantsSoloCommit { return .poll }
            let now = MonotonicClock.nanoseconds()
            let nextDue = scheduler.readyRetries(now: now)
            if !scheduler.backlogFull {
                fullSince = 0
                if paused && scheduler.backlogAtMostHalf {
                    paused = false
                    return .resumeAndPoll
                }
                return .poll
            }
            if paused { return .poll }
            if fullSince == 0 { fullSince = now }
            if now &- fullSince >= Self.pauseAfterNanoseconds {
                paused = true
                return .pauseAndPoll
            }
            // The start that drains the backlog to half wakes this wait.
            pollWaiting = true
            lock.wait(untilNanoseconds: min(nextDue, now &+ 50_000_000))
            pollWaiting = false
        }
    }

    /// Commits the stored offsets and waits for the broker, then lets the waiting suspect run
    /// alone (see `PartitionScheduler.takeReady`).
    private func commitBeforeSolo() {
        let committed = rd_kafka_commit(handle, nil, 0)
        if committed != RD_KAFKA_RESP_ERR_NO_ERROR && committed != RD_KAFKA_RESP_ERR__NO_OFFSET {
            logger.warning("commit before a suspect message failed", metadata: [LogKeys.error: "\(String(cString: rd_kafka_err2str(committed)))"])
        }
        lock.withLock { scheduler.soloCommitted() }
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

    private func setPaused(_ pause: Bool) {
        var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>? = nil
        guard rd_kafka_assignment(handle, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR, let assignment else { return }
        defer { rd_kafka_topic_partition_list_destroy(assignment) }
        _ = pause ? rd_kafka_pause_partitions(handle, assignment) : rd_kafka_resume_partitions(handle, assignment)
        logger.debug(pause ? "backlog full: partitions paused" : "backlog drained: partitions resumed")
    }

    // MARK: - Rebalance (on the poll thread, inside rd_kafka_consume_batch_queue)

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
                scheduler.assign(keys)
                // A new assignment fetches unpaused; the backlog check starts over.
                paused = false
                fullSince = 0
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
            scheduler.revoke(keys)
            drainWaiters += 1
            while scheduler.busy(keys) && MonotonicClock.nanoseconds() < deadline {
                lock.wait(untilNanoseconds: min(deadline, MonotonicClock.nanoseconds() &+ 50_000_000))
            }
            drainWaiters -= 1
            // A send of a revoked partition answered late finds it marked revoked: not stored.
            scheduler.forget(keys)
        }
        let committed = rd_kafka_commit(handle, nil, 0)
        if committed != RD_KAFKA_RESP_ERR_NO_ERROR && committed != RD_KAFKA_RESP_ERR__NO_OFFSET {
            logger.warning("commit before a rebalance failed", metadata: [LogKeys.error: "\(String(cString: rd_kafka_err2str(committed)))"])
        }
        rd_kafka_assign(handle, nil)
        logger.info("partitions revoked", metadata: ["funcd.kafka.partitions": "\(keys.map { "\($0.topic)/\($0.partition)" })"])
    }
}
