/* bench/floors/libpython_main.c: python3's own main, linked against libpython3.11.so.
 *
 *     libpython_main json_roundtrip.py --seconds S PAYLOAD
 *
 * Debian's /usr/bin/python3.11 carries the interpreter linked into it statically, built with
 * link-time optimisation; the shared libpython3.11.so, which funcd-python embedded until its
 * worker became a library python3 loads, is a separate position-independent build, and the
 * same JSON round trip costs 13-21 % more there (17.3-18.0 against 19.9-21.0 us per call on
 * the bench machine). This program runs the floor's script in that library, so that every run
 * shows what the move saves. bench/run compiles it against python3-embed's flags.
 */
#include <Python.h>

int main(int argc, char **argv) {
    return Py_BytesMain(argc, argv);
}
