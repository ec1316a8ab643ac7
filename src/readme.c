/* readme.c — a README and the files it includes (pactown/readme.h). */
#include "pactown/readme.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/fsutil.h"

typedef struct loader {
    int topfd;                 /* the top README's directory */
    size_t max;
    pt_error *err;
    char **err_file;
    const char *chain[PT_README_INCLUDE_DEPTH + 1]; /* files being read, top first (relative paths) */
    int depth;
    unsigned loads;            /* files read so far: at most PT_README_MAX_FILES */
} loader;

/* Open rel beneath the top directory: a regular file only (a FIFO or a
 * device would block or never end). fd, or -errno (-EINVAL: not a regular file). */
static int open_beneath(loader *ld, const char *rel)
{
    int fd = pt_openat2(ld->topfd, rel, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0,
                        RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    return fd;
}

static int fail_in(loader *ld, const char *file, int code)
{
    if (ld->err_file && !*ld->err_file)
        *ld->err_file = strdup(file);
    return code;
}

/* dir of rel ("a/b.md" -> "a/", "b.md" -> "") joined with inc, with "." and
 * ".." components resolved lexically; -EINVAL if it leaves the top. */
static int join_rel(const char *rel, const char *inc, char *out, size_t n)
{
    if (inc[0] == '/')
        return -EINVAL;
    char buf[PATH_MAX * 2];
    const char *slash = strrchr(rel, '/');
    int w = snprintf(buf, sizeof buf, "%.*s%s", slash ? (int)(slash - rel + 1) : 0, rel, inc);
    if (w < 0 || (size_t)w >= sizeof buf)
        return -ENAMETOOLONG;
    size_t o = 0;
    for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            if (o == 0)
                return -EINVAL;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the '/' before it */
            continue;
        }
        size_t cl = strlen(c);
        if (o + cl + 2 > n)
            return -ENAMETOOLONG;
        if (o)
            out[o++] = '/';
        memcpy(out + o, c, cl);
        o += cl;
    }
    out[o] = '\0';
    return o ? 0 : -EINVAL;
}

static int read_beneath(loader *ld, const char *rel, char **text, size_t *len)
{
    int fd = open_beneath(ld, rel);
    if (fd < 0)
        return fd;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rc = pt_read_file(path, ld->max, text, len);
    close(fd);
    return rc;
}

