internal import CNodeEmbed
import FuncdCore
import FuncdSystem
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs a Node.js handler in a Node embedded in this process (libnode, through `CNodeEmbed`).
///
/// Threads, and why:
/// - the *JavaScript thread* initialises Node and then runs its event loop for good; it is the
///   only thread that touches V8. Calls reach it in batches (a queue and one `uv_async` wake-up
///   per batch) and every call's answer is handed back to the Invoker once per loop turn;
/// - the Invoker's *watchdog* calls ``interrupt(_:)``: a call whose deadline passed while the
///   loop is held by JavaScript is stopped with V8's TerminateExecution (which JavaScript cannot
///   catch); one merely waiting (a Promise that never settles) is dropped, and its late answer
///   with it. See ``Terminator`` for what follows a termination.
///
/// `@unchecked Sendable`: the queues are guarded by `lock`; `calls`, `outbox` and `nextID` are
/// touched only on the JavaScript thread; `node` is written once before `start` returns.
public final class NodeHost: FunctionHost, @unchecked Sendable {
    public let versionDescription: String
    let configuration: Configuration
    let logger: Logger
    let timeoutNanoseconds: UInt64

    let lock = ConditionLock()
    // Guarded by `lock`: work for the JavaScript thread.
    var inbox: [Invocation] = []
    var cancels: [Invocation] = []
    var drains: [UInt64] = []
    var wakePending = false

    // The JavaScript thread's own.
    var calls: [UInt64: Invocation] = [:]
    var outbox: [Invocation] = []
    var nextID: UInt64 = 1
    var headerScratch: [UInt8] = []

    var node: OpaquePointer?
    var invoker: Invoker?
    var terminator: Terminator?
    /// Set while the JavaScript thread runs a batch of calls (each of which has a deadline of
    /// its own): a call that waits then is behind them, not behind a stray callback.
    let runningCalls = Atomic<Bool>(false)

    init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.timeoutNanoseconds = UInt64(configuration.timeoutSeconds * 1e9)
        self.versionDescription = "node \(String(cString: funcd_node_version()))"
        headerScratch.reserveCapacity(1024)
    }

    /// Starts Node on its own thread and loads the handler; returns once it is ready to be
    /// called, or throws the one line that says why it cannot be. `printsToStderr`: the
    /// handler's console output goes to stderr (`funcd invoke` keeps stdout for the answer).
    public static func start(
        configuration: Configuration, logger: Logger, printsToStderr: Bool
    ) throws(FuncdError) -> NodeHost {
        let glue: String
        do {
            glue = try RuntimeDirectory.locate(language: "node", configured: configuration.runtimesDirectory)
        } catch let error as FuncdError {
            throw error
        } catch {
            throw FuncdError(.configuration, "\(error)")
        }
        let source = Bootstrap.source(glueDirectory: glue, configuration: configuration, stdoutToStderr: printsToStderr)
        let host = NodeHost(configuration: configuration, logger: logger)
        let started = StartSignal()
        // V8 measures its stack limit from where the isolate is created; 8 MiB leaves it room.
        NativeThread.start(stackSize: 8 * 1024 * 1024) {
            host.runJavaScriptThread(bootstrap: source, started: started)
        }
        if let failure = started.wait() {
            throw FuncdError(.functionLoad, failure)
        }
        return host
    }

    /// The body of the JavaScript thread: start Node, report, then run its loop for good.
    private func runJavaScriptThread(bootstrap: String, started: StartSignal) {
        var callbacks = funcd_node_callbacks()
        callbacks.context = Unmanaged.passUnretained(self).toOpaque()
        callbacks.wake = { context in NodeHost.from(context).takeWork() }
        callbacks.reply = { context, reply in NodeHost.from(context).receive(reply!.pointee) }
        callbacks.turn = { context in NodeHost.from(context).handBack() }
        var error: UnsafeMutablePointer<CChar>? = nil
        let argv0 = CommandLine.arguments.first ?? "funcd-node"
        guard let node = funcd_node_start(argv0, bootstrap, callbacks, &error) else {
            let message = error.map { String(cString: $0) } ?? "Node.js did not start"
            free(error)
            started.report(message)
            return
        }
        self.node = node
        // Past every deadline, and the watchdog's lateness, so that each finds the heartbeat
        // running; an idle worker stops beating that long after its last call.
        funcd_node_keep_beating_for(node, UInt64(min(configuration.timeoutSeconds + 5, 1e9) * 1000))
        self.terminator = Terminator(node: node, logger: logger)
        started.report(nil)
        let code = funcd_node_run(node)
        // The loop only ends when Node is told to stop; a worker cannot serve without it.
        DescriptorOutput.writeAll(2, Array("funcd: error: the Node.js event loop ended (exit code \(code))\n".utf8))
        fflush(nil)
        _exit(code == 0 ? 70 : code)
    }

    static func from(_ context: UnsafeMutableRawPointer?) -> NodeHost {
        Unmanaged<NodeHost>.fromOpaque(context!).takeUnretainedValue()
    }

    // MARK: - FunctionHost

    public func attach(_ invoker: Invoker) {
        self.invoker = invoker
    }

    public func submit(_ batch: [Invocation]) {
        let wake = lock.withLock {
            inbox.append(contentsOf: batch)
            defer { wakePending = true }
            return !wakePending
        }
        if wake, let node { funcd_node_wake(node) }
    }

    public func interrupt(_ invocation: Invocation) {
        guard let node else { return }
        terminator?.considerStopping(invocation, timeoutNanoseconds: timeoutNanoseconds)
        lock.withLock {
            cancels.append(invocation)
            wakePending = true
        }
        funcd_node_wake(node)
    }

    public func expiredWaiting(_ invocation: Invocation) {
        guard !runningCalls.load(ordering: .acquiring) else { return }
        terminator?.considerStoppingHolder(of: invocation)
    }

    /// A paused streamed answer may go on (the client caught up); on any thread.
    func resumeStream(id: UInt64) {
        guard let node else { return }
        lock.withLock {
            drains.append(id)
            wakePending = true
        }
        funcd_node_wake(node)
    }
}
