/* interp.c — resolve the configured interpreter and probe its tag, with the
 * probe kept in the index so that a cache hit does not start Python. */
#include "pactown/interp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "pactown/fsutil.h"
#include "pactown/spawn.h"

static const char probe_script[] =
    "import sys, sysconfig, platform\n"
    "print(sys.executable)\n"
    "print(sys.implementation.name)\n"
    "print(platform.python_version())\n"
    "print(sysconfig.get_platform())\n";

/* Record: "path\nimpl\nversion\nplatform\nino size mtime_sec mtime_nsec\n" */
static int parse_record(char *text, pt_interp *out, unsigned long long stamp[4])
{
    char *save = NULL;
    char *path = strtok_r(text, "\n", &save);
    char *impl = strtok_r(NULL, "\n", &save);
    char *ver = strtok_r(NULL, "\n", &save);
    char *plat = strtok_r(NULL, "\n", &save);
    char *st = strtok_r(NULL, "\n", &save);
    if (!path || !impl || !ver || !plat)
        return -EINVAL;
    if (snprintf(out->path, sizeof out->path, "%s", path) >= (int)sizeof out->path ||
        snprintf(out->tag.impl, sizeof out->tag.impl, "%s", impl) >= (int)sizeof out->tag.impl ||
        snprintf(out->tag.version, sizeof out->tag.version, "%s", ver) >= (int)sizeof out->tag.version ||
        snprintf(out->tag.platform, sizeof out->tag.platform, "%s", plat) >= (int)sizeof out->tag.platform)
        return -EINVAL;
    if (stamp && (!st || sscanf(st, "%llu %llu %llu %llu", &stamp[0], &stamp[1], &stamp[2], &stamp[3]) != 4))
        return -EINVAL;
    for (const char *p = impl; *p; p++)
        if (*p == ' ')
            return -EINVAL;
    return 0;
}

static void stamp_of(const struct stat *st, unsigned long long stamp[4])
{
    stamp[0] = (unsigned long long)st->st_ino;
    stamp[1] = (unsigned long long)st->st_size;
    stamp[2] = (unsigned long long)st->st_mtim.tv_sec;
    stamp[3] = (unsigned long long)st->st_mtim.tv_nsec;
}

static bool cached(const char *python, pt_index *idx, pt_interp *out)
{
    char name[PATH_MAX + 16], *rec = NULL;
    size_t len;
    snprintf(name, sizeof name, "interp:%s", python);
    if (pt_index_meta_get(idx, name, &rec, &len) != 0)
        return false;
    unsigned long long want[4], have[4];
    struct stat st;
    bool ok = parse_record(rec, out, want) == 0 && stat(out->path, &st) == 0;
    free(rec);
    if (!ok)
        return false;
    stamp_of(&st, have);
    return memcmp(want, have, sizeof want) == 0;
}

int pt_interp_resolve(const char *python, pt_index *idx, bool fresh, pt_interp *out, pt_error *err)
{
    memset(out, 0, sizeof *out);
    if (idx && !fresh && cached(python, idx, out))
        return 0;
    char exe[PATH_MAX];
    int rc = pt_which(python, exe, sizeof exe);
    if (rc)
        return pt_error_set(err, -ENOENT, 0, "python interpreter '%s' not found (setting `python`): %s",
                            python, strerror(-rc));
    const char *argv[] = { exe, "-I", "-c", probe_script, NULL };
    char *text = NULL;
    int status;
    rc = pt_run_capture(argv, NULL, -1, &text, 1 << 16, &status);
    if (rc)
        return pt_error_set(err, rc, 0, "cannot run %s: %s", exe, strerror(-rc));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char how[64];
        pt_describe_status(status, how, sizeof how);
        free(text);
        return pt_error_set(err, -EINVAL, 0, "%s -I -c <probe> %s", exe, how);
    }
    rc = parse_record(text, out, NULL);
    free(text);
    if (rc)
        return pt_error_set(err, -EINVAL, 0, "%s: unexpected answer to the interpreter probe", exe);
    char real[PATH_MAX];
    if (!realpath(out->path, real))
        return pt_error_set(err, -errno, 0, "%s: %s", out->path, strerror(errno));
    memcpy(out->path, real, sizeof real);
    if (idx) {
        struct stat st;
        unsigned long long s[4];
        if (stat(out->path, &st) == 0) {
            stamp_of(&st, s);
            char name[PATH_MAX + 16], rec[PATH_MAX + 256];
            snprintf(name, sizeof name, "interp:%s", python);
            int n = snprintf(rec, sizeof rec, "%s\n%s\n%s\n%s\n%llu %llu %llu %llu\n", out->path, out->tag.impl,
                             out->tag.version, out->tag.platform, s[0], s[1], s[2], s[3]);
            if (n > 0 && (size_t)n < sizeof rec)
                pt_index_meta_put(idx, name, rec, (size_t)n); /* a cache: failure only costs a probe */
        }
    }
    return 0;
}
