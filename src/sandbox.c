/* sandbox.c — sandbox directories written beneath a dirfd with openat2(2),
 * never following symlinks planted by README content. */
#include "pactown/sandbox.h"

#include "pactown/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PT_TMP_SUFFIX ".pactown-tmp."

/* Render s for an error message: printable ASCII kept, other bytes as \xNN,
 * truncated with "..." when buf is too small. */
static const char *esc(const char *s, char *buf, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (!s) {
        snprintf(buf, n, "(null)");
        return buf;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f) {
            if (o + 1 + 4 >= n)
                goto trunc;
            buf[o++] = (char)c;
        } else {
            if (o + 4 + 4 >= n)
                goto trunc;
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = '\0';
    return buf;
trunc:
    memcpy(buf + o, "...", 4);
    return buf;
}

#define PT_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

bool pt_service_id_valid(const char *id)
{
    if (!id)
        return false;
    size_t i = 0;
    for (; id[i]; i++) {
        char c = id[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (i >= PT_SERVICE_ID_MAX)
            return false;
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return i > 0;
}

/* A temp name "<name>.pactown-tmp.<pid>" whose writer no longer runs: a
 * `pactown run` killed between creating it and renaming it. */
static bool stale_tmp(const char *name)
{
    const char *m = NULL;
    for (const char *s = name; (s = strstr(s, PT_TMP_SUFFIX)) != NULL; s++)
        m = s;
    if (!m || !m[sizeof PT_TMP_SUFFIX - 1])
        return false;
    long pid = 0;
    for (const char *d = m + sizeof PT_TMP_SUFFIX - 1; *d; d++) {
        if (*d < '0' || *d > '9' || pid > 99999999)
            return false;
        pid = pid * 10 + (*d - '0');
    }
    return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Remove the stale temp files beneath dfd (best effort): never follows a
 * symlink, at most 32 directories deep. */
static void sweep_stale_tmp(int dfd, int depth)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (stale_tmp(de->d_name)) {
            unlinkat(fd, de->d_name, 0);
        } else if (depth < 32 && (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN)) {
            int sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                sweep_stale_tmp(sub, depth + 1);
                close(sub);
            }
        }
    }
    closedir(d);
}

int pt_sandbox_open(const char *root, const char *service_id, int *dirfd, pt_error *err)
{
    char eb[256];
    if (!dirfd)
        return pt_error_set(err, -EINVAL, 0, "sandbox: no output fd");
    if (!root || !*root)
        return pt_error_set(err, -EINVAL, 0, "sandbox: empty sandbox root");
    if (!pt_service_id_valid(service_id))
        return pt_error_set(err, -EINVAL, 0,
                            "sandbox: invalid service id '%s' (want [A-Za-z0-9][A-Za-z0-9._-]{0,63})",
                            esc(service_id, eb, sizeof eb));

    /* mkdir -p root */
    char *p = strdup(root);
    if (!p)
        return pt_error_set(err, -ENOMEM, 0, "sandbox: out of memory");
    size_t len = strlen(p);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        if (p[i - 1] == '/')
            continue; /* "//" or trailing '/' */
        char save = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            int e = -errno;
            pt_error_set(err, e, 0, "sandbox: cannot create '%s': %s", esc(p, eb, sizeof eb), strerror(-e));
            free(p);
            return e;
        }
        p[i] = save;
    }
    free(p);

    int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0) {
        int e = -errno;
        return pt_error_set(err, e, 0, "sandbox: cannot open root '%s': %s", esc(root, eb, sizeof eb),
                            strerror(-e));
    }
    if (mkdirat(rfd, service_id, 0755) < 0 && errno != EEXIST) {
        int e = -errno;
        close(rfd);
        return pt_error_set(err, e, 0, "sandbox: cannot create '%s/%s': %s", esc(root, eb, sizeof eb),
                            service_id, strerror(-e));
    }
    int fd = pt_openat2(rfd, service_id, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, PT_RESOLVE);
    close(rfd);
    if (fd < 0) {
        const char *why = fd == -ELOOP ? "is a symlink, refusing to follow it"
                        : fd == -ENOSYS ? "openat2(2) not supported by this kernel"
                                        : strerror(-fd);
        return pt_error_set(err, fd, 0, "sandbox: cannot open '%s/%s': %s", esc(root, eb, sizeof eb),
                            service_id, why);
    }
    sweep_stale_tmp(fd, 0); /* left by a writer that was killed */
    *dirfd = fd;
    return 0;
}

