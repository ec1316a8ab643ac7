/* fs.c — the FUSE low-level operations of pactownfs.
 *
 * Op entry points reply exactly once; helpers return -errno. Nothing under
 * the mount is writable: every mutating op replies EROFS (the mount is also
 * made with `ro`).
 *
 * Caching policy (one place):
 *   root, by-deps, by-service, logs, stats names    entry 86400 s (never change)
 *   by-deps/<key> (built)                           entry/attr cfg.entry_timeout
 *                                                    (its target never changes;
 *                                                    the kernel caches the target
 *                                                    too: FUSE_CAP_CACHE_SYMLINKS)
 *   by-deps/<key> (registered, not built)           0 s, and a new inode for every
 *                                                    lookup (a transient node): the
 *                                                    kernel reads a cached symlink
 *                                                    under the page lock of its
 *                                                    inode, so every follower of one
 *                                                    inode but the first would wait
 *                                                    for the build in D state, out
 *                                                    of reach of signals; with an
 *                                                    inode each, each sends its own
 *                                                    readlink, which an interrupt
 *                                                    answers (claims.c)
 *   by-deps/<unknown key>                            not cached (a key can be
 *                                                    registered any moment)
 *   by-service/<id>                                  1 s (a service may move)
 *   logs/<key>.log, stats                            0 s, direct_io (they grow)
 *   directory listings                               never cached
 *
 * st_ino of a dynamic node is a hash of its kind and name, the same in lookup
 * and readdir (the node's address is its FUSE nodeid, not its st_ino).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "pactown/clock.h"
#include "pactown/vec.h"
#include "pactown/key.h"
#include "pactown/sandbox.h"
#include "pactown/stats.h"
#include "pactownfs.h"

#define FIXED_TIMEOUT 86400.0
#define SERVICE_TIMEOUT 0.0 /* not cached: each caller's lookup decides (a user sees only its own) */

/* How long the kernel may cache the entry and attributes of inode ino: the
 * caching policy above, in one place (lookup and getattr both ask here). */
static double cache_timeout(const struct pt_fs *fs, fuse_ino_t ino)
{
    if (ino == INO_STATS)
        return 0; /* its size changes */
    if (ino <= INO_LOGS)
        return FIXED_TIMEOUT;
    const struct pt_node *node = (const struct pt_node *)(uintptr_t)ino;
    switch (node->kind) {
    case NODE_VENV: return node->transient ? 0 : (double)fs->cfg.entry_timeout;
    case NODE_SERVICE: return SERVICE_TIMEOUT;
    case NODE_LOG: return 0;
    }
    return 0;
}

static struct pt_fs *fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* ---- attributes ---- */

/* st_ino of a dynamic node: stable, the same in lookup and readdir, never
 * one of the fixed inodes */
static ino_t node_st_ino(enum node_kind kind, const char *name)
{
    char buf[NAME_MAX + 2];
    int n = snprintf(buf, sizeof buf, "%c%s", '0' + (int)kind, name);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    return (ino_t)(XXH3_64bits(buf, len) | 0x8000000000000000ull);
}

static void fill_dir(struct stat *st, fuse_ino_t ino)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = ino == INO_ROOT ? 5 : 2;
}

static char *stats_text(struct pt_fs *fs)
{
    pt_stats s;
    if (pt_stats_collect(fs->idx, &s) != 0)
        return NULL;
    s.waiting = pt_claims_waiting(fs);
    pt_stats_add_warm(&s, fs->cfg.cache_dir);
    pt_fs_uses_drain(fs);
    s.counters.hits += pt_fs_pending_hits(fs); /* noted, written at the next flush */
    return pt_stats_json(&s, pt_wall_s());
}

int pt_fs_venv_target(struct pt_fs *fs, const char *key, char *buf, size_t n)
{
    int len = snprintf(buf, n, "%s/%s", fs->store, key);
    return (len < 0 || (size_t)len >= n) ? -ENAMETOOLONG : len;
}

