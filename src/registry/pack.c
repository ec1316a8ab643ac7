/* pack.c — a built venv as layers: one per distribution, then `venv`
 * (pactown/venvpack.h). */
#include "pactown/venvpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/fsutil.h"
#include "pactown/pycache.h"
#include "pactown/vec.h"

struct item {
    char *path;      /* relative to the venv */
    mode_t mode;
    off_t size;
    int owner;       /* index of the layer that packs it; -1 = the venv layer */
};

struct walk {
    struct item *v;
    size_t n, cap;
    size_t root_len;
    int err;
};

static struct walk *walk_now; /* nftw has no argument pointer: one pack at a time per process */

static int on_walk(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    struct walk *w = walk_now;
    if (strlen(path) <= w->root_len)
        return 0; /* the venv itself */
    if (type == FTW_DNR || type == FTW_NS) {
        w->err = -EACCES;
        return 1;
    }
    struct item *nv = pt_grow(w->v, &w->cap, w->n, sizeof *nv);
    if (!nv) {
        w->err = -ENOMEM;
        return 1;
    }
    w->v = nv;
    struct item *it = &w->v[w->n];
    if (!(it->path = strdup(path + w->root_len + 1))) {
        w->err = -ENOMEM;
        return 1;
    }
    it->mode = st->st_mode;
    it->size = st->st_size;
    it->owner = -1;
    w->n++;
    return 0;
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const struct item *)a)->path, ((const struct item *)b)->path);
}

static struct item *find(struct walk *w, const char *path)
{
    struct item key = { .path = (char *)path };
    return bsearch(&key, w->v, w->n, sizeof *w->v, cmp_item);
}

/* One CSV field of a RECORD line (PEP 376: csv module, default dialect) into out. */
static const char *csv_field(const char *p, char *out, size_t n)
{
    size_t k = 0;
    if (*p == '"') {
        for (p++; *p; p++) {
            if (*p == '"' && p[1] == '"')
                p++;
            else if (*p == '"') {
                p++;
                break;
            }
            if (k + 1 < n)
                out[k++] = *p;
        }
    } else {
        while (*p && *p != ',' && *p != '\n' && *p != '\r') {
            if (k + 1 < n)
                out[k++] = *p;
            p++;
        }
    }
    out[k] = '\0';
    return p;
}

/* path (relative to site-packages, as RECORD writes it) made relative to
 * the venv into out, or false when it leaves site-packages (scripts in
 * bin/, .data/ files at the venv's root: those go to the venv layer). */
static bool record_path(const char *sp_rel, const char *path, char *out, size_t n)
{
    if (!*path || path[0] == '/')
        return false;
    for (const char *c = path; *c;) {
        size_t len = strcspn(c, "/");
        if ((len == 2 && c[0] == '.' && c[1] == '.') || len == 0 || (len == 1 && c[0] == '.'))
            return false;
        c += len;
        if (*c == '/')
            c++;
    }
    return snprintf(out, n, "%s/%s", sp_rel, path) < (int)n;
}

/* Claim for layer li the item at rel and every directory above it. */
static void claim(struct walk *w, const char *rel, int li)
{
    struct item *it = find(w, rel);
    if (!it || !S_ISREG(it->mode) || it->owner != -1)
        return;
    it->owner = li;
}

struct plan {
    char name[160];
    char **paths;          /* what it packs, sorted; directories included */
    size_t n, cap;
};

