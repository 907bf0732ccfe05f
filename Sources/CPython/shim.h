#ifndef FUNCD_CPYTHON_SHIM_H
#define FUNCD_CPYTHON_SHIM_H
// One umbrella header for the embedded CPython. PY_SSIZE_T_CLEAN must come before Python.h.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif
