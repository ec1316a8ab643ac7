/* scripts.c — /bin/sh launchers in a venv's bin/ back to plain shebangs. */
#include "pactown/scripts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/fsutil.h"

#define SCRIPT_MAX (64L << 20) /* a script larger than this is not a launcher */

/* If text (len bytes) starts with a launcher, the interpreter path into
 * path and the length of the launcher's three lines; else 0. */
static size_t parse_launcher(const char *text, size_t len, char path[PT_SHEBANG_PATH_MAX + 1])
{
    static const char l1[] = "#!/bin/sh\n'''exec' ", tail[] = " \"$0\" \"$@\"\n' '''\n";
    if (len < sizeof l1 - 1 || memcmp(text, l1, sizeof l1 - 1) != 0)
        return 0;
    const char *p = text + sizeof l1 - 1, *end = text + len, *start, *stop;
    if (p < end && (*p == '\'' || *p == '"')) { /* uv quotes the path, distlib does not */
        char q = *p++;
        start = p;
        while (p < end && *p != q && *p != '\n')
            p++;
        if (p >= end || *p != q)
            return 0;
        stop = p++;
    } else {
        start = p;
        while (p < end && *p != ' ' && *p != '\n')
            p++;
        stop = p;
    }
    size_t n = (size_t)(stop - start);
    if (n == 0 || n > PT_SHEBANG_PATH_MAX || (size_t)(end - p) < sizeof tail - 1 || memcmp(p, tail, sizeof tail - 1) != 0)
        return 0;
    for (const char *c = start; c < stop; c++)
        if (*c == ' ' || *c == '\t' || *c == '\\' || *c == '\'' || *c == '"' || (unsigned char)*c < 0x20)
            return 0;
    memcpy(path, start, n);
    path[n] = '\0';
    return (size_t)(p - text) + sizeof tail - 1;
}

/* rewrite bin/<name> (dirfd = bin/) if it is a launcher: 1 rewritten, 0 not one, -errno */
static int fix_one(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? 0 : -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 16 || st.st_size > SCRIPT_MAX) {
        close(fd);
        return 0;
    }
    char head[16];
    if (pread(fd, head, sizeof head, 0) != (ssize_t)sizeof head || memcmp(head, "#!/bin/sh\n'''exe", 16) != 0) {
        close(fd);
        return 0;
    }
    size_t len = (size_t)st.st_size;
    char *text = malloc(len);
    ssize_t got = text ? pread(fd, text, len, 0) : -1;
    close(fd);
    if (got != (ssize_t)len) {
        free(text);
        return text ? -EIO : -ENOMEM;
    }
    char path[PT_SHEBANG_PATH_MAX + 1];
    size_t skip = parse_launcher(text, len, path);
    if (!skip) {
        free(text);
        return 0;
    }
    char tmp[NAME_MAX + 1];
    if (snprintf(tmp, sizeof tmp, ".%.200s.pactown-tmp", name) >= (int)sizeof tmp) {
        free(text);
        return -ENAMETOOLONG;
    }
    int out = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
    if (out < 0) {
        free(text);
        return -errno;
    }
    char line[PT_SHEBANG_PATH_MAX + 4];
    int n = snprintf(line, sizeof line, "#!%s\n", path);
    int rc = pt_write_all(out, line, (size_t)n);
    if (rc == 0)
        rc = pt_write_all(out, text + skip, len - skip);
    if (rc == 0 && fchmod(out, st.st_mode & 07777) != 0)
        rc = -errno;
    if (close(out) != 0 && rc == 0)
        rc = -errno;
    free(text);
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
        rc = -errno;
    if (rc)
        unlinkat(dirfd, tmp, 0);
    return rc ? rc : 1;
}

int pt_venv_fix_launchers(const char *venv)
{
    char bin[PATH_MAX];
    if (snprintf(bin, sizeof bin, "%s/bin", venv) >= (int)sizeof bin)
        return -ENAMETOOLONG;
    int dirfd = open(bin, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0)
        return -errno;
    DIR *d = fdopendir(dup(dirfd));
    if (!d) {
        close(dirfd);
        return -errno;
    }
    /* names first: renaming while reading the directory may show a name twice */
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
            continue;
        char **p = realloc(names, (n + 1) * sizeof *p);
        if (!p || !(p[n] = strdup(de->d_name))) {
            if (p)
                names = p;
            rc = -ENOMEM;
            break;
        }
        names = p;
        n++;
    }
    closedir(d);
    int fixed = 0;
    for (size_t i = 0; i < n; i++) {
        int r = rc ? 0 : fix_one(dirfd, names[i]);
        if (r < 0)
            rc = r;
        fixed += r > 0;
        free(names[i]);
    }
    free(names);
    close(dirfd);
    return rc ? rc : fixed;
}
