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
 * Locking. Lock order: stop_mu, then claims_mu, then nodes_mu; evict_mu, atime_mu and
 * interp_mu are leaves (nothing is locked while holding them). No lock is held while
 * replying to a request, sending a kernel notification, building, waiting
 * for a process, or in an LMDB transaction; none is held across file I/O.
 *   claims_mu protects the per-key claims (builds and evictions in flight),
 *             their waiting requests, n_waiting, build_threads, stopping
 *             (claims.c)
 *   nodes_mu  protects the node tree and every node's nlookup (nodes.c)
 *   evict_mu  protects evict_wake/evict_quit (evict.c)
 *   atime_mu  protects the access times seen on lookups (builds.c)
 *   interp_mu protects interp after start-up (builds.c)
 *   stop_mu   makes the stop sequence one at a time (stop.c); held while the
 *             eviction and control threads are joined
 * The LMDB environment is shared by all threads (MDB_NOTLS); each call is its
 * own transaction.
 */
#ifndef PACTOWNFS_H
#define PACTOWNFS_H

#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
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
    bool transient;         /* by-deps/<key> of a venv not built yet: one inode per
                             * lookup, never in the tree (see fs.c, lookup) */
    char name[];            /* key, service id, or "<key>.log" */
};

struct pt_claim;            /* a build or eviction in flight (claims.c) */
struct pt_fs;

/* How a request waiting on a claim is answered once the claim is released
 * with rc: again = the claim was an eviction, so the request looks again. */
typedef void (*pt_answer_fn)(struct pt_fs *fs, fuse_req_t req, const char *key, int rc, bool again);

struct pt_fs {
    pt_config cfg;
    const char *mountpoint;     /* where we are mounted */
    char cache_dir[PT_DIR_MAX]; /* absolute */
    char store[PT_DIR_MAX];     /* <cache>/store */
    bool recover_same_boot;     /* start-up: the last daemon ran since this boot (builds.c, pt_fs_recover) */
    char logs[PT_DIR_MAX];      /* <cache>/logs */
    char tmp[PT_DIR_MAX];       /* <cache>/tmp */
    char builder[PATH_MAX];     /* pactown-build executable */
    char registry_helper[PATH_MAX]; /* pactown-registry executable; "" = not found (no push) */
    char uv[PATH_MAX];          /* resolved uv, when installer is uv */
    const char *installer;      /* "uv" or "pip" */
    pt_interp interp;           /* the interpreter builds last used; interp_mu (builds.c checks it
                                 * again for every build) */
    pthread_mutex_t interp_mu;
    bool store_bound;           /* store is a read-only bind mount */
    pt_index *idx;

    pthread_mutex_t nodes_mu;
    void *nodes;                /* tsearch root; protected by nodes_mu */
    void *transients;           /* tsearch root of transient nodes, by address; nodes_mu */

    pthread_mutex_t claims_mu;
    pthread_cond_t claims_cond; /* CLOCK_MONOTONIC; a claim released, a build thread ended */
    struct pt_claim *claims;    /* in flight; protected by claims_mu */
    unsigned n_waiting;         /* requests waiting on claims */
    unsigned build_threads;     /* build threads running */
    pid_t pushers[64];          /* pactown-registry push processes running (push.c); claims_mu */
    unsigned n_pushers;
    bool stopping;              /* the daemon is stopping: no new builds */

    struct fuse_session *se;    /* for kernel cache invalidation */
    pthread_t evict_thread;
    pthread_mutex_t evict_mu;
    pthread_cond_t evict_cond;
    bool evict_wake, evict_quit;/* protected by evict_mu */
    bool evict_running;
    atomic_bool usage_dirty;    /* a build, eviction or prune since the store was last measured */
    _Atomic int64_t last_prune_ms; /* epoch ms of the uv cache's last prune */
    atomic_bool prune_due;      /* a venv was evicted since: its wheels may be unlinked now */

    pthread_mutex_t atime_mu;
    struct pt_atime { char key[33]; int64_t ms; unsigned hits; } *atimes; /* seen (lookups, uses), not yet
                                                                            * written; protected by atime_mu */
    size_t n_atimes, cap_atimes;

    pthread_t uses_thread;      /* mount/uses.c: the datagram socket of uses */
    int uses_fd;                /* -1 if none */
    bool uses_running;

    pthread_t control_thread;
    int control_fd;             /* listening socket, -1 if none */
    bool control_running;

