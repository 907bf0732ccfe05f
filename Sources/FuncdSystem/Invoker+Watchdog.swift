import FuncdCore

extension Invoker {
    /// Starts the deadline watchdog on a thread of its own; every Invoker needs it running
    /// before its first call, or no call would ever time out.
    public func startWatchdog() {
        NativeThread.start(stackSize: 512 * 1024) { [self] in runWatchdog() }
    }
}
