import FuncdCore
import Prometheus

/// Where a consumed message belongs.
struct PartitionKey: Hashable {
    var topic: String
    var partition: Int32
}

/// One assigned partition. Its fields change only through `PartitionScheduler` (this file); the
/// messages carry a reference to it, so that finding a message's partition needs no lookup.
final class KafkaPartition {
    let key: PartitionKey
    /// `funcd_kafka_messages_total{outcome="handled"}` of its topic, looked up once.
    let handled: Counter
    /// A message of it is with the handler, waits to run alone, or waits for its reply or dead
    /// letter to be acknowledged: nothing else of it starts (its order holds).
    fileprivate(set) var busy = false
    fileprivate(set) var pending = PendingMessages()
    /// In the ready list: waiting for a free slot.
    fileprivate(set) var queued = false
    /// Its first pending message failed and waits out its backoff.
    fileprivate(set) var backingOff = false
    /// Taken away by a rebalance: what is in flight may finish, nothing more starts.
    fileprivate(set) var revoked = false

    init(key: PartitionKey, handled: Counter) {
        self.key = key
        self.handled = handled
    }
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

/// The Kafka trigger's scheduling, as a value: which message runs next, when a failed one is
/// tried again, when it becomes a dead letter, when an offset may be stored. It owns the
/// partitions' backlogs and the counts the bounds are kept by, and it does nothing itself: each
/// step says what the consumer must do (start these calls, send these, store these offsets, log
/// these events), which the consumer does with librdkafka, the Invoker and the producer. No
/// lock, no clock (times come in), no librdkafka: unit-tested as is (`PartitionSchedulerTests`).
///
/// The rules: a partition has one message in flight at a time (with the handler, waiting to run
/// alone, or waiting for its reply or dead letter), so its order holds and a stored offset
/// covers every earlier message; at most `concurrency` messages are with the handler; a failed
/// call is tried again `maxRetries` times after a doubling backoff from 100 ms, then
/// dead-lettered (or passed over); a send that fails goes again after a backoff, without the
/// handler, unless it can never succeed; a message a worker died running beside others runs
/// alone once everything else is committed.
struct PartitionScheduler {
    let concurrency: Int
    let maxRetries: Int
    let deadLetterTopic: String?
    /// Messages held beyond those in flight, and their bytes: above either, the poll thread
    /// stops taking more.
    let backlogLimit: Int
    let backlogByteLimit: Int
    /// The handled counter of a topic, for a partition seen for the first time.
    let handledCounter: (String) -> Counter

    private(set) var partitions: [PartitionKey: KafkaPartition] = [:]
    /// Partitions with pending messages and nothing in flight, waiting for a slot.
    private var ready: [KafkaPartition] = []
    private var retries: [(due: UInt64, partition: KafkaPartition)] = []
    /// Messages with the handler.
    private(set) var inFlight = 0
    /// Messages fetched and not yet started, and their bytes.
    private(set) var buffered = 0
    private(set) var bufferedBytes = 0
    /// Replies and dead letters queued with the producer or waiting to be sent again.
    private(set) var sending = 0
    private var resends: [(due: UInt64, outgoing: Outgoing)] = []
    /// Messages that were running beside others when a worker died, waiting to run alone.
    private var solitary: [KafkaMessage] = []
    /// The message running alone: nothing else starts until it is back.
    private(set) var runningAlone: KafkaMessage?
    /// Before a suspect runs alone, everything else handled is committed (by the poll thread).
    enum SoloCommit { case none, wanted, done }
    private(set) var soloCommit = SoloCommit.none
    private(set) var stopping = false

    /// What happened that the consumer logs and counts.
    enum Event {
        case retried(KafkaMessage, reason: String)
        case passedOver(KafkaMessage, reason: String)
        case deadLettered(KafkaMessage, topic: String, reason: String)
        case sendFailed(KafkaMessage, reason: String, failures: Int)
        case sendAbandoned(KafkaMessage, reason: String)
    }

    /// What the consumer must do after a step.
    struct Actions {
        /// Give these to the handler.
        var starts: [KafkaMessage] = []
        /// Queue these with the producer.
        var sends: [Outgoing] = []
        /// Store these messages' offsets (each partition's in order).
        var stores: [KafkaMessage] = []
        var events: [Event] = []
        /// Wake the poll thread: the backlog drained to half (a paused consumer resumes), or a
        /// suspect waits for the commit before it runs alone.
        var wakePoll = false
    }

