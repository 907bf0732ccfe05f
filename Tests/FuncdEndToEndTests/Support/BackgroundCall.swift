import Foundation

/// Runs one blocking closure on its own thread and lets the test collect the result later.
///
/// The end-to-end tests are synchronous and block on sockets and pipes. Running a second blocking
/// call at the same time (a request that is stuck in the handler while others go on, a request in
/// flight while the process gets SIGTERM) needs a real thread: a Swift `Task` would occupy one of
/// the few cooperative threads (two on this machine) for the whole blocking call. Results come
/// back as values, so assertions stay on the test's own thread, where Swift Testing attributes
/// them to the test.
final class BackgroundCall<Value: Sendable>: @unchecked Sendable {
    /// Guards `outcome`; waited on by ``wait(timeout:)``.
    private let condition = NSCondition()
    private var outcome: Result<Value, any Error>?

    /// Starts `body` on a new thread immediately.
    init(_ body: @escaping @Sendable () throws -> Value) {
        let thread = Thread { [self] in
            let result = Result<Value, any Error> { try body() }
            condition.lock()
            outcome = result
            condition.broadcast()
            condition.unlock()
        }
        thread.start()
    }

    /// The closure's result once it has finished, or ``Timeout`` after `timeout` seconds. A throw
    /// from the closure is rethrown here.
    func wait(timeout: Double) throws -> Value {
        let limit = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while outcome == nil {
            if !condition.wait(until: limit) && outcome == nil {
                throw Timeout(seconds: timeout)
            }
        }
        return try outcome!.get()
    }

    /// Whether the closure has finished (returned or thrown).
    var isFinished: Bool {
        condition.lock()
        defer { condition.unlock() }
        return outcome != nil
    }

    /// Thrown by ``wait(timeout:)`` when the closure is still running at the deadline.
    struct Timeout: Error, CustomStringConvertible {
        let seconds: Double
        var description: String { "background call still running after \(seconds) s" }
    }
}
