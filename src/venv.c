/* venv.c — a built venv's completeness and its base interpreter (pactown/venv.h). */
#include "pactown/venv.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int pt_venv_check(const char *dir, char *why, size_t n)
{
    char path[PATH_MAX];
    struct stat st;
    if (n)
        why[0] = '\0';
    if (snprintf(path, sizeof path, "%s/.pactown-key", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? -ENOENT : -errno;
    snprintf(path, sizeof path, "%s/pyvenv.cfg", dir);
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, n, "%s: %s", path, strerror(errno));
        return -ESTALE;
    }
    char line[PATH_MAX + 32], home[PATH_MAX] = "";
    while (fgets(line, sizeof line, f)) {
        /* "home = /usr/bin" (PEP 405: key = value, spaces around '=' optional) */
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "home", 4) != 0)
            continue;
        p += 4;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '=')
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        p[strcspn(p, "\r\n")] = '\0';
        snprintf(home, sizeof home, "%s", p);
    }
    fclose(f);
    if (!*home) {
        snprintf(why, n, "%s has no home", path);
        return -ESTALE;
    }
    if (stat(home, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, n, "its base interpreter's directory %s (pyvenv.cfg home) is gone", home);
        return -ESTALE;
    }
    snprintf(path, sizeof path, "%s/bin/python", dir);
    if (stat(path, &st) != 0) {
        snprintf(why, n, "%s does not lead to an interpreter (%s); pyvenv.cfg home is %s", path, strerror(errno), home);
        return -ESTALE;
    }
    return 0;
}
