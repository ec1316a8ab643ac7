/* spawn.c — fork + execve with an argument vector; exec errors reported back
 * through a close-on-exec pipe. */
#include "pactown/spawn.h"

#include <errno.h>
#include <grp.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void child_fail(int errpipe, int err)
{
    ssize_t w = write(errpipe, &err, sizeof err);
    (void)w;
    _exit(127);
}

int pt_spawn(const pt_spawn_opts *o, pid_t *pid_out)
{
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0)
        return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int rc = -errno;
        close(errpipe[0]);
        close(errpipe[1]);
        return rc;
    }
    if (pid == 0) {
        /* child: only async-signal-safe calls until execve */
        close(errpipe[0]);
        if (o->death_signal) {
            if (prctl(PR_SET_PDEATHSIG, o->death_signal) != 0)
                child_fail(errpipe[1], errno);
            if (getppid() != parent) /* parent already gone */
                _exit(127);
        }
        if (o->new_session && setsid() < 0)
            child_fail(errpipe[1], errno);
        if (!o->new_session && o->new_pgrp && setpgid(0, 0) != 0)
            child_fail(errpipe[1], errno);
        for (int i = 0; i < o->n_cgroup_procs; i++)
            if (write(o->cgroup_procs[i], "0\n", 2) != 2) /* "0": the writer itself (cgroups(7)) */
                child_fail(errpipe[1], errno);
        int in = o->stdin_fd;
        if (in < 0)
            in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0)
            child_fail(errpipe[1], errno);
        if (o->stdout_fd >= 0 && dup2(o->stdout_fd, 1) < 0)
            child_fail(errpipe[1], errno);
        if (o->stderr_fd >= 0 && dup2(o->stderr_fd, 2) < 0)
            child_fail(errpipe[1], errno);
        /* close everything above 2 except the error pipe (close-on-exec) */
        int ep = errpipe[1];
        if (ep > 3)
            close_range(3, (unsigned)ep - 1, 0);
        if (ep >= 3)
            close_range((unsigned)ep + 1, ~0U, 0);
        else
            close_range(3, ~0U, 0);
        if (o->cwd && chdir(o->cwd) != 0)
            child_fail(ep, errno);
        if (o->set_ids) {
            /* groups first, then the gid, then the uid: once the uid is not 0
             * nothing else may be changed; from root, setresuid(2) to a
             * non-zero uid clears every capability */
            if (setgroups(0, NULL) != 0 || setresgid(o->gid, o->gid, o->gid) != 0 ||
                setresuid(o->uid, o->uid, o->uid) != 0)
                child_fail(ep, errno);
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
                child_fail(ep, errno);
            umask(077);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execve(o->argv[0], (char *const *)o->argv, (char *const *)(o->envp ? o->envp : (const char *const *)environ));
        child_fail(ep, errno);
    }
    close(errpipe[1]);
    int child_errno = 0;
    ssize_t r;
    do
        r = read(errpipe[0], &child_errno, sizeof child_errno);
    while (r < 0 && errno == EINTR);
    close(errpipe[0]);
    if (r == (ssize_t)sizeof child_errno) {
        int st;
        pt_wait(pid, &st);
        return -child_errno;
    }
    *pid_out = pid;
    return 0;
}

int pt_wait(pid_t pid, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, 0);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

int pt_wait_timeout(pid_t pid, int timeout_ms, int *status)
{
    if (pid <= 0 || timeout_ms < 0 || !status)
        return -EINVAL;
    int pfd = pidfd_open(pid, 0);
    if (pfd < 0)
        return -errno;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            int e = -errno;
            close(pfd);
            return e;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long spent = (t.tv_sec - t0.tv_sec) * 1000L + (t.tv_nsec - t0.tv_nsec) / 1000000L;
        if (spent >= timeout_ms) {
            close(pfd);
            return -ETIMEDOUT;
        }
        struct pollfd p = { .fd = pfd, .events = POLLIN };
        if (poll(&p, 1, (int)(timeout_ms - spent)) < 0 && errno != EINTR) {
            int e = -errno;
            close(pfd);
            return e;
        }
    }
    close(pfd);
    return 0;
}

int pt_run_capture(const char *const *argv, const char *const *envp, int stderr_fd,
                   char **out, size_t max, int *status)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    int devnull = -1;
    if (stderr_fd < 0)
        stderr_fd = devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pt_spawn_opts o = { .argv = argv, .envp = envp, .stdin_fd = -1, .stdout_fd = p[1], .stderr_fd = stderr_fd };
    pid_t pid;
    int rc = pt_spawn(&o, &pid);
    close(p[1]);
    if (devnull >= 0)
        close(devnull);
    if (rc) {
        close(p[0]);
        return rc;
    }
    size_t cap = 1024, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        char chunk[4096];
        ssize_t r = read(p[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r;
        if (n + take > max)
            take = max - n;
        if (buf && n + take > cap) {
            while (n + take > cap)
                cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            else
                buf = nb;
        }
        if (buf) {
            memcpy(buf + n, chunk, take);
            n += take;
        }
    }
    close(p[0]);
    rc = pt_wait(pid, status);
    if (!buf)
        return -ENOMEM;
    buf[n] = '\0';
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

void pt_describe_status(int status, char *buf, size_t n)
{
    if (WIFEXITED(status))
        snprintf(buf, n, "exited with %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, n, "ended with status 0x%x", status);
}

static bool starts_with_any(const char *s, const char *const *prefixes)
{
    for (const char *const *p = prefixes; p && *p; p++)
        if (strncmp(s, *p, strlen(*p)) == 0)
            return true;
    return false;
}

/* "NAME=" of a variable s is the same as of t */
static bool same_name(const char *s, const char *t)
{
    size_t n = strcspn(s, "=");
    return strncmp(s, t, n) == 0 && t[n] == '=';
}

char **pt_env_new(const char *const *base, const char *const *drop, const char *const *keep,
                  const char *const *add)
{
    if (!base)
        base = (const char *const *)environ;
    size_t nb = 0, na = 0;
    while (base[nb])
        nb++;
    while (add && add[na])
        na++;
    char **env = calloc(nb + na + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < nb; i++) {
        if (starts_with_any(base[i], drop) && !starts_with_any(base[i], keep))
            continue;
        bool replaced = false;
        for (size_t j = 0; j < na && !replaced; j++)
            replaced = same_name(base[i], add[j]);
        if (replaced)
            continue;
        if (!(env[k++] = strdup(base[i]))) {
            pt_env_free(env);
            return NULL;
        }
    }
    for (size_t j = 0; j < na; j++)
        if (!(env[k++] = strdup(add[j]))) {
            pt_env_free(env);
            return NULL;
        }
    env[k] = NULL;
    return env;
}

void pt_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}
