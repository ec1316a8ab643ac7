/* interp.c — find, probe and record the configured interpreter; check the
 * record on every use (pactown/interp.h). */
#include "pactown/interp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "pactown/fsutil.h"
#include "pactown/spawn.h"

#define RECORD_MAGIC "pactown-interp/2"
#define DAEMON_RECORD "interp:daemon"

static const char probe_script[] =
    "import sys, sysconfig, platform\n"
    "print(sys.executable)\n"
    "print(sys.implementation.name)\n"
    "print(platform.python_version())\n"
    "print(sysconfig.get_platform())\n";

struct ident {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
};

static int ident_of(const char *path, struct ident *id)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    id->size = (uint64_t)st.st_size;
    id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    id->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    return 0;
}

struct record {
    char configured[PATH_MAX], found[PATH_MAX], real[PATH_MAX];
    struct ident real_id, exe_id;
    pt_interp interp;
};

static int set_str(char *dst, size_t n, const char *src)
{
    return snprintf(dst, n, "%s", src) >= (int)n ? -ENAMETOOLONG : 0;
}

/* "pactown-interp/2\nconfigured S\nfound P\nreal DEV INO SIZE MT CT P\nexe DEV INO SIZE MT CT P\ntag I V PL\n" */
static int parse_record(char *text, struct record *r)
{
    memset(r, 0, sizeof *r);
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    if (!line || strcmp(line, RECORD_MAGIC) != 0)
        return -EINVAL;
    int seen = 0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        int off = 0;
        struct ident *id = NULL;
        char *dst = NULL;
        if (strncmp(line, "configured ", 11) == 0) {
            if (set_str(r->configured, sizeof r->configured, line + 11))
                return -EINVAL;
            seen |= 1;
        } else if (strncmp(line, "found ", 6) == 0) {
            if (set_str(r->found, sizeof r->found, line + 6))
                return -EINVAL;
            seen |= 2;
        } else if ((strncmp(line, "real ", 5) == 0 && (id = &r->real_id, dst = r->real)) ||
                   (strncmp(line, "exe ", 4) == 0 && (id = &r->exe_id, dst = r->interp.path))) {
            const char *p = line + (line[0] == 'r' ? 5 : 4);
            if (sscanf(p, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64 " %n", &id->dev, &id->ino,
                       &id->size, &id->mtime_ns, &id->ctime_ns, &off) != 5 || off <= 0 ||
                set_str(dst, PATH_MAX, p + off))
                return -EINVAL;
            seen |= line[0] == 'r' ? 4 : 8;
        } else if (strncmp(line, "tag ", 4) == 0) {
            if (sscanf(line + 4, "%31s %31s %63s", r->interp.tag.impl, r->interp.tag.version, r->interp.tag.platform) != 3)
                return -EINVAL;
            seen |= 16;
        }
    }
    if (seen != 31)
        return -EINVAL;
    memcpy(r->interp.found, r->found, sizeof r->found);
    return 0;
}

static void put_record(pt_index *idx, const char *name, const struct record *r)
{
    char *text = NULL;
    const struct ident *a = &r->real_id, *b = &r->exe_id;
    int n = asprintf(&text,
                     RECORD_MAGIC "\nconfigured %s\nfound %s\n"
                     "real %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " %s\n"
                     "exe %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " %s\n"
                     "tag %s %s %s\n",
                     r->configured, r->found, a->dev, a->ino, a->size, a->mtime_ns, a->ctime_ns, r->real, b->dev,
                     b->ino, b->size, b->mtime_ns, b->ctime_ns, r->interp.path, r->interp.tag.impl,
                     r->interp.tag.version, r->interp.tag.platform);
    if (n > 0)
        pt_index_meta_put(idx, name, text, (size_t)n); /* a cache: a failed write only costs a probe */
    free(text);
}

/* Is r still what found leads to? The link chain's end and both identities. */
static bool still_valid(const struct record *r)
{
    char real[PATH_MAX];
    struct ident now;
    if (!realpath(r->found, real) || strcmp(real, r->real) != 0)
        return false;
    if (ident_of(real, &now) != 0 || memcmp(&now, &r->real_id, sizeof now) != 0)
        return false;
    return ident_of(r->interp.path, &now) == 0 && memcmp(&now, &r->exe_id, sizeof now) == 0;
}

static bool get_record(pt_index *idx, const char *name, struct record *r)
{
    char *text = NULL;
    size_t len;
    if (!idx || pt_index_meta_get(idx, name, &text, &len) != 0)
        return false;
    char *z = realloc(text, len + 1);
    if (!z) {
        free(text);
        return false;
    }
    z[len] = '\0';
    bool ok = parse_record(z, r) == 0;
    free(z);
    return ok;
}

