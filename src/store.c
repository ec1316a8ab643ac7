/* store.c — read-only bind of the store and the writable private view. */
#include "pactown/store.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "pactown/fsutil.h"

/* Undo mountinfo's octal escapes (\040 for space, …) in place. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Call fn for each mount of this namespace (proc(5) mountinfo: "id parent
 * maj:min root mountpoint options... - fstype source superoptions"), with
 * the escapes undone, until fn returns non-zero (that value is returned). */
static int each_mount(int (*fn)(const char *mnt, const char *fstype, const char *source, void *arg), void *arg)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        *sep = '\0';
        char *save = NULL, *mnt = strtok_r(line, " ", &save);
        for (int i = 0; mnt && i < 4; i++)
            mnt = strtok_r(NULL, " ", &save);
        char *save2 = NULL, *type = strtok_r(sep + 3, " ", &save2), *source = type ? strtok_r(NULL, " ", &save2) : NULL;
        if (!mnt || !type)
            continue;
        unescape(mnt);
        if (source)
            unescape(source);
        rc = fn(mnt, type, source ? source : "", arg);
    }
    free(line);
    fclose(f);
    return rc;
}

static int is_at(const char *mnt, const char *fstype, const char *source, void *arg)
{
    (void)fstype;
    (void)source;
    return strcmp(mnt, arg) == 0;
}

bool pt_is_mountpoint(const char *path)
{
    return each_mount(is_at, (void *)path) == 1;
}

struct source_of {
    const char *mnt, *fstype;
    char *out;
    size_t n;
};

/* the last match wins: it is the mount on top */
static int find_source(const char *mnt, const char *fstype, const char *source, void *arg)
{
    struct source_of *q = arg;
    if (strcmp(mnt, q->mnt) == 0 && strcmp(fstype, q->fstype) == 0)
        snprintf(q->out, q->n, "%s", source);
    return 0;
}

int pt_mount_source(const char *path, const char *fstype, char *out, size_t n)
{
    if (n == 0)
        return -EINVAL;
    out[0] = '\0';
    struct source_of q = { path, fstype, out, n };
    int rc = each_mount(find_source, &q);
    return rc < 0 ? rc : out[0] ? 0 : -ENOENT;
}

int pt_unmount_all(const char *path)
{
    int n = 0;
    while (pt_is_mountpoint(path)) {
        if (umount2(path, MNT_DETACH) != 0)
            return -errno;
        n++;
    }
    return n;
}

static unsigned long kept_flags(const char *path)
{
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(path, &sv) != 0)
        return 0;
    if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

int pt_store_bind_readonly(const char *path, pt_error *err)
{
    if (mount(path, path, NULL, MS_BIND, NULL) != 0)
        return pt_error_set(err, -errno, 0, "%s: bind mount: %s", path, strerror(errno));
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags(path), NULL) != 0) {
        int e = errno;
        umount2(path, MNT_DETACH);
        return pt_error_set(err, -e, 0, "%s: remount read-only: %s", path, strerror(e));
    }
    return 0;
}

struct points {
    const char *fstype;
    char **v;
    size_t n;
};

static int collect_points(const char *mnt, const char *fstype, const char *source, void *arg)
{
    (void)source;
    struct points *p = arg;
    if (strcmp(fstype, p->fstype) != 0)
        return 0;
    char **v = realloc(p->v, (p->n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    p->v = v;
    if (!(v[p->n] = strdup(mnt)))
        return -ENOMEM;
    p->n++;
    return 0;
}

int pt_detach_fstype(const char *fstype)
{
    /* collect first: unmounting while reading mountinfo may skip lines */
    struct points p = { fstype, NULL, 0 };
    int rc = each_mount(collect_points, &p), n = 0;
    for (size_t i = p.n; i-- > 0;) {
        if (rc == 0 && umount2(p.v[i], MNT_DETACH) == 0)
            n++;
        else if (rc == 0 && errno != EINVAL && errno != ENOENT)
            rc = -errno;
        free(p.v[i]);
    }
    free(p.v);
    return rc ? rc : n;
}

int pt_store_enter_writable(const char *path, pt_error *err)
{
    struct statvfs sv;
    if (statvfs(path, &sv) != 0)
        return pt_error_set(err, -errno, 0, "%s: %s", path, strerror(errno));
    if (!(sv.f_flag & ST_RDONLY))
        return 0; /* file-mode store: nothing to do */
    if (unshare(CLONE_NEWNS) != 0)
        return pt_error_set(err, -errno, 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return pt_error_set(err, -errno, 0, "make mounts private: %s", strerror(errno));
    /* The new namespace holds a copy of every mount, pactownfs's own among
     * them: a copy keeps the FUSE connection alive after the daemon's mount
     * is unmounted, so the daemon would not learn of the unmount until the
     * build ends. Builders never need it: drop the copies. */
    int rc = pt_detach_fstype("fuse.pactown");
    if (rc < 0)
        return pt_error_set(err, rc, 0, "detach pactownfs mounts in the builder's namespace: %s", strerror(-rc));
    unsigned long flags = kept_flags(path);
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags, NULL) != 0)
        return pt_error_set(err, -errno, 0, "%s: remount writable: %s", path, strerror(errno));
    return 0;
}

int pt_store_remove(const char *store, const char *name)
{
    char path[PATH_MAX], trash[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", store, name) >= (int)sizeof path ||
        snprintf(trash, sizeof trash, "%s/.trash-%s-%ld", store, name, (long)getpid()) >= (int)sizeof trash)
        return -ENAMETOOLONG;
    if (rename(path, trash) != 0)
        return errno == ENOENT ? 0 : -errno;
    return pt_rm_rf(trash);
}
