/* test_spawn.c — fork + execve without a shell: capture, status, exec errors,
 * cwd, environment, process groups, fds. Each test runs in its own mkdtemp
 * directory; every child started is killed and reaped in teardown. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/spawn.h"
#include "testutil.h"

static char tmpdir[PATH_MAX];
static pid_t kids[8];
static int nkids;

static void setup(void)
{
    nkids = 0;
    tu_tmpdir(tmpdir, "spawn");
}

static void teardown(void)
{
    for (int i = 0; i < nkids; i++)
        if (kids[i] > 0)
            tu_kill_reap(kids[i]);
    tu_rmtree(tmpdir);
}

TestSuite(spawn, .init = setup, .fini = teardown);

static void track(pid_t pid)
{
    cr_assert_lt(nkids, 8);
    kids[nkids++] = pid;
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < nkids; i++)
        if (kids[i] == pid)
            kids[i] = 0;
}

/* Wait for pid within timeout_ms (pidfd + poll, no sleeping) and reap it. */
static void reap(pid_t pid, int timeout_ms, int *status)
{
    int r = tu_pidfd_wait(pid, timeout_ms);
    cr_assert_geq(r, 0, "pidfd_open(%d): %s", (int)pid, strerror(-r));
    cr_assert_eq(r, 1, "process %d still running after %d ms", (int)pid, timeout_ms);
    cr_assert_eq(waitpid(pid, status, 0), pid);
    untrack(pid);
}

/* Read fd to EOF into buf (NUL-terminated); returns the length. */
static size_t slurp_fd(int fd, char *buf, size_t n)
{
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, n - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        cr_assert_geq(r, 0, "read: %s", strerror(errno));
        if (r == 0)
            break;
        len += (size_t)r;
        cr_assert_lt(len, n - 1, "output too long");
    }
    buf[len] = '\0';
    return len;
}

static bool no_children_left(void)
{
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

Test(spawn, run_capture_echo)
{
    const char *argv[] = { "/bin/echo", "hello", "two words", NULL };
    char *out = NULL;
    int status = -1;
    cr_assert_eq(pt_run_capture(argv, NULL, -1, &out, 1024, &status), 0);
    cr_assert_str_eq(out, "hello two words\n");
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0);
    free(out);
    cr_assert(no_children_left());
}

Test(spawn, run_capture_no_shell_interpretation)
{
    const char *argv[] = { "/bin/echo", "$HOME;", "`id`", "*", NULL };
    char *out = NULL;
    int status;
    cr_assert_eq(pt_run_capture(argv, NULL, -1, &out, 1024, &status), 0);
    cr_assert_str_eq(out, "$HOME; `id` *\n");
    free(out);
}

Test(spawn, run_capture_truncates_at_max)
{
    /* 100000 bytes: more than one pipe buffer; the child must not block */
    const char *argv[] = { "/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a", NULL };
    char *out = NULL;
    int status;
    cr_assert_eq(pt_run_capture(argv, NULL, -1, &out, 10, &status), 0);
    cr_assert_str_eq(out, "aaaaaaaaaa");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    free(out);
    out = NULL;
    cr_assert_eq(pt_run_capture(argv, NULL, -1, &out, 1 << 20, &status), 0);
    cr_assert_eq(strlen(out), 100000);
    free(out);
}

Test(spawn, exit_status_and_stderr_fd)
{
    char errpath[PATH_MAX];
    FMT(errpath, "%s/stderr", tmpdir);
    int efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(efd, 0);
    const char *argv[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL };
    char *out = NULL;
    int status = -1;
    cr_assert_eq(pt_run_capture(argv, NULL, efd, &out, 1024, &status), 0);
    close(efd);
    cr_assert_str_eq(out, "out\n");
    free(out);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 3);
    char buf[64];
    int fd = open(errpath, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    slurp_fd(fd, buf, sizeof buf);
    close(fd);
    cr_assert_str_eq(buf, "err\n");
}

