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
#include "pactown/fsutil.h"

int serve_exec(int argc, char **argv)
{
    (void)argc;
    char path[PATH_MAX + 32];
    /* beside pactown (the build tree), then <libexecdir>/pactown of the install */
    int rc = pt_find_helper("pactown-serve", pt_helper_dirs, path, sizeof path);
    if (rc) {
        fprintf(stderr, "pactown serve: the runner API is a program of its own, pactown-serve, and it is not"
                        " installed: not in %s nor in %s%s%s\n", path, pt_helper_dirs[1][0] == '/' ? "" : path,
                pt_helper_dirs[1][0] == '/' ? "" : "/", pt_helper_dirs[1]);
        return EXIT_ERROR;
    }
    execv(path, argv); /* argv: pactown serve [options]; pactown-serve takes it as it is */
    fprintf(stderr, "pactown serve: cannot run %s: %s\n", path, strerror(errno));
    return EXIT_ERROR;
}
