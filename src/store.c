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

bool pt_is_mountpoint(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, f) > 0) {
        /* id parent maj:min root mountpoint ... */
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 4; i++)
            tok = strtok_r(NULL, " ", &save);
        if (tok) {
            unescape(tok);
            found = strcmp(tok, path) == 0;
        }
    }
    free(line);
    fclose(f);
    return found;
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

int pt_detach_fstype(const char *fstype)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, rc = 0;
    /* collect first: unmounting while reading mountinfo may skip lines */
    char **points = NULL;
    size_t np = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent maj:min root mountpoint options... - fstype source superoptions */
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        char *type = sep + 3, *end = strchr(type, ' ');
        if (!end || (size_t)(end - type) != strlen(fstype) || strncmp(type, fstype, (size_t)(end - type)) != 0)
            continue;
        *sep = '\0';
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 4; i++)
            tok = strtok_r(NULL, " ", &save);
        if (!tok)
            continue;
        unescape(tok);
        char **p = realloc(points, (np + 1) * sizeof *p);
        char *dup = p ? strdup(tok) : NULL;
        if (!dup) {
            if (p)
                points = p;
            rc = -ENOMEM;
            break;
        }
        points = p;
        points[np++] = dup;
    }
    free(line);
    fclose(f);
    for (size_t i = np; i-- > 0;) {
        if (rc == 0 && umount2(points[i], MNT_DETACH) == 0)
            n++;
        else if (rc == 0 && errno != EINVAL && errno != ENOENT)
            rc = -errno;
        free(points[i]);
    }
    free(points);
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
