import FuncdCore
import Prometheus
import Testing

@testable import FuncdKafka

/// The Kafka trigger's scheduling as a value: every rule checked on `PartitionScheduler` alone,
/// with messages made here and time passed in (no broker, no threads, no clock).
@Suite("Kafka partition scheduling")
struct PartitionSchedulerTests {
    let metrics = KafkaMetrics(registry: PrometheusCollectorRegistry())

    func scheduler(concurrency: Int = 4, maxRetries: Int = 2, deadLetters: String? = nil, backlog: Int = 8) -> PartitionScheduler {
        PartitionScheduler(
            concurrency: concurrency, maxRetries: maxRetries, deadLetterTopic: deadLetters, backlogLimit: backlog,
            backlogByteLimit: 1 << 20, handledCounter: { [metrics] in metrics.counter(.handled, topic: $0) })
    }

    func message(_ partition: Int32, _ offset: Int64, topic: String = "t", headers: [(String, String)] = []) -> KafkaMessage {
        KafkaMessage(
            record: KafkaRecord(
                topic: topic, partition: partition, offset: offset, key: nil, value: Array("\(offset)".utf8), timestamp: -1,
                headers: headers, eventID: "", eventTime: ""))
    }

    func offsets(_ messages: [KafkaMessage]) -> [Int64] { messages.map(\.offset) }

    @Test("one message per partition at a time, in order; the next starts when the previous is handled")
    func orderWithinPartition() {
        var schedule = scheduler()
        var actions = PartitionScheduler.Actions()
        let first = [message(0, 0), message(0, 1), message(0, 2), message(1, 0)]
        schedule.accept(first, into: &actions)
        #expect(offsets(actions.starts) == [0, 0])
        #expect(actions.starts.map(\.record.partition) == [0, 1])
        #expect(schedule.inFlight == 2 && schedule.buffered == 2)

        var next = PartitionScheduler.Actions()
        schedule.handedBack(first[0], .succeeded, now: 0, into: &next)
        schedule.takeReady(into: &next)
        #expect(offsets(next.stores) == [0])
        #expect(offsets(next.starts) == [1])
        #expect(schedule.inFlight == 2 && schedule.buffered == 1)
    }

    @Test("at most `concurrency` calls with the handler; the others wait ready")
    func concurrencyBound() {
        var schedule = scheduler(concurrency: 2)
        var actions = PartitionScheduler.Actions()
        let messages = (0..<5).map { message(Int32($0), 0) }
        schedule.accept(messages, into: &actions)
        #expect(actions.starts.count == 2 && schedule.inFlight == 2 && schedule.buffered == 3)
        var next = PartitionScheduler.Actions()
        schedule.handedBack(actions.starts[0], .succeeded, now: 0, into: &next)
        schedule.takeReady(into: &next)
        #expect(next.starts.map(\.record.partition) == [2])
        #expect(schedule.inFlight == 2)
    }

    @Test("a failed call is tried again after 100 ms, then 200 ms, then passed over with its offset stored")
    func retriesThenPassedOver() {
        var schedule = scheduler(maxRetries: 2)
        var actions = PartitionScheduler.Actions()
        let poison = message(0, 7)
        schedule.accept([poison, message(0, 8)], into: &actions)
        var step = PartitionScheduler.Actions()
        schedule.handedBack(poison, .failed(reason: "boom"), now: 1_000, into: &step)
        schedule.takeReady(into: &step)
        #expect(step.starts.isEmpty && step.stores.isEmpty, "backing off, and its partition waits")
        guard case .retried(_, let reason) = step.events.first else { Issue.record("\(step.events)"); return }
        #expect(reason == "boom" && poison.attempts == 1)
        #expect(schedule.readyRetries(now: 1_000 + 99_999_999) == 1_000 + 100_000_000)
        #expect(schedule.readyRetries(now: 1_000 + 100_000_000) == .max)
        var again = PartitionScheduler.Actions()
        schedule.takeReady(into: &again)
        #expect(again.starts.first === poison)

        var second = PartitionScheduler.Actions()
        schedule.handedBack(poison, .failed(reason: "boom"), now: 2_000, into: &second)
        #expect(poison.attempts == 2)
        #expect(schedule.readyRetries(now: 2_000 + 199_999_999) == 2_000 + 200_000_000)
        _ = schedule.readyRetries(now: 2_000 + 200_000_000)
        var third = PartitionScheduler.Actions()
        schedule.takeReady(into: &third)
        var last = PartitionScheduler.Actions()
        schedule.handedBack(poison, .failed(reason: "boom"), now: 3_000, into: &last)
        schedule.takeReady(into: &last)
        guard case .passedOver = last.events.first else { Issue.record("\(last.events)"); return }
        #expect(offsets(last.stores) == [7], "passed over: stored, the partition moves on")
        #expect(offsets(last.starts) == [8])
    }

