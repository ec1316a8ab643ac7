/* uvcache.c — the builder's uv cache in the store: its lock and its pruning. */
#include "pactown/uvcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/fsutil.h"
#include "pactown/req.h"
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

/* nftw(3) has no argument for its callback: the scan it adds to, per thread */
static _Thread_local struct scan *scanning;

static int scan_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    struct scan *s = scanning;
    if (ftw->level == 0)
        return 0; /* the archive's own directory */
    if (type == FTW_DNR || type == FTW_NS) {
        s->linked = true; /* what cannot be seen might be linked: the archive is kept */
        return 0;
    }
    if (st->st_ctim.tv_sec > s->newest_ctime)
        s->newest_ctime = st->st_ctim.tv_sec;
    if (S_ISREG(st->st_mode)) {
        s->bytes += (uint64_t)st->st_blocks * 512;
        if (st->st_nlink > 1)
            s->linked = true;
    }
    return 0;
}

/* Everything beneath the archive at path, however deep (nftw keeps at most
 * 16 directories open, and reads deeper ones by their path: a wheel's tree
 * 70 levels down stopped the recursive scan this replaces, and with it every
 * prune). 0 or -errno; the prune holds the cache exclusive, so nothing
 * changes beneath it meanwhile. */
static int scan_archive(const char *path, struct scan *s)
{
    scanning = s;
    int rc = nftw(path, scan_one, 16, FTW_PHYS | FTW_MOUNT);
    scanning = NULL;
    return rc == 0 ? 0 : errno ? -errno : -EIO;
}

/* The name's PEP 503 normalized form (pt_name_normalize) into out. False
 * if it is empty, too long, or has anything but [A-Za-z0-9._-] or no
 * letter or digit, so a name given to `uv cache clean` is [a-z0-9-] and
 * never starts with '-'. */
static bool normalize_name(const char *name, size_t len, char *out, size_t n)
{
    bool alnum = false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool an = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!an && c != '-' && c != '_' && c != '.')
            return false;
        alnum |= an;
    }
    /* PEP 503 keeps a leading or trailing run as '-'; a name never has one
     * (PEP 508: it starts and ends with a letter or digit) */
    if (!alnum || !len || (name[0] == '-' || name[0] == '_' || name[0] == '.') ||
        (name[len - 1] == '-' || name[len - 1] == '_' || name[len - 1] == '.'))
        return false;
    char *norm = pt_name_normalize(name, len);
    bool ok = norm && strlen(norm) < n;
    if (ok)
        memcpy(out, norm, strlen(norm) + 1);
    free(norm);
    return ok;
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
    return normalize_name(dirname, (size_t)(dash - dirname), out, n);
}

/* The "Name:" of the METADATA in the dist-info directory di (open, beneath
 * the archive), normalized, into out. uv checks that field against the name
 * it installs the wheel as (the one `uv cache clean` takes); it does not
 * check the directory's name as closely: "hxp_victim-1.0.dist-info" passes
 * for a wheel of hxp (a prefix), and a top-level *file* named
 * "ptdemo_core-1.dist-info" is installed as any file. */
static bool metadata_name(int di, char *out, size_t n)
{
    int fd = openat(di, "METADATA", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[16384];
    ssize_t len = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (len <= 0)
        return false;
    buf[len] = '\0';
    /* RFC 822 style headers, up to the first empty line (the description) */
    for (char *line = buf; *line && *line != '\n' && *line != '\r';) {
        char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        if (strncasecmp(line, "Name:", 5) == 0) {
            const char *v = line + 5, *e = end;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                e--;
            return normalize_name(v, (size_t)(e - v), out, n);
        }
        line = *end ? end + 1 : end;
    }
    return false;
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

/* The distribution an unpacked wheel is of: the Name of the METADATA in its
 * *.dist-info directory (a directory: uv allows one only), normalized; the
 * directory's name when that METADATA has none. "" when none is found. */
static void archive_name(int fd, char *name, size_t n)
{
    name[0] = '\0';
    int dup_fd = dup(fd);
    DIR *d = dup_fd < 0 ? NULL : pt_opendir_fd(dup_fd);
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        return;
    }
    rewinddir(d); /* the dup shares fd's offset */
    char from_dir[128];
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!dist_name(de->d_name, from_dir, sizeof from_dir))
            continue;
        int di = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (di < 0)
            continue; /* a file named like a dist-info directory */
        bool found = metadata_name(di, name, n);
        close(di);
        if (!found)
            snprintf(name, n, "%s", from_dir);
        break;
    }
    closedir(d);
}

/* One archive (an unpacked wheel): scanned, and its distribution told. */
static int look_at_archive(int bucket_fd, const char *bucket_path, const char *id, int64_t cutoff, struct dists *ds,
                           pt_prune_result *r)
{
    int fd = openat(bucket_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char name[128], path[PATH_MAX];
    archive_name(fd, name, sizeof name);
    close(fd);
    struct scan s = { 0 };
    if (snprintf(path, sizeof path, "%s/%s", bucket_path, id) >= (int)sizeof path || scan_archive(path, &s) != 0)
        s.linked = true; /* not seen whole: kept, and the prune goes on */
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
        char bucket_path[PATH_MAX];
        if (snprintf(bucket_path, sizeof bucket_path, "%s/%s", path, be->d_name) >= (int)sizeof bucket_path)
            rc = pt_error_set(err, -ENAMETOOLONG, 0, "%s/%s: path too long", path, be->d_name);
        struct dirent *ae;
        while (rc == 0 && b && (ae = readdir(b)) != NULL)
            if (ae->d_name[0] != '.' && (rc = look_at_archive(bfd, bucket_path, ae->d_name, now - ttl_seconds, &ds, out)))
                pt_error_set(err, rc, 0, "%s: %s", bucket_path, strerror(-rc));
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
