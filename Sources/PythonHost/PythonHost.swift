internal import CPython
import FuncdCore
import FuncdSystem
import Logging
import Synchronization


/// Runs a Python handler in this process's interpreter: python3, which loaded funcd-python.
///
/// Threads, and why:
/// - the *main thread* (python3's own, see PythonHost+Extension) loads the handler and then runs
///   calls; it is the only thread a real signal can interrupt inside a blocking C call
///   (`time.sleep`), so it does most of the work;
/// - *extra call threads* (up to `FUNC_CONCURRENCY` in all) are started by the monitor only when
///   queued calls make no progress for a millisecond, i.e. when a handler blocks in I/O or sleep,
///   so that a slow call never holds up the others while the fast path never pays for GIL
///   hand-offs between threads;
/// - the *monitor* wakes only while work is queued or answers wait to be handed back, to add
///   call threads and to hand back answers a call thread is sitting on;
/// - the *interrupter* holds its own thread state and stops timed-out handlers; it is a thread
///   nothing else waits for, since taking the GIL can block behind a C extension.
///
/// Calls arrive in batches from the event loops (one wake-up per batch) and answers go back in
/// batches (one event-loop wake-up per batch), so that a core is not spent on context switches.
///
/// `@unchecked Sendable`: all mutable state is guarded by `lock`; Python objects are only
/// touched with the GIL held.
public final class PythonHost: FunctionHost, @unchecked Sendable {
    public let versionDescription: String
    let configuration: Configuration
    let logger: Logger

    let lock = ConditionLock()
    /// Wakes the main thread, the one every new call goes to first.
    let mainWake = ConditionLock.Condition()
    /// Wakes an extra call thread; only the monitor (a stalled queue) and finished async calls do.
    let workAvailable = ConditionLock.Condition()
    let monitorWake = ConditionLock.Condition()
    let interruptWake = ConditionLock.Condition()

    // Guarded by `lock`.
    var queue: [Invocation] = []
    var queueHead = 0
    var outbox: [Invocation] = []
    var outboxSince: UInt64 = 0
    var callThreads: [CallThread] = []
    var idleCallThreads = 0
    var mainIdle = false
    var inFlight = 0
    var lastDequeue: UInt64 = 0
    var monitorIdle = false
    var interrupts: [Invocation] = []
    var asyncCalls: [Int: Invocation] = [:]
    var nextToken = 1

    var invoker: Invoker?
    var python: PythonCall?
    /// Set once the handler is loaded, when it is a plain one (``buildsKafkaEvents``).
    var kafka: PythonKafkaCall?
    private let kafkaEvents = Atomic<Bool>(false)
    var interpreterState: OpaquePointer?
    var completeFunction: PyPointer?

    /// Queued calls that see no progress for this long get another call thread; it is also the
    /// monitor's shortest tick while calls are in flight.
    static let stallNanoseconds: UInt64 = 1_000_000
    /// The monitor's longest tick, reached by doubling while each look finds every call moving
    /// (a fast handler under load). Each wake-up of the monitor cost about 15 µs of CPU on the
    /// development VM and preempted the call thread on a shared core: at 1,000 wake-ups a second
    /// the monitor alone took 0.6–0.95 µs of each 1 KiB echo request, 0.1–0.2 µs at this tick. A
    /// call that blocks after such a run is seen at most this much later than after a
    /// millisecond, and the tick is back to a millisecond at once.
    static let monitorLongestTickNanoseconds: UInt64 = 4 * stallNanoseconds
    /// A call thread hands back parked answers older than this before it starts another call.
    /// Each hand-back wakes the event loop, which on a shared core preempts the call thread and
    /// evicts its caches: at 100 µs a 25 µs call (a 1 KiB JSON echo) handed back every fourth
    /// answer and the event loop cost 3 µs more per request. Behind a call that turns out long, a
    /// parked answer waits for the monitor's next look: one tick, so up to
    /// ``monitorLongestTickNanoseconds`` after a run of fast calls.
    static let outboxDelayNanoseconds: UInt64 = stallNanoseconds
    /// A call that is computing (using CPU, so holding the GIL) gets help only after this long:
    /// a second thread then shares the GIL with it every switch interval (5 ms) so that short
    /// calls are not stuck behind a long one, while short CPU-bound calls, which would only
    /// contend for the GIL, keep one thread and their order.
    static let computingStallNanoseconds: UInt64 = 25_000_000
    static let outboxBatchLimit = 64

