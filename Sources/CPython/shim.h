#ifndef FUNCD_CPYTHON_SHIM_H
#define FUNCD_CPYTHON_SHIM_H
// The one umbrella header of CPython's C API, imported only by PythonHost. The inline
// functions below stand in for the macros and the exception objects Swift cannot use.
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

/// funcd-python is an extension module of Debian's `python3.11` (see PythonHost's
/// `extensionModule`): the interpreter is started by python3's own `main`, and these checks are
/// all that is left to do here. The headers funcd was compiled with must be those of the
/// interpreter that loaded it. Returns NULL when it can serve, else the reason.
static inline const char *funcd_py_check_interpreter(void) {
    if (!Py_IsInitialized()) {
        return "the interpreter is not running: funcd-python's worker runs only as python3's extension module";
    }
    const char *version = Py_GetVersion();
    char compiled[16];
    snprintf(compiled, sizeof compiled, "%d.%d.", PY_MAJOR_VERSION, PY_MINOR_VERSION);
    if (strncmp(version, compiled, strlen(compiled)) != 0) {
        return "the interpreter's version is not the one funcd-python was built for (" PY_VERSION ")";
    }
    return NULL;
}

/// The module object of an extension module's `PyInit_` function (the one such module here).
static inline PyObject *funcd_py_new_module(const char *name) {
    static PyModuleDef definition = { PyModuleDef_HEAD_INIT };
    definition.m_name = name;
    definition.m_size = -1;
    return PyModule_Create(&definition);
}

static inline void funcd_py_raise_import_error(const char *message) { PyErr_SetString(PyExc_ImportError, message); }
static inline void funcd_py_raise_type_error(const char *message) { PyErr_SetString(PyExc_TypeError, message); }

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
