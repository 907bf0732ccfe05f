internal import CPython
import FuncdCore
import FuncdSystem

#if canImport(Glibc)
import Glibc
#endif

/// funcd-python is a library that Debian's `python3.11` loads as an extension module, not a
/// program that links `libpython3.11.so`: Debian links the interpreter into `python3.11`
/// statically, with link-time optimisation, and the shared library, a separate
/// position-independent build, runs the same Python code 10–20 % slower (bench/README.md, "The
/// languages' JSON floors"). Every line of a handler runs at the speed of the `python3` command
/// this way, and `sys.executable` is a real interpreter.
///
/// The `funcd-python` program (Sources/funcd-python/main.c) execs python3 on the library, whose
/// `_funcd_worker.run(program, arguments)` is then called on the interpreter's main thread. That
/// thread lets go of the GIL and calls `serve`, which starts the worker on Swift's threads (or is
/// the front door, when the program is named `funcd`). ``PythonHost/start(configuration:logger:printsToStderr:)``
/// then gives the main thread its life's work (loading the handler, then running calls), which it
/// would otherwise have given a thread of its own: the main thread is the one CPython's signal
/// handlers run on, so it is the one a timed-out `time.sleep` can be interrupted in.
extension PythonHost {
    /// The module object for `PyInit__funcd_worker`. Its `run(program, arguments)` never returns:
    /// it calls `serve` with this process's program name and command line (without the name),
    /// which must start the worker elsewhere and return, then lends the main thread to the host
    /// (``lendMainThread()``).
    public static func extensionModule(
        serve: @escaping @Sendable (_ program: String, _ arguments: [String]) -> Void
    ) -> UnsafeMutableRawPointer? {
        if let problem = funcd_py_check_interpreter() {
            funcd_py_raise_import_error(problem)
            return nil
        }
        guard let module = funcd_py_new_module("_funcd_worker") else { return nil }
        MainThread.lock.withLock { MainThread.serve = serve }
        // A sanitized build (scripts/sanitize) had the sanitizer's runtime preloaded into python3;
        // the programs a handler starts must not inherit it. FUNCD_PYTHON_PRELOAD stays, for the
        // funcd-python workers a supervisor in this process starts.
        if getenv("FUNCD_PYTHON_PRELOAD") != nil { unsetenv("LD_PRELOAD") }
        guard let run = funcd_py_make_function("run", pythonRun, funcd_py_meth_varargs()),
            PyModule_AddObjectRef(module, "run", run) == 0
        else {
            funcd_py_decref(module)
            return nil
        }
        funcd_py_decref(run)
        return UnsafeMutableRawPointer(module)
    }

    /// Gives the interpreter's main thread, on which `_funcd_worker.run` let go of the GIL, to the
    /// host: waits until ``start(configuration:logger:printsToStderr:)`` hands it its work, then
    /// runs it for good. Called at the end of `run`, or by the front door once it has started the
    /// worker in this process rather than exec'ing another.
    public static func lendMainThread() -> Never {
        let (work, state) = MainThread.lock.withLock { () -> ((@Sendable () -> Void)?, UnsafeMutablePointer<PyThreadState>?) in
            while MainThread.work == nil { MainThread.lock.wait() }
            return (MainThread.work, MainThread.state)
        }
        PyEval_RestoreThread(state)
        work!()
        // Only a handler that failed to load comes back here, while the worker prints why and
        // ends the process: wait for that without the GIL.
        _ = PyEval_SaveThread()
        while true { pause() }
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
        nonisolated(unsafe) static var serve: (@Sendable (String, [String]) -> Void)?
        nonisolated(unsafe) static var state: UnsafeMutablePointer<PyThreadState>?
        nonisolated(unsafe) static var work: (@Sendable () -> Void)?

        /// Runs `body` on the main thread, with the GIL held; returns at once.
        static func give(_ body: @escaping @Sendable () -> Void) {
            lock.withLock {
                work = body
                lock.signal()
            }
        }
    }
}

/// `_funcd_worker.run(program, arguments)`, on the interpreter's main thread.
private func pythonRun(_ module: PyPointer?, _ tuple: PyPointer?) -> PyPointer? {
    let usage = "run() takes the program's name and its arguments, a str and a list of str"
    guard let tuple, PyTuple_Size(tuple) == 2, let programObject = PyTuple_GetItem(tuple, 0),
        let program = PythonObjects.swiftString(programObject), let list = PyTuple_GetItem(tuple, 1),
        let serve = PythonHost.MainThread.lock.withLock({ PythonHost.MainThread.serve })
    else {
        PyErr_Clear()
        funcd_py_raise_type_error(usage)
        return nil
    }
    var arguments: [String] = []
    for index in 0..<max(PyList_Size(list), 0) {
        guard let item = PyList_GetItem(list, index), let text = PythonObjects.swiftString(item) else {
            funcd_py_raise_type_error(usage)
            return nil
        }
        arguments.append(text)
    }
    guard PyErr_Occurred() == nil else {
        PyErr_Clear()
        funcd_py_raise_type_error(usage)
        return nil
    }
    // The process is named after the interpreter; ps and top should show funcd's name for it.
    let name = program.split(separator: "/").last.map(String.init) ?? "funcd-python"
    let comm = open("/proc/self/comm", O_WRONLY)
    if comm >= 0 {
        _ = name.withCString { write(comm, $0, min(strlen($0), 15)) }
        close(comm)
    }
    let state = PyEval_SaveThread()
    PythonHost.MainThread.lock.withLock { PythonHost.MainThread.state = state }
    serve(program, arguments)
    PythonHost.lendMainThread()
}
