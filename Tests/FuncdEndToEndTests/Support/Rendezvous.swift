import Foundation

/// A meeting point for a fixed number of threads: each waits until all have arrived.
///
/// `@unchecked Sendable`: its only mutable state, `arrived`, is read and written under `condition`.
final class Rendezvous: @unchecked Sendable {
    private let condition = NSCondition()
    private let parties: Int
    private var arrived = 0

    init(parties: Int) {
        self.parties = parties
    }

    /// Arrives and waits until every party has, or `timeout` seconds pass.
    func arriveAndWait(timeout: Double) {
        let limit = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        arrived += 1
        condition.broadcast()
        while arrived < parties && condition.wait(until: limit) {}
    }
}
