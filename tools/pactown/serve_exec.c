/* serve_exec.c — `pactown serve` runs pactown-serve, the runner API, in this
 * process (execv: same pid, arguments and environment), so that libmicrohttpd
 * is linked into that program alone and no other command of pactown loads it
 * (docs/ARCHITECTURE.md, The runner API). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef PACTOWN_SERVE_DIR
#define PACTOWN_SERVE_DIR "../libexec/pactown"
#endif

/* path (size n) of pactown-serve in dir, a directory relative to the one of
 * this executable (or absolute): true if it is there and executable */
static bool serve_in(const char *self_dir, const char *dir, char *path, size_t n)
{
    int w = dir[0] == '/' ? snprintf(path, n, "%s/pactown-serve", dir)
          : dir[0] ? snprintf(path, n, "%s/%s/pactown-serve", self_dir, dir)
                   : snprintf(path, n, "%s/pactown-serve", self_dir);
    return w > 0 && (size_t)w < n && access(path, X_OK) == 0;
}

int serve_exec(int argc, char **argv)
{
    (void)argc;
    char self[PATH_MAX], path[PATH_MAX + 32] = "";
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "pactown serve: cannot find my own executable (/proc/self/exe: %s)\n", strerror(errno));
        return EXIT_ERROR;
    }
    self[len] = '\0';
    *strrchr(self, '/') = '\0';
    /* beside pactown (the build tree), then <libexecdir>/pactown of the install */
    if (!serve_in(self, "", path, sizeof path) && !serve_in(self, PACTOWN_SERVE_DIR, path, sizeof path)) {
        fprintf(stderr, "pactown serve: the runner API is a program of its own, pactown-serve, and it is not"
                        " installed: not in %s nor in %s%s%s\n", self, PACTOWN_SERVE_DIR[0] == '/' ? "" : self,
                PACTOWN_SERVE_DIR[0] == '/' ? "" : "/", PACTOWN_SERVE_DIR);
        return EXIT_ERROR;
    }
    execv(path, argv); /* argv: pactown serve [options]; pactown-serve takes it as it is */
    fprintf(stderr, "pactown serve: cannot run %s: %s\n", path, strerror(errno));
    return EXIT_ERROR;
}
