/* pactownfs.h — the daemon's shared state (internal to mount/).
 *
 * Inode identity
 * --------------
 * Five fixed inodes: 1 root, 2 by-deps, 3 by-service, 4 logs, 5 stats.
 * Every other inode is a struct pt_node (by-deps/<key>, by-service/<id>,
 * logs/<key>.log) whose address is its inode number, as in libfuse's
 * passthrough_ll. Nodes live in a tsearch(3) tree keyed by (kind, name), so a
 * second lookup of a name gives the same inode; `nlookup` is the kernel's
 * lookup count (+1 per fuse_reply_entry) and the node is freed when forget
 * brings it to zero. Forgets are not guaranteed at unmount: the tree is
 * destroyed then.
 *
 * Locking (lock order: builds_mu before nodes_mu; never hold either while
 * replying, building or in an LMDB transaction; atime_mu is a leaf):
 *   nodes_mu  protects the node tree and every node's nlookup
 *   builds_mu protects the list of builds in flight and their fields
 * The LMDB environment is shared by all threads (MDB_NOTLS); each call is its
 * own transaction.
 */
#ifndef PACTOWNFS_H
#define PACTOWNFS_H

#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "pactown/config.h"
#include "pactown/evict.h"
#include "pactown/index.h"
#include "pactown/interp.h"

/* longest cache_dir accepted, so that every path below it fits PATH_MAX */
#define PT_DIR_MAX 2048

enum {
    INO_ROOT = FUSE_ROOT_ID,
    INO_BY_DEPS = 2,
    INO_BY_SERVICE = 3,
    INO_LOGS = 4,
    INO_STATS = 5,
};

enum node_kind { NODE_VENV = 1, NODE_SERVICE = 2, NODE_LOG = 3 };

struct pt_node {
    uint64_t nlookup;       /* protected by nodes_mu */
    enum node_kind kind;
    char name[];            /* key, service id, or "<key>.log" */
};

struct pt_build;            /* a build in flight (builds.c) */

struct pt_fs {
    pt_config cfg;
    const char *mountpoint;     /* where we are mounted */
    char cache_dir[PT_DIR_MAX]; /* absolute */
    char store[PT_DIR_MAX];     /* <cache>/store */
    char logs[PT_DIR_MAX];      /* <cache>/logs */
    char tmp[PT_DIR_MAX];       /* <cache>/tmp */
    char builder[PATH_MAX];     /* pactown-build executable */
    char uv[PATH_MAX];          /* resolved uv, when installer is uv */
    const char *installer;      /* "uv" or "pip" */
    pt_interp interp;           /* resolved once at start-up */
    bool store_bound;           /* store is a read-only bind mount */
    pt_index *idx;

    pthread_mutex_t nodes_mu;
    void *nodes;                /* tsearch root; protected by nodes_mu */

    pthread_mutex_t builds_mu;
    struct pt_build *builds;    /* in flight; protected by builds_mu */

    struct fuse_session *se;    /* for kernel cache invalidation */
    pthread_t evict_thread;
    pthread_mutex_t evict_mu;
    pthread_cond_t evict_cond;
    bool evict_wake, evict_quit;/* protected by evict_mu */
    bool evict_running;

    pthread_mutex_t atime_mu;
    struct pt_atime { char key[33]; int64_t ms; } *atimes; /* seen, not yet written; protected by atime_mu */
    size_t n_atimes, cap_atimes;

    pthread_t control_thread;
    int control_fd;             /* listening socket, -1 if none */
    bool control_running;
};

/* builds.c: make sure key is built. 0 ready (store dir complete); -ENOENT key
 * unknown; -EIO build failed (now or within failure_ttl). Concurrent callers
 * for one key share one build. */
int pt_fs_ensure_built(struct pt_fs *fs, const char *key);

/* builds.c: claim key for an eviction: NULL if a build or eviction of key is
 * in flight. Readlinks of key wait until pt_fs_release, then look again. */
struct pt_build *pt_fs_claim(struct pt_fs *fs, const char *key);
void pt_fs_release(struct pt_fs *fs, struct pt_build *b, int rc);

/* builds.c: access times seen on lookups are kept in memory and written in
 * one go by the eviction thread (before it picks victims) and at unmount, so a
 * lookup never waits for a disk sync. */
void pt_fs_flush_atimes(struct pt_fs *fs);

/* evict.c: the eviction thread, and evictions on request. */
int pt_fs_evict_start(struct pt_fs *fs);
void pt_fs_evict_stop(struct pt_fs *fs);
void pt_fs_evict_soon(struct pt_fs *fs);     /* wake the eviction thread */
/* Evict key now: -EBUSY (leased, unless force; or a build in flight),
 * -ENOENT (not ready), 0 done. */
int pt_fs_evict_key(struct pt_fs *fs, const char *key, bool force, const char *reason);
/* One eviction run with lim at now_ms; the victims (or, with dry_run, what
 * would be evicted) are appended to report, a JSON array (may be NULL). */
int pt_fs_evict_run(struct pt_fs *fs, const pt_limits *lim, int64_t now_ms, bool dry_run, json_t *report);

/* control.c: the control socket <cache_dir>/control.sock (gc, rm) */
int pt_fs_control_start(struct pt_fs *fs);
void pt_fs_control_stop(struct pt_fs *fs);

/* builds.c: 0 if key's requirement set is registered, -ENOENT if not, -EIO
 * if the index cannot be read. */
int pt_fs_known(struct pt_fs *fs, const char *key);

/* builds.c: start-up recovery before the store is made read-only: reset
 * entries left `building`, remove store directories that are not `ready`. */
int pt_fs_recover(struct pt_fs *fs);

/* nodes.c */
/* The inode of (kind, name) if the kernel holds it, else 0; nlookup unchanged. */
fuse_ino_t pt_node_find(struct pt_fs *fs, enum node_kind kind, const char *name);
struct pt_node *pt_node_get(struct pt_fs *fs, enum node_kind kind, const char *name);
void pt_node_forget(struct pt_fs *fs, struct pt_node *node, uint64_t n);
void pt_node_drop_all(struct pt_fs *fs);
static inline struct pt_node *pt_node_of(fuse_ino_t ino)
{
    return (struct pt_node *)(uintptr_t)ino;
}

/* fs.c */
extern const struct fuse_lowlevel_ops pt_fs_ops;

#endif
