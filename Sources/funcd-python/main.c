/* funcd-python: starts Debian's python3.11 on funcd-python's library, libfuncd-python-worker.so
 * (beside this program), which python3 loads as the extension module `_funcd_worker` (see
 * Sources/PythonHost/PythonHost+Extension.swift). Handlers then run in the interpreter Debian
 * linked into python3.11 statically, with link-time optimisation, rather than in the shared
 * libpython3.11.so, which runs the same Python code 10-20 % slower.
 *
 * Run as `funcd` (the Python image's link to this program), the library is the front door
 * instead, as every funcd-<language> executable is under that name; the library gets this
 * program's name to tell.
 *
 * python3's flags are the ones funcd gave the interpreter it embedded:
 *   -P  no working directory on sys.path (the glue puts the handler's folder there);
 *   -s  no user site-packages (a pod's user has none; a laptop's must not leak in);
 *   -u  unbuffered stdio, so that a handler's print reaches the pod's log at once.
 * The environment (PYTHONPATH, VIRTUAL_ENV) is honoured, as the python command honours it.
 *
 * A sanitized build (scripts/sanitize) names the sanitizer's runtime in FUNCD_PYTHON_PRELOAD:
 * python3 is not instrumented, and the runtime must be in the process before the library.
 *
 * C, not Swift: a Swift program carries the Swift runtime, which the library already has, and
 * the Python image has no room for it twice. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char interpreter[] = "/usr/bin/python3.11";
static const char library_name[] = "libfuncd-python-worker.so";
/* _imp.create_dynamic, the loader importlib's would call, asks the spec only for `name` and
 * `origin`: importlib.util itself would import contextlib and collections first (2 ms). */
static const char loader[] =
    "import sys, _imp; a = sys.argv; sys.argv = ['']\n"
    "_imp.create_dynamic(type('spec', (), {'name': '_funcd_worker', 'origin': a[1]})).run(a[2], a[3:])\n";

static int fail(const char *message, const char *subject) {
    fprintf(stderr, "funcd: error: %s%s\n", message, subject);
    return 1;
}

int main(int argc, char **argv) {
    char library[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", library, sizeof library - sizeof library_name - 1);
    if (length <= 0) return fail("cannot read /proc/self/exe: ", strerror(errno));
    library[length] = '\0';
    strcpy(strrchr(library, '/') + 1, library_name);
    if (access(library, R_OK) != 0) return fail("funcd-python's library is missing: ", library);
    if (access(interpreter, X_OK) != 0)
        return fail("funcd-python runs in Debian's python3.11 (python3.11-minimal), which is missing: ", interpreter);

    const char *preload = getenv("FUNCD_PYTHON_PRELOAD");
    if (preload != NULL && setenv("LD_PRELOAD", preload, 1) != 0) return fail("cannot set LD_PRELOAD: ", strerror(errno));

    char **arguments = calloc((size_t)argc + 8, sizeof *arguments);
    if (arguments == NULL) return fail("out of memory", "");
    int count = 0;
    arguments[count++] = (char *)interpreter;
    arguments[count++] = "-P";
    arguments[count++] = "-s";
    arguments[count++] = "-u";
    arguments[count++] = "-c";
    arguments[count++] = (char *)loader;
    arguments[count++] = library;
    arguments[count++] = argc > 0 ? argv[0] : "funcd-python";
    for (int index = 1; index < argc; index++) arguments[count++] = argv[index];
    execv(interpreter, arguments);
    return fail("cannot start /usr/bin/python3.11: ", strerror(errno));
}
