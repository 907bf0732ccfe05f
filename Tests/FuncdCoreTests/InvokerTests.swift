import FuncdSystem
import Prometheus
import Synchronization
import Testing

@testable import FuncdCore

/// A host that runs each invocation's work as a Swift closure on its own thread: enough to drive
/// the Invoker's deadline and hand-back logic without an interpreter.
final class ThreadHost: FunctionHost, @unchecked Sendable {
    let versionDescription = "test"
    private let lock = ConditionLock()
    private var invoker: Invoker?
    private var interrupted: [String] = []
    /// What each target does: returns the result, or blocks until `release`.
    let work: @Sendable (Invocation, ThreadHost) -> InvocationResult?
    private var releases: [ObjectIdentifier: Bool] = [:]

    init(work: @escaping @Sendable (Invocation, ThreadHost) -> InvocationResult?) { self.work = work }

    func attach(_ invoker: Invoker) { lock.withLock { self.invoker = invoker } }

    func submit(_ batch: [Invocation]) {
        for invocation in batch {
            NativeThread.start { [self] in
                guard invocation.tryStart() else { return }
                if let result = work(invocation, self) {
                    invocation.complete(with: result)
                    lock.withLock { invoker }!.finished([invocation])
                }
            }
        }
    }

    func interrupt(_ invocation: Invocation) {
        lock.withLock {
            interrupted.append(invocation.target)
            lock.broadcast()
        }
    }

    /// Blocks the calling worker until `interrupt` is called for `invocation`, then finishes it.
    func waitForInterrupt(_ invocation: Invocation) -> InvocationResult {
        lock.lock()
        while !interrupted.contains(invocation.target) { lock.wait() }
        lock.unlock()
        return InvocationResult(status: 500, error: "interrupted")
    }

    var interruptedTargets: [String] { lock.withLock { interrupted } }
}

/// Collects what the Invoker hands back.
final class CollectingSink: InvocationSink, @unchecked Sendable {
    private let lock = ConditionLock()
    private var items: [(target: String, status: Int, at: UInt64)] = []

    func deliver(_ batch: [Invocation]) {
        lock.withLock {
            for invocation in batch {
                items.append((invocation.target, invocation.result?.status ?? -1, MonotonicClock.nanoseconds()))
            }
            lock.broadcast()
        }
    }

    func waitFor(count: Int, seconds: Double = 10) -> [(target: String, status: Int, at: UInt64)] {
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds * 1e9)
        lock.lock()
        defer { lock.unlock() }
        while items.count < count && MonotonicClock.nanoseconds() < deadline {
            lock.wait(untilNanoseconds: deadline)
        }
        return items
    }
}

@Suite("Invoker: deadlines, hand-back, stuck handlers")
struct InvokerTests {
    func makeInvoker(
        host: ThreadHost, timeout: Double, grace: Double = 5, onStuck: @escaping @Sendable (Invocation) -> Void = { _ in }
    ) -> (Invoker, FunctionMetrics) {
        let metrics = FunctionMetrics(registry: PrometheusCollectorRegistry())
        let invoker = Invoker(
            host: host, timeoutSeconds: timeout, graceSeconds: grace, metrics: metrics,
            logger: .init(label: "test"), onStuck: onStuck)
        invoker.startWatchdog()
        return (invoker, metrics)
    }

    func invocation(_ target: String, sink: any InvocationSink) -> Invocation {
        Invocation(method: "GET", target: target, headers: [], body: [], sink: sink, reply: nil)
    }

    @Test func finishedCallsAreDeliveredOnceWithTheirResult() {
        let host = ThreadHost { invocation, _ in InvocationResult(status: 200, body: Array(invocation.target.utf8)) }
        let (invoker, metrics) = makeInvoker(host: host, timeout: 5)
        let sink = CollectingSink()
        invoker.submit((0..<20).map { invocation("/\($0)", sink: sink) })
        let delivered = sink.waitFor(count: 20)
        #expect(delivered.count == 20)
        #expect(Set(delivered.map(\.target)).count == 20)
        #expect(delivered.allSatisfy { $0.status == 200 })
        #expect(invoker.inFlightCount == 0)
        #expect(metrics.registry.emitToString().contains("function_calls_total{method=\"GET\"} 20"))
    }

    @Test func aCallPastItsDeadlineGets408OnTimeAndItsLateResultIsDropped() {
        let host = ThreadHost { invocation, host in
            if invocation.target == "/slow" { return host.waitForInterrupt(invocation) }
            return InvocationResult(status: 200)
        }
        let (invoker, metrics) = makeInvoker(host: host, timeout: 0.3)
        let sink = CollectingSink()
        let started = MonotonicClock.nanoseconds()
        invoker.submit([invocation("/slow", sink: sink)])
        invoker.submit([invocation("/fast", sink: sink)])
        let delivered = sink.waitFor(count: 2)
        let slow = delivered.first { $0.target == "/slow" }
        #expect(slow?.status == 408)
        let elapsed = Double((slow?.at ?? started) - started) / 1e9
        #expect(elapsed >= 0.3 && elapsed < 1.0, "408 after \(elapsed) s for a 0.3 s timeout")
        #expect(delivered.first { $0.target == "/fast" }?.status == 200)
        // The interrupted call finishes afterwards; nothing more may be delivered.
        #expect(sink.waitFor(count: 3, seconds: 0.3).count == 2)
        #expect(host.interruptedTargets == ["/slow"])
        #expect(metrics.registry.emitToString().contains("function_timeouts_total{method=\"GET\"} 1"))
    }

    @Test func aNewDeadlineWakesAWatchdogWaitingForAGraceCheck() {
        // After a timeout the watchdog sleeps until the grace check; a call submitted then must
        // still get its 408 at its own deadline, not at the grace check.
        let host = ThreadHost { invocation, host in host.waitForInterrupt(invocation) }
        let (invoker, _) = makeInvoker(host: host, timeout: 0.2, grace: 3)
        let sink = CollectingSink()
        invoker.submit([invocation("/first", sink: sink)])
        _ = sink.waitFor(count: 1)
        let second = MonotonicClock.nanoseconds()
        invoker.submit([invocation("/second", sink: sink)])
        let delivered = sink.waitFor(count: 2)
        let at = delivered.first { $0.target == "/second" }?.at ?? second
        let elapsed = Double(at - second) / 1e9
        #expect(elapsed < 1.0, "second 408 came after \(elapsed) s for a 0.2 s timeout")
    }

    @Test func aHandlerThatIgnoresTheInterruptIsDeclaredStuckAfterTheGrace() {
        let stuck = Atomic<Int>(0)
        let host = ThreadHost { _, _ in nil }  // never finishes, never lets go
        let (invoker, _) = makeInvoker(host: host, timeout: 0.1, grace: 0.2) { _ in
            stuck.add(1, ordering: .relaxed)
        }
        let sink = CollectingSink()
        invoker.submit([invocation("/stuck", sink: sink)])
        #expect(sink.waitFor(count: 1).first?.status == 408)
        let deadline = MonotonicClock.nanoseconds() + 5_000_000_000
        while stuck.load(ordering: .relaxed) == 0 && MonotonicClock.nanoseconds() < deadline {
            let wait = ConditionLock()
            wait.withLock { wait.wait(untilNanoseconds: MonotonicClock.nanoseconds() + 10_000_000) }
        }
        #expect(stuck.load(ordering: .relaxed) == 1)
    }
}