static int plan_add(struct plan *p, const char *path)
{
    char **np = pt_grow(p->paths, &p->cap, p->n, sizeof *np);
    if (!np)
        return -ENOMEM;
    p->paths = np;
    return (p->paths[p->n++] = strdup(path)) ? 0 : -ENOMEM;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the distributions' RECORDs: claims on the walk, one plan per dist-info */
static int read_records(struct walk *w, const char *dir, const char *sp, const char *tag, struct plan **plans,
                        size_t *np, pt_error *err)
{
    const char *sp_rel = sp + strlen(dir) + 1;
    size_t sp_len = strlen(sp_rel);
    /* dist-info directories directly in site-packages, in name order (the walk is sorted) */
    for (size_t i = 0; i < w->n; i++) {
        const char *p = w->v[i].path;
        if (!S_ISDIR(w->v[i].mode) || strncmp(p, sp_rel, sp_len) != 0 || p[sp_len] != '/')
            continue;
        const char *base = p + sp_len + 1;
        size_t bl = strlen(base);
        if (strchr(base, '/') || bl <= 10 || strcmp(base + bl - 10, ".dist-info") != 0)
            continue;
        char record[PATH_MAX];
        snprintf(record, sizeof record, "%s/%s/RECORD", dir, p);
        char *text = NULL;
        size_t len = 0;
        int rc = pt_read_file(record, 64u << 20, &text, &len);
        if (rc == -ENOENT)
            continue; /* no RECORD: its files stay in the venv layer */
        if (rc)
            return pt_error_set(err, rc, 0, "%s: %s", record, strerror(-rc));
        struct plan *pl = realloc(*plans, (*np + 1) * sizeof **plans);
        if (!pl) {
            free(text);
            return pt_error_set(err, -ENOMEM, 0, "out of memory");
        }
        *plans = pl;
        struct plan *cur = &pl[*np];
        memset(cur, 0, sizeof *cur);
        snprintf(cur->name, sizeof cur->name, "%.*s", (int)(bl - 10), base);
        int li = (int)(*np)++;
        for (const char *line = text; line && *line;) {
            char field[PATH_MAX], rel[PATH_MAX];
            csv_field(line, field, sizeof field);
            const char *slash = strrchr(field, '/');
            const char *fname = slash ? slash + 1 : field;
            if (strcmp(fname, "REQUESTED") != 0 && record_path(sp_rel, field, rel, sizeof rel)) {
                claim(w, rel, li);
                size_t rl = strlen(rel);
                if (*tag && rl > 3 && strcmp(rel + rl - 3, ".py") == 0) {
                    /* its bytecode: <dir>/__pycache__/<stem>.<tag>[.opt-N].pyc */
                    const char *s = strrchr(rel, '/');
                    int dl = (int)(s - rel);
                    const char *stem = s + 1;
                    int sl = (int)strlen(stem) - 3;
                    static const char *const opt[] = { "", ".opt-1", ".opt-2" };
                    for (int o = 0; o < 3; o++) {
                        char pyc[PATH_MAX];
                        snprintf(pyc, sizeof pyc, "%.*s/__pycache__/%.*s.%s%s.pyc", dl, rel, sl, stem, tag, opt[o]);
                        claim(w, pyc, li);
                    }
                }
            }
            line = strchr(line, '\n');
            if (line)
                line++;
        }
        free(text);
    }
    return 0;
}

/* ---- writing one layer ---- */

struct sink {
    int fd;
    EVP_MD_CTX *md;
    uint64_t size;
    int err;
};

static la_ssize_t on_write(struct archive *a, void *arg, const void *buf, size_t n)
{
    (void)a;
    struct sink *s = arg;
    int rc = pt_write_all(s->fd, buf, n);
    if (rc) {
        s->err = rc;
        return -1;
    }
    EVP_DigestUpdate(s->md, buf, n);
    s->size += n;
    return (la_ssize_t)n;
}

/* The .pyc at fd (its source beside it, in ..): its header's mtime set to
 * PT_PACK_MTIME when it is a timestamp .pyc of that source as it is. */
static void pyc_normalize(const char *dir, const char *rel, unsigned char *data, size_t len)
{
    if (len < 16 || (data[4] | data[5] | data[6] | data[7]) != 0)
        return; /* too short, or hash-based (PEP 552): nothing depends on a time */
    const char *pc = strstr(rel, "/__pycache__/");
    if (!pc)
        return;
    const char *stem = pc + 13;
    const char *dot = strchr(stem, '.');
    if (!dot)
        return;
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s/%.*s/%.*s.py", dir, (int)(pc - rel), rel, (int)(dot - stem), stem);
    struct stat st;
    if (lstat(src, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    uint32_t mt = (uint32_t)st.st_mtime, sz = (uint32_t)st.st_size;
    uint32_t hm = (uint32_t)data[8] | (uint32_t)data[9] << 8 | (uint32_t)data[10] << 16 | (uint32_t)data[11] << 24;
    uint32_t hs = (uint32_t)data[12] | (uint32_t)data[13] << 8 | (uint32_t)data[14] << 16 | (uint32_t)data[15] << 24;
    if (hm != mt || hs != sz)
        return; /* stale: Python would not use it anyway; kept as it is */
    uint32_t fixed = PT_PACK_MTIME;
    for (int i = 0; i < 4; i++)
        data[8 + i] = (unsigned char)(fixed >> (8 * i));
}

static int write_entry(struct archive *a, struct archive_entry *e, const char *dir, const char *rel,
                       const struct item *it, pt_layer *l, pt_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    archive_entry_clear(e);
    archive_entry_set_pathname(e, rel);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, PT_PACK_MTIME, 0);
    mode_t perm = it->mode & 0555;
    char *data = NULL;
    size_t len = 0;
    if (S_ISDIR(it->mode)) {
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, perm | 0500);
    } else if (S_ISLNK(it->mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0)
            return pt_error_set(err, -errno, 0, "%s: %s", path, strerror(errno));
        target[n] = '\0';
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_perm(e, 0777);
        archive_entry_set_symlink(e, target);
    } else if (S_ISREG(it->mode)) {
        int rc = pt_read_file(path, (size_t)1 << 34, &data, &len);
        if (rc)
            return pt_error_set(err, rc, 0, "%s: %s", path, strerror(-rc));
        size_t rl = strlen(rel);
        if (rl > 4 && strcmp(rel + rl - 4, ".pyc") == 0)
            pyc_normalize(dir, rel, (unsigned char *)data, len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, perm | 0400);
        archive_entry_set_size(e, (la_int64_t)len);
        l->files++;
        l->bytes += len;
    } else {
        return pt_error_set(err, -EPERM, 0, "%s: not a regular file, directory or symlink: not packed", path);
    }
    int rc = 0;
    if (archive_write_header(a, e) != ARCHIVE_OK)
        rc = pt_error_set(err, -EPROTO, 0, "%s: %s", path, archive_error_string(a));
    for (size_t off = 0; rc == 0 && off < len;) {
        la_ssize_t w = archive_write_data(a, data + off, len - off);
        if (w <= 0)
            rc = pt_error_set(err, -EPROTO, 0, "%s: %s", path, archive_error_string(a));
        else
            off += (size_t)w;
    }
    free(data);
    return rc;
}

static int write_layer(const char *dir, const char *tmpdir, struct walk *w, const struct plan *p, pt_layer *l,
                       pt_error *err)
{
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", p->name);
    l->fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (l->fd < 0)
        return pt_error_set(err, -errno, 0, "%s: a temporary file: %s", tmpdir, strerror(errno));
    struct sink s = { .fd = l->fd, .md = EVP_MD_CTX_new() };
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    int rc = 0;
    if (!s.md || !a || !e)
        rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
    if (rc == 0) {
        EVP_DigestInit_ex(s.md, EVP_sha256(), NULL);
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK || archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
            archive_write_open2(a, &s, NULL, on_write, NULL, NULL) != ARCHIVE_OK)
            rc = pt_error_set(err, -EPROTO, 0, "libarchive: %s", archive_error_string(a));
    }
    for (size_t i = 0; rc == 0 && i < p->n; i++)
        rc = write_entry(a, e, dir, p->paths[i], find(w, p->paths[i]), l, err);
    if (a && archive_write_close(a) != ARCHIVE_OK && rc == 0)
        rc = pt_error_set(err, s.err ? s.err : -EPROTO, 0, "%s: %s", tmpdir,
                          s.err ? strerror(-s.err) : archive_error_string(a));
    if (a)
        archive_write_free(a);
    if (e)
        archive_entry_free(e);
    if (rc == 0) {
        unsigned char h[32];
        unsigned int hn = 0;
        EVP_DigestFinal_ex(s.md, h, &hn);
        pt_digest_format(h, l->digest);
        l->size = s.size;
    }
    EVP_MD_CTX_free(s.md);
    return rc;
}

