/* sock.h — private to src/warm: the warm processes' directory and socket
 * (sock.c). */
#ifndef PACTOWN_WARM_SOCK_H
#define PACTOWN_WARM_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* the warm processes' directory under the cache directory */
#define WARM_DIR "warm"

/* <cache>/warm opened (O_DIRECTORY, close-on-exec), made first (0711) when
 * make: the fd, or -errno. */
int pt_warm_dirfd(const char *cache_dir, bool make);

/* An AF_UNIX address for <warm>/<id>.sock through /proc/self/fd/<dirfd>
 * (sun_path holds 108 bytes; a cache_dir of any length fits): 0 or
 * -ENAMETOOLONG. */
int pt_warm_sock_addr(int dirfd, const char *id, struct sockaddr_un *a);

/* One message of at most cap - 1 bytes within timeout_ms (-1: no limit),
 * NUL-terminated in buf: its length, 0 at EOF, -ETIMEDOUT, or -errno. */
ssize_t pt_warm_recv(int fd, char *buf, size_t cap, int timeout_ms);

/* printf into why (n bytes), then return rc. */
int pt_warm_why(char *why, size_t n, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Connect to the warm process of id (SOCK_SEQPACKET, non-blocking,
 * close-on-exec) and check with SO_PEERCRED (unix(7): the credentials of
 * listen(2)) that it runs as uid. 0 with *fd and *cr; -EAGAIN (none ready:
 * no socket or nobody listening), -ENOENT (no warm directory), -EPROTO (the
 * socket is another uid's: that warm process is ended), -errno; why says it. */
int pt_warm_connect(const char *cache_dir, const char *id, uid_t uid, int *fd, struct ucred *cr, char *why, size_t wn);

#endif