Test(spawn, exec_failure_reported)
{
    char missing[PATH_MAX];
    FMT(missing, "%s/no-such-program", tmpdir);
    const char *argv[] = { missing, NULL };
    pt_spawn_opts o = { .argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1 };
    pid_t pid = 12345;
    cr_assert_eq(pt_spawn(&o, &pid), -ENOENT);
    cr_assert(no_children_left(), "the failed child was not reaped");

    /* no PATH search: a bare name is not found either */
    const char *argv2[] = { "echo", "x", NULL };
    o.argv = argv2;
    cr_assert_eq(pt_spawn(&o, &pid), -ENOENT);

    char plain[PATH_MAX];
    FMT(plain, "%s/not-executable", tmpdir);
    int fd = open(plain, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    const char *argv3[] = { plain, NULL };
    o.argv = argv3;
    cr_assert_eq(pt_spawn(&o, &pid), -EACCES); /* even root needs an x bit to exec */

    char *out = NULL;
    int status;
    cr_assert_eq(pt_run_capture(argv, NULL, -1, &out, 100, &status), -ENOENT);
    cr_assert_null(out);
    cr_assert(no_children_left());
}

Test(spawn, bad_cwd_reported)
{
    char missing[PATH_MAX];
    FMT(missing, "%s/no-dir", tmpdir);
    const char *argv[] = { "/bin/pwd", NULL };
    pt_spawn_opts o = { .argv = argv, .cwd = missing, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1 };
    pid_t pid;
    cr_assert_eq(pt_spawn(&o, &pid), -ENOENT);
    cr_assert(no_children_left());
}

Test(spawn, cwd_honoured)
{
    char sub[PATH_MAX], real[PATH_MAX];
    FMT(sub, "%s/work dir", tmpdir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_not_null(realpath(sub, real));
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    const char *argv[] = { "/bin/pwd", "-P", NULL };
    pt_spawn_opts o = { .argv = argv, .cwd = sub, .stdin_fd = -1, .stdout_fd = p[1], .stderr_fd = -1 };
    pid_t pid;
    int rc = pt_spawn(&o, &pid);
    close(p[1]);
    cr_assert_eq(rc, 0);
    track(pid);
    char buf[PATH_MAX + 2];
    slurp_fd(p[0], buf, sizeof buf);
    close(p[0]);
    int status;
    reap(pid, 10000, &status);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char want[PATH_MAX + 2];
    FMT(want, "%s\n", real);
    cr_assert_str_eq(buf, want);
    /* the caller's cwd is unchanged */
    char here[PATH_MAX];
    cr_assert_not_null(getcwd(here, sizeof here));
    cr_assert_str_neq(here, real);
}

Test(spawn, envp_honoured)
{
    const char *argv[] = { "/usr/bin/env", NULL };
    const char *envp[] = { "A=1", "B=two words", "EMPTY=", NULL };
    cr_assert_eq(setenv("PT_PARENT_ONLY", "leak", 1), 0);
    char *out = NULL;
    int status;
    cr_assert_eq(pt_run_capture(argv, envp, -1, &out, 4096, &status), 0);
    cr_assert_str_eq(out, "A=1\nB=two words\nEMPTY=\n");
    free(out);
    const char *empty[] = { NULL };
    cr_assert_eq(pt_run_capture(argv, empty, -1, &out, 4096, &status), 0);
    cr_assert_str_eq(out, "");
    free(out);
    /* NULL = inherit */
    cr_assert_eq(pt_run_capture(argv, NULL, -1, &out, 1 << 20, &status), 0);
    cr_assert_not_null(strstr(out, "PT_PARENT_ONLY=leak\n"), "inherited env: %s", out);
    free(out);
}

Test(spawn, stdin_defaults_to_dev_null)
{
    const char *argv[] = { "/bin/cat", NULL };
    char *out = NULL;
    int status;
    cr_assert_eq(pt_run_capture(argv, NULL, -1, &out, 100, &status), 0);
    cr_assert_str_eq(out, "");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(out);
}

/* Start /bin/cat reading from a pipe we hold: it runs until we close it. */
static pid_t start_cat(pt_spawn_opts *o, int *wfd)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    static const char *argv[] = { "/bin/cat", NULL };
    o->argv = argv;
    o->stdin_fd = p[0];
    o->stdout_fd = -1;
    o->stderr_fd = -1;
    pid_t pid;
    int rc = pt_spawn(o, &pid);
    close(p[0]);
    if (rc)
        close(p[1]);
    cr_assert_eq(rc, 0, "pt_spawn: %s", strerror(-rc));
    track(pid);
    *wfd = p[1];
    return pid;
}

Test(spawn, new_pgrp_and_session)
{
    int wfd;
    pt_spawn_opts o = { .new_pgrp = true };
    pid_t pid = start_cat(&o, &wfd);
    cr_assert_eq(getpgid(pid), pid, "child is not the leader of its own group");
    cr_assert_eq(getsid(pid), getsid(0), "new_pgrp alone keeps the session");
    close(wfd);
    int status;
    reap(pid, 10000, &status);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);

    pt_spawn_opts s = { .new_session = true };
    pid = start_cat(&s, &wfd);
    cr_assert_eq(getsid(pid), pid);
    cr_assert_eq(getpgid(pid), pid);
    close(wfd);
    reap(pid, 10000, &status);

    pt_spawn_opts d = { 0 };
    pid = start_cat(&d, &wfd);
    cr_assert_eq(getpgid(pid), getpgrp(), "without new_pgrp the child stays in our group");
    close(wfd);
    reap(pid, 10000, &status);
}