    /// How a call ended, as the consumer judged its result.
    enum Verdict {
        case succeeded
        /// Succeeded, and its result goes to `topic` (`reply-to`).
        case reply(topic: String, value: [UInt8], headers: [(String, String)])
        case failed(reason: String)
        /// Failed for good: trying again would not change it (a `reply-to` that is not allowed).
        case refused(reason: String)
    }

    init(
        concurrency: Int, maxRetries: Int, deadLetterTopic: String?, backlogLimit: Int, backlogByteLimit: Int,
        handledCounter: @escaping (String) -> Counter
    ) {
        self.concurrency = concurrency
        self.maxRetries = maxRetries
        self.deadLetterTopic = deadLetterTopic
        self.backlogLimit = backlogLimit
        self.backlogByteLimit = backlogByteLimit
        self.handledCounter = handledCounter
    }

    var backlogFull: Bool { buffered >= backlogLimit || bufferedBytes >= backlogByteLimit }
    var backlogAtMostHalf: Bool { buffered <= backlogLimit / 2 && bufferedBytes <= backlogByteLimit / 2 }
    /// Nothing with the handler and no send waiting for the broker.
    var drained: Bool { inFlight == 0 && sending == 0 }
    var wantsSoloCommit: Bool { soloCommit == .wanted }

    // MARK: - Partitions

    /// The partition `key`, made on first sight.
    mutating func partition(_ key: PartitionKey) -> KafkaPartition {
        if let known = partitions[key] { return known }
        let created = KafkaPartition(key: key, handled: handledCounter(key.topic))
        partitions[key] = created
        return created
    }

    /// A new assignment: these partitions start over (a partition's old state is dropped).
    mutating func assign(_ keys: [PartitionKey]) {
        for key in keys {
            partitions[key] = nil
            _ = partition(key)
        }
    }

    /// Taken away: what was fetched and not started is dropped (the next owner fetches it from
    /// the committed offset), and so are retries, resends and suspects of these partitions;
    /// what is in flight may finish (see `busy`).
    mutating func revoke(_ keys: [PartitionKey]) {
        for key in keys {
            guard let partition = partitions[key] else { continue }
            partition.revoked = true
            buffered -= partition.pending.count
            bufferedBytes -= partition.pending.removeAll()
        }
        ready.removeAll { $0.revoked }
        retries.removeAll { $0.partition.revoked }
        dropWaiting { $0.revoked }
    }

    /// Whether any of these partitions still has a message in flight.
    func busy(_ keys: [PartitionKey]) -> Bool {
        keys.contains { partitions[$0]?.busy == true }
    }

    mutating func forget(_ keys: [PartitionKey]) {
        for key in keys { partitions[key] = nil }
    }

    /// SIGTERM: nothing more starts; resends and suspects are dropped (not stored: consumed
    /// again by whoever gets the partition); calls and sends in flight may finish.
    mutating func stop() {
        stopping = true
        dropWaiting { _ in true }
    }

    private mutating func dropWaiting(_ which: (KafkaPartition) -> Bool) {
        var dropped = 0
        resends.removeAll { entry in
            let partition = entry.outgoing.message.partition!
            guard which(partition) else { return false }
            partition.busy = false
            dropped += 1
            return true
        }
        sending -= dropped
        solitary.removeAll { message in
            guard which(message.partition!) else { return false }
            message.partition!.busy = false
            return true
        }
    }

    // MARK: - Starting