void pt_layers_free(pt_layer *layers, size_t n)
{
    for (size_t i = 0; layers && i < n; i++)
        if (layers[i].fd >= 0)
            close(layers[i].fd);
    free(layers);
}

static void plans_free(struct plan *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < p[i].n; j++)
            free(p[i].paths[j]);
        free(p[i].paths);
    }
    free(p);
}

int pt_venv_pack(const char *dir, const char *tmpdir, pt_layer **layers, size_t *n, pt_error *err)
{
    *layers = NULL;
    *n = 0;
    char sp[PATH_MAX], tag[32];
    int rc = pt_site_packages(dir, sp, sizeof sp, tag, sizeof tag);
    if (rc)
        return pt_error_set(err, rc, 0, "%s: no site-packages: %s", dir, strerror(-rc));
    struct walk w = { .root_len = strlen(dir) };
    walk_now = &w;
    if (nftw(dir, on_walk, 32, FTW_PHYS) != 0 || w.err) {
        rc = w.err ? w.err : -errno;
        pt_error_set(err, rc, 0, "%s: reading the venv: %s", dir, strerror(-rc));
    }
    walk_now = NULL;
    struct plan *plans = NULL;
    size_t np = 0;
    if (rc == 0) {
        qsort(w.v, w.n, sizeof *w.v, cmp_item);
        rc = read_records(&w, dir, sp, tag, &plans, &np, err);
    }
    /* each distribution's files with the directories above them; the rest is `venv` */
    struct plan *all = rc ? NULL : realloc(plans, (np + 1) * sizeof *plans);
    if (rc == 0 && !all)
        rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
    if (rc == 0) {
        plans = all;
        memset(&plans[np], 0, sizeof plans[np]);
        snprintf(plans[np].name, sizeof plans[np].name, "venv");
        np++;
    }
    for (size_t i = 0; rc == 0 && i < w.n; i++) {
        struct item *it = &w.v[i];
        struct plan *p = it->owner >= 0 ? &plans[it->owner] : &plans[np - 1];
        if (it->owner >= 0) {
            /* the directories above it (duplicates go after the sort) */
            for (char *s = it->path; rc == 0 && (s = strchr(s, '/')) != NULL; s++) {
                *s = '\0';
                if (plan_add(p, it->path) != 0)
                    rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
                *s = '/';
            }
        }
        if (rc == 0 && plan_add(p, it->path) != 0)
            rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
    }
    /* a plan whose files all went to an earlier claim packs nothing of its own */
    pt_layer *out = rc ? NULL : calloc(np, sizeof *out);
    if (rc == 0 && !out)
        rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
    size_t made = 0;
    for (size_t i = 0; rc == 0 && i < np; i++) {
        qsort(plans[i].paths, plans[i].n, sizeof *plans[i].paths, cmp_str);
        size_t k = 0;
        for (size_t j = 0; j < plans[i].n; j++) {
            if (k > 0 && strcmp(plans[i].paths[k - 1], plans[i].paths[j]) == 0)
                free(plans[i].paths[j]);
            else
                plans[i].paths[k++] = plans[i].paths[j];
        }
        plans[i].n = k;
        if (plans[i].n == 0 && i + 1 < np)
            continue;
        rc = write_layer(dir, tmpdir, &w, &plans[i], &out[made], err);
        if (out[made].fd >= 0 || rc == 0)
            made++;
    }
    plans_free(plans, np);
    for (size_t i = 0; i < w.n; i++)
        free(w.v[i].path);
    free(w.v);
    if (rc) {
        pt_layers_free(out, made);
        return rc;
    }
    *layers = out;
    *n = made;
    return 0;
}
