/* unpack.c — a layer unpacked beneath a directory, with the sandbox
 * writer's rules (pactown/venvpack.h): nothing outside the root, nothing
 * through a symlink, no device, no setuid. */
#include "pactown/venvpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/fsutil.h"

#ifndef RESOLVE_BENEATH
#include <linux/openat2.h>
#endif

/* A path of the archive checked and normalized ("./a//b" -> "a/b") into
 * out. false: absolute, "..", a control byte, too long. */
static bool clean_path(const char *p, char *out, size_t n)
{
    if (!p || p[0] == '/')
        return false;
    size_t k = 0;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return false;
        if (len > NAME_MAX)
            return false;
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            for (size_t i = 0; i < len; i++)
                if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                    return false;
            if (k + len + 2 > n)
                return false;
            if (k)
                out[k++] = '/';
            memcpy(out + k, p, len);
            k += len;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    out[k] = '\0';
    return k > 0;
}

/* A relative symlink at path (clean) pointing at target stays beneath the
 * root. Lexically, and also when a component of target is itself a
 * symlink: every ".." comes before the first name ("../../lib/x", never
 * "a/../x"), so a ".." is only ever taken from the link's own directory,
 * which is a real one (open_parent follows no symlink). Without that rule,
 * "a/b/u -> ../.." and then "x -> a/b/u/../../../etc" would each pass the
 * lexical count and x would resolve outside the venv. */
static bool link_stays(const char *path, const char *target)
{
    int depth = 0;
    bool named = false;
    for (const char *s = path; (s = strchr(s, '/')) != NULL; s++)
        depth++; /* the directories the link is in */
    for (const char *p = target; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (named || --depth < 0)
                return false;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            named = true;
            depth++;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    return true;
}

/* The directory that holds path (clean), created on the way (0755), each
 * component opened beneath rootfd without following a symlink. The
 * directories of the last path stay open, one fd per component (the
 * entries are sorted, so the next one is most often beside this one, or in
 * a directory below or above it): only the components past the common
 * prefix are opened (below PARENT_DEPTH, the last slot stands for the
 * deepest directory). Returns the directory's fd (the cache's) or -errno. */
#define PARENT_DEPTH 64

struct parent_cache {
    char dir[PATH_MAX];     /* the components of the open directories, '/'-separated */
    size_t len[PARENT_DEPTH]; /* dir's length up to the end of component i */
    int fd[PARENT_DEPTH];
    size_t depth;           /* components open */
};

static void parent_close(struct parent_cache *pc, size_t keep)
{
    while (pc->depth > keep)
        close(pc->fd[--pc->depth]);
}

/* one component below dirfd: opened, or created (0755) and opened */
static int open_component(int dirfd, const char *name)
{
    unsigned long long how = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int fd = pt_openat2(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, how);
    if (fd != -ENOENT)
        return fd;
    if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
        return -errno;
    return pt_openat2(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, how);
}

static int open_parent(int rootfd, const char *path, const char **base, struct parent_cache *pc)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    size_t dl = slash ? (size_t)(slash - path) : 0;
    /* the open components that are a prefix of path's directory */
    size_t keep = 0;
    while (keep < pc->depth && pc->len[keep] <= dl && strncmp(pc->dir, path, pc->len[keep]) == 0 &&
           (pc->len[keep] == dl || path[pc->len[keep]] == '/'))
        keep++;
    parent_close(pc, keep);
    size_t at = keep ? pc->len[keep - 1] + 1 : 0; /* the next component of path */
    while (at < dl + (dl > 0)) {
        size_t clen = strcspn(path + at, "/");
        char name[NAME_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)clen, path + at);
        int fd = open_component(pc->depth ? pc->fd[pc->depth - 1] : rootfd, name);
        if (fd < 0)
            return fd;
        if (pc->depth == PARENT_DEPTH) /* deeper: the last slot moves down (its directories are not kept) */
            close(pc->fd[--pc->depth]);
        memcpy(pc->dir, path, at + clen);
        pc->dir[at + clen] = '\0';
        pc->len[pc->depth] = at + clen;
        pc->fd[pc->depth++] = fd;
        at += clen + 1;
    }
    return pc->depth ? pc->fd[pc->depth - 1] : rootfd;
}

