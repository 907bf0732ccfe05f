internal import CPython
import FuncdCore
import FuncdSystem

#if canImport(Glibc)
import Glibc
#endif

/// funcd-python's worker is an extension module that Debian's `python3.11` loads, not a program
/// that links `libpython3.11.so`: Debian builds the interpreter into `python3.11` itself with
/// link-time and profile-guided optimisation, and the shared library runs the same Python code
/// 10–20 % slower (bench/README.md, "the floors"). Every line of a handler runs at the speed of
/// the `python3` command this way, and `sys.executable` is a real interpreter.
///
/// python3's `main` starts the interpreter (with `-P -s -u`: no working directory on `sys.path`,
/// no user site, unbuffered stdio, as funcd configured the embedded one) and calls
/// `_funcd_worker.run(arguments)` on its main thread. That thread hands the GIL over and waits;
/// the worker starts on Swift's threads; ``PythonHost/start(configuration:logger:printsToStderr:)``
/// then gives the main thread its life's work (loading the handler, then running calls), which it
/// would otherwise have given a thread of its own: the main thread is the one CPython's signal
/// handlers run on, so it is the one a timed-out `time.sleep` can be interrupted in.
extension PythonHost {
    /// The module object for `PyInit__funcd_worker`, whose `run(arguments)` never returns: it
    /// calls `serve` with the arguments (the worker's command line, without the program name),
    /// which must start the worker elsewhere and return, then runs what the host gives it.
    public static func extensionModule(serve: @escaping @Sendable ([String]) -> Void) -> UnsafeMutableRawPointer? {
        if let problem = funcd_py_check_interpreter() {
            funcd_py_raise_import_error(problem)
            return nil
        }
        guard let module = funcd_py_new_module("_funcd_worker") else { return nil }
        MainThread.lock.withLock { MainThread.serve = serve }
        // A sanitized build's worker (scripts/sanitize) had the sanitizer's runtime preloaded into
        // python3; the programs a handler starts must not inherit it.
        if getenv("FUNCD_PYTHON_PRELOAD") != nil {
            unsetenv("LD_PRELOAD")
            unsetenv("FUNCD_PYTHON_PRELOAD")
        }
        guard let run = funcd_py_make_function("run", pythonRun, funcd_py_meth_o()),
            PyModule_AddObjectRef(module, "run", run) == 0
        else {
            funcd_py_decref(module)
            return nil
        }
        funcd_py_decref(run)
        return UnsafeMutableRawPointer(module)
    }

    /// python3 copied the environment into `os.environ` before the worker took its own variables
    /// out of it (the supervisor link's, which a handler must not see): drop from `os.environ`
    /// what the process no longer has.
    static func forgetRemovedEnvironment() throws {
        guard let os = PyImport_ImportModule("os") else {
            throw FuncdError(.interpreter, "cannot import os: \(PythonObjects.takeError())")
        }
        defer { funcd_py_decref(os) }
        guard let environ = PyObject_GetAttrString(os, "environ"), let keys = PyMapping_Keys(environ) else {
            throw FuncdError(.interpreter, "os has no environ: \(PythonObjects.takeError())")
        }
        defer {
            funcd_py_decref(keys)
            funcd_py_decref(environ)
        }
        for index in 0..<PyList_Size(keys) {
            guard let key = PyList_GetItem(keys, index), let name = PythonObjects.swiftString(key),
                getenv(name) == nil
            else { continue }
            if PyObject_DelItem(environ, key) != 0 { PyErr_Clear() }
        }
    }

    /// The interpreter's main thread, lent to the host.
    enum MainThread {
        static let lock = ConditionLock()
        // Guarded by `lock`.
        nonisolated(unsafe) static var serve: (@Sendable ([String]) -> Void)?
        nonisolated(unsafe) static var work: (@Sendable () -> Void)?

        /// Runs `body` on the main thread, with the GIL held; returns at once.
        static func give(_ body: @escaping @Sendable () -> Void) {
            lock.withLock {
                work = body
                lock.signal()
            }
        }

        /// Waits for ``give(_:)``, on the main thread with the GIL released.
        static func takeWork() -> @Sendable () -> Void {
            lock.lock()
            defer { lock.unlock() }
            while work == nil { lock.wait() }
            return work!
        }
    }
}

/// `_funcd_worker.run(arguments)`, on the interpreter's main thread.
private func pythonRun(_ module: PyPointer?, _ argument: PyPointer?) -> PyPointer? {
    let count = argument.map { PyList_Size($0) } ?? -1
    guard let argument, let serve = PythonHost.MainThread.lock.withLock({ PythonHost.MainThread.serve }), count >= 0
    else {
        funcd_py_raise_type_error("run() takes the worker's arguments, a list of str")
        return nil
    }
    var arguments: [String] = []
    for index in 0..<count {
        guard let item = PyList_GetItem(argument, index), let text = PythonObjects.swiftString(item) else {
            funcd_py_raise_type_error("run() takes the worker's arguments, a list of str")
            return nil
        }
        arguments.append(text)
    }
    // The process is named after the interpreter; ps and top should show the function server.
    let comm = open("/proc/self/comm", O_WRONLY)
    if comm >= 0 {
        _ = write(comm, "funcd-python", 12)
        close(comm)
    }
    let state = PyEval_SaveThread()
    serve(arguments)
    let work = PythonHost.MainThread.takeWork()
    PyEval_RestoreThread(state)
    work()
    // The host's main call thread does not come back; the worker ends the process.
    return PythonObjects.newNone()
}
