import FuncdCore
import Testing

@testable import FuncdHTTP

/// The connection's life as a value: timeouts, the read gate, closing or lingering, eviction.
@Suite struct ConnectionStateMachineTests {
    private static let second: UInt64 = 1_000_000_000

    private static func limits(pipelined: Int = 2) -> ConnectionStateMachine.Limits {
        var limits = HTTPLimits()
        limits.headerTimeoutSeconds = 10
        limits.bodyTimeoutSeconds = 30
        limits.idleTimeoutSeconds = 600
        limits.lingerTimeoutSeconds = 5
        limits.maxPipelined = pipelined
        return ConnectionStateMachine.Limits(limits)
    }

    private static func machine(pipelined: Int = 2) -> ConnectionStateMachine {
        ConnectionStateMachine(limits: limits(pipelined: pipelined), now: 0)
    }

    @Test("a connection that never sends is closed at the head timeout, not the idle one")
    func freshConnectionHeadTimeout() {
        let machine = Self.machine()
        #expect(machine.expiry(now: 9 * Self.second) == nil)
        #expect(machine.expiry(now: 10 * Self.second) == .close(.headerTimeout))
    }

    @Test("a head that started and stalls is closed at the head timeout, counted from its first byte")
    func partialHeadTimeout() {
        var machine = Self.machine()
        machine.bytesArrived(now: 5 * Self.second)
        #expect(machine.expiry(now: 14 * Self.second) == nil)
        #expect(machine.expiry(now: 15 * Self.second) == .close(.headerTimeout))
        // More bytes of the same head do not restart its clock.
        machine.bytesArrived(now: 14 * Self.second)
        #expect(machine.expiry(now: 15 * Self.second) == .close(.headerTimeout))
    }

    @Test("a body is held to its progress: each read restarts the body timeout")
    func bodyProgress() {
        var machine = Self.machine()
        machine.bytesArrived(now: 0)
        machine.headReceived(now: Self.second, refused: false)
        machine.bytesArrived(now: 20 * Self.second)
        #expect(machine.expiry(now: 49 * Self.second) == nil)
        #expect(machine.expiry(now: 50 * Self.second) == .close(.bodyTimeout))
    }

    @Test("between requests the idle timeout applies, and not while a call is being answered")
    func idleAndAnswering() {
        var machine = Self.machine()
        machine.bytesArrived(now: 0)
        machine.headReceived(now: 0, refused: false)
        machine.requestEnded(now: 0, complete: true)
        machine.answerStarted()
        // A call may run for minutes: the client is not idle, it waits on us.
        #expect(machine.expiry(now: 1000 * Self.second) == nil)
        #expect(machine.answered(now: 1000 * Self.second, keepAlive: true) == .next)
        #expect(machine.expiry(now: 1599 * Self.second) == nil)
        #expect(machine.expiry(now: 1600 * Self.second) == .close(.idleTimeout))
    }

    @Test("reading pauses beyond the pipelining bound and while answers are not taken")
    func readGate() {
        var machine = Self.machine(pipelined: 2)
        for _ in 0..<3 {
            machine.bytesArrived(now: 0)
            machine.headReceived(now: 0, refused: false)
            machine.requestEnded(now: 0, complete: true)
        }
        #expect(!machine.shouldRead(writable: true), "three requests wait, the bound is two")
        machine.answerStarted()
        #expect(machine.answered(now: 0, keepAlive: true) == .next)
        #expect(machine.shouldRead(writable: true))
        #expect(!machine.shouldRead(writable: false), "the client is not taking its answers")
    }

    @Test("time spent with reading paused by us does not count against the client")
    func pausedReadingStopsTheClock() {
        var machine = Self.machine()
        machine.bytesArrived(now: 0)
        machine.headReceived(now: 0, refused: false)
        machine.readDeferred()
        #expect(machine.expiry(now: 100 * Self.second) == nil)
        machine.readResumed(now: 100 * Self.second)
        #expect(machine.expiry(now: 129 * Self.second) == nil)
        #expect(machine.expiry(now: 130 * Self.second) == .close(.bodyTimeout))
    }