static bool interpreter_link(const char *path)
{
    return strcmp(path, "bin/python") == 0 || strncmp(path, "bin/python3", 11) == 0;
}

static int copy_data(struct archive *a, int fd, pt_unpack *u, const char *path, pt_error *err)
{
    const void *buf;
    size_t len;
    la_int64_t off;
    int r;
    while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
        if (atomic_fetch_add(&u->bytes, len) + len > u->max_bytes)
            return pt_error_set(err, -EPERM, 0, "%s: the layers hold more than %llu bytes", path,
                                (unsigned long long)u->max_bytes);
        /* sparse regions (off past what was written) read back as zeros */
        ssize_t w;
        for (size_t done = 0; done < len; done += (size_t)w) {
            w = pwrite(fd, (const char *)buf + done, len - done, (off_t)off + (off_t)done);
            if (w < 0) {
                if (errno == EINTR) {
                    w = 0;
                    continue;
                }
                return pt_error_set(err, -errno, 0, "%s: %s", path, strerror(errno));
            }
        }
    }
    if (r != ARCHIVE_EOF)
        return pt_error_set(err, -EBADMSG, 0, "%s: the layer is truncated or corrupt: %s", path, archive_error_string(a));
    return 0;
}

static int unpack_entry(struct archive *a, struct archive_entry *e, int rootfd, pt_unpack *u, struct parent_cache *pc,
                        pt_error *err)
{
    char path[PATH_MAX];
    const char *raw = archive_entry_pathname(e);
    char q[PT_QUOTE_CAP];
    if (!clean_path(raw, path, sizeof path))
        return pt_error_set(err, -EPERM, 0, "%s: an absolute path, a '..' or a control byte: refused",
                            pt_quote(q, sizeof q, raw ? raw : "", raw ? strlen(raw) : 0));
    mode_t type = archive_entry_filetype(e);
    mode_t mode = archive_entry_mode(e);
    if (archive_entry_hardlink(e))
        return pt_error_set(err, -EPERM, 0, "%s: a hard link: refused", path);
    if (mode & (S_ISUID | S_ISGID | S_ISVTX))
        return pt_error_set(err, -EPERM, 0, "%s: a setuid, setgid or sticky bit: refused", path);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        return pt_error_set(err, -EPERM, 0, "%s: not a regular file, directory or symlink (a device, fifo or socket): refused",
                            path);
    const char *target = type == AE_IFLNK ? archive_entry_symlink(e) : NULL;
    if (type == AE_IFLNK) {
        if (!target || !*target)
            return pt_error_set(err, -EPERM, 0, "%s: a symlink without a target: refused", path);
        for (const char *t = target; *t; t++)
            if ((unsigned char)*t < 0x20 || *t == 0x7f)
                return pt_error_set(err, -EPERM, 0, "%s: a symlink to %s, with a control byte: refused", path,
                                    pt_quote(q, sizeof q, target, strlen(target)));
        if (target[0] == '/' && !(interpreter_link(path) && u->interpreter && strcmp(target, u->interpreter) == 0))
            return pt_error_set(err, -EPERM, 0, "%s: a symlink to the absolute path %s (only bin/python may point at "
                                "the interpreter, %s): refused", path, pt_quote(q, sizeof q, target, strlen(target)),
                                u->interpreter ? u->interpreter : "none");
        if (target[0] != '/' && !link_stays(path, target))
            return pt_error_set(err, -EPERM, 0, "%s: a symlink to %s, outside the venv: refused", path,
                                pt_quote(q, sizeof q, target, strlen(target)));
    }
    /* every entry is an inode: directories and symlinks count too (an archive of
     * empty directories compresses to nearly nothing and would fill the inode table) */
    uint64_t max_entries = u->max_entries ? u->max_entries : PT_UNPACK_MAX_ENTRIES;
    if (atomic_fetch_add(&u->entries, 1) + 1 > max_entries)
        return pt_error_set(err, -EPERM, 0, "%s: more than %llu entries: refused", path, (unsigned long long)max_entries);
    const char *base;
    int dfd = open_parent(rootfd, path, &base, pc);
    if (dfd < 0)
        return pt_error_set(err, dfd == -ELOOP || dfd == -EXDEV ? -EPERM : dfd, 0, "%s: %s", path,
                            dfd == -ELOOP || dfd == -EXDEV ? "its directory is a symlink: refused"
                            : dfd == -ENOTDIR ? "its directory is a file: refused" : strerror(-dfd));
    int rc = 0;
    if (type == AE_IFDIR) {
        struct stat st;
        if (mkdirat(dfd, base, 0755) != 0 &&
            (errno != EEXIST || fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)))
            rc = pt_error_set(err, errno == EEXIST ? -EPERM : -errno, 0, "%s: %s", path,
                              errno == EEXIST ? "a directory where another entry is: refused" : strerror(errno));
    } else if (type == AE_IFLNK) {
        if (symlinkat(target, dfd, base) != 0)
            rc = pt_error_set(err, errno == EEXIST ? -EPERM : -errno, 0, "%s: %s", path,
                              errno == EEXIST ? "a second entry at this path: refused" : strerror(errno));
    } else {
        /* created with its final mode: a fd opened for writing writes a read-only file */
        int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode & 0555) | 0400);
        if (fd < 0) {
            rc = pt_error_set(err, errno == EEXIST ? -EPERM : -errno, 0, "%s: %s", path,
                              errno == EEXIST ? "a second entry at this path: refused" : strerror(errno));
        } else {
            if (atomic_fetch_add(&u->files, 1) + 1 > 4000000)
                rc = pt_error_set(err, -EPERM, 0, "%s: more than 4000000 files: refused", path);
            if (rc == 0)
                rc = copy_data(a, fd, u, path, err);
            /* the archive's mtime: a .pyc's header names it (pactown/venvpack.h) */
            struct timespec ts[2] = { { .tv_sec = archive_entry_mtime(e) }, { .tv_sec = archive_entry_mtime(e) } };
            if (rc == 0 && futimens(fd, ts) != 0)
                rc = pt_error_set(err, -errno, 0, "%s: %s", path, strerror(errno));
            if (close(fd) != 0 && rc == 0)
                rc = pt_error_set(err, -errno, 0, "%s: %s", path, strerror(errno));
        }
    }
    return rc;
}