/* Validate relpath; 0 or -EINVAL with err filled. */
static int check_relpath(const char *relpath, pt_error *err)
{
    char eb[300];
    if (!relpath)
        return pt_error_set(err, -EINVAL, 0, "sandbox: missing file path");
    if (!*relpath)
        return pt_error_set(err, -EINVAL, 0, "sandbox: empty file path");
    if (relpath[0] == '/')
        return pt_error_set(err, -EINVAL, 0, "sandbox: file path '%s' is absolute",
                            esc(relpath, eb, sizeof eb));
    for (const char *s = relpath; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return pt_error_set(err, -EINVAL, 0, "sandbox: file path '%s' contains a control character",
                                esc(relpath, eb, sizeof eb));
    }
    const char *s = relpath;
    const char *last = relpath;
    for (;;) {
        const char *e = strchrnul(s, '/');
        size_t n = (size_t)(e - s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return pt_error_set(err, -EINVAL, 0, "sandbox: file path '%s' contains '..'",
                                esc(relpath, eb, sizeof eb));
        if (n > NAME_MAX)
            return pt_error_set(err, -EINVAL, 0, "sandbox: file path '%s' has a component longer than %d bytes",
                                esc(relpath, eb, sizeof eb), NAME_MAX);
        last = s;
        if (!*e)
            break;
        s = e + 1;
    }
    if (!*last || (last[0] == '.' && last[1] == '\0'))
        return pt_error_set(err, -EINVAL, 0, "sandbox: file path '%s' does not name a file",
                            esc(relpath, eb, sizeof eb));
    return 0;
}

int pt_sandbox_write_file(int dirfd, const char *relpath, const void *data, size_t len,
                          mode_t mode, pt_error *err)
{
    char eb[300];
    int rc = check_relpath(relpath, err);
    if (rc)
        return rc;
    if (!data && len > 0)
        return pt_error_set(err, -EINVAL, 0, "sandbox: no data for '%s'", relpath);

    char *path = strdup(relpath);
    if (!path)
        return pt_error_set(err, -ENOMEM, 0, "sandbox: out of memory");

    /* Walk the directory components; cur is owned when cur != dirfd. */
    int cur = dirfd;
    char *s = path;
    char *name = NULL;
    for (;;) {
        char *e = strchrnul(s, '/');
        if (!*e) {
            name = s;
            break;
        }
        *e = '\0';
        if (*s && strcmp(s, ".") != 0) {
            if (mkdirat(cur, s, 0755) < 0 && errno != EEXIST) {
                rc = -errno;
                pt_error_set(err, rc, 0, "sandbox: cannot create directory '%s' (for '%s'): %s", path,
                             relpath, strerror(-rc));
                goto out;
            }
            int nfd = pt_openat2(cur, s, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, PT_RESOLVE);
            if (nfd < 0) {
                rc = nfd;
                const char *why = rc == -ELOOP ? "is a symlink, refusing to follow it"
                                : rc == -ENOTDIR ? "is not a directory"
                                : rc == -ENOSYS ? "openat2(2) not supported by this kernel"
                                                : strerror(-rc);
                pt_error_set(err, rc, 0, "sandbox: '%s' (in '%s') %s", path, relpath, why);
                goto out;
            }
            if (cur != dirfd)
                close(cur);
            cur = nfd;
        }
        *e = '/';
        s = e + 1;
    }

    /* A file that holds exactly this already (a sandbox prepared again) is
     * left as it is: replacing it by rename costs ext4 a flush of the new
     * file's data (auto_da_alloc), up to a millisecond of a cache hit. Only a
     * regular file of ours, with one link and this mode, not followed. */
    struct stat st;
    if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
        st.st_uid == geteuid() && (st.st_mode & 07777) == (mode & 0777) && (uint64_t)st.st_size == len) {
        int old = pt_openat2(cur, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0, PT_RESOLVE);
        struct stat ost;
        bool same = old >= 0 && fstat(old, &ost) == 0 && ost.st_ino == st.st_ino && ost.st_dev == st.st_dev &&
                    pt_sandbox_file_holds(old, data, len);
        if (old >= 0)
            close(old);
        if (same) {
            rc = 0;
            goto out;
        }
    }

    /* Temp name: "<name>.pactown-tmp.<pid>", name shortened to fit NAME_MAX. */
    char suffix[48];
    int sl = snprintf(suffix, sizeof suffix, PT_TMP_SUFFIX "%ld", (long)getpid());
    size_t nl = strlen(name);
    if (nl + (size_t)sl > NAME_MAX)
        nl = NAME_MAX - (size_t)sl;
    char tmp[NAME_MAX + 1];
    snprintf(tmp, sizeof tmp, "%.*s%s", (int)nl, name, suffix);

    if (unlinkat(cur, tmp, 0) < 0 && errno != ENOENT) {
        rc = -errno;
        pt_error_set(err, rc, 0, "sandbox: cannot remove stale temp file for '%s': %s",
                     esc(relpath, eb, sizeof eb), strerror(-rc));
        goto out;
    }
    int fd = pt_openat2(cur, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600, PT_RESOLVE);
    if (fd < 0) {
        rc = fd;
        pt_error_set(err, rc, 0, "sandbox: cannot create temp file for '%s': %s", relpath, strerror(-rc));
        goto out;
    }
    rc = pt_write_all(fd, data, len);
    if (rc == 0 && fchmod(fd, mode & 0777) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0 && errno != EINTR)
        rc = -errno;
    if (rc) {
        pt_error_set(err, rc, 0, "sandbox: cannot write '%s': %s", relpath, strerror(-rc));
        unlinkat(cur, tmp, 0);
        goto out;
    }
    if (renameat(cur, tmp, cur, name) < 0) {
        rc = -errno;
        pt_error_set(err, rc, 0, "sandbox: cannot rename temp file to '%s': %s", relpath,
                     rc == -EISDIR ? "a directory is in the way" : strerror(-rc));
        unlinkat(cur, tmp, 0);
        goto out;
    }
    rc = 0;
out:
    if (cur != dirfd)
        close(cur);
    free(path);
    return rc;
}