    pthread_t main_thread, stopper_thread; /* stop.c */
    bool stopper_running;
    pthread_mutex_t stop_mu;    /* one stop sequence at a time (stop.c) */
    bool threads_left;          /* a build thread outlived the stop: keep what it uses */
    atomic_bool loop_left;      /* the main thread has left the session loop (stop.c) */
};

/* push.c: push the venv of key, built here, to the registry in the
 * background of the calling build thread (pactown-registry push; its
 * lines go to the build log): the thread waits for it, the venv is
 * already served. */
void pt_fs_push(struct pt_fs *fs, const char *key);

/* builds.c: answer req, a readlink of by-deps/<key>, now or once the venv
 * is built: the target (<store>/<key>) when ready; ENOENT key unknown; EIO
 * build failed (now or within failure_ttl); EINTR the caller was interrupted;
 * ENOTCONN the daemon is stopping. Concurrent callers for one key share one
 * build, and none of them holds a FUSE worker thread while it waits. wait =
 * false (the stable inode of a built key): the target at once, whatever the
 * state. key is copied before req can be answered. */
void pt_fs_resolve(struct pt_fs *fs, fuse_req_t req, const char *key, bool wait);

/* fs.c: the symlink target of by-deps/<key> into buf: its length, or -ENAMETOOLONG. */
int pt_fs_venv_target(struct pt_fs *fs, const char *key, char *buf, size_t n);

/* Answer a readlink: target when len (its length, or -errno) is not an error. */
static inline void pt_reply_link(fuse_req_t req, int len, const char *target)
{
    if (len < 0)
        fuse_reply_err(req, -len);
    else
        fuse_reply_readlink(req, target);
}

/* claims.c: claim key for an exclusive operation: NULL if one is in flight
 * on key, the daemon is stopping, or out of memory. */
enum pt_claim_kind { PT_CLAIM_BUILD, PT_CLAIM_EVICT };
struct pt_claim *pt_claim_take(struct pt_fs *fs, const char *key, enum pt_claim_kind kind);
/* claims.c: claim key for a build, or wait on its claim in flight. req is
 * answered through answer() when the claim is released, or EINTR when
 * interrupted, or at once (ENOMEM; ENOTCONN when stopping). Returns the new
 * claim, which the caller must release, or NULL (req waits or was answered). */
struct pt_claim *pt_claim_or_wait(struct pt_fs *fs, fuse_req_t req, const char *key, pt_answer_fn answer);
/* claims.c: end the claim: every waiting request is answered with rc (after
 * an eviction: told to look again). c is freed. */
void pt_claim_release(struct pt_fs *fs, struct pt_claim *c, int rc);
/* claims.c: the builder process of a build claim (killed at shutdown). */
void pt_claim_set_pid(struct pt_fs *fs, struct pt_claim *c, pid_t pid);
unsigned pt_claims_waiting(struct pt_fs *fs);
bool pt_claims_stopping(struct pt_fs *fs);
/* A push process (push.c) the stop must end too: false (and nothing kept)
 * when the daemon is stopping or 64 run already. */
bool pt_claims_pusher_add(struct pt_fs *fs, pid_t pid);
void pt_claims_pusher_del(struct pt_fs *fs, pid_t pid);
void pt_claims_thread_started(struct pt_fs *fs);
void pt_claims_thread_done(struct pt_fs *fs);
/* claims.c: shutdown: refuse new claims, then SIGTERM the builders in
 * flight (their process groups), SIGKILL after 1 s, and wait (at most 3 s)
 * until every build thread has recorded its build and answered its waiters. */
void pt_claims_begin_stop(struct pt_fs *fs);
/* Returns false if a build thread still runs after the 3 s. */
bool pt_claims_stop(struct pt_fs *fs);

/* stop.c: SIGINT/SIGTERM/SIGHUP handlers and the stopper thread (see there);
 * pt_fs_stop runs the stop sequence (idempotent): no new claims; the
 * eviction and control threads stopped; builders stopped and their waiters
 * answered. */
int pt_fs_signals_install(void);             /* before mounting */
int pt_fs_stopper_start(struct pt_fs *fs);   /* after daemonizing, from the main thread */
void pt_fs_stopper_end(struct pt_fs *fs);
void pt_fs_stop(struct pt_fs *fs);

/* builds.c: access times seen on lookups are kept in memory and written in
 * one go by the eviction thread (before it picks victims) and at unmount, so a
 * lookup never waits for a disk sync. */
