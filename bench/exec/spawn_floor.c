/* bench/exec/spawn_floor.c: the floor under one call of funcd's exec runtime.
 *
 * In a tight loop, for a fixed time (or number of calls), it does what one call of a program
 * must do at the least, the way funcd does it (Sources/CExecSpawn/funcd_exec.c): three pipes
 * (stdin, stdout, stderr; close-on-exec), posix_spawn of the program in a new session
 * (POSIX_SPAWN_SETSID) with the pipes dup2'ed onto 0-2, every other descriptor closed
 * (closefrom 3), default signal dispositions and an empty mask, in the program's directory;
 * then it closes stdin (no body), reads stdout and stderr to their ends and waits for the exit.
 * What funcd adds on top is the HTTP front, the per-call environment, the pidfd and the poll.
 *
 *     spawn_floor [--seconds S | --calls N] [--warmup S] PROGRAM
 *
 * Prints one JSON object: calls, wall seconds, calls/s, CPU microseconds (getrusage SELF and
 * CHILDREN: this process plus every program it reaped) in all and per call, and the failures
 * (a call whose program did not answer "Hello world!\n" and exit 0). Exit 0, or 1 when a call
 * failed, 2 on a usage or set-up error. bench/run compiles it with `cc -O2` and runs it
 * pinned to the server's CPU. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char expected[] = "Hello world!\n";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_us(int who)
{
    struct rusage u;
    getrusage(who, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static void fail(const char *what, int code)
{
    fprintf(stderr, "spawn_floor: %s: %s\n", what, strerror(code));
    exit(2);
}

/* Reads `descriptor` to its end into `buffer` (at most `size` bytes kept); returns the bytes
 * read in all, or -1. */
static ssize_t drain(int descriptor, char *buffer, size_t size)
{
    ssize_t total = 0;
    char scratch[4096];
    for (;;) {
        ssize_t count = read(descriptor, scratch, sizeof scratch);
        if (count == 0) return total;
        if (count < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if ((size_t)total < size) {
            size_t keep = (size_t)count < size - (size_t)total ? (size_t)count : size - (size_t)total;
            memcpy(buffer + total, scratch, keep);
        }
        total += count;
    }
}

/* One call; returns 1 when the program answered as expected. */
static int call(const char *path, char *const argv[], const char *directory,
                const posix_spawnattr_t *attributes)
{
    int input[2], output[2], errors[2];
    if (pipe2(input, O_CLOEXEC) || pipe2(output, O_CLOEXEC) || pipe2(errors, O_CLOEXEC))
        fail("pipe2", errno);

    posix_spawn_file_actions_t actions;
    int result = posix_spawn_file_actions_init(&actions);
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, input[0], 0);
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, output[1], 1);
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, errors[1], 2);
    if (result == 0) result = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    if (result == 0) result = posix_spawn_file_actions_addchdir_np(&actions, directory);
    if (result != 0) fail("posix_spawn_file_actions", result);
    pid_t pid;
    result = posix_spawn(&pid, path, &actions, attributes, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (result != 0) fail("posix_spawn", result);
    close(input[0]);
    close(output[1]);
    close(errors[1]);

    close(input[1]);   /* no body: stdin ends at once */
    char answer[64];
    ssize_t got = drain(output[0], answer, sizeof answer);
    char ignored[1];
    ssize_t logged = drain(errors[0], ignored, 0);
    close(output[0]);
    close(errors[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) fail("waitpid", errno);
    }
    return got == (ssize_t)(sizeof expected - 1) && memcmp(answer, expected, sizeof expected - 1) == 0
        && logged == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: spawn_floor [--seconds S | --calls N] [--warmup S] PROGRAM\n");
    exit(2);
}

int main(int argc, char **argv)
{
    double seconds = 3, warmup = 0;
    long limit = 0;
    int index = 1;
    for (; index < argc && strncmp(argv[index], "--", 2) == 0; index += 2) {
        if (index + 1 >= argc) usage();
        if (strcmp(argv[index], "--seconds") == 0) seconds = atof(argv[index + 1]);
        else if (strcmp(argv[index], "--calls") == 0) limit = atol(argv[index + 1]);
        else if (strcmp(argv[index], "--warmup") == 0) warmup = atof(argv[index + 1]);
        else usage();
    }
    if (index != argc - 1 || (limit <= 0 && seconds <= 0)) usage();
    const char *path = argv[index];
    char *copy = strdup(path);
    const char *directory = dirname(copy);
    char *child_argv[] = {(char *)path, NULL};

    posix_spawnattr_t attributes;
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    int result = posix_spawnattr_init(&attributes);
    if (result == 0) result = posix_spawnattr_setsigdefault(&attributes, &all);
    if (result == 0) result = posix_spawnattr_setsigmask(&attributes, &none);
    if (result == 0)
        result = posix_spawnattr_setflags(
            &attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (result != 0) fail("posix_spawnattr", result);

    for (double end = now() + warmup; warmup > 0 && now() < end;)
        call(path, child_argv, directory, &attributes);

    double self0 = cpu_us(RUSAGE_SELF), children0 = cpu_us(RUSAGE_CHILDREN), start = now();
    double end = start + seconds;
    long calls = 0, failures = 0;
    while (limit > 0 ? calls < limit : now() < end) {
        if (!call(path, child_argv, directory, &attributes)) failures++;
        calls++;
    }
    double wall = now() - start;
    double self = cpu_us(RUSAGE_SELF) - self0, children = cpu_us(RUSAGE_CHILDREN) - children0;
    printf("{\"calls\": %ld, \"failures\": %ld, \"wall_s\": %.6f, \"calls_per_s\": %.1f, "
           "\"cpu_self_us\": %.0f, \"cpu_children_us\": %.0f, \"cpu_us_per_call\": %.3f, "
           "\"self_us_per_call\": %.3f, \"children_us_per_call\": %.3f}\n",
           calls, failures, wall, calls / wall, self, children, (self + children) / calls,
           self / calls, children / calls);
    return failures ? 1 : 0;
}
