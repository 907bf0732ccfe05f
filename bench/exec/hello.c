/* bench/exec/hello.c: the exec runtime's hello, a cat-like program. It reads its stdin to the
 * end (as a program that takes the request body does), then writes "Hello world!\n" and exits 0.
 * bench/run compiles it with `cc -O2` into bench/exec/build/. */
#include <unistd.h>

int main(void)
{
    char buffer[65536];
    for (;;) {
        ssize_t count = read(0, buffer, sizeof buffer);
        if (count == 0) break;
        if (count < 0) return 1;
    }
    static const char answer[] = "Hello world!\n";
    return write(1, answer, sizeof answer - 1) == (ssize_t)(sizeof answer - 1) ? 0 : 1;
}
