#ifndef FUNCD_EXEC_H
#define FUNCD_EXEC_H

#include <sys/types.h>

/// Starts the program at `path` with `argv` and `envp` as one call of the exec runtime: in a
/// session of its own (so its process group is its own and a signal to the group reaches every
/// process it starts), with `input`, `output` and `error` as its descriptors 0, 1 and 2 and
/// every other descriptor closed, default signal dispositions and an empty signal mask (funcd
/// ignores SIGPIPE; a program must not inherit that), in `directory`.
///
/// Returns 0 and sets `*pid`, and `*pidfd` to a descriptor that becomes readable when the
/// process exits (close-on-exec); otherwise an errno value (ENOENT, EACCES, ENOEXEC, ...).
int funcd_exec_spawn(
    const char *path, char *const argv[], char *const envp[],
    int input, int output, int error, const char *directory,
    pid_t *pid, int *pidfd);

/// pipe2(descriptors, O_CLOEXEC), which Swift's Glibc module does not declare; with
/// `nonblocking`, O_NONBLOCK too. Returns 0 or an errno value.
int funcd_exec_pipe(int descriptors[2], int nonblocking);

#endif
