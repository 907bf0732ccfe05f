#ifndef FUNCD_CPYTHON_SHIM_H
#define FUNCD_CPYTHON_SHIM_H
// The one umbrella header of the embedded CPython, imported only by PythonHost. The inline
// functions below stand in for the macros Swift cannot call, and keep PyConfig (a large struct
// whose fields change between versions) on the C side.
// Swift's Glibc module sees <sys/select.h> with the default feature macros; Python.h would
// include it after pyconfig.h defines _XOPEN_SOURCE, which renames fd_set's member, and clang
// then refuses to merge the two definitions of fd_set. Including the system headers Swift also
// imports first keeps one definition. (Python.h's advice to come first is about feature macros
// that glibc applies the same way here.)
#include <sys/select.h>
#include <signal.h>
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static inline PyObject *funcd_py_none(void) { return Py_None; }
static inline void funcd_py_incref(PyObject *object) { Py_INCREF(object); }
static inline void funcd_py_decref(PyObject *object) { Py_DECREF(object); }
static inline void funcd_py_xdecref(PyObject *object) { Py_XDECREF(object); }
static inline int funcd_py_is_none(PyObject *object) { return object == Py_None; }
static inline int funcd_py_is_true(PyObject *object) { return object == Py_True; }
static inline PyObject *funcd_py_new_true(void) { Py_INCREF(Py_True); return Py_True; }
static inline PyObject *funcd_py_timeout_error(void) { return PyExc_TimeoutError; }

/// The real-time signal funcd sends to the interpreter's main thread to break a blocking call.
static inline int funcd_interrupt_signal(void) { return SIGRTMIN + 3; }

/// A process inherits its blocked-signal mask from whoever started it (a test runner, a shell
/// script that blocked signals): make sure the interrupt signal reaches the calling thread.
static inline int funcd_unblock_interrupt_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, funcd_interrupt_signal());
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/// Starts the interpreter the way funcd needs it: no signal handlers of Python's own (funcd owns
/// SIGTERM/SIGINT), unbuffered stdio so a handler's print reaches the pod log at once, and the
/// environment (PYTHONPATH, PYTHONHOME) honoured like the python command does. Returns NULL on
/// success, else the reason.
static inline const char *funcd_py_initialize(void) {
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.buffered_stdio = 0;
    config.parse_argv = 0;
    config.user_site_directory = 0;
    PyStatus status = PyConfig_SetBytesString(&config, &config.program_name, "funcd-python");
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        return status.err_msg ? status.err_msg : "Python failed to initialise";
    }
    return NULL;
}

/// The native functions the glue calls back: `complete(token, result)` for async handlers and
/// `interrupt_due()` from the interrupt signal's handler. Swift supplies the implementations.
typedef PyObject *(*funcd_py_native_function)(PyObject *self, PyObject *args);

static inline PyObject *funcd_py_make_function(const char *name, funcd_py_native_function function, int flags) {
    // The definition must outlive the function object: allocate it once per native function.
    PyMethodDef *definition = (PyMethodDef *)PyMem_RawCalloc(1, sizeof(PyMethodDef));
    definition->ml_name = name;
    definition->ml_meth = (PyCFunction)function;
    definition->ml_flags = flags;
    definition->ml_doc = NULL;
    return PyCFunction_New(definition, NULL);
}

static inline int funcd_py_meth_varargs(void) { return METH_VARARGS; }
static inline int funcd_py_meth_noargs(void) { return METH_NOARGS; }

#endif
