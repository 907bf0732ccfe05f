/*
 * A compiled program as a function (the exec runtime): the request body comes back with its ASCII
 * letters in upper case, every other byte as it was. funcd runs it once per call, the body on
 * stdin; its stdout is the answer, its stderr funcd's log, its exit status the answer's (0: 200).
 *
 *   cc -O2 -Wall -Wextra -o upper upper.c   (see README.md here: where it runs)
 *   funcd run ./upper
 *   curl localhost:8080/ -d 'hello, world'  HELLO, WORLD
 */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const char *method = getenv("Http_Method"); /* the request, as the watchdogs describe it */
    unsigned char buffer[65536];
    size_t count, total = 0;
    while ((count = fread(buffer, 1, sizeof buffer, stdin)) > 0) {
        for (size_t i = 0; i < count; i++) {
            if (buffer[i] >= 'a' && buffer[i] <= 'z') buffer[i] -= 'a' - 'A';
        }
        if (fwrite(buffer, 1, count, stdout) != count) break;
        total += count;
    }
    if (ferror(stdin) || ferror(stdout) || fflush(stdout) != 0) {
        perror("upper"); /* a line in funcd's log; the non-zero status makes the answer a 500 */
        return 1;
    }
    fprintf(stderr, "upper: %s, %zu bytes\n", method ? method : "no method", total);
    return 0;
}