/* run found once: tag and real executable into r */
static int probe(const char *python, struct record *r, pt_error *err)
{
    const char *argv[] = { r->found, "-I", "-c", probe_script, NULL };
    char *text = NULL;
    int status;
    int rc = pt_run_capture(argv, NULL, -1, &text, 1 << 16, &status);
    if (rc)
        return pt_error_set(err, rc, 0, "cannot run %s (setting `python` = %s): %s", r->found, python, strerror(-rc));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char how[64];
        pt_describe_status(status, how, sizeof how);
        free(text);
        return pt_error_set(err, -EINVAL, 0, "%s -I -c <probe> %s", r->found, how);
    }
    char *save = NULL;
    char *exe = strtok_r(text, "\n", &save), *impl = strtok_r(NULL, "\n", &save);
    char *ver = strtok_r(NULL, "\n", &save), *plat = strtok_r(NULL, "\n", &save);
    pt_python_tag *t = &r->interp.tag;
    rc = (!exe || !impl || !ver || !plat || strchr(impl, ' ') || strchr(ver, ' ') || strchr(plat, ' ') ||
          set_str(t->impl, sizeof t->impl, impl) || set_str(t->version, sizeof t->version, ver) ||
          set_str(t->platform, sizeof t->platform, plat))
             ? -EINVAL
             : 0;
    if (rc == 0 && !realpath(exe, r->interp.path))
        rc = -errno;
    free(text);
    if (rc == -EINVAL)
        return pt_error_set(err, rc, 0, "%s: unexpected answer to the interpreter probe", r->found);
    if (rc)
        return pt_error_set(err, rc, 0, "%s: its sys.executable: %s", r->found, strerror(-rc));
    if (!realpath(r->found, r->real))
        return pt_error_set(err, -errno, 0, "%s: %s", r->found, strerror(errno));
    if ((rc = ident_of(r->real, &r->real_id)) != 0 || (rc = ident_of(r->interp.path, &r->exe_id)) != 0)
        return pt_error_set(err, rc, 0, "%s: %s", r->found, strerror(-rc));
    memcpy(r->interp.found, r->found, sizeof r->found);
    r->interp.probed = true;
    return 0;
}

int pt_interp_resolve(const char *python, pt_index *idx, int flags, pt_interp *out, pt_error *err)
{
    memset(out, 0, sizeof *out);
    struct record *r = calloc(1, sizeof *r), *rec = calloc(1, sizeof *rec);
    if (!r || !rec) {
        free(r);
        free(rec);
        return pt_error_set(err, -ENOMEM, 0, "out of memory");
    }
    int rc = 0;
    bool daemon = flags & PT_INTERP_DAEMON, fresh = flags & PT_INTERP_FRESH;
    bool have = get_record(idx, DAEMON_RECORD, rec) && strcmp(rec->configured, python) == 0;
    char client_name[PATH_MAX + 16];
    snprintf(client_name, sizeof client_name, "interp:client:%s", python);
    const char *name = DAEMON_RECORD;
    if (have && !daemon) {
        /* a client: the daemon's found path, not this process's PATH */
        memcpy(r->found, rec->found, sizeof r->found);
    } else {
        if ((rc = pt_which(python, r->found, sizeof r->found)) != 0) {
            rc = pt_error_set(err, -ENOENT, 0, "python interpreter '%s' not found (setting `python`): %s", python,
                              strerror(-rc));
            goto out;
        }
        if (!daemon) { /* no daemon record yet: this client's own, until a daemon runs */
            name = client_name;
            have = get_record(idx, name, rec) && strcmp(rec->configured, python) == 0;
        }
        have = have && strcmp(rec->found, r->found) == 0;
    }
    if (have && !fresh && still_valid(rec)) {
        *out = rec->interp;
        goto out;
    }
    set_str(r->configured, sizeof r->configured, python);
    if ((rc = probe(python, r, err)) != 0)
        goto out;
    if (idx)
        put_record(idx, name, r);
    *out = r->interp;
out:
    free(r);
    free(rec);
    return rc;
}

bool pt_others_can_exec(const char *path, char *why, size_t n)
{
    char p[PATH_MAX];
    if (set_str(p, sizeof p, path) != 0) {
        snprintf(why, n, "path too long");
        return false;
    }
    for (;;) {
        struct stat st;
        if (stat(p, &st) != 0) {
            snprintf(why, n, "%s: %s", p, strerror(errno));
            return false;
        }
        if (!(st.st_mode & S_IXOTH)) {
            snprintf(why, n, "%s is mode %04o", p, (unsigned)(st.st_mode & 07777));
            return false;
        }
        char *slash = strrchr(p, '/');
        if (!slash || slash == p)
            return true;
        *slash = '\0';
    }
}