    /// The one host of this process: CPython's callbacks into Swift find it here.
    nonisolated(unsafe) static var shared: PythonHost?

    /// One thread that runs handlers.
    ///
    /// `@unchecked Sendable`: its fields are set by its own thread before it takes work, and
    /// otherwise read and written only under the host's lock.
    final class CallThread: @unchecked Sendable {
        let index: Int
        var threadState: UnsafeMutablePointer<PyThreadState>?
        var threadID: UInt = 0
        var pthread: pthread_t = pthread_t()
        var current: Invocation?
        /// When `current` started (monotonic ns): a call running for longer than the stall
        /// threshold is what makes the monitor add a call thread.
        var currentSince: UInt64 = 0
        /// The thread's CPU clock, and its reading when the monitor last looked: a call that
        /// keeps using CPU is computing (holding the GIL), not blocked, and another thread would
        /// only contend for the GIL.
        var cpuClock = clockid_t()
        var cpuSeen: UInt64 = 0
        var cpuSeenAt: UInt64 = 0
        var idle = false
        var interruptDue = false
        var isMain: Bool { index == 0 }
        init(index: Int) { self.index = index }
    }

    /// Loads the handler on the interpreter's main thread and starts the other threads; throws a
    /// load error whose message is the one line funcd prints.
    public static func start(configuration: Configuration, logger: Logger, printsToStderr: Bool = false) throws
        -> PythonHost
    {
        let host = PythonHost(configuration: configuration, logger: logger)
        shared = host
        let ready = ConditionLock()
        nonisolated(unsafe) var outcome: Result<Void, FuncdError>?
        // The interpreter's main thread, waiting in `_funcd_worker.run` (PythonHost+Extension).
        MainThread.give {
            let main = CallThread(index: 0)
            let result = host.initialise(main: main, printsToStderr: printsToStderr)
            ready.withLock {
                outcome = result
                ready.signal()
            }
            if case .success = result {
                host.callThreadLoop(main, holdsGIL: true)
            }
        }
        ready.lock()
        while outcome == nil { ready.wait() }
        let result = outcome!
        ready.unlock()
        try result.get()
        NativeThread.start(stackSize: 256 * 1024) { host.monitorLoop() }
        NativeThread.start(stackSize: 1024 * 1024) { host.interrupterLoop() }
        return host
    }

