/* usage.c — the disk a venv and the store really take (pactown/usage.h). */
#include "pactown/usage.h"
#include "pactown/vec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
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

/* Levels walked with a descriptor each; deeper ones by their path. */
#define FD_LEVELS 32
/* Levels below which nothing is walked: more than any path uv can write
 * (PATH_MAX 4096, a name and a '/' each at least) */
#define MAX_LEVELS 4096

/* Everything beneath anchor/rel (rel: len bytes in a PATH_MAX buffer), on
 * dev only, symlinks not followed, holding no descriptor per level: each
 * directory is read whole and closed before its subdirectories are walked,
 * which are opened by their path from anchor (the deepest directory kept
 * open). A wheel's tree 140 levels down failed the walk that held one per
 * level (ELOOP at 128), and with it every measure of the store while that
 * wheel was there. Only the builder writes the store, and uv writes no
 * symlink: a path beneath anchor leads where the walk saw it lead. */
static int walk_deep(int anchor, char *rel, size_t len, dev_t dev, int depth, struct tally t)
{
    if (depth > MAX_LEVELS)
        return -ELOOP;
    int fd = openat(anchor, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    char *subs = NULL; /* the subdirectories' names, each with its NUL */
    size_t used = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, ".."))
            continue;
        struct stat st;
        if (fstatat(fd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT)
                rc = -errno;
            continue;
        }
        if (st.st_dev != dev)
            continue;
        count(&st, &t);
        if (t.err && *t.err)
            rc = *t.err;
        size_t n = strlen(nm) + 1;
        if (rc == 0 && S_ISDIR(st.st_mode) && pt_buf_append(&subs, &used, &cap, nm, n) != 0) {
            rc = -ENOMEM;
            break;
        }
    }
    closedir(d);
    for (size_t off = 0; rc == 0 && off < used; off += strlen(subs + off) + 1) {
        const char *nm = subs + off;
        size_t n = strlen(nm);
        if (len + 1 + n < PATH_MAX) {
            rel[len] = '/';
            memcpy(rel + len + 1, nm, n + 1);
            rc = walk_deep(anchor, rel, len + 1 + n, dev, depth + 1, t);
            rel[len] = '\0';
            continue;
        }
        /* the path from anchor is too long: this directory is the new anchor */
        char *rel2 = malloc(PATH_MAX);
        int a2 = rel2 ? openat(anchor, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        if (a2 < 0) {
            rc = !rel2 ? -ENOMEM : errno == ENOENT ? 0 : -errno;
            free(rel2);
            break;
        }
        memcpy(rel2, nm, n + 1);
        rc = walk_deep(a2, rel2, n, dev, depth + 1, t);
        close(a2);
        free(rel2);
    }
    free(subs);
    return rc;
}

/* Everything beneath the open directory dirfd (consumed), on dev only,
 * symlinks not followed. With each_venv, the top level's directories but
 * the cache are venvs: each is tallied on its own and handed to it. */
static int walk(int dirfd, dev_t dev, int depth, struct tally t,
                void (*each_venv)(const char *name, const pt_venv_usage *u, void *arg), void *arg)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        int e = errno;
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
        if (S_ISDIR(st.st_mode) && depth + 1 >= FD_LEVELS) {
            char *rel = malloc(PATH_MAX);
            if (!rel)
                rc = -ENOMEM;
            else {
                snprintf(rel, PATH_MAX, "%s", nm);
                rc = walk_deep(dirfd, rel, strlen(rel), dev, depth + 1, sub);
                free(rel);
            }
        } else if (S_ISDIR(st.st_mode)) {
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
