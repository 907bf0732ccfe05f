#if canImport(Glibc)
import Glibc
#endif

/// A pipe whose ends are close-on-exec (no child process inherits them) and non-blocking (a
/// writer with a full pipe, or a reader with an empty one, goes on): how a signal handler or
/// another thread wakes a thread that sleeps in `poll`.
public enum NonBlockingPipe {
    /// The read and write ends, or nil when no descriptor is left.
    public static func open() -> (read: Int32, write: Int32)? {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return nil }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        return (ends[0], ends[1])
    }
}
