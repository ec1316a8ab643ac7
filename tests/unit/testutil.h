/* testutil.h — small helpers shared by the unit tests (header only: each test
 * file is its own executable, so everything here is static inline). */
#ifndef PT_TESTUTIL_H
#define PT_TESTUTIL_H

#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* FMT(buf, fmt, ...): snprintf into the array buf (sizeof buf is used, so buf
 * must be an array, not a pointer), asserting nothing was cut off. */
#define FMT(buf, ...)                                                          \
    do {                                                                       \
        int n_ = snprintf((buf), sizeof(buf), __VA_ARGS__);                    \
        cr_assert(n_ >= 0 && (size_t)n_ < sizeof(buf), "path too long");      \
    } while (0)

/* tu_tmpdir(out, name): create a fresh directory /tmp/pt-<name>-XXXXXX with
 * mkdtemp and put its path in out; asserts (fails the test) on any error. */
static inline void tu_tmpdir(char out[PATH_MAX], const char *name)
{
    int n = snprintf(out, PATH_MAX, "/tmp/pt-%s-XXXXXX", name);
    cr_assert(n >= 0 && n < PATH_MAX, "path too long");
    cr_assert_not_null(mkdtemp(out));
}

/* tu_mkdirs(root, rel): mkdir -p root/rel (mode 0755); an assertion fails
 * when the last component cannot be made. */
static inline void tu_mkdirs(const char *root, const char *rel)
{
    char p[PATH_MAX];
    int n = snprintf(p, sizeof p, "%s/%s", root, rel);
    cr_assert(n >= 0 && n < (int)sizeof p, "path too long");
    for (char *s = p + strlen(root) + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    cr_assert(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
}

/* nftw callback of tu_rmtree: make every directory (never a symlink)
 * searchable and writable by us, so its entries can be removed. */
static inline int tu_unlock_cb_(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)f;
    if ((flag == FTW_D || flag == FTW_DNR) && !S_ISLNK(st->st_mode))
        chmod(p, 0700);
    return 0;
}

/* nftw callback of tu_rmtree: remove one entry (children come first). */
static inline int tu_rm_cb_(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

/* tu_rmtree(dir): rm -rf dir for teardown: first make its directories
 * writable (a test may leave read-only ones), then remove everything, depth
 * first. Symlinks are removed, never followed (FTW_PHYS). Errors are ignored;
 * NULL or "" does nothing. */
static inline void tu_rmtree(const char *dir)
{
    if (!dir || !dir[0])
        return;
    nftw(dir, tu_unlock_cb_, 16, FTW_PHYS);
    nftw(dir, tu_rm_cb_, 16, FTW_DEPTH | FTW_PHYS);
}

/* tu_kill_reap(pid): SIGKILL a child of ours and reap it (teardown of a
 * child a failed assertion may have left behind). */
static inline void tu_kill_reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* tu_held_child(&release): fork a child that lives until tu_release_reap
 * (it waits on a pipe): what is read of it in between (its start time, say)
 * is read of a live process, never of a zombie. */
static inline pid_t tu_held_child(int *release)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t kid = fork();
    cr_assert_geq(kid, 0);
    if (kid == 0) {
        char b;
        close(p[1]);
        while (read(p[0], &b, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(p[0]);
    *release = p[1];
    return kid;
}

/* tu_release_reap(pid, release): let a tu_held_child end, and reap it. */
static inline void tu_release_reap(pid_t kid, int release)
{
    close(release);
    int st;
    cr_assert_eq(waitpid(kid, &st, 0), kid);
}

/* tu_pidfd_wait(pid, timeout_ms): wait until process pid has ended, at most
 * timeout_ms (pidfd + poll: no sleeping, EINTR retried). Does not reap it.
 * Returns 1 when it has ended, 0 on timeout, -errno when pidfd_open or poll
 * failed. */
static inline int tu_pidfd_wait(pid_t pid, int timeout_ms)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd < 0)
        return -errno;
    struct pollfd p = { .fd = pfd, .events = POLLIN };
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    int e = errno;
    close(pfd);
    return r < 0 ? -e : r;
}

#endif