/* by-service/ shows a caller that is not root only its own services: those
 * of the user whose uid it runs as (`pactown run --user`, the API's user_id) */
static bool visible_to(struct pt_fs *fs, const pt_service *s, uid_t uid)
{
    if (uid == 0)
        return true;
    pt_user u;
    return s->user_id[0] && pt_index_user_get(fs->idx, s->user_id, &u) == 0 && u.uid == uid;
}

static int service_target(struct pt_fs *fs, const char *id, uid_t caller, char *buf, size_t n)
{
    pt_service s;
    int rc = pt_index_service_get(fs->idx, id, &s);
    if (rc)
        return rc;
    if (!visible_to(fs, &s, caller))
        return -ENOENT;
    if (!pt_key_is_valid(s.key))
        return -ENOENT;
    return snprintf(buf, n, "../by-deps/%s", s.key);
}

/* the symlink text of a by-deps or by-service node: its length, or -errno */
static int node_target(struct pt_fs *fs, const struct pt_node *node, uid_t caller, char *buf, size_t n)
{
    if (node->kind == NODE_VENV)
        return pt_fs_venv_target(fs, node->name, buf, n);
    if (node->kind == NODE_SERVICE)
        return service_target(fs, node->name, caller, buf, n);
    return -EINVAL;
}

/* attributes of inode ino; for nodes, computed from their kind and name */
static int do_getattr(struct pt_fs *fs, fuse_ino_t ino, struct stat *st)
{
    switch (ino) {
    case INO_ROOT:
    case INO_BY_DEPS:
    case INO_BY_SERVICE:
    case INO_LOGS:
        fill_dir(st, ino);
        return 0;
    case INO_STATS: {
        char *text = stats_text(fs);
        if (!text)
            return -EIO;
        memset(st, 0, sizeof *st);
        st->st_ino = ino;
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = (off_t)strlen(text);
        st->st_mtime = (time_t)pt_wall_s();
        free(text);
        return 0;
    }
    }
    struct pt_node *node = pt_node_of(ino);
    char target[PATH_MAX];
    int len;
    memset(st, 0, sizeof *st);
    st->st_ino = node_st_ino(node->kind, node->name);
    st->st_nlink = 1;
    switch (node->kind) {
    case NODE_VENV:
    case NODE_SERVICE:
        len = node_target(fs, node, 0, target, sizeof target); /* its size; who may follow it, readlink says */
        if (len < 0)
            return len;
        st->st_mode = S_IFLNK | 0777;
        st->st_size = len;
        return 0;
    case NODE_LOG: {
        char path[PATH_MAX];
        struct stat real;
        snprintf(path, sizeof path, "%s/%.255s", fs->logs, node->name);
        if (stat(path, &real) != 0)
            return -errno;
        st->st_mode = S_IFREG | 0444;
        st->st_size = real.st_size;
        st->st_mtim = real.st_mtim;
        st->st_ctim = real.st_ctim;
        return 0;
    }
    }
    return -ENOENT;
}

/* ---- lookup / forget ----
 *
 * Build on miss happens in readlink, not in lookup: while a lookup runs, the
 * kernel holds the directory's lock unless the connection has parallel
 * dirops, which libfuse 3.14 does not grant even when asked (its INIT reply
 * leaves FUSE_PARALLEL_DIROPS out), so a build inside lookup would stop every
 * other lookup in by-deps. readlink of the symlink takes no directory lock:
 * a path walk through by-deps/<key> waits for the venv there, and everything
 * else goes on. */

static bool log_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n != PT_KEY_HEX + 4 || strcmp(name + PT_KEY_HEX, ".log") != 0)
        return false;
    char key[PT_KEY_HEX + 1];
    memcpy(key, name, PT_KEY_HEX);
    key[PT_KEY_HEX] = '\0';
    return pt_key_is_valid(key);
}

