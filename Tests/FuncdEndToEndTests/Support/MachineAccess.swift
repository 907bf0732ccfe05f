import Foundation
import Testing

/// A test trait that rations the machine between end-to-end tests.
///
/// Every test here starts a real server process, which embeds CPython: a few hundred
/// milliseconds of CPU and tens of MB each. Swift Testing would start all of them at once, and
/// on a two-core machine that burst makes start-ups slow and latencies noisy. So:
///
/// - `.sharesMachine` (on every suite): at most `FUNCD_E2E_PARALLEL` tests (default 3) run at
///   the same time;
/// - `.needsQuietMachine` (on the few tests that assert the spec's tight latency bounds, such as
///   a 408 within 0.3 s of FUNC_TIMEOUT): the test runs alone. Waiting exclusive tests take
///   precedence over new shared ones, so they wait only for the tests already running.
///
/// A suite must carry one of the two, never both (a test holding a shared slot while waiting for
/// exclusive access would wait for itself). Waiting suspends the test's task; no thread blocks.
/// No `.timeLimit` is used beside it: that clock would also run while a test waits its turn.
struct MachineAccessTrait: TestTrait, SuiteTrait, TestScoping {
    typealias TestScopeProvider = MachineAccessTrait

    /// Whether the test needs the machine to itself.
    var exclusive: Bool

    /// Applied from a suite to every test in it.
    var isRecursive: Bool { true }

    /// Scopes each test case (one per non-parameterized test), never a whole suite, so a suite
    /// never holds a slot its own tests then wait for.
    func scopeProvider(for test: Test, testCase: Test.Case?) -> MachineAccessTrait? {
        testCase == nil ? nil : self
    }

    func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        await MachineGate.shared.acquire(exclusive: exclusive)
        defer { MachineGate.shared.release(exclusive: exclusive) }
        try await function()
    }
}

extension Trait where Self == MachineAccessTrait {
    /// Runs alongside a few other end-to-end tests.
    static var sharesMachine: Self { MachineAccessTrait(exclusive: false) }

    /// Runs with no other end-to-end test at the same time (latency assertions).
    static var needsQuietMachine: Self { MachineAccessTrait(exclusive: true) }
}

/// The counting, writer-preferring gate behind ``MachineAccessTrait``. Continuations are resumed
/// outside the lock; a waiter is handed its slot before it is resumed.
final class MachineGate: @unchecked Sendable {
    static let shared = MachineGate(
        maximumShared: Int(ProcessInfo.processInfo.environment["FUNCD_E2E_PARALLEL"] ?? "") ?? 3)

    private let maximumShared: Int
    private let lock = NSLock()
    private var sharedHolders = 0
    private var exclusiveHeld = false
    private var sharedWaiters: [CheckedContinuation<Void, Never>] = []
    private var exclusiveWaiters: [CheckedContinuation<Void, Never>] = []

    init(maximumShared: Int) {
        self.maximumShared = max(1, maximumShared)
    }

    /// Suspends until a shared slot (or, if `exclusive`, the whole machine) is granted.
    func acquire(exclusive: Bool) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            let granted: Bool
            if exclusive {
                granted = !exclusiveHeld && sharedHolders == 0 && exclusiveWaiters.isEmpty
                if granted { exclusiveHeld = true } else { exclusiveWaiters.append(continuation) }
            } else {
                granted = !exclusiveHeld && exclusiveWaiters.isEmpty && sharedHolders < maximumShared
                if granted { sharedHolders += 1 } else { sharedWaiters.append(continuation) }
            }
            lock.unlock()
            if granted { continuation.resume() }
        }
    }

    /// Gives back what ``acquire(exclusive:)`` granted and hands it on to waiters.
    func release(exclusive: Bool) {
        lock.lock()
        if exclusive { exclusiveHeld = false } else { sharedHolders -= 1 }
        var wake: [CheckedContinuation<Void, Never>] = []
        if !exclusiveHeld {
            if !exclusiveWaiters.isEmpty {
                if sharedHolders == 0 {
                    exclusiveHeld = true
                    wake.append(exclusiveWaiters.removeFirst())
                }
            } else {
                while sharedHolders < maximumShared && !sharedWaiters.isEmpty {
                    sharedHolders += 1
                    wake.append(sharedWaiters.removeFirst())
                }
            }
        }
        lock.unlock()
        for continuation in wake { continuation.resume() }
    }
}
