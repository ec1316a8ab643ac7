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