static int lookup_child(struct pt_fs *fs, fuse_ino_t parent, const char *name, uid_t caller, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof *e);
    e->generation = 1;
    if (parent == INO_ROOT) {
        static const struct { const char *name; fuse_ino_t ino; } top[] = {
            { "by-deps", INO_BY_DEPS }, { "by-service", INO_BY_SERVICE }, { "logs", INO_LOGS }, { "stats", INO_STATS } };
        for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
            if (strcmp(name, top[i].name) == 0) {
                e->ino = top[i].ino;
                e->entry_timeout = FIXED_TIMEOUT; /* the name never goes */
                e->attr_timeout = cache_timeout(fs, e->ino);
                return do_getattr(fs, e->ino, &e->attr);
            }
        return -ENOENT;
    }
    enum node_kind kind;
    bool transient = false;
    if (parent == INO_BY_DEPS) {
        /* a registered key answers at once; the build happens in readlink */
        if (!pt_key_is_valid(name))
            return -ENOENT;
        int rc = pt_fs_lookup_key(fs, name);
        if (rc < 0)
            return rc;
        kind = NODE_VENV;
        transient = rc == 0;
    } else if (parent == INO_BY_SERVICE) {
        char target[PATH_MAX];
        if (!pt_service_id_valid(name))
            return -ENOENT;
        int rc = service_target(fs, name, caller, target, sizeof target);
        if (rc < 0)
            return rc;
        kind = NODE_SERVICE;
    } else if (parent == INO_LOGS) {
        if (!log_name_valid(name))
            return -ENOENT;
        kind = NODE_LOG;
    } else {
        return -ENOTDIR;
    }
    struct pt_node *node = transient ? pt_node_new_transient(fs, kind, name) : pt_node_get(fs, kind, name);
    if (!node)
        return -ENOMEM;
    e->ino = (fuse_ino_t)(uintptr_t)node;
    int rc = do_getattr(fs, e->ino, &e->attr);
    if (rc) {
        pt_node_forget(fs, node, 1);
        return rc;
    }
    e->entry_timeout = e->attr_timeout = cache_timeout(fs, e->ino);
    return 0;
}

static void pt_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct pt_fs *fs = fs_of(req); /* req is freed by the reply */
    struct fuse_entry_param e;
    int rc = lookup_child(fs, parent, name, fuse_req_ctx(req)->uid, &e);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    if (fuse_reply_entry(req, &e) == -ENOENT && e.ino > INO_STATS)
        pt_node_forget(fs, pt_node_of(e.ino), 1); /* the request was interrupted: undo */
}

static void pt_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    if (ino > INO_STATS)
        pt_node_forget(fs_of(req), pt_node_of(ino), nlookup);
    fuse_reply_none(req);
}

static void pt_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        if (forgets[i].ino > INO_STATS)
            pt_node_forget(fs_of(req), pt_node_of(forgets[i].ino), forgets[i].nlookup);
    fuse_reply_none(req);
}

static void pt_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct stat st;
    int rc = do_getattr(fs_of(req), ino, &st);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    fuse_reply_attr(req, &st, cache_timeout(fs_of(req), ino));
}

static void pt_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct pt_fs *fs = fs_of(req);
    if (ino <= INO_STATS) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    struct pt_node *node = pt_node_of(ino);
    if (node->kind == NODE_VENV) {
        /* build on miss: answered now, or once the venv is built (the
         * request waits without holding this thread) */
        pt_fs_resolve(fs, req, node->name, node->transient);
        return;
    }
    char target[PATH_MAX];
    pt_reply_link(req, node_target(fs, node, fuse_req_ctx(req)->uid, target, sizeof target), target);
}

/* ---- directories: a snapshot of names taken at opendir ---- */

struct listing {
    size_t n, cap;
    struct { char *name; mode_t mode; fuse_ino_t ino; } *items;
};

static int listing_add(struct listing *l, const char *name, mode_t mode, fuse_ino_t ino)
{
    void *p = pt_grow(l->items, &l->cap, l->n, sizeof *l->items);
    if (!p)
        return -ENOMEM;
    l->items = p;
    char *dup = strdup(name);
    if (!dup)
        return -ENOMEM;
    l->items[l->n].name = dup;
    l->items[l->n].mode = mode;
    l->items[l->n].ino = ino;
    l->n++;
    return 0;
}

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].name);
    free(l->items);
    free(l);
}

