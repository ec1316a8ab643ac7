/* pycache.c — a venv's site-packages and the bytecode missing from it. */
#include "pactown/pycache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pt_site_packages(const char *venv, char *out, size_t n, char *tag, size_t tn)
{
    char lib[PATH_MAX];
    if (snprintf(lib, sizeof lib, "%s/lib", venv) >= (int)sizeof lib)
        return -ENAMETOOLONG;
    DIR *d = opendir(lib);
    if (!d)
        return -errno;
    struct dirent *de;
    char name[NAME_MAX + 1] = "";
    int found = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (found++) {
            closedir(d);
            return -EMLINK;
        }
        snprintf(name, sizeof name, "%s", de->d_name);
    }
    closedir(d);
    if (!found)
        return -ENOENT;
    if (snprintf(out, n, "%s/%s/site-packages", lib, name) >= (int)n)
        return -ENAMETOOLONG;
    struct stat st;
    if (stat(out, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    unsigned major, minor;
    char rest;
    if (tn > 0)
        tag[0] = '\0';
    if (sscanf(name, "python%u.%u%c", &major, &minor, &rest) == 2 &&
        snprintf(tag, tn, "cpython-%u%u", major, minor) >= (int)tn)
        return -ENAMETOOLONG;
    return 0;
}

/* The .pyc at pyc (relative to dirfd) holds the bytecode of the source
 * src as it is: a hash-based .pyc (PEP 552), or one whose header has the
 * source's mtime and size (32 bits each), Python's own test
 * (importlib's _validate_timestamp_pyc). A wheel may ship a .pyc of its own,
 * which never matches the mtime uv gives the source it unpacks. */
static bool pyc_fresh(int dirfd, const char *src, const char *pyc)
{
    struct stat st;
    unsigned char h[16];
    if (fstatat(dirfd, src, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return false;
    int fd = openat(dirfd, pyc, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t r = pread(fd, h, sizeof h, 0);
    close(fd);
    if (r != (ssize_t)sizeof h)
        return false;
    uint32_t flags = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
    uint32_t mtime = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
    uint32_t size = (uint32_t)h[12] | (uint32_t)h[13] << 8 | (uint32_t)h[14] << 16 | (uint32_t)h[15] << 24;
    if (flags & 1)
        return true;
    return mtime == (uint32_t)st.st_mtim.tv_sec && size == (uint32_t)st.st_size;
}

/* dirfd is consumed (closed) */
static long missing_beneath(int dirfd, const char *tag, int first_only, int depth)
{
    if (depth > 64) {
        close(dirfd);
        return -ELOOP;
    }
    DIR *d = fdopendir(dirfd);
    if (!d) {
        int e = errno;
        close(dirfd);
        return -e;
    }
    long missing = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && !(first_only && missing)) {
        const char *nm = de->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..") || !strcmp(nm, "__pycache__"))
            continue;
        unsigned char type = de->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
        }
        size_t len = strlen(nm);
        if (type == DT_DIR) {
            int sub = openat(dirfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                continue;
            long m = missing_beneath(sub, tag, first_only, depth + 1);
            if (m < 0) {
                closedir(d);
                return m;
            }
            missing += m;
        } else if (type == DT_REG && len > 3 && !strcmp(nm + len - 3, ".py")) {
            char pyc[PATH_MAX];
            struct stat st;
            if (snprintf(pyc, sizeof pyc, "__pycache__/%.*s.%s.pyc", (int)(len - 3), nm, tag) >= (int)sizeof pyc ||
                fstatat(dirfd, pyc, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
                !pyc_fresh(dirfd, nm, pyc))
                missing++;
        }
    }
    closedir(d);
    return missing;
}

long pt_pycache_missing(const char *dir, const char *tag, int first_only)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    return missing_beneath(fd, tag, first_only, 0);
}
