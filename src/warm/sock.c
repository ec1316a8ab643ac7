/* sock.c — the warm processes' directory and socket: where they are, the
 * connection to one (its peer checked), one message read with a deadline.
 * Shared by the hand-off (zygote.c) and the probes (probe.c); sock.h. */
#include "sock.h"
#include "pactown/warm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/clock.h"

/* <cache>/warm, made (0711: the socket's directory is root's) and opened */
int pt_warm_dirfd(const char *cache_dir, bool make)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/" WARM_DIR, cache_dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if (make && mkdir(path, 0711) != 0 && errno != EEXIST)
        return -errno;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* an AF_UNIX address for <warm>/<id>.sock through /proc/self/fd (sun_path
 * holds 108 bytes; a cache_dir of any length fits) */
int pt_warm_sock_addr(int dirfd, const char *id, struct sockaddr_un *a)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path, sizeof a->sun_path, "/proc/self/fd/%d/%s.sock", dirfd, id);
    return n > 0 && (size_t)n < sizeof a->sun_path ? 0 : -ENAMETOOLONG;
}

/* one message of at most cap bytes within timeout_ms: its length, 0 at EOF, or -errno */
ssize_t pt_warm_recv(int fd, char *buf, size_t cap, int timeout_ms)
{
    uint64_t deadline = pt_mono_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
    for (;;) {
        ssize_t n = recv(fd, buf, cap - 1, MSG_DONTWAIT);
        if (n >= 0) {
            buf[n] = '\0';
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        int left = timeout_ms < 0 ? -1 : (int)(((int64_t)(deadline - pt_mono_ns())) / 1000000);
        if (timeout_ms >= 0 && left <= 0)
            return -ETIMEDOUT;
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        if (poll(&pf, 1, left) < 0 && errno != EINTR)
            return -errno;
    }
}

int pt_warm_why(char *why, size_t n, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return rc;
}

int pt_warm_connect(const char *cache_dir, const char *id, uid_t uid, int *fd, struct ucred *cr, char *why, size_t wn)
{
    *fd = -1;
    int wfd = pt_warm_dirfd(cache_dir, false);
    if (wfd < 0)
        return pt_warm_why(why, wn, -ENOENT, "no warm process yet");
    struct sockaddr_un addr;
    int rc = pt_warm_sock_addr(wfd, id, &addr);
    int s = rc ? -1 : socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (rc == 0 && s < 0)
        rc = -errno;
    if (rc == 0 && connect(s, (struct sockaddr *)&addr, sizeof addr) != 0)
        rc = -errno;
    close(wfd);
    if (rc) {
        if (s >= 0)
            close(s);
        /* no socket, or nobody listening on it yet (the warm process listens once it has preloaded) */
        return pt_warm_why(why, wn, rc == -ENOENT || rc == -ECONNREFUSED ? -EAGAIN : rc,
                           "no ready warm process (%s)", strerror(-rc));
    }
    /* the listener's credentials (unix(7): those of listen(2)): the warm process itself, with the uid */
    memset(cr, 0, sizeof *cr);
    socklen_t cl = sizeof *cr;
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, cr, &cl) != 0 || cr->uid != uid) {
        unsigned held = (unsigned)cr->uid;
        close(s);
        pt_warm_stop(cache_dir, id);
        return pt_warm_why(why, wn, -EPROTO, "the warm process's socket is held by uid %u, not %u: ended it", held,
                           (unsigned)uid);
    }
    *fd = s;
    return 0;
}