static int list_ready(const char *key, const pt_entry *e, void *arg)
{
    if (e->state == PT_STATE_READY)
        return listing_add(arg, key, S_IFLNK, node_st_ino(NODE_VENV, key));
    return 0;
}

struct service_listing {
    struct pt_fs *fs;
    struct listing *l;
    uid_t caller;
};

static int list_service(const pt_service *s, void *arg)
{
    struct service_listing *sl = arg;
    if (!visible_to(sl->fs, s, sl->caller))
        return 0;
    return listing_add(sl->l, s->id, S_IFLNK, node_st_ino(NODE_SERVICE, s->id));
}

static int list_logs(struct pt_fs *fs, struct listing *l)
{
    DIR *d = opendir(fs->logs);
    if (!d)
        return -errno;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL)
        if (log_name_valid(de->d_name))
            rc = listing_add(l, de->d_name, S_IFREG, node_st_ino(NODE_LOG, de->d_name));
    closedir(d);
    return rc;
}

static void pt_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct pt_fs *fs = fs_of(req);
    if (ino > INO_LOGS) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    struct listing *l = calloc(1, sizeof *l);
    if (!l) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    int rc = listing_add(l, ".", S_IFDIR, ino);
    if (rc == 0)
        rc = listing_add(l, "..", S_IFDIR, INO_ROOT);
    if (rc == 0) {
        switch (ino) {
        case INO_ROOT:
            if ((rc = listing_add(l, "by-deps", S_IFDIR, INO_BY_DEPS)) == 0 &&
                (rc = listing_add(l, "by-service", S_IFDIR, INO_BY_SERVICE)) == 0 &&
                (rc = listing_add(l, "logs", S_IFDIR, INO_LOGS)) == 0)
                rc = listing_add(l, "stats", S_IFREG, INO_STATS);
            break;
        case INO_BY_DEPS: rc = pt_index_each_entry(fs->idx, list_ready, l); break;
        case INO_BY_SERVICE: {
            struct service_listing sl = { fs, l, fuse_req_ctx(req)->uid };
            rc = pt_index_each_service(fs->idx, list_service, &sl);
            break;
        }
        case INO_LOGS: rc = list_logs(fs, l); break;
        }
    }
    if (rc) {
        listing_free(l);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)l;
    fuse_reply_open(req, fi);
}