/* Append src's blocks of one kind to dst; the vectors own the blocks. */
static int append_blocks(pt_mp_block **dst, size_t *dn, pt_mp_block *src, size_t sn)
{
    if (!sn)
        return 0;
    pt_mp_block *nv = realloc(*dst, (*dn + sn) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    memcpy(nv + *dn, src, sn * sizeof *src);
    *dst = nv;
    *dn += sn;
    return 0;
}

/* Keep warning w; one of an included file (file non-NULL) "line N: rest"
 * becomes "FILE:N: rest". */
static int add_warning(pt_markpact *mp, const char *file, const char *w)
{
    char **nv = realloc(mp->warnings, (mp->n_warnings + 1) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    mp->warnings = nv;
    unsigned line = 0;
    int used = 0;
    if (file && sscanf(w, "line %u: %n", &line, &used) == 1 && used > 0) {
        if (asprintf(&nv[mp->n_warnings], "%s:%u: %s", file, line, w + used) < 0)
            return -ENOMEM;
    } else if (file ? asprintf(&nv[mp->n_warnings], "%s: %s", file, w) < 0 : !(nv[mp->n_warnings] = strdup(w))) {
        return -ENOMEM;
    }
    mp->n_warnings++;
    return 0;
}

static int set_source(pt_mp_block *v, size_t n, const char *file)
{
    for (size_t i = 0; i < n; i++)
        if (!v[i].source && !(v[i].source = strdup(file)))
            return -ENOMEM;
    return 0;
}

/* Move every block of src (an included file) into the merged result m. */
static int take_all(pt_markpact *m, pt_markpact *src)
{
    int rc = append_blocks(&m->deps, &m->n_deps, src->deps, src->n_deps);
    if (!rc)
        rc = append_blocks(&m->files, &m->n_files, src->files, src->n_files);
    if (!rc)
        rc = append_blocks(&m->tests, &m->n_tests, src->tests, src->n_tests);
    if (rc)
        return rc;
    free(src->deps);
    free(src->files);
    free(src->tests);
    src->deps = src->files = src->tests = NULL;
    src->n_deps = src->n_files = src->n_tests = 0;
    return 0;
}

/* A later run/build block wins: *slot takes *incoming (either may be NULL). */
static int later_wins(pt_markpact *m, pt_mp_block **slot, pt_mp_block **incoming, const char *what)
{
    if (!*incoming)
        return 0;
    if (*slot) {
        char w[512];
        snprintf(w, sizeof w, "line %u: second markpact:%s block: it replaces the one at %s%s%u",
                 (*incoming)->fence_line, what, (*slot)->source ? (*slot)->source : "line ",
                 (*slot)->source ? ":" : "", (*slot)->fence_line);
        if (add_warning(m, (*incoming)->source, w))
            return -ENOMEM;
        pt_mp_block_free(*slot);
        free(*slot);
    }
    *slot = *incoming;
    *incoming = NULL;
    return 0;
}

static int load(loader *ld, const char *rel, pt_markpact *out);

/* Merge the include at index i of mp (a file at rel) into m, in place. */
static int merge_one(loader *ld, const char *rel, const pt_mp_include *inc, pt_markpact *m)
{
    char target[PATH_MAX];
    int rc = join_rel(rel, inc->path, target, sizeof target);
    if (rc)
        return fail_in(ld, rel,
                       pt_error_set(ld->err, rc == -ENAMETOOLONG ? -ENAMETOOLONG : -EINVAL, inc->line,
                                    "line %u: markpact:include path=%s leaves the top README's directory",
                                    inc->line, inc->path));
    for (int d = 0; d <= ld->depth; d++)
        if (strcmp(ld->chain[d], target) == 0)
            return fail_in(ld, rel,
                           pt_error_set(ld->err, -EINVAL, inc->line,
                                        "line %u: markpact:include of %s is a cycle: %s is already being read"
                                        " (it includes %s, directly or not)",
                                        inc->line, target, target, rel));
    if (ld->depth + 1 > PT_README_INCLUDE_DEPTH)
        return fail_in(ld, rel,
                       pt_error_set(ld->err, -EINVAL, inc->line,
                                    "line %u: markpact:include of %s is deeper than %d includes", inc->line, target,
                                    PT_README_INCLUDE_DEPTH));
    /* an include that cannot be opened is the including file's error, at its line */
    if (++ld->loads > PT_README_MAX_FILES)
        return fail_in(ld, rel,
                       pt_error_set(ld->err, -EINVAL, inc->line,
                                    "line %u: more than %d included files in all (includes of includes count)",
                                    inc->line, PT_README_MAX_FILES));
    int fd = open_beneath(ld, target);
    if (fd < 0)
        return fail_in(ld, rel,
                       pt_error_set(ld->err, fd == -EXDEV ? -EINVAL : fd, inc->line,
                                    "line %u: markpact:include path=%s: %s", inc->line, inc->path,
                                    fd == -EXDEV    ? "a symlink leads out of the top README's directory"
                                    : fd == -EINVAL ? "not a regular file"
                                                    : strerror(-fd)));
    close(fd);
    pt_markpact sub;
    ld->depth++;
    ld->chain[ld->depth] = target;
    rc = load(ld, target, &sub);
    ld->depth--;
    if (rc)
        return rc;
    if ((rc = set_source(sub.deps, sub.n_deps, target)) || (rc = set_source(sub.files, sub.n_files, target)) ||
        (rc = set_source(sub.tests, sub.n_tests, target)) ||
        (sub.run && (rc = set_source(sub.run, 1, target))) || (sub.build && (rc = set_source(sub.build, 1, target))) ||
        (sub.target && (rc = set_source(sub.target, 1, target))))
        goto out;
    for (size_t i = 0; i < sub.n_warnings && !rc; i++)
        rc = add_warning(m, strncmp(sub.warnings[i], "line ", 5) == 0 ? target : NULL, sub.warnings[i]);
    if (!rc)
        rc = take_all(m, &sub);
    if (!rc)
        rc = later_wins(m, &m->run, &sub.run, "run");
    if (!rc)
        rc = later_wins(m, &m->build, &sub.build, "build");
    if (!rc)
        rc = later_wins(m, &m->target, &sub.target, "target");
out:
    pt_markpact_free(&sub);
    return rc;
}

static int by_path_then_place(const void *a, const void *b, void *files)
{
    const pt_mp_block *f = files;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(f[x].path, f[y].path);
    return c ? c : (x > y) - (x < y);
}

/* Keep the last file block of each path (in document order), with a
 * warning for each one replaced.  O(n log n). */
static int dedupe_files(pt_markpact *m)
{
    if (m->n_files < 2)
        return 0;
    size_t *ix = malloc(m->n_files * sizeof *ix);
    bool *drop = calloc(m->n_files, sizeof *drop);
    int rc = ix && drop ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < m->n_files; i++)
        ix[i] = i;
    if (!rc)
        qsort_r(ix, m->n_files, sizeof *ix, by_path_then_place, m->files); /* qsort_r(3), GNU */
    for (size_t i = 0; !rc && i + 1 < m->n_files; i++) {
        const pt_mp_block *f = &m->files[ix[i]], *g = &m->files[ix[i + 1]];
        if (strcmp(f->path, g->path) != 0)
            continue;
        drop[ix[i]] = true;
        char w[700];
        snprintf(w, sizeof w, "markpact:file %s at %s%s%u is replaced by the one at %s%s%u", f->path,
                 f->source ? f->source : "line ", f->source ? ":" : "", f->fence_line,
                 g->source ? g->source : "line ", g->source ? ":" : "", g->fence_line);
        rc = add_warning(m, NULL, w);
    }
    size_t k = 0;
    for (size_t i = 0; !rc && i < m->n_files; i++) { /* no failure can happen in this loop */
        if (!drop[i]) {
            m->files[k++] = m->files[i];
            continue;
        }
        pt_mp_block_free(&m->files[i]);
    }
    if (!rc)
        m->n_files = k;
    free(ix);
    free(drop);
    return rc;
}

/* Split a parsed file's blocks around its includes: everything before the
 * include comment, the included file, and so on. */
static int load(loader *ld, const char *rel, pt_markpact *out)
{
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    int rc = read_beneath(ld, rel, &text, &len);
    if (rc)
        return fail_in(ld, rel,
                       rc == -EFBIG ? pt_error_set(ld->err, rc, 0, "larger than %zu MiB", ld->max >> 20)
                                    : pt_error_set(ld->err, rc, 0, "%s", strerror(-rc)));
    pt_markpact mp;
    rc = pt_markpact_parse(text, len, &mp, ld->err);
    free(text);
    if (rc)
        return fail_in(ld, rel, rc);
    if (mp.n_includes == 0) {
        *out = mp;
        return 0;
    }
    /* walk the kinds in step with the include lines */
    pt_markpact m = { .warnings = mp.warnings, .n_warnings = mp.n_warnings };
    mp.warnings = NULL;
    mp.n_warnings = 0;
    size_t di = 0, fi = 0, ti = 0;
    pt_mp_block *run = mp.run, *build = mp.build, *tgt = mp.target;
    mp.run = mp.build = mp.target = NULL;
    for (size_t i = 0; i <= mp.n_includes && rc == 0; i++) {
        unsigned upto = i < mp.n_includes ? mp.includes[i].line : UINT_MAX;
        size_t d0 = di, f0 = fi, t0 = ti;
        while (di < mp.n_deps && mp.deps[di].fence_line < upto)
            di++;
        while (fi < mp.n_files && mp.files[fi].fence_line < upto)
            fi++;
        while (ti < mp.n_tests && mp.tests[ti].fence_line < upto)
            ti++;
        rc = append_blocks(&m.deps, &m.n_deps, mp.deps + d0, di - d0);
        if (!rc)
            rc = append_blocks(&m.files, &m.n_files, mp.files + f0, fi - f0);
        if (!rc)
            rc = append_blocks(&m.tests, &m.n_tests, mp.tests + t0, ti - t0);
        if (!rc && run && run->fence_line < upto)
            rc = later_wins(&m, &m.run, &run, "run");
        if (!rc && build && build->fence_line < upto)
            rc = later_wins(&m, &m.build, &build, "build");
        if (!rc && tgt && tgt->fence_line < upto)
            rc = later_wins(&m, &m.target, &tgt, "target");
        if (!rc && i < mp.n_includes)
            rc = merge_one(ld, rel, &mp.includes[i], &m);
    }
    /* the blocks moved into m: free only mp's arrays (and what did not move on an error) */
    if (rc) {
        for (; di < mp.n_deps; di++)
            append_blocks(&m.deps, &m.n_deps, mp.deps + di, 1);
        for (; fi < mp.n_files; fi++)
            append_blocks(&m.files, &m.n_files, mp.files + fi, 1);
        for (; ti < mp.n_tests; ti++)
            append_blocks(&m.tests, &m.n_tests, mp.tests + ti, 1);
    }
    free(mp.deps);
    free(mp.files);
    free(mp.tests);
    mp.deps = mp.files = mp.tests = NULL;
    mp.n_deps = mp.n_files = mp.n_tests = 0;
    mp.run = run;
    mp.build = build;
    mp.target = tgt;
    m.n_unknown = mp.n_unknown;
    m.first_unknown_line = mp.first_unknown_line;
    pt_markpact_free(&mp);
    if (!rc)
        rc = dedupe_files(&m);
    if (rc) {
        pt_markpact_free(&m);
        return rc == -ENOMEM ? fail_in(ld, rel, pt_error_set(ld->err, -ENOMEM, 0, "out of memory")) : rc;
    }
    *out = m;
    return 0;
}

int pt_readme_load(const char *path, size_t max_bytes, pt_markpact *out, pt_error *err, char **err_file)
{
    pt_error_clear(err);
    if (err_file)
        *err_file = NULL;
    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !out)
        return pt_error_set(err, -EINVAL, 0, "pt_readme_load: invalid arguments");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? path + (slash - dir) + 1 : path;
    if (slash == dir)
        snprintf(dir, sizeof dir, "/");
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    loader ld = { .max = max_bytes, .err = err, .err_file = err_file };
    ld.topfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ld.topfd < 0) {
        int e = -errno;
        if (err_file)
            *err_file = strdup(path);
        return pt_error_set(err, e, 0, "%s", strerror(-e));
    }
    ld.chain[0] = base;
    int rc = load(&ld, base, out);
    close(ld.topfd);
    if (rc && err_file && *err_file && strcmp(*err_file, base) == 0) {
        free(*err_file);
        *err_file = strdup(path); /* the top README as the user named it */
    }
    return rc;
}
