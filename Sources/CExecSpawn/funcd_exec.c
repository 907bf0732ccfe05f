#define _GNU_SOURCE
#include "funcd_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int funcd_exec_spawn(
    const char *path, char *const argv[], char *const envp[],
    int input, int output, int error, const char *directory,
    pid_t *pid, int *pidfd)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int result = posix_spawn_file_actions_init(&actions);
    if (result != 0) return result;
    result = posix_spawnattr_init(&attributes);
    if (result != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return result;
    }

    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    // dup2 onto 0-2 clears close-on-exec on the copies; closefrom(3) then drops everything
    // else funcd holds (the shared listening socket, the in-flight table, other calls' pipes).
    if ((result = posix_spawn_file_actions_adddup2(&actions, input, 0)) == 0
        && (result = posix_spawn_file_actions_adddup2(&actions, output, 1)) == 0
        && (result = posix_spawn_file_actions_adddup2(&actions, error, 2)) == 0
        && (result = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) == 0
        && (result = posix_spawn_file_actions_addchdir_np(&actions, directory)) == 0
        && (result = posix_spawnattr_setsigdefault(&attributes, &all)) == 0
        && (result = posix_spawnattr_setsigmask(&attributes, &none)) == 0
        && (result = posix_spawnattr_setflags(
                &attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)) == 0) {
        result = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (result != 0) return result;

    // The exit is watched through a pidfd, so that many children can be waited for in one
    // poll() beside their pipes, with no SIGCHLD handler. The process exists (not yet reaped),
    // so this cannot name another one.
    long descriptor = syscall(SYS_pidfd_open, *pid, 0);
    if (descriptor < 0) {
        int saved = errno;
        kill(-*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        return saved;
    }
    *pidfd = (int)descriptor;
    return 0;
}

int funcd_exec_pipe(int descriptors[2], int nonblocking)
{
    return pipe2(descriptors, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) == 0 ? 0 : errno;
}
