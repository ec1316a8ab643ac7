/* pycache.c — a venv's site-packages and the bytecode missing from it. */
#include "pactown/pycache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
                fstatat(dirfd, pyc, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
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