    @Test("with a dead-letter topic the last failure becomes a dead letter; stored once the broker has it")
    func deadLetter() {
        var schedule = scheduler(maxRetries: 0, deadLetters: "dead")
        var actions = PartitionScheduler.Actions()
        let failing = message(0, 3, headers: [("funcd-source-topic", "forged"), ("trace", "x")])
        schedule.accept([failing, message(0, 4)], into: &actions)
        var step = PartitionScheduler.Actions()
        schedule.handedBack(failing, .failed(reason: "boom"), now: 0, into: &step)
        schedule.takeReady(into: &step)
        #expect(step.starts.isEmpty && step.stores.isEmpty && schedule.sending == 1 && schedule.inFlight == 0)
        let letter = try! #require(step.sends.first)
        #expect(letter.topic == "dead" && !letter.isReply)
        #expect(letter.headers.filter { $0.0 == "funcd-source-topic" }.map(\.1) == ["t"], "the message's own funcd-* headers are dropped")
        #expect(letter.headers.contains { $0 == ("trace", "x") })
        #expect(letter.headers.contains { $0 == ("funcd-attempts", "1") })

        var acked = PartitionScheduler.Actions()
        schedule.sent(letter, failure: nil, now: 0, into: &acked)
        schedule.takeReady(into: &acked)
        #expect(offsets(acked.stores) == [3] && offsets(acked.starts) == [4] && schedule.sending == 0)
        guard case .deadLettered(_, "dead", "boom") = acked.events.first else { Issue.record("\(acked.events)"); return }
    }

    @Test("a reply is sent, its partition waits for the acknowledgement, its offset is stored after it")
    func replyWaitsForAcknowledgement() {
        var schedule = scheduler()
        var actions = PartitionScheduler.Actions()
        let asking = message(0, 1)
        schedule.accept([asking, message(0, 2)], into: &actions)
        var step = PartitionScheduler.Actions()
        schedule.handedBack(asking, .reply(topic: "answers", value: [1], headers: [("correlation-id", "c")]), now: 0, into: &step)
        schedule.takeReady(into: &step)
        #expect(step.starts.isEmpty && step.stores.isEmpty && schedule.inFlight == 0 && schedule.sending == 1)
        let reply = try! #require(step.sends.first)
        #expect(reply.isReply && reply.topic == "answers" && reply.headers.map(\.1) == ["c"])
        var acked = PartitionScheduler.Actions()
        schedule.sent(reply, failure: nil, now: 0, into: &acked)
        schedule.takeReady(into: &acked)
        #expect(offsets(acked.stores) == [1] && offsets(acked.starts) == [2])
    }

    @Test("a send that fails goes again after a backoff, without the handler; a reply that never can becomes a dead letter")
    func failedSends() {
        var schedule = scheduler(deadLetters: "dead")
        var actions = PartitionScheduler.Actions()
        let asking = message(0, 1)
        schedule.accept([asking], into: &actions)
        var step = PartitionScheduler.Actions()
        schedule.handedBack(asking, .reply(topic: "answers", value: [], headers: [("correlation-id", "c")]), now: 0, into: &step)
        let reply = step.sends[0]

        var failed = PartitionScheduler.Actions()
        schedule.sent(reply, failure: .init(description: "timed out", permanent: false), now: 10, into: &failed)
        #expect(failed.sends.isEmpty && failed.stores.isEmpty && failed.starts.isEmpty)
        #expect(schedule.dueResends(now: 10 + 99_999_999).isEmpty)
        let resent = schedule.dueResends(now: 10 + 100_000_000)
        #expect(resent.count == 1 && resent[0].failures == 1 && resent[0].isReply && schedule.sending == 1)

        var never = PartitionScheduler.Actions()
        schedule.sent(resent[0], failure: .init(description: "unknown topic", permanent: true), now: 20, into: &never)
        let letter = try! #require(never.sends.first)
        #expect(!letter.isReply && letter.reason.contains("the reply to answers was not delivered: unknown topic"))
        #expect(schedule.sending == 1 && asking.attempts == 0, "the handler is not run again")
    }

    @Test("a refused reply-to is final: a dead letter at once, or passed over without retries")
    func refused() {
        var withLetters = scheduler(maxRetries: 3, deadLetters: "dead")
        var actions = PartitionScheduler.Actions()
        let one = message(0, 1)
        withLetters.accept([one], into: &actions)
        var step = PartitionScheduler.Actions()
        withLetters.handedBack(one, .refused(reason: "not allowed"), now: 0, into: &step)
        #expect(step.sends.count == 1 && step.events.isEmpty)

        var without = scheduler(maxRetries: 3)
        var other = PartitionScheduler.Actions()
        let two = message(0, 1)
        without.accept([two], into: &other)
        var passed = PartitionScheduler.Actions()
        without.handedBack(two, .refused(reason: "not allowed"), now: 0, into: &passed)
        guard case .passedOver = passed.events.first else { Issue.record("\(passed.events)"); return }
        #expect(offsets(passed.stores) == [1])
    }