Test(spawn, fds_above_2_closed_in_child)
{
    int fd = open("/dev/null", O_RDONLY); /* deliberately not close-on-exec */
    cr_assert_geq(fd, 0);
    cr_assert_eq(dup2(fd, 50), 50);
    close(fd);
    const char *argv[] = { "/bin/sh", "-c", "[ -e /proc/$$/fd/50 ] && exit 1; exit 0", NULL };
    char *out = NULL;
    int status;
    cr_assert_eq(pt_run_capture(argv, NULL, -1, &out, 100, &status), 0);
    free(out);
    close(50);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "fd 50 leaked into the child");
}

Test(spawn, death_signal_when_parent_exits)
{
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int info[2], p[2];
    cr_assert_eq(pipe2(info, O_CLOEXEC), 0);
    /* cat's stdin: we hold the write end, so only the signal can end it */
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t mid = fork();
    cr_assert_geq(mid, 0);
    if (mid == 0) {
        /* intermediate parent: start cat with a death signal, report its pid, exit */
        close(info[0]);
        close(p[1]);
        static const char *argv[] = { "/bin/cat", NULL };
        pt_spawn_opts o = { .argv = argv, .stdin_fd = p[0], .stdout_fd = -1, .stderr_fd = -1,
                            .death_signal = SIGKILL };
        pid_t pid;
        if (pt_spawn(&o, &pid) != 0)
            _exit(2);
        if (write(info[1], &pid, sizeof pid) != (ssize_t)sizeof pid)
            _exit(3);
        _exit(0);
    }
    track(mid);
    close(info[1]);
    close(p[0]);
    pid_t grandchild = 0;
    ssize_t r = read(info[0], &grandchild, sizeof grandchild);
    close(info[0]);
    int status;
    reap(mid, 10000, &status);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "intermediate status 0x%x", status);
    cr_assert_eq(r, (ssize_t)sizeof grandchild);
    track(grandchild); /* reparented to us (subreaper) */
    reap(grandchild, 10000, &status);
    close(p[1]);
    cr_assert(WIFSIGNALED(status), "status 0x%x", status);
    cr_assert_eq(WTERMSIG(status), SIGKILL);
}

Test(spawn, describe_status)
{
    char buf[128];
    const char *argv[] = { "/bin/sh", "-c", "exit 3", NULL };
    char *out = NULL;
    int status;
    cr_assert_eq(pt_run_capture(argv, NULL, -1, &out, 10, &status), 0);
    free(out);
    pt_describe_status(status, buf, sizeof buf);
    cr_assert_str_eq(buf, "exited with 3");

    int wfd;
    pt_spawn_opts o = { 0 };
    pid_t pid = start_cat(&o, &wfd);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    reap(pid, 10000, &status);
    close(wfd);
    pt_describe_status(status, buf, sizeof buf);
    const char *want = "killed by signal 9";
    cr_assert_eq(strncmp(buf, want, strlen(want)), 0, "got '%s'", buf);
    char next = buf[strlen(want)];
    cr_assert(next == '\0' || next == ' ', "got '%s'", buf); /* not signal 90 */

    /* truncation is safe */
    char tiny[6];
    pt_describe_status(status, tiny, sizeof tiny);
    cr_assert_str_eq(tiny, "kille");
}

/* the one environment filter: drop by prefix, keep exceptions, add/replace */
Test(spawn, env_new_filters_and_adds)
{
    const char *base[] = { "HOME=/root", "UV_FIND_LINKS=/x", "UV_NATIVE_TLS=1", "PIP_INDEX_URL=y", "PATH=/bin",
                           "PYTHONPATH=/p", NULL };
    const char *drop[] = { "UV_", "PIP_", "PYTHONPATH=", NULL };
    const char *keep[] = { "UV_NATIVE_TLS=", NULL };
    const char *add[] = { "PATH=/venv/bin:/bin", "UV_CACHE_DIR=/c", NULL };
    char **env = pt_env_new(base, drop, keep, add);
    cr_assert_not_null(env);
    const char *want[] = { "HOME=/root", "UV_NATIVE_TLS=1", "PATH=/venv/bin:/bin", "UV_CACHE_DIR=/c", NULL };
    size_t i = 0;
    for (; env[i]; i++) {
        cr_assert_not_null(want[i], "extra variable %s", env[i]);
        cr_assert_str_eq(env[i], want[i]);
    }
    cr_assert_null(want[i], "missing %s", want[i]);
    pt_env_free(env);
}