    /// Fetched messages arrive: each starts now if its partition is free and there is a slot,
    /// else it waits in its partition's backlog.
    mutating func accept(_ messages: [KafkaMessage], into actions: inout Actions) {
        var current: KafkaPartition?
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
                actions.starts.append(message)
                continue
            }
            partition.pending.append(message)
            buffered += 1
            bufferedBytes += message.size
            makeReady(partition)
        }
    }

    private mutating func makeReady(_ partition: KafkaPartition) {
        guard !partition.busy, !partition.queued, !partition.backingOff, !partition.revoked, !partition.pending.isEmpty
        else { return }
        partition.queued = true
        ready.append(partition)
    }

    /// Starts the first waiting message of ready partitions while there are slots (or the
    /// suspect that waits to run alone, once nothing else runs and the rest is committed).
    mutating func takeReady(into actions: inout Actions) {
        if stopping { return }
        if !solitary.isEmpty || runningAlone != nil {
            guard runningAlone == nil, drained else { return }
            switch soloCommit {
            case .none:
                soloCommit = .wanted
                actions.wakePoll = true
                return
            case .wanted:
                return
            case .done:
                soloCommit = .none
            }
            let message = solitary.removeFirst()
            runningAlone = message
            inFlight += 1
            actions.starts.append(message)
            return
        }
        if ready.isEmpty || inFlight >= concurrency { return }
        let wasAboveHalf = buffered > backlogLimit / 2
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
            actions.starts.append(message)
        }
        if taken == ready.count { ready.removeAll(keepingCapacity: true) } else { ready.removeFirst(taken) }
        if wasAboveHalf && buffered <= backlogLimit / 2 { actions.wakePoll = true }
    }

    /// The poll thread committed the stored offsets: the waiting suspect may run.
    mutating func soloCommitted() {
        if soloCommit == .wanted { soloCommit = .done }
    }

    /// The started `messages` checked against the workers' deaths (`deaths`: nil when the
    /// message was never running when a worker died): a message that killed `maxRetries`
    /// workers is set aside (dead-lettered or passed over), a suspect waits to run alone, the
    /// rest run. Returns those that run.
    mutating func screen(
        _ messages: [KafkaMessage], deaths: (KafkaMessage) -> Int?, now: UInt64, into actions: inout Actions
    ) -> [KafkaMessage] {
        var runnable: [KafkaMessage] = []
        var setAside = false
        for message in messages {
            guard let deaths = deaths(message) else {
                runnable.append(message)
                continue
            }
            message.attempts = max(message.attempts, deaths)
            if deaths == 0 || deaths < maxRetries {
                if message === runningAlone {
                    runnable.append(message)
                } else {
                    // Its partition stays busy while it waits: order holds.
                    inFlight -= 1
                    solitary.append(message)
                    setAside = true
                }
                continue
            }
            setAside = true
            inFlight -= 1
            if message === runningAlone { runningAlone = nil }
            let reason = "a worker process died \(deaths) times while running it (crashed, killed, or stuck and replaced)"
            if let letter = deadLetter(message, reason) {
                sending += 1
                actions.sends.append(letter)
            } else {
                settle(message, failed: true, reason: reason, now: now, into: &actions)
            }
        }
        if setAside { takeReady(into: &actions) }
        return runnable
    }

    // MARK: - Finishing

    /// The handler gave `message` back.
    mutating func handedBack(_ message: KafkaMessage, _ verdict: Verdict, now: UInt64, into actions: inout Actions) {
        inFlight -= 1
        if message === runningAlone { runningAlone = nil }
        switch verdict {
        case .succeeded:
            settle(message, failed: false, reason: "", now: now, into: &actions)
        case .reply(let topic, let value, let headers):
            sending += 1
            actions.sends.append(
                Outgoing(message: message, topic: topic, isReply: true, value: value, headers: headers, reason: ""))
        case .failed(let reason):
            if message.attempts >= maxRetries, let letter = deadLetter(message, reason) {
                sending += 1
                actions.sends.append(letter)
            } else {
                settle(message, failed: true, reason: reason, now: now, into: &actions)
            }
        case .refused(let reason):
            if let letter = deadLetter(message, reason) {
                sending += 1
                actions.sends.append(letter)
            } else {
                // No retries for it: passed over now.
                message.attempts = max(message.attempts, maxRetries)
                settle(message, failed: true, reason: reason, now: now, into: &actions)
            }
        }
    }

    /// The broker's answer to a reply or a dead letter (`failure` nil: acknowledged).
    mutating func sent(_ outgoing: Outgoing, failure: KafkaProducer.Failure?, now: UInt64, into actions: inout Actions) {
        let message = outgoing.message
        let partition = message.partition!
        guard let failure else {
            sending -= 1
            if outgoing.isReply {
                settle(message, failed: false, reason: "", now: now, into: &actions)
            } else {
                actions.events.append(.deadLettered(message, topic: outgoing.topic, reason: outgoing.reason))
                settle(message, failed: false, reason: "", deadLettered: true, now: now, into: &actions)
            }
            return
        }
        let what = outgoing.isReply ? "the reply to \(outgoing.topic)" : "the dead letter to \(outgoing.topic)"
        let reason = "\(what) was not delivered: \(failure.description)"
        if outgoing.isReply && failure.permanent {
            // A reply that can never go: the message becomes a dead letter saying so.
            if let letter = deadLetter(message, reason) {
                actions.sends.append(letter)
                return
            }
            sending -= 1
            message.attempts = max(message.attempts, maxRetries)
            settle(message, failed: true, reason: reason, now: now, into: &actions)
        } else if stopping || partition.revoked {
            // Not stored: whoever consumes the partition next handles the message again.
            sending -= 1
            partition.busy = false
            actions.events.append(.sendAbandoned(message, reason: reason))
        } else {
            var again = outgoing
            again.failures += 1
            resends.append((now &+ Self.backoff(again.failures), again))
            actions.events.append(.sendFailed(message, reason: reason, failures: again.failures))
        }
    }

    /// Retries whose backoff is over become ready. Returns when the next one is due
    /// (`UInt64.max`: none).
    mutating func readyRetries(now: UInt64) -> UInt64 {
        var next = UInt64.max
        guard !retries.isEmpty else { return next }
        var made: [KafkaPartition] = []
        retries.removeAll { entry in
            guard entry.due <= now else {
                next = min(next, entry.due)
                return false
            }
            made.append(entry.partition)
            return true
        }
        for partition in made {
            partition.backingOff = false
            makeReady(partition)
        }
        return next
    }

    /// Sends whose backoff is over, to go again.
    mutating func dueResends(now: UInt64) -> [Outgoing] {
        guard !resends.isEmpty else { return [] }
        var due: [Outgoing] = []
        resends.removeAll { entry in
            guard entry.due <= now else { return false }
            due.append(entry.outgoing)
            return true
        }
        return due
    }

    /// 100 ms, doubling with each try, at most 6.4 s.
    static func backoff(_ tries: Int) -> UInt64 {
        UInt64(100_000_000) << UInt64(min(max(tries, 1) - 1, 6))
    }

    /// The dead letter of `message` (nil without a dead-letter topic): the message with its own
    /// `funcd-*` headers dropped, so that the origin recorded is funcd's.
    func deadLetter(_ message: KafkaMessage, _ reason: String) -> Outgoing? {
        guard let topic = deadLetterTopic else { return nil }
        var headers = message.headers.filter { !Self.isFuncdHeader($0.0) }
        if let trace = message.trace {
            // The last call's span is the dead letter's parent: whoever reads the letter
            // continues the trace from the call that failed.
            headers.removeAll { Self.isTraceHeader($0.0) }
            headers += KafkaEvent.traceHeaders(trace)
        }
        headers += [
            ("funcd-error", String(reason.prefix(4000))), ("funcd-source-topic", message.topic),
            ("funcd-source-partition", String(message.record.partition)), ("funcd-source-offset", String(message.offset)),
            ("funcd-attempts", String(message.attempts + 1)),
        ]
        return Outgoing(message: message, topic: topic, isReply: false, value: message.value, headers: headers, reason: reason)
    }

    /// `traceparent` and `tracestate`.
    static func isTraceHeader(_ name: String) -> Bool {
        name.equalsIgnoringASCIICase("traceparent") || name.equalsIgnoringASCIICase("tracestate")
    }

    /// `funcd-…`: the names funcd gives its own facts in a dead letter.
    static func isFuncdHeader(_ name: String) -> Bool {
        name.utf8.count >= 6 && name.utf8.prefix(6).elementsEqual("funcd-".utf8, by: { ($0 | 0x20) == $1 })
    }

    /// The books for one finished message: its offset stored, or the message queued again
    /// after a backoff. Its slot or send is already accounted for.
    private mutating func settle(
        _ message: KafkaMessage, failed: Bool, reason: String, deadLettered: Bool = false, now: UInt64,
        into actions: inout Actions
    ) {
        let partition = message.partition!
        partition.busy = false
        if failed && message.attempts < maxRetries && !stopping && !partition.revoked {
            message.attempts += 1
            partition.pending.putBack(message)
            buffered += 1
            bufferedBytes += message.size
            partition.backingOff = true
            retries.append((now &+ Self.backoff(message.attempts), partition))
            actions.events.append(.retried(message, reason: reason))
            return
        }
        if failed {
            actions.events.append(.passedOver(message, reason: reason))
        } else if !deadLettered {
            partition.handled.increment()
        }
        makeReady(partition)
        if !(failed && partition.revoked) { actions.stores.append(message) }
    }
}
