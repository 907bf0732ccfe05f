import Synchronization
import Testing

@testable import FuncdCore

/// A streamed answer between a host's thread and a connection's, driven from one thread here:
/// the order of calls is what each side would do.
@Suite("Response streams: hand-over, backpressure, the end and the client leaving")
struct ResponseStreamTests {
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
        var count: Int { value.load(ordering: .relaxed) }
        func bump() { value.add(1, ordering: .relaxed) }
    }

    func bytes(_ events: [ResponseStream.Event]) -> Int {
        events.reduce(0) { total, event in
            if case .bytes(let bytes) = event { return total + bytes.count }
            return total
        }
    }

    @Test("events written before the transport attaches wait, and attaching notifies once")
    func writesBeforeAttach() {
        let stream = ResponseStream(onDrain: {})
        #expect(stream.write(Array("head".utf8)))
        #expect(stream.write([]))  // nothing to send, nothing queued
        let notified = Counter()
        stream.attach { notified.bump() }
        #expect(notified.count == 1)
        #expect(bytes(stream.take()) == 4)
        #expect(stream.take().isEmpty)
    }

    @Test("one notification per batch: writes after it until the transport takes them do not notify again")
    func notifiesOncePerBatch() {
        let stream = ResponseStream(onDrain: {})
        let notified = Counter()
        stream.attach { notified.bump() }
        for _ in 0..<10 { stream.write([1, 2, 3]) }
        #expect(notified.count == 1)
        #expect(bytes(stream.take()) == 30)
        stream.write([4])
        #expect(notified.count == 2)
    }

    @Test("past the high-water mark the writer is asked to pause; below half of it, onDrain lets it go on")
    func backpressure() {
        let drained = Counter()
        let stream = ResponseStream(onDrain: { drained.bump() })
        stream.attach {}
        let chunk = [UInt8](repeating: 7, count: 64 * 1024)
        var accepted = 0
        while stream.write(chunk) { accepted += 1 }
        // The write that crossed the mark was queued too, then the writer was asked to pause.
        #expect((accepted + 1) * chunk.count > ResponseStream.highWater)
        #expect(accepted * chunk.count <= ResponseStream.highWater)
        let queued = bytes(stream.take())
        #expect(queued == (accepted + 1) * chunk.count)
        stream.sent(queued - ResponseStream.highWater / 2 - 1)
        #expect(drained.count == 0)  // still above half the mark
        stream.sent(1)
        #expect(drained.count == 1)
        stream.sent(0)
        #expect(drained.count == 1)  // resumed once, not again
        #expect(stream.write(chunk))
    }

    @Test("finish and abort close the stream once; what is written after the end is dropped")
    func endsOnce() {
        let stream = ResponseStream(onDrain: {})
        stream.attach {}
        stream.write([1])
        stream.finish()
        stream.abort("late")
        stream.write([2])
        let events = stream.take()
        #expect(events.count == 2)
        guard case .end = events.last else {
            Issue.record("the stream's last event is not its end: \(events)")
            return
        }
        let broken = ResponseStream(onDrain: {})
        broken.attach {}
        broken.abort("timeout")
        guard case .abort(let reason) = broken.take().first else {
            Issue.record("no abort event")
            return
        }
        #expect(reason == "timeout")
    }

    @Test("a client that leaves drops what is queued and lets a paused writer go")
    func detach() {
        let drained = Counter()
        let stream = ResponseStream(onDrain: { drained.bump() })
        stream.attach {}
        while stream.write([UInt8](repeating: 0, count: 128 * 1024)) {}
        stream.detach()
        #expect(drained.count == 1)
        #expect(stream.isDetached)
        #expect(stream.take().isEmpty)
        #expect(stream.write([1]))  // dropped, and never a reason to pause
        #expect(stream.take().isEmpty)
    }
}
