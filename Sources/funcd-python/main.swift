import FuncdCLI
import FuncdSupervisor

#if canImport(Glibc)
import Glibc
#endif

// Run as `funcd` (the images' link to this file), it is the front door instead.
if FrontDoor.isInvokedAsFuncd { FrontDoor.main() }

// funcd-python: the worker, with CPython, is an extension module (libfuncd-python-worker.so,
// see Sources/PythonHost/PythonHost+Extension.swift) that Debian's python3.11 loads, so that
// handlers run in the interpreter Debian optimised. This only puts python3 in its place:
//   -P  no working directory on sys.path (the handler's folder is put there by the glue);
//   -s  no user site-packages (a pod's user has none; a laptop's must not leak in);
//   -u  unbuffered stdio, so that a handler's print reaches the pod's log at once.
// The environment (PYTHONPATH, VIRTUAL_ENV) is honoured, as the python command honours it.
let interpreter = "/usr/bin/python3.11"
let loader = """
    import sys; a = sys.argv; sys.argv = ['']
    import importlib.util as u
    u.module_from_spec(u.spec_from_file_location('_funcd_worker', a[1])).run(a[2:])
    """

/// The worker library: beside this executable (a build's folder), else in ../lib (an image's
/// /usr/local/bin and /usr/local/lib).
func workerLibrary() -> String? {
    guard let resolved = realpath("/proc/self/exe", nil) else { return nil }
    let executable = String(cString: resolved)
    free(resolved)
    let folder = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    let name = "libfuncd-python-worker.so"
    return ["\(folder)/\(name)", "\(folder)/../lib/\(name)"].first { access($0, R_OK) == 0 }
}

guard let library = workerLibrary() else {
    ProcessEnvironment.fail(
        "funcd-python's worker, libfuncd-python-worker.so, is neither beside it nor in ../lib")
}
guard access(interpreter, X_OK) == 0 else {
    ProcessEnvironment.fail(
        "funcd-python runs handlers in \(interpreter), which is not there (Debian's python3.11-minimal)")
}
// A sanitized build (scripts/sanitize) names the sanitizer's runtime here: python3 is not
// instrumented, and the runtime must be in the process before the worker library is.
if let preload = getenv("FUNCD_PYTHON_PRELOAD") { setenv("LD_PRELOAD", preload, 1) }
let arguments = [interpreter, "-P", "-s", "-u", "-c", loader, library] + CommandLine.arguments.dropFirst()
var pointers = arguments.map { strdup($0) } + [nil]
execv(interpreter, &pointers)
ProcessEnvironment.fail("cannot start \(interpreter): \(String(cString: strerror(errno)))")
