/* fsutil.c — mkdir -p, rm -rf, du and friends on top of nftw(3). */
#include "pactown/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

int pt_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return -errno;
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

DIR *pt_opendir_fd(int dirfd)
{
    int dup_fd = dup(dirfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d && dup_fd >= 0) {
        int e = errno;
        close(dup_fd);
        errno = e;
    }
    return d;
}

/* Remove everything beneath the open directory dirfd, by descriptor: each
 * subdirectory is opened O_NOFOLLOW beneath its parent, so a directory
 * swapped for a symlink meanwhile (by a user who owns the tree) is never
 * entered, and unlinkat(2) never follows one. A directory without write or
 * search permission for its owner gets it (fchmod) before it is emptied.
 * Mount points are not crossed (st_dev). A directory RM_LEVELS down is
 * not entered but renamed (renameat(2), by descriptor too) into topfd, the
 * directory being emptied, and *moved counted: the next pass empties it. So
 * a tree of any depth goes with RM_LEVELS descriptors at most (a wheel 300
 * directories deep made its venv impossible to remove: EXDEV, at every
 * eviction and every start). */
#define RM_LEVELS 64
static unsigned rm_serial;

static int move_up(int dirfd, const char *name, int topfd)
{
    for (int tries = 0; tries < 1000; tries++) {
        char to[64];
        snprintf(to, sizeof to, ".pt-rm-%ld-%u", (long)getpid(), __atomic_fetch_add(&rm_serial, 1, __ATOMIC_RELAXED));
        if (renameat(dirfd, name, topfd, to) == 0)
            return 0;
        if (errno != EEXIST && errno != ENOTEMPTY)
            return errno == ENOENT ? 0 : -errno;
    }
    return -EEXIST;
}

static int rm_beneath(int dirfd, dev_t dev, int depth, int topfd, unsigned *moved)
{
    struct stat self;
    if (fstat(dirfd, &self) == 0 && (self.st_mode & 0700) != 0700)
        fchmod(dirfd, self.st_mode | 0700);
    DIR *d = pt_opendir_fd(dirfd);
    if (!d)
        return -errno;
    rewinddir(d); /* the dup shares dirfd's offset: a pass before read it to the end */
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (!strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone meanwhile */
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev) {
                rc = rc ? rc : -EXDEV;
                continue;
            }
            if (depth >= RM_LEVELS) {
                int r = move_up(dirfd, n, topfd);
                if (r == 0)
                    (*moved)++;
                else if (!rc)
                    rc = r;
                continue;
            }
            int sub = openat(dirfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                if (errno != ENOENT)
                    rc = rc ? rc : -errno;
                continue;
            }
            int r = rm_beneath(sub, dev, depth + 1, topfd, moved);
            close(sub);
            if (r && !rc)
                rc = r;
            if (unlinkat(dirfd, n, AT_REMOVEDIR) != 0 && errno != ENOENT && !rc)
                rc = -errno;
        } else if (unlinkat(dirfd, n, 0) != 0 && errno != ENOENT && !rc) {
            rc = -errno;
        }
    }
    closedir(d);
    return rc;
}

int pt_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : -errno;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    int rc;
    unsigned moved;
    do {
        moved = 0;
        rc = rm_beneath(fd, st.st_dev, 0, fd, &moved);
    } while (rc == 0 && moved > 0);
    close(fd);
    if (rmdir(path) != 0 && errno != ENOENT && !rc)
        rc = -errno;
    return rc;
}

static int ro_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_SL || S_ISLNK(st->st_mode) || (st->st_mode & 0222) == 0)
        return 0; /* a file linked from the uv cache is read-only since its first venv */
    if (chmod(path, st->st_mode & ~(mode_t)0222) != 0)
        return -errno;
    return 0;
}

int pt_make_readonly(const char *path)
{
    /* depth-first so a directory loses its write bit after its children */
    int rc = nftw(path, ro_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    return rc < 0 ? -errno : rc;
}

int pt_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
        close(fd); /* refuse before reading: a regular file says its size */
        return -EFBIG;
    }
    size_t cap = max < 4096 ? max : 4096, n = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                /* max bytes read: too big only if there is one more */
                char extra;
                ssize_t r;
                do
                    r = read(fd, &extra, 1);
                while (r < 0 && errno == EINTR);
                if (r != 0)
                    rc = r < 0 ? -errno : -EFBIG;
                break;
            }
            cap = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int pt_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int pt_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -errno;
    int rc = pt_write_all(fd, data, len);
    if (rc) {
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int rc = -errno;
        unlink(tmp);
        return rc;
    }
    return 0;
}

int pt_which(const char *name, char *out, size_t n)
{
    if (!name || !*name)
        return -ENOENT;
    if (strchr(name, '/')) {
        if (access(name, X_OK) != 0)
            return -errno;
        return snprintf(out, n, "%s", name) >= (int)n ? -ENAMETOOLONG : 0;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t dlen = colon ? (size_t)(colon - path) : strlen(path);
        if (dlen > 0 && snprintf(out, n, "%.*s/%s", (int)dlen, path, name) < (int)n) {
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return 0;
        }
        if (!colon)
            break;
        path = colon + 1;
    }
    return -ENOENT;
}

bool pt_is_elf(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    unsigned char m[4];
    bool elf = read(fd, m, 4) == 4 && m[0] == 0x7f && m[1] == 'E' && m[2] == 'L' && m[3] == 'F';
    close(fd);
    return elf;
}

int pt_openat2(int dirfd, const char *path, int flags, mode_t mode, unsigned long long resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)flags;
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = resolve;
    for (int tries = 0;; tries++) {
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0)
            return (int)fd;
        /* EAGAIN: RESOLVE_BENEATH could not rule out a concurrent rename race. */
        if ((errno == EAGAIN && tries < 16) || errno == EINTR)
            continue;
        return -errno;
    }
}

#ifndef PACTOWN_HELPER_DIR
#define PACTOWN_HELPER_DIR "../libexec/pactown"
#endif
const char *const pt_helper_dirs[] = { "", PACTOWN_HELPER_DIR, "../tools/pactown", NULL };

int pt_find_helper(const char *name, const char *const *dirs, char *out, size_t n)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return -errno;
    self[len] = '\0';
    *strrchr(self, '/') = '\0';
    for (const char *const *d = dirs; *d; d++) {
        const char *dir = *d;
        int w = dir[0] == '/' ? snprintf(out, n, "%s/%s", dir, name)
              : dir[0] ? snprintf(out, n, "%s/%s/%s", self, dir, name)
                       : snprintf(out, n, "%s/%s", self, name);
        if (w > 0 && (size_t)w < n && access(out, X_OK) == 0)
            return 0;
    }
    snprintf(out, n, "%s", self);
    return -ENOENT;
}

int pt_dir_spread_subdirs(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int flags = 0, rc = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0)
        rc = -errno;
    else if (!(flags & FS_TOPDIR_FL)) {
        flags |= FS_TOPDIR_FL;
        if (ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0)
            rc = -errno;
    }
    close(fd);
    return rc == -ENOTTY || rc == -EOPNOTSUPP || rc == -EINVAL ? 0 : rc;
}
