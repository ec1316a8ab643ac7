/* usage.c — the disk a venv and the store really take (pactown/usage.h). */
#include "pactown/usage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/uvcache.h"

/* What one walk adds up: the store's figures and/or one venv's. */
struct tally {
    pt_store_usage *store; /* may be NULL */
    void **seen;           /* with store: tsearch(3) tree of the inodes with several links counted */
    int *err;              /* with store: where an out-of-memory is told */
    pt_venv_usage *venv;   /* may be NULL */
    int in_cache;          /* beneath the store's uv cache */
};

static int ino_cmp(const void *a, const void *b)
{
    ino_t x = *(const ino_t *)a, y = *(const ino_t *)b;
    return x < y ? -1 : x > y;
}

static void ino_free(void *p)
{
    free(p);
}

/* true the first time ino is seen (one filesystem: the inode number is enough) */
static bool first_sight(const struct tally *t, ino_t ino)
{
    ino_t *k = malloc(sizeof *k);
    if (!k) {
        *t->err = -ENOMEM;
        return false;
    }
    *k = ino;
    void *found = tsearch(k, t->seen, ino_cmp);
    if (!found) {
        free(k);
        *t->err = -ENOMEM;
        return false;
    }
    if (*(ino_t **)found != k) {
        free(k);
        return false;
    }
    return true;
}

static void count(const struct stat *st, const struct tally *t)
{
    uint64_t disk = (uint64_t)st->st_blocks * 512;
    bool reg = S_ISREG(st->st_mode);
    if (t->venv) {
        pt_venv_usage *u = t->venv;
        if (reg) {
            u->files++;
            u->apparent_bytes += (uint64_t)st->st_size;
        }
        if (reg && st->st_nlink > 2)
            u->shared_files++;
        else
            u->alone_bytes += disk; /* its own: a file no other venv links, a directory */
    }
    if (t->store) {
        pt_store_usage *u = t->store;
        if (reg && st->st_nlink > 1) {
            if (first_sight(t, st->st_ino)) /* each inode once, as du(1) counts hard links */
                u->disk_bytes += disk;
            if (t->in_cache)
                u->shared_files++; /* counted at its cache link: once */
        } else {
            u->disk_bytes += disk;
            if (t->in_cache)
                u->cache_bytes += disk;
        }
    }
}

/* Everything beneath the open directory dirfd (consumed), on dev only,
 * symlinks not followed. With each_venv, the top level's directories but
 * the cache are venvs: each is tallied on its own and handed to it. */
static int walk(int dirfd, dev_t dev, int depth, struct tally t,
                void (*each_venv)(const char *name, const pt_venv_usage *u, void *arg), void *arg)
{
    DIR *d = depth > 128 ? NULL : fdopendir(dirfd);
    if (!d) {
        int e = depth > 128 ? ELOOP : errno;
        close(dirfd);
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue; /* removed while we looked */
            rc = -errno;
            break;
        }
        if (st.st_dev != dev)
            continue;
        struct tally sub = t;
        pt_venv_usage venv;
        bool top_venv = depth == 0 && each_venv && S_ISDIR(st.st_mode) && nm[0] != '.';
        if (depth == 0 && t.store && !strcmp(nm, PT_UV_CACHE_NAME))
            sub.in_cache = 1;
        if (top_venv) {
            memset(&venv, 0, sizeof venv);
            sub.venv = &venv;
        }
        count(&st, &sub);
        if (S_ISDIR(st.st_mode)) {
            int fd = openat(dirfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0)
                rc = walk(fd, dev, depth + 1, sub, NULL, NULL);
            else if (errno != ENOENT)
                rc = -errno;
        }
        if (rc == 0 && t.err && *t.err)
            rc = *t.err;
        if (rc == 0 && top_venv)
            each_venv(nm, &venv, arg);
    }
    closedir(d);
    return rc;
}

static int walk_from(const char *dir, struct tally t,
                     void (*each_venv)(const char *name, const pt_venv_usage *u, void *arg), void *arg)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    count(&st, &t);
    return walk(fd, st.st_dev, 0, t, each_venv, arg);
}

int pt_venv_usage_of(const char *dir, pt_venv_usage *out)
{
    memset(out, 0, sizeof *out);
    return walk_from(dir, (struct tally){ .venv = out }, NULL, NULL);
}

int pt_store_usage_of(const char *dir, pt_store_usage *out,
                      void (*each_venv)(const char *name, const pt_venv_usage *u, void *arg), void *arg)
{
    memset(out, 0, sizeof *out);
    void *seen = NULL;
    int err = 0;
    int rc = walk_from(dir, (struct tally){ .store = out, .seen = &seen, .err = &err }, each_venv, arg);
    tdestroy(seen, ino_free);
    return rc ? rc : err;
}