    private init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.versionDescription = "python \(String(cString: Py_GetVersion()).prefix { $0 != " " })"
    }

    /// A plain handler gets Kafka events built by ``PythonKafkaCall``; an `async def` one through
    /// the glue, like requests.
    public var buildsKafkaEvents: Bool { kafkaEvents.load(ordering: .acquiring) }

    public func attach(_ invoker: Invoker) {
        lock.withLock { self.invoker = invoker }
    }

    public func submit(_ batch: [Invocation]) {
        lock.lock()
        if queueHead >= queue.count {
            // The stall clock starts when work arrives, not at the last dequeue before a pause.
            lastDequeue = MonotonicClock.nanoseconds()
        }
        queue.append(contentsOf: batch)
        // Only the main thread is woken for new work: it is the one thread where a blocking call
        // can be interrupted at the deadline. A running call thread picks the batch up when it is done;
        // a blocked one is noticed by the monitor, which then wakes or starts an extra call thread.
        let wakeMain = mainIdle
        mainIdle = false
        let wakeMonitor = monitorIdle
        monitorIdle = false
        lock.unlock()
        // Signalled after unlocking: on a single core the woken thread would otherwise run at
        // once, find the mutex taken and switch straight back.
        if wakeMain { mainWake.signal() }
        if wakeMonitor { monitorWake.signal() }
    }

    public func interrupt(_ invocation: Invocation) {
        lock.withLock {
            interrupts.append(invocation)
            interruptWake.signal()
        }
    }

    // MARK: - Start-up (on the main thread's thread)

    private func initialise(main: CallThread, printsToStderr: Bool) -> Result<Void, FuncdError> {
        _ = funcd_unblock_interrupt_signal()
        interpreterState = PyInterpreterState_Get()
        main.threadState = PyThreadState_Get()
        main.threadID = PyThread_get_thread_ident()
        main.pthread = pthread_self()
        pthread_getcpuclockid(main.pthread, &main.cpuClock)
        callThreads = [main]
        do {
            try Self.forgetRemovedEnvironment()
            let glue = try importGlue()
            // The interrupt handler first: it imports signal, which a module beside the
            // handler could otherwise shadow.
            try installNatives(glue: glue, printsToStderr: printsToStderr)
            let function = try loadFunction(glue: glue)
            let call = try PythonCall(function: function, glue: glue)
            python = call
            if !call.isCoroutine {
                kafka = try PythonKafkaCall(function: function, glue: glue, call: call)
                kafkaEvents.store(true, ordering: .releasing)
            }
            funcd_py_decref(glue)
            return .success(())
        } catch let error as FuncdError {
            return .failure(error)
        } catch {
            return .failure(FuncdError(.interpreter, "\(error)"))
        }
    }

    private func importGlue() throws -> PyPointer {
        let runtimes = try RuntimeDirectory.locate(language: "python", configured: configuration.runtimesDirectory)
        guard let sysPath = PySys_GetObject("path") else {
            throw FuncdError(.interpreter, "Python has no sys.path")
        }
        let entry = PythonObjects.string(runtimes)
        PyList_Insert(sysPath, 0, entry)
        funcd_py_decref(entry)
        guard let glue = PyImport_ImportModule("funcd._host") else {
            throw FuncdError(.interpreter, "cannot import funcd's Python glue from \(runtimes): \(PythonObjects.takeError())")
        }
        return glue
    }

    private func loadFunction(glue: PyPointer) throws -> PyPointer {
        guard let load = PyObject_GetAttrString(glue, "load") else {
            throw FuncdError(.interpreter, "funcd's Python glue has no load: \(PythonObjects.takeError())")
        }
        defer { funcd_py_decref(load) }
        let context = PyDict_New()!
        defer { funcd_py_decref(context) }
        func put(_ key: String, _ value: PyPointer) {
            PyDict_SetItemString(context, key, value)
            funcd_py_decref(value)
        }
        put("function-name", PythonObjects.string(configuration.handlerName))
        put("timeout", PyFloat_FromDouble(configuration.timeoutSeconds))
        put("runtime", PythonObjects.optionalString(configuration.runtime))
        put("memory-limit", PythonObjects.optionalString(configuration.memoryLimit))
        var arguments: [PyPointer?] = [
            PythonObjects.string(configuration.codeDirectory),
            PythonObjects.string(configuration.moduleName),
            PythonObjects.string(configuration.handlerName),
            context,
        ]
        funcd_py_incref(context)
        defer { for argument in arguments { funcd_py_decref(argument!) } }
        guard let function = PyObject_Vectorcall(load, &arguments, arguments.count, nil) else {
            throw FuncdError(.functionLoad, PythonObjects.takeErrorMessage())
        }
        return function
    }

    private func installNatives(glue: PyPointer, printsToStderr: Bool) throws {
        completeFunction = funcd_py_make_function("complete", pythonComplete, funcd_py_meth_varargs())
        let due = funcd_py_make_function("interrupt_due", pythonInterruptDue, funcd_py_meth_noargs())!
        defer { funcd_py_decref(due) }
        let signal = PythonObjects.int(Int(funcd_interrupt_signal()))
        defer { funcd_py_decref(signal) }
        guard let install = PyObject_GetAttrString(glue, "install_interrupt") else {
            throw FuncdError(.interpreter, "funcd's Python glue: \(PythonObjects.takeError())")
        }
        defer { funcd_py_decref(install) }
        var arguments: [PyPointer?] = [signal, due]
        guard let result = PyObject_Vectorcall(install, &arguments, 2, nil) else {
            throw FuncdError(.interpreter, "cannot install the interrupt handler: \(PythonObjects.takeError())")
        }
        funcd_py_decref(result)
        if printsToStderr {
            guard let redirect = PyObject_GetAttrString(glue, "print_to_stderr"),
                let done = PyObject_CallNoArgs(redirect)
            else {
                throw FuncdError(.interpreter, "funcd's Python glue: \(PythonObjects.takeError())")
            }
            funcd_py_decref(done)
            funcd_py_decref(redirect)
        }
    }
}
