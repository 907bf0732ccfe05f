/// An interpreter's own thread tells the host's `start` how starting went: nil when the handler
/// is loaded, else the one line that says why it is not.
///
/// `@unchecked Sendable`: its fields are read and written only under `lock`.
public final class StartSignal: @unchecked Sendable {
    private let lock = ConditionLock()
    private var done = false
    private var failure: String?

    public init() {}

    public func report(_ failure: String?) {
        lock.withLock {
            self.failure = failure
            done = true
            lock.signal()
        }
    }

    public func wait() -> String? {
        lock.withLock {
            while !done { lock.wait() }
            return failure
        }
    }
}
