/* uses.c — <cache_dir>/uses.sock: the CLI's --prepare hits, told in one
 * datagram and counted in memory (pactown/control.h), so that a hit commits
 * nothing to the index. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "pactown/clock.h"
#include "pactown/control.h"
#include "pactown/key.h"
#include "pactownfs.h"

/* Take one datagram (flags: 0, or MSG_DONTWAIT): 1 taken, 0 none (shut
 * down, or none waiting). "use KEY" is noted; anything else is dropped
 * (only root's processes can send). */
static int take_one(struct pt_fs *fs, int flags)
{
    char buf[64];
    ssize_t r;
    while ((r = recv(fs->uses_fd, buf, sizeof buf - 1, flags)) < 0 && errno == EINTR)
        ;
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    if (r == 4 + PT_KEY_HEX && memcmp(buf, "use ", 4) == 0 && pt_key_is_valid(buf + 4))
        pt_fs_note_use(fs, buf + 4, pt_wall_ms());
    return 1;
}

static void *uses_main(void *arg)
{
    struct pt_fs *fs = arg;
    while (take_one(fs, 0))
        ;
    return NULL; /* shut down */
}

void pt_fs_uses_drain(struct pt_fs *fs)
{
    if (fs->uses_running)
        while (take_one(fs, MSG_DONTWAIT))
            ;
}

int pt_fs_uses_start(struct pt_fs *fs)
{
    int dirfd = open(fs->cache_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return -errno;
    struct sockaddr_un a;
    socklen_t alen = pt_socket_addr(dirfd, PT_USES_SOCKET, &a);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
    } else {
        unlinkat(dirfd, PT_USES_SOCKET, 0); /* a killed daemon's: we hold daemon.lock */
        mode_t old = umask(0177);
        if (bind(fd, (struct sockaddr *)&a, alen) != 0)
            rc = -errno;
        umask(old);
    }
    close(dirfd);
    if (rc == 0 && (rc = -pthread_create(&fs->uses_thread, NULL, uses_main, fs)) == 0) {
        fs->uses_fd = fd;
        fs->uses_running = true;
        return 0;
    }
    if (fd >= 0)
        close(fd);
    fprintf(stderr, "pactownfs: %s/%s: %s\n", fs->cache_dir, PT_USES_SOCKET, strerror(-rc));
    return rc;
}

void pt_fs_uses_stop(struct pt_fs *fs)
{
    pt_fs_socket_stop(fs, fs->uses_thread, &fs->uses_fd, &fs->uses_running, PT_USES_SOCKET);
}
