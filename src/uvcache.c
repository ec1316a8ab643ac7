/* uvcache.c — the builder's uv cache in the store: its lock and its pruning. */
#include "pactown/uvcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/fsutil.h"
#include "pactown/spawn.h"
#include "pactown/vec.h"

int pt_uv_cache_open(const char *path, bool exclusive, pt_error *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return pt_error_set(err, -errno, 0, "%s: mkdir: %s", path, strerror(errno));
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return pt_error_set(err, -errno, 0, "%s: %s", path, strerror(errno));
    int rc;
    while ((rc = flock(fd, exclusive ? LOCK_EX | LOCK_NB : LOCK_SH)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? -EWOULDBLOCK : pt_error_set(err, -e, 0, "%s: flock: %s", path, strerror(e));
    }
    return fd;
}

/* ---- what an archive holds ---- */

struct scan {
    bool linked;          /* a file with another link: some venv holds it */
    int64_t newest_ctime; /* epoch seconds */
    uint64_t bytes;       /* st_blocks * 512 */
};

/* dirfd is consumed */
static int scan_beneath(int dirfd, struct scan *s, int depth)
{
    DIR *d = depth > 64 ? NULL : fdopendir(dirfd);
    if (!d) {
        int e = depth > 64 ? ELOOP : errno;
        close(dirfd);
        return -e;
    }
    rewinddir(d); /* a dup of dirfd may have been read already: they share the offset */
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (st.st_ctim.tv_sec > s->newest_ctime)
            s->newest_ctime = st.st_ctim.tv_sec;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                rc = scan_beneath(sub, s, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            s->bytes += (uint64_t)st.st_blocks * 512;
            if (st.st_nlink > 1)
                s->linked = true;
        }
    }
    closedir(d);
    return rc;
}

/* The PEP 503 normalized name of a "<name>-<version>.dist-info" directory
 * (the wheel spec escapes '-' in both parts as '_'), into out; false if it
 * is not one, or the name is not [a-z0-9-] once normalized. */
static bool dist_name(const char *dirname, char *out, size_t n)
{
    size_t len = strlen(dirname);
    static const char suffix[] = ".dist-info";
    if (len <= sizeof suffix - 1 || strcmp(dirname + len - (sizeof suffix - 1), suffix) != 0)
        return false;
    const char *dash = strchr(dirname, '-');
    if (!dash || dash == dirname)
        return false;
    size_t w = 0;
    bool sep = false;
    for (const char *p = dirname; p < dash; p++) {
        char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        if (c == '-' || c == '_' || c == '.') {
            sep = true;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return false;
        if (sep && w > 0) {
            if (w + 1 >= n)
                return false;
            out[w++] = '-';
        }
        sep = false;
        if (w + 1 >= n)
            return false;
        out[w++] = c;
    }
    out[w] = '\0';
    return w > 0;
}

struct dist {
    char name[128];
    bool keep;            /* an archive of it is linked, or was unlinked less than ttl ago */
    unsigned archives;
    uint64_t bytes;
};

struct dists {
    struct dist *v;
    size_t n, cap;
};

static struct dist *dist_get(struct dists *ds, const char *name)
{
    for (size_t i = 0; i < ds->n; i++)
        if (!strcmp(ds->v[i].name, name))
            return &ds->v[i];
    struct dist *grown = pt_grow(ds->v, &ds->cap, ds->n, sizeof *ds->v);
    if (!grown)
        return NULL;
    ds->v = grown;
    struct dist *d = &ds->v[ds->n++];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    return d;
}

/* One archive (an unpacked wheel): scanned, and its distribution told. */
static int look_at_archive(int bucket_fd, const char *id, int64_t cutoff, struct dists *ds, pt_prune_result *r)
{
    int fd = openat(bucket_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char name[128] = "";
    DIR *d = pt_opendir_fd(fd);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL && !*name)
            if (!dist_name(de->d_name, name, sizeof name))
                name[0] = '\0';
        closedir(d);
    }
    struct scan s = { 0 };
    int rc = scan_beneath(fd, &s, 0);
    if (rc)
        return rc;
    r->archives++;
    if (!s.linked)
        r->unused++;
    if (!*name)
        return 0; /* not a wheel we can name: uv's business */
    struct dist *di = dist_get(ds, name);
    if (!di)
        return -ENOMEM;
    di->archives++;
    di->bytes += s.bytes;
    if (s.linked || s.newest_ctime > cutoff)
        di->keep = true;
    return 0;
}