int pt_layer_unpack(int fd, int rootfd, pt_unpack *u, pt_error *err)
{
    if (lseek(fd, 0, SEEK_SET) != 0)
        return pt_error_set(err, -errno, 0, "the layer: %s", strerror(errno));
    struct archive *a = archive_read_new();
    if (!a)
        return pt_error_set(err, -ENOMEM, 0, "out of memory");
    int rc = 0;
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
        rc = pt_error_set(err, -EBADMSG, 0, "the layer is not tar+zstd: %s", archive_error_string(a));
    } else {
        if (archive_filter_code(a, 0) != ARCHIVE_FILTER_ZSTD)
            rc = pt_error_set(err, -EBADMSG, 0, "the layer is not zstd-compressed (%s)", archive_filter_name(a, 0));
        struct archive_entry *e;
        struct parent_cache pc = { .depth = 0 };
        int r = ARCHIVE_OK;
        while (rc == 0 && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK)
            rc = unpack_entry(a, e, rootfd, u, &pc, err);
        parent_close(&pc, 0);
        if (rc == 0 && r != ARCHIVE_EOF)
            rc = pt_error_set(err, -EBADMSG, 0, "the layer is truncated or corrupt: %s", archive_error_string(a));
    }
    archive_read_free(a);
    return rc;
}