int pt_sandbox_link_venv(int dirfd, const char *target, pt_error *err)
{
    char eb[300];
    if (!target || target[0] != '/')
        return pt_error_set(err, -EINVAL, 0, "sandbox: venv target '%s' is not an absolute path",
                            esc(target, eb, sizeof eb));
    size_t tl = strlen(target);
    if (tl >= PATH_MAX)
        return pt_error_set(err, -EINVAL, 0, "sandbox: venv target is too long (%zu bytes)", tl);
    for (const char *s = target; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return pt_error_set(err, -EINVAL, 0, "sandbox: venv target '%s' contains a control character",
                                esc(target, eb, sizeof eb));
    }

    struct stat st;
    bool exists = fstatat(dirfd, ".venv", &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISDIR(st.st_mode))
        goto is_dir;
    if (exists && S_ISLNK(st.st_mode) && (size_t)st.st_size == tl) {
        char cur[PATH_MAX];
        ssize_t n = readlinkat(dirfd, ".venv", cur, sizeof cur);
        if (n >= 0 && (size_t)n == tl && memcmp(cur, target, tl) == 0)
            return 0; /* points there already (a sandbox prepared again) */
    }

    char tmp[64];
    snprintf(tmp, sizeof tmp, ".venv" PT_TMP_SUFFIX "%ld", (long)getpid());
    if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT) {
        int e = -errno;
        return pt_error_set(err, e, 0, "sandbox: cannot remove stale '%s': %s", tmp, strerror(-e));
    }
    if (symlinkat(target, dirfd, tmp) < 0) {
        int e = -errno;
        return pt_error_set(err, e, 0, "sandbox: cannot create symlink '%s': %s", tmp, strerror(-e));
    }
    if (renameat(dirfd, tmp, dirfd, ".venv") < 0) {
        int e = -errno;
        unlinkat(dirfd, tmp, 0);
        if (e == -EISDIR || e == -ENOTEMPTY || e == -EEXIST)
            goto is_dir; /* a directory appeared after the check */
        return pt_error_set(err, e, 0, "sandbox: cannot replace .venv: %s", strerror(-e));
    }
    return 0;
is_dir:
    return pt_error_set(err, -EEXIST, 0,
                        "sandbox: .venv is a real directory (an old local venv?); remove it to use the shared venv %s",
                        esc(target, eb, sizeof eb));
}

/* chown every entry beneath dirfd (not following symlinks), depth first */
static int chown_beneath(int dirfd, uid_t uid, gid_t gid, const char *skip, int depth)
{
    DIR *d = pt_opendir_fd(dirfd);
    if (!d)
        return -errno;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        const char *n = de->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || (skip && !strcmp(n, skip)))
            continue;
        struct stat st;
        if (fstatat(dirfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone meanwhile */
        if (S_ISDIR(st.st_mode)) {
            if (depth >= 64) {
                rc = -ELOOP;
                break;
            }
            int sub = openat(dirfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = -errno;
                break;
            }
            rc = chown_beneath(sub, uid, gid, NULL, depth + 1);
            close(sub);
        }
        /* what is the user's already stays; a file with other links is not
         * ours to give (a hard link the service made to a file of root's,
         * where fs.protected_hardlinks is off) */
        bool skip_it = (st.st_uid == uid && st.st_gid == gid) || (!S_ISDIR(st.st_mode) && st.st_nlink > 1);
        if (rc == 0 && !skip_it && fchownat(dirfd, n, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT)
            rc = -errno;
    }
    closedir(d);
    return rc;
}

int pt_sandbox_give(int dirfd, uid_t uid, gid_t gid, pt_error *err)
{
    int rc = chown_beneath(dirfd, uid, gid, ".pactown", 0);
    if (rc == 0 && (fchown(dirfd, uid, gid) != 0 || fchmod(dirfd, 0700) != 0))
        rc = -errno;
    if (rc)
        return pt_error_set(err, rc, 0, "cannot give the sandbox to uid %u: %s", (unsigned)uid, strerror(-rc));
    return 0;
}

bool pt_sandbox_file_holds(int fd, const void *data, size_t len)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size != len)
        return false;
    char buf[65536];
    size_t off = 0;
    while (off < len) {
        size_t want = len - off < sizeof buf ? len - off : sizeof buf;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || memcmp(buf, (const char *)data + off, (size_t)n) != 0)
            return false;
        off += (size_t)n;
    }
    ssize_t n;
    while ((n = pread(fd, buf, 1, (off_t)len)) < 0 && errno == EINTR)
        ;
    return n == 0; /* and nothing after it (a file that grew meanwhile) */
}
