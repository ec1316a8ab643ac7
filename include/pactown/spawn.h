/* pactown/spawn.h — start programs from an argument vector, never a shell.
 *
 * fork(2) + execve(2): arguments are passed as they are, so no requirement
 * line, path or id is ever interpreted by a shell. The one exception in the
 * product, the markpact:run command, is passed explicitly to /bin/sh -c by
 * the run helper, as markpact defines it.
 */
#ifndef PACTOWN_SPAWN_H
#define PACTOWN_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct pt_spawn_opts {
    const char *const *argv;   /* argv[0] is the path executed (no PATH search) */
    const char *const *envp;   /* NULL = the caller's environ */
    const char *cwd;           /* NULL = the caller's cwd */
    int stdin_fd;              /* -1 = /dev/null */
    int stdout_fd;             /* -1 = inherit */
    int stderr_fd;             /* -1 = inherit */
    bool new_session;          /* setsid(2): own session and process group */
    bool new_pgrp;             /* setpgid(0, 0): own process group */
    int death_signal;          /* prctl(PR_SET_PDEATHSIG) signal, 0 = none */
    const int *cgroup_procs;   /* open cgroup.procs files the child writes "0" to, joining those */
    int n_cgroup_procs;        /*   cgroups before anything else runs (cgroups(7)); not closed */
    bool set_ids;              /* run as uid/gid: groups dropped (setgroups(2) with none), */
    uid_t uid;                 /*   setresgid(2), setresuid(2) (from root: no capabilities left), */
    gid_t gid;                 /*   PR_SET_NO_NEW_PRIVS (prctl(2)), umask 077 */
} pt_spawn_opts;

/* Start a child. Returns 0 with *pid set, or -errno; a failure in the child
 * before execve (joining a cgroup, dropping to uid/gid, -EPERM when the
 * caller is not root) or of execve itself (e.g. -ENOENT, -EACCES) is
 * reported here, through a close-on-exec
 * pipe, and the child is reaped. All fds but 0-2 are closed in the child. */
int pt_spawn(const pt_spawn_opts *opts, pid_t *pid);

/* waitpid(2) that retries on EINTR. Returns 0 with *status, or -errno. */
int pt_wait(pid_t pid, int *status);

/* Wait up to timeout_ms for the child pid to end (a pidfd, pidfd_open(2),
 * polled; no sleeping).  Returns 0 with *status (waitpid status; reaped), or
 * -ETIMEDOUT (still running, not signalled, not reaped), -EINVAL, or the
 * -errno of pidfd_open/waitpid (-ECHILD: not a child). */
int pt_wait_timeout(pid_t pid, int timeout_ms, int *status);

/* Run argv (envp NULL = inherit) to completion with stdout captured into a
 * malloc'd NUL-terminated buffer (at most max bytes; more is discarded) and
 * stderr to the caller's stderr_fd (-1 = /dev/null). Returns 0 with *status
 * (waitpid status), or -errno if it could not start. Caller frees *out. */
int pt_run_capture(const char *const *argv, const char *const *envp, int stderr_fd,
                   char **out, size_t max, int *status);

/* The one environment filter. A new environment: every variable of base
 * (NULL = environ) except those whose "NAME=value" text starts with one of
 * drop (prefixes: "UV_" drops every UV_* variable, "HOME=" just HOME), unless
 * it starts with one of keep; then each of add ("NAME=value"), which also
 * replaces a variable of the same name that was kept. drop, keep and add
 * are NULL-terminated and may be NULL. Every string is copied. Returns the
 * NULL-terminated array, or NULL on out-of-memory; free with pt_env_free. */
char **pt_env_new(const char *const *base, const char *const *drop, const char *const *keep,
                  const char *const *add);
void pt_env_free(char **env);

/* Describe a waitpid status: "exited with 2", "killed by signal 9". */
void pt_describe_status(int status, char *buf, size_t n);

#endif