    @Test("an answer the client does not take closes the connection after the body timeout")
    func sendTimeout() {
        var machine = Self.machine()
        machine.bytesArrived(now: 0)
        machine.headReceived(now: 0, refused: false)
        machine.requestEnded(now: 0, complete: true)
        machine.answerStarted()
        machine.writabilityChanged(writable: false, now: Self.second)
        #expect(machine.expiry(now: 30 * Self.second) == nil)
        #expect(machine.expiry(now: 31 * Self.second) == .close(.sendTimeout))
        machine.writabilityChanged(writable: true, now: 31 * Self.second)
        #expect(machine.expiry(now: 32 * Self.second) == nil)
    }

    @Test("a refused body is dropped while it arrives, and its close lingers")
    func refusedBodyLingers() {
        var machine = Self.machine()
        machine.bytesArrived(now: 0)
        machine.headReceived(now: 0, refused: true)
        #expect(machine.unanswered == 1)
        #expect(machine.shouldRead(writable: false), "a refused body is read and dropped even when not writable")
        machine.answerStarted()
        #expect(machine.answered(now: Self.second, keepAlive: false) == .linger)
        machine.lingerStarted(now: Self.second)
        #expect(machine.shouldRead(writable: true))
        #expect(machine.expiry(now: 5 * Self.second) == nil)
        #expect(machine.expiry(now: 6 * Self.second) == .lingerOver)
        let closesNow = machine.inputClosed()
        #expect(closesNow, "the client finished sending: close now")
    }

    @Test("a closing answer after a complete request closes at once")
    func closeWithoutLinger() {
        var machine = Self.machine()
        machine.bytesArrived(now: 0)
        machine.headReceived(now: 0, refused: false)
        machine.requestEnded(now: 0, complete: true)
        machine.answerStarted()
        #expect(machine.answered(now: 0, keepAlive: false) == .close)
        #expect(!machine.shouldRead(writable: true))
    }

    @Test("a client that half-closes gets its answers, then the connection closes")
    func halfClosedClient() {
        var machine = Self.machine()
        machine.bytesArrived(now: 0)
        machine.headReceived(now: 0, refused: false)
        machine.requestEnded(now: 0, complete: true)
        let closesAtOnce = machine.inputClosed()
        #expect(!closesAtOnce, "one answer is still owed")
        #expect(!machine.shouldRead(writable: true))
        machine.answerStarted()
        #expect(machine.answered(now: 0, keepAlive: true) == .close)

        var idle = Self.machine()
        let idleCloses = idle.inputClosed()
        #expect(idleCloses, "nothing owed: close now")
    }

    @Test("only connections that owe nobody an answer can be evicted, oldest wait first")
    func eviction() {
        var idle = Self.machine()
        #expect(idle.evictableSince() == 0)
        idle.bytesArrived(now: 3)
        #expect(idle.evictableSince() == 3, "a head in progress is evictable from its first byte")
        idle.headReceived(now: 4, refused: false)
        #expect(idle.evictableSince() == nil, "a body is arriving")
        idle.requestEnded(now: 5, complete: true)
        #expect(idle.evictableSince() == nil, "an answer is owed")
    }

    @Test("the idle connection's pipelined head starts its clock when the answer before it goes")
    func pipelinedHeadClock() {
        var machine = Self.machine()
        machine.bytesArrived(now: 0)
        machine.headReceived(now: 0, refused: false)
        machine.requestEnded(now: 0, complete: true)
        machine.answerStarted()
        machine.bytesArrived(now: Self.second)
        #expect(machine.expiry(now: 100 * Self.second) == nil, "the client waits on an answer")
        _ = machine.answered(now: 100 * Self.second, keepAlive: true)
        #expect(machine.expiry(now: 109 * Self.second) == nil)
        #expect(machine.expiry(now: 110 * Self.second) == .close(.headerTimeout))
    }
}
