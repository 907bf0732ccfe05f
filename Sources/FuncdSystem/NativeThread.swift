#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts a detached OS thread with a given stack size. Interpreter threads need this: they
/// must be threads funcd owns for the whole life of the process (CPython's signal handlers run
/// only on the thread that initialised it; Ruby needs a large stack), not borrowed pool threads.
public enum NativeThread {
    private final class Box {
        let body: () -> Void
        init(body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new detached thread and returns its pthread handle.
    @discardableResult
    public static func start(
        stackSize: Int = 8 * 1024 * 1024,
        _ body: @escaping @Sendable () -> Void
    ) -> pthread_t {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let box = Unmanaged.passRetained(Box(body: body)).toOpaque()
        #if os(Linux)
        var thread = pthread_t()
        #else
        var thread: pthread_t? = nil
        #endif
        let result = pthread_create(
            &thread, &attributes,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                box.body()
                return nil
            }, box)
        precondition(result == 0, "pthread_create failed with \(result)")
        #if os(Linux)
        return thread
        #else
        return thread!
        #endif
    }
}