static int run_clean(const char *path, const char *uv, const char **names, size_t n, pt_error *err)
{
    const char **argv = calloc(n + 6, sizeof *argv);
    char *cache_var = NULL;
    if (!argv || asprintf(&cache_var, "UV_CACHE_DIR=%s", path) < 0) {
        free(argv);
        return pt_error_set(err, -ENOMEM, 0, "out of memory");
    }
    size_t k = 0;
    argv[k++] = uv;
    argv[k++] = "cache";
    argv[k++] = "clean";
    argv[k++] = "--no-config";
    for (size_t i = 0; i < n; i++)
        argv[k++] = names[i];
    argv[k] = NULL;
    static const char *const drop[] = { "UV_", "PIP_", NULL };
    const char *add[] = { cache_var, "UV_NO_CONFIG=1", "UV_NO_PROGRESS=1", NULL };
    char **env = pt_env_new(NULL, drop, NULL, add);
    int rc = -ENOMEM, status;
    pid_t pid;
    pt_spawn_opts so = { .argv = argv, .envp = (const char *const *)env, .stdin_fd = -1, .stdout_fd = -1,
                         .stderr_fd = -1, .death_signal = SIGKILL };
    if (env && (rc = pt_spawn(&so, &pid)) == 0 && (rc = pt_wait(pid, &status)) == 0 &&
        (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        char how[96];
        pt_describe_status(status, how, sizeof how);
        rc = pt_error_set(err, -ECHILD, 0, "%s cache clean: %s", uv, how);
    } else if (rc) {
        pt_error_set(err, rc, 0, "%s cache clean: %s", uv, strerror(-rc));
    }
    pt_env_free(env);
    free(cache_var);
    free(argv);
    return rc;
}

int pt_uv_cache_prune(const char *path, const char *uv, int64_t ttl_seconds, int64_t now, pt_prune_result *out,
                      pt_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : pt_error_set(err, -errno, 0, "%s: %s", path, strerror(errno));
    int cfd = pt_uv_cache_open(path, true, err);
    if (cfd < 0)
        return cfd;
    struct dists ds = { 0 };
    int rc = 0;
    DIR *top = pt_opendir_fd(cfd);
    if (!top)
        rc = pt_error_set(err, -errno, 0, "%s: %s", path, strerror(errno));
    struct dirent *be;
    while (rc == 0 && top && (be = readdir(top)) != NULL) {
        if (strncmp(be->d_name, "archive-v", 9) != 0)
            continue;
        int bfd = openat(cfd, be->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *b = bfd < 0 ? NULL : pt_opendir_fd(bfd);
        struct dirent *ae;
        while (rc == 0 && b && (ae = readdir(b)) != NULL)
            if (ae->d_name[0] != '.')
                rc = look_at_archive(bfd, ae->d_name, now - ttl_seconds, &ds, out);
        if (b)
            closedir(b);
        if (bfd >= 0)
            close(bfd);
    }
    if (top)
        closedir(top);
    const char **names = rc == 0 && ds.n ? calloc(ds.n, sizeof *names) : NULL;
    if (rc == 0 && ds.n && !names)
        rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < ds.n; i++) {
        if (ds.v[i].keep)
            continue;
        names[k++] = ds.v[i].name;
        out->removed += ds.v[i].archives;
        out->freed_bytes += ds.v[i].bytes;
    }
    out->names = (unsigned)k;
    if (rc == 0 && k)
        rc = run_clean(path, uv, names, k, err);
    if (rc) {
        out->removed = out->names = 0;
        out->freed_bytes = 0;
    }
    free(names);
    free(ds.v);
    close(cfd); /* the lock */
    return rc;
}