static void pt_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    struct listing *l = (struct listing *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0;
    for (size_t i = (size_t)off; i < l->n; i++) {
        struct stat st = { .st_ino = l->items[i].ino, .st_mode = l->items[i].mode };
        size_t need = fuse_add_direntry(req, buf + used, size - used, l->items[i].name, &st, (off_t)(i + 1));
        if (need > size - used)
            break; /* full: return what fits */
        used += need;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void pt_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    listing_free((struct listing *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

/* ---- files: stats (a snapshot per open) and logs (the real file) ---- */

struct open_file {
    int fd;          /* logs: the real log, else -1 */
    size_t len;      /* stats: snapshot */
    char *text;
};

static void pt_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct pt_fs *fs = fs_of(req);
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    struct open_file *of = calloc(1, sizeof *of);
    if (!of) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    of->fd = -1;
    if (ino == INO_STATS) {
        of->text = stats_text(fs);
        if (!of->text) {
            free(of);
            fuse_reply_err(req, EIO);
            return;
        }
        of->len = strlen(of->text);
    } else if (ino > INO_STATS && pt_node_of(ino)->kind == NODE_LOG) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%.255s", fs->logs, pt_node_of(ino)->name);
        of->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (of->fd < 0) {
            int e = errno;
            free(of);
            fuse_reply_err(req, e);
            return;
        }
    } else {
        free(of);
        fuse_reply_err(req, ino <= INO_LOGS ? EISDIR : EINVAL);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)of;
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fuse_reply_open(req, fi);
}

static void pt_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
    if (of->fd < 0) {
        if ((size_t)off >= of->len)
            fuse_reply_buf(req, NULL, 0);
        else
            fuse_reply_buf(req, of->text + off, size < of->len - (size_t)off ? size : of->len - (size_t)off);
        return;
    }
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    ssize_t n = pread(of->fd, buf, size, off);
    if (n < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static void pt_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
    if (of->fd >= 0)
        close(of->fd);
    free(of->text);
    free(of);
    fuse_reply_err(req, 0);
}

/* ---- everything that would change the tree: read-only ---- */

static void erofs(fuse_req_t req) { fuse_reply_err(req, EROFS); }
static void pt_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int to_set, struct fuse_file_info *fi)
{ (void)ino; (void)a; (void)to_set; (void)fi; erofs(req); }
static void pt_op_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t r)
{ (void)p; (void)n; (void)m; (void)r; erofs(req); }
static void pt_op_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m)
{ (void)p; (void)n; (void)m; erofs(req); }
static void pt_op_unlink(fuse_req_t req, fuse_ino_t p, const char *n) { (void)p; (void)n; erofs(req); }
static void pt_op_rmdir(fuse_req_t req, fuse_ino_t p, const char *n) { (void)p; (void)n; erofs(req); }
static void pt_op_symlink(fuse_req_t req, const char *l, fuse_ino_t p, const char *n)
{ (void)l; (void)p; (void)n; erofs(req); }
static void pt_op_rename(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn, unsigned f)
{ (void)p; (void)n; (void)np; (void)nn; (void)f; erofs(req); }
static void pt_op_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t p, const char *n)
{ (void)i; (void)p; (void)n; erofs(req); }
static void pt_op_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *fi)
{ (void)p; (void)n; (void)m; (void)fi; erofs(req); }
static void pt_op_write(fuse_req_t req, fuse_ino_t i, const char *b, size_t s, off_t o, struct fuse_file_info *fi)
{ (void)i; (void)b; (void)s; (void)o; (void)fi; erofs(req); }
static void pt_op_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v, size_t s, int f)
{ (void)i; (void)n; (void)v; (void)s; (void)f; erofs(req); }
static void pt_op_removexattr(fuse_req_t req, fuse_ino_t i, const char *n) { (void)i; (void)n; erofs(req); }
static void pt_op_fallocate(fuse_req_t req, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *fi)
{ (void)i; (void)m; (void)o; (void)l; (void)fi; erofs(req); }

/* ---- init ---- */

static void pt_op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct pt_fs *fs = userdata;
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
        conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    conn->want &= ~FUSE_CAP_READDIRPLUS; /* listings never add lookups */
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    /* the kernel's INIT has been answered from here on: say so (tests and
     * scripts wait for this line instead of polling the mount) */
    fprintf(stderr, "pactownfs: ready at %s\n", fs->mountpoint ? fs->mountpoint : "?");
}

static void pt_op_destroy(void *userdata)
{
    pt_node_drop_all(userdata);
}

const struct fuse_lowlevel_ops pt_fs_ops = {
    .init = pt_op_init,
    .destroy = pt_op_destroy,
    .lookup = pt_op_lookup,
    .forget = pt_op_forget,
    .forget_multi = pt_op_forget_multi,
    .getattr = pt_op_getattr,
    .readlink = pt_op_readlink,
    .opendir = pt_op_opendir,
    .readdir = pt_op_readdir,
    .releasedir = pt_op_releasedir,
    .open = pt_op_open,
    .read = pt_op_read,
    .release = pt_op_release,
    .setattr = pt_op_setattr,
    .mknod = pt_op_mknod,
    .mkdir = pt_op_mkdir,
    .unlink = pt_op_unlink,
    .rmdir = pt_op_rmdir,
    .symlink = pt_op_symlink,
    .rename = pt_op_rename,
    .link = pt_op_link,
    .create = pt_op_create,
    .write = pt_op_write,
    .setxattr = pt_op_setxattr,
    .removexattr = pt_op_removexattr,
    .fallocate = pt_op_fallocate,
};
