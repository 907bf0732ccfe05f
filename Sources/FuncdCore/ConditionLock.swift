#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex with one condition variable, for the hand-offs between event loops, the
/// interpreter threads and the deadline watchdog. Those threads are plain OS threads that must
/// block (an interpreter thread has nothing else to do), so Swift concurrency's locks, which never
/// wait on a condition, are not enough.
///
/// `@unchecked Sendable`: every access to the wrapped pthread objects goes through the
/// pthread calls themselves, which are thread-safe by definition.
public final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        Self.initialiseMonotonic(condition)
    }

    /// Timed waits are measured on the monotonic clock, like every deadline in funcd.
    fileprivate static func initialiseMonotonic(_ condition: UnsafeMutablePointer<pthread_cond_t>) {
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if os(Linux)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` with the mutex held.
    @inline(__always)
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for a signal; the mutex must be held and is held again on return.
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits for a signal or until the monotonic clock reaches `deadline` (nanoseconds).
    public func wait(untilNanoseconds deadline: UInt64) {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        #if os(Linux)
        pthread_cond_timedwait(condition, mutex, &time)
        #else
        let now = MonotonicClock.nanoseconds()
        let delta = deadline > now ? deadline - now : 0
        var relative = timespec(tv_sec: Int(delta / 1_000_000_000), tv_nsec: Int(delta % 1_000_000_000))
        pthread_cond_timedwait_relative_np(condition, mutex, &relative)
        _ = time
        #endif
    }

    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// A further condition on the same mutex, for when different waiters must be woken apart
    /// (a host's workers and its monitor).
    public final class Condition: @unchecked Sendable {
        fileprivate let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

        public init() {
            ConditionLock.initialiseMonotonic(condition)
        }

        deinit {
            pthread_cond_destroy(condition)
            condition.deallocate()
        }

        public func signal() { pthread_cond_signal(condition) }
        public func broadcast() { pthread_cond_broadcast(condition) }
    }

    /// Waits on `condition`; the mutex must be held.
    public func wait(_ condition: Condition) { pthread_cond_wait(condition.condition, mutex) }

    /// Waits on `condition` until the monotonic clock reaches `deadline`; the mutex must be held.
    public func wait(_ condition: Condition, untilNanoseconds deadline: UInt64) {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        pthread_cond_timedwait(condition.condition, mutex, &time)
    }
}