    @Test("revoked: the backlog, retries and resends of the partition are dropped; a late failure stores nothing")
    func revoke() {
        var schedule = scheduler(maxRetries: 1)
        var actions = PartitionScheduler.Actions()
        let running = message(0, 1)
        schedule.accept([running, message(0, 2), message(0, 3), message(1, 1)], into: &actions)
        let key = PartitionKey(topic: "t", partition: 0)
        schedule.revoke([key])
        #expect(schedule.buffered == 0 && schedule.busy([key]))
        var late = PartitionScheduler.Actions()
        schedule.handedBack(running, .failed(reason: "boom"), now: 0, into: &late)
        schedule.takeReady(into: &late)
        #expect(late.stores.isEmpty && late.starts.isEmpty, "not retried, not stored: the next owner runs it again")
        #expect(!schedule.busy([key]))
        schedule.forget([key])
        #expect(schedule.partitions[key] == nil)
    }

    @Test("stopping: nothing more starts, waiting resends are dropped, drained once the rest finish")
    func stop() {
        var schedule = scheduler()
        var actions = PartitionScheduler.Actions()
        let asking = message(0, 1)
        let other = message(1, 1)
        schedule.accept([asking, other, message(2, 1)], into: &actions)
        var step = PartitionScheduler.Actions()
        schedule.handedBack(asking, .reply(topic: "a", value: [], headers: [("correlation-id", "c")]), now: 0, into: &step)
        schedule.sent(step.sends[0], failure: .init(description: "away", permanent: false), now: 0, into: &step)
        schedule.stop()
        #expect(schedule.sending == 0 && schedule.inFlight == 2 && !schedule.drained)
        var late = PartitionScheduler.Actions()
        schedule.handedBack(other, .failed(reason: "boom"), now: 0, into: &late)
        schedule.takeReady(into: &late)
        #expect(late.starts.isEmpty)
        guard case .passedOver = late.events.first else { Issue.record("\(late.events)"); return }
    }

    @Test("the backlog bound: full at the limit, half-drained wakes the poll thread")
    func backlog() {
        var schedule = scheduler(concurrency: 1, backlog: 4)
        var actions = PartitionScheduler.Actions()
        let messages = (0..<6).map { message(0, Int64($0)) }
        schedule.accept(messages, into: &actions)
        #expect(schedule.buffered == 5 && schedule.backlogFull)
        var current = actions.starts[0]
        var woke = false
        for _ in 0..<3 {
            var step = PartitionScheduler.Actions()
            schedule.handedBack(current, .succeeded, now: 0, into: &step)
            schedule.takeReady(into: &step)
            woke = woke || step.wakePoll
            current = step.starts[0]
        }
        #expect(schedule.buffered == 2 && schedule.backlogAtMostHalf && woke)
    }

    @Test("worker deaths: a convicted message is set aside, a suspect runs alone after the commit, others wait for it")
    func workerDeaths() {
        var schedule = scheduler(concurrency: 4, maxRetries: 2, deadLetters: "dead")
        var actions = PartitionScheduler.Actions()
        let convicted = message(0, 5)
        let suspect = message(1, 9)
        let innocent = message(2, 1)
        schedule.accept([convicted, suspect, innocent], into: &actions)
        let deaths: [Int64: Int] = [5: 2, 9: 0]
        var screened = PartitionScheduler.Actions()
        let runnable = schedule.screen(actions.starts, deaths: { deaths[$0.offset] }, now: 0, into: &screened)
        #expect(runnable.map(\.offset) == [1])
        #expect(screened.sends.count == 1 && screened.sends[0].reason.contains("died 2 times"))
        #expect(screened.starts.isEmpty && schedule.inFlight == 1, "the suspect waits for the innocent one to finish")

        var step = PartitionScheduler.Actions()
        schedule.accept([message(3, 1)], into: &step)
        #expect(step.starts.isEmpty, "nothing new starts while a suspect waits")
        schedule.handedBack(innocent, .succeeded, now: 0, into: &step)
        schedule.sent(screened.sends[0], failure: nil, now: 0, into: &step)
        schedule.takeReady(into: &step)
        #expect(step.starts.isEmpty && step.wakePoll && schedule.wantsSoloCommit, "the commit comes first")
        schedule.soloCommitted()
        var alone = PartitionScheduler.Actions()
        schedule.takeReady(into: &alone)
        #expect(alone.starts.map(\.offset) == [9] && schedule.runningAlone === suspect)
        var rescreen = PartitionScheduler.Actions()
        #expect(schedule.screen(alone.starts, deaths: { deaths[$0.offset] }, now: 0, into: &rescreen).count == 1)
        var done = PartitionScheduler.Actions()
        schedule.handedBack(suspect, .succeeded, now: 0, into: &done)
        schedule.takeReady(into: &done)
        #expect(schedule.runningAlone == nil && done.starts.map(\.record.partition) == [3])
    }
}
