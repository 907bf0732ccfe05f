import Foundation

/// A point in monotonic time by which something must have happened.
///
/// The tests never sleep to wait for an event: they poll for it with a deadline, so they go as
/// fast as the server allows on a quiet machine and still pass on a loaded one. Monotonic time
/// (not wall-clock time) is used so that clock adjustments cannot distort a latency measurement.
struct Deadline: Sendable {
    /// The deadline, in seconds on the monotonic clock (see ``now``).
    let instant: Double

    /// A deadline `seconds` from now.
    init(in seconds: Double) {
        instant = Deadline.now + seconds
    }

    /// Seconds on a monotonic clock with an arbitrary origin; only differences are meaningful.
    static var now: Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1_000_000_000
    }

    /// Seconds left before the deadline, never negative.
    var remaining: Double {
        max(0, instant - Deadline.now)
    }

    /// Whether the deadline has passed.
    var hasPassed: Bool {
        Deadline.now >= instant
    }

    /// Evaluates `condition` every `interval` seconds until it returns true or `timeout` seconds
    /// have passed. Returns whether the condition became true. The condition is always evaluated
    /// at least once, and once more after the deadline, so a slow final poll is not lost.
    @discardableResult
    static func poll(
        timeout: Double,
        interval: Double = 0.01,
        until condition: () throws -> Bool
    ) rethrows -> Bool {
        let deadline = Deadline(in: timeout)
        while true {
            if try condition() { return true }
            if deadline.hasPassed { return try condition() }
            usleep(useconds_t(max(1_000, min(interval, deadline.remaining) * 1_000_000)))
        }
    }
}