void pt_fs_flush_atimes(struct pt_fs *fs);
/* A use of key's venv (a `pactown run --prepare` hit) at ms: its access
 * time and one hit, in memory like a lookup's, written by
 * pt_fs_flush_atimes. */
void pt_fs_note_use(struct pt_fs *fs, const char *key, int64_t ms);
/* Hits noted and not written yet (for the mount's stats). */
uint64_t pt_fs_pending_hits(struct pt_fs *fs);

/* uses.c: <cache_dir>/uses.sock (pactown/control.h), a datagram socket the
 * CLI tells its --prepare hits through, without an index commit. */
int pt_fs_uses_start(struct pt_fs *fs);
void pt_fs_uses_stop(struct pt_fs *fs);
/* Note every use already sent (datagrams waiting: never blocks), so that a
 * figure read now counts each use whose sender has returned. */
void pt_fs_uses_drain(struct pt_fs *fs);

/* evict.c: the eviction thread, and evictions on request. */
int pt_fs_evict_start(struct pt_fs *fs);
void pt_fs_evict_stop(struct pt_fs *fs);
void pt_fs_evict_soon(struct pt_fs *fs);     /* wake the eviction thread */
/* Evict key now: -EBUSY (leased by a live process other than except, unless
 * force; or a build in flight), -ENOENT (not built), 0 done; a failed build
 * is cleared instead (state none, so the next lookup builds it):
 * PT_EVICT_CLEARED. */
#define PT_EVICT_CLEARED 1
/* Remove <store>/<key> (and, staging_pid > 0, the bytecode staging
 * directory of the builder that pid was: pactown/uvcache.h) with
 * `pactown-build --remove` in the store's writable view. 0 or -errno/-EIO. */
int pt_fs_remove_store_dir(struct pt_fs *fs, const char *key, pid_t staging_pid);
int pt_fs_evict_key(struct pt_fs *fs, const char *key, bool force, pid_t except, const char *reason);
/* One eviction run with lim at now_ms; the victims (or, with dry_run, what
 * would be evicted) are appended to report, a JSON array (may be NULL).
 * measure: measure the store's disk if it changed (pactown/usage.h), even
 * without max_bytes (which always measures); also prunes the uv cache. */
int pt_fs_evict_run(struct pt_fs *fs, const pt_limits *lim, int64_t now_ms, bool dry_run, bool measure,
                    json_t *report);

/* control.c: the control socket <cache_dir>/control.sock (gc, rm) */
/* Stop a socket's thread (the control socket's, the uses socket's): shut
 * the socket down, which ends the thread's accept(2) or recv(2), join it,
 * close the socket and remove <cache_dir>/<name>. Nothing if not *running. */
void pt_fs_socket_stop(struct pt_fs *fs, pthread_t thread, int *fd, bool *running, const char *name);
int pt_fs_control_start(struct pt_fs *fs);
void pt_fs_control_stop(struct pt_fs *fs);

/* builds.c: what a lookup of by-deps/<key> answers: 1 built and usable, 0
 * registered but not built (or not usable), -ENOENT not registered, -EIO
 * the index cannot be read. */
int pt_fs_lookup_key(struct pt_fs *fs, const char *key);


/* builds.c: start-up recovery before the store is made read-only: reset
 * entries left `building`, remove store directories that are not `ready`. */
int pt_fs_recover(struct pt_fs *fs);

/* nodes.c */
/* The inode of (kind, name) if the kernel holds it, else 0; nlookup unchanged. */
fuse_ino_t pt_node_find(struct pt_fs *fs, enum node_kind kind, const char *name);
/* The node of (kind, name), nlookup + 1; NULL on out-of-memory. */
struct pt_node *pt_node_get(struct pt_fs *fs, enum node_kind kind, const char *name);
/* A new node of (kind, name) that is not in the tree, nlookup 1. */
struct pt_node *pt_node_new_transient(struct pt_fs *fs, enum node_kind kind, const char *name);
void pt_node_forget(struct pt_fs *fs, struct pt_node *node, uint64_t n);
void pt_node_drop_all(struct pt_fs *fs);
/* a node's address is its inode number (nodeid) */
_Static_assert(sizeof(uintptr_t) <= sizeof(fuse_ino_t), "a pointer must fit fuse_ino_t");
static inline struct pt_node *pt_node_of(fuse_ino_t ino)
{
    return (struct pt_node *)(uintptr_t)ino;
}

/* fs.c */
extern const struct fuse_lowlevel_ops pt_fs_ops;

#endif
