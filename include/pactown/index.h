/* pactown/index.h — the LMDB index under <cache_dir>/index.
 *
 * One LMDB environment (lmdb.h), shared by the daemon and the CLI, each in
 * its own process (LMDB is multi-process safe on one host). Named databases:
 *
 *   spec     key (32 hex) -> canonical text; kept after eviction, so a known
 *            key can always be rebuilt
 *   entry    key -> struct pt_entry: state, sizes, times, counts
 *   atime    (last_access_ms big-endian, key) -> nothing, for every ready
 *            entry: the LRU order without a full scan; kept in step with
 *            entry by pt_index_update
 *   lease    (key, pid big-endian) -> struct pt_lease: processes using a venv
 *   service  service id -> struct pt_service (sandboxes and their services)
 *   meta     name -> value: schema version, counters, interpreter probes
 *
 * Write transactions are short and never span a build. All functions return
 * 0 or -errno; LMDB's own codes map to -EIO (corruption), -ENOSPC (map full),
 * -ENOENT (not found).
 */
#ifndef PACTOWN_INDEX_H
#define PACTOWN_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pactown/error.h"

typedef struct pt_index pt_index;

typedef enum pt_state {
    PT_STATE_NONE = 0,      /* registered (spec known) but not built, or evicted */
    PT_STATE_BUILDING = 1,  /* a build runs now (the daemon owns it) */
    PT_STATE_READY = 2,     /* built; the store directory is complete */
    PT_STATE_FAILED = 3,    /* last build failed at failed_at; log kept */
} pt_state;

#define PT_ENTRY_VERSION 4
typedef struct pt_entry {
    uint32_t version;       /* PT_ENTRY_VERSION */
    uint32_t state;         /* pt_state */
    uint64_t bytes;         /* apparent size of the venv, bytes */
    uint64_t files;         /* regular files in the venv */
    int64_t created;        /* first registration, epoch seconds */
    int64_t built_at;       /* last successful build, epoch seconds */
    int64_t last_access_ms; /* last lookup or service start, epoch milliseconds (the LRU order) */
    int64_t failed_at;      /* last failed build, epoch seconds */
    uint64_t build_ms;      /* duration of the last build, ms */
    uint64_t hits;          /* lookups answered from the cache */
    uint64_t builds;        /* builds started */
    uint64_t failures;      /* builds failed */
    int32_t builder_pid;    /* pid of the running build, 0 if none */
    uint32_t fail_cause;    /* pt_fail_cause of the last failed build */
    uint64_t alone_bytes;   /* (v2) disk it holds alone: what evicting it frees (pactown/usage.h), as last measured */
    uint32_t origin;        /* (v3) pt_origin: how the venv now in the store came */
    uint32_t pull_failed;   /* (v3) 1: its last build followed a pull from the registry that failed */
    int64_t pushed_at;      /* (v3) last push of this build to the registry, epoch seconds; 0 none */
    int64_t push_failed_at; /* (v3) last push that failed, epoch seconds; 0 none */
    uint32_t unsynced;      /* (v4) 1: READY, but its files are not yet known to be on disk (the daemon's
                             * syncfs(2) follows the answer); a venv still unsynced at start-up is built again */
} pt_entry;

/* How a ready venv came: built here by the installer, or pulled from the
 * registry (pactown/registry.h). */
typedef enum pt_origin { PT_ORIGIN_BUILT = 0, PT_ORIGIN_PULLED = 1 } pt_origin;

/* Why the last build failed: the build itself (the installer failed on this
 * set: remembered for failure_ttl, across restarts), or the environment (the
 * interpreter changed or is gone, the disk was full): a restart clears it. */
typedef enum pt_fail_cause { PT_FAIL_BUILD = 0, PT_FAIL_ENVIRONMENT = 1 } pt_fail_cause;

typedef struct pt_counters {
    uint64_t hits, misses, builds, build_failures, evictions;
    uint64_t pulled, pull_failures, pushed, push_failures; /* the registry's (pactown/registry.h) */
} pt_counters;

#define PT_SERVICE_VERSION 4
typedef struct pt_service {
    uint32_t version;       /* PT_SERVICE_VERSION */
    int32_t pid;            /* leader of the service's process group, 0 if not running */
    int32_t port;           /* port the service answered on */
    uint32_t reserved;
    uint64_t pid_start;     /* start time of pid (clock ticks after boot, proc(5) field 22): tells a reused pid apart */
    int64_t started;        /* epoch seconds */
    char key[33];           /* venv key */
    char id[65];            /* service id */
    int64_t ended;          /* epoch seconds it ended (v2); 0 while it runs, or unknown (a v1 record) */
    char user_id[65];       /* the API's user_id (v3), "" from the CLI */
    int64_t project_id;     /* the API's project_id (v3), 0 from the CLI */
    char service_name[65];  /* the API's service_name (v3): the project's name, "" if none */
    int32_t max_memory_mb;  /* the kernel's limits it runs under (v4), 0 = none */
    int32_t max_cpu_percent;
    int32_t max_processes;
} pt_service;

/* Open (creating if needed) the index in directory dir (mkdir -p). Clears
 * stale reader slots left by crashed processes (mdb_reader_check). The handle
 * may be used from several threads (MDB_NOTLS); never across fork(2).
 * On error, err says which call failed and why. */
int pt_index_open(const char *dir, pt_index **out, pt_error *err);
void pt_index_close(pt_index *idx);

/* Register a requirement set: store key -> canonical if absent.
 * *created (may be NULL) tells whether it was new. -EEXIST if the key exists
 * with a different text (a hash collision: never seen, but checked). */
int pt_index_register(pt_index *idx, const char *key, const char *canonical, size_t len, bool *created);

/* The canonical text of key, malloc'd and NUL-terminated; caller frees. -ENOENT if unknown. */
int pt_index_spec(pt_index *idx, const char *key, char **out, size_t *len);

/* The entry of key. -ENOENT if none (state NONE). */
int pt_index_entry(pt_index *idx, const char *key, pt_entry *out);

/* Read-modify-write an entry in one write transaction. fn gets the current
 * entry (zeroed, version set, if none) and returns 0 to store it, 1 to leave
 * the entry unchanged (counters are still added), or -errno to abort
 * (nothing is written). counters (may be NULL) is a
 * NULL-terminated list of counter names ("hits", "misses", "builds",
 * "build_failures", "evictions") each added 1 in the same transaction. */
typedef int (*pt_entry_fn)(pt_entry *e, void *arg);
int pt_index_update(pt_index *idx, const char *key, pt_entry_fn fn, void *arg, const char *const *counters);

/* pt_index_update, in a write transaction that first counts the live leases
 * on key (those of pid except not counted, when except > 0): -EBUSY and
 * nothing written when there is one. A lease taken at any moment is either
 * seen here or taken after the update (LMDB runs one write transaction at
 * a time): the eviction's commit point. */
int pt_index_update_unleased(pt_index *idx, const char *key, pid_t except, pt_entry_fn fn, void *arg,
                             const char *const *counters);

/* Leases: a process that uses a venv holds one, and a venv with a live lease
 * is never evicted. A lease names the process by pid and start time
 * (pt_proc_start_time), so a reused pid does not keep it. */
typedef struct pt_lease {
    uint64_t pid_start;     /* start time of pid, clock ticks after boot */
    int64_t since;          /* epoch seconds */
    char holder[65];        /* who took it: a service id, or "" */
} pt_lease;

/* Add (or refresh) the lease of pid on key. */
int pt_index_lease_add(pt_index *idx, const char *key, pid_t pid, const pt_lease *lease);
/* Drop the lease of pid on key; -ENOENT if there is none. */
int pt_index_lease_del(pt_index *idx, const char *key, pid_t pid);
/* Count the live leases on key (*live), deleting stale ones (dead or reused
 * pids) in the same write transaction. */
int pt_index_lease_live(pt_index *idx, const char *key, unsigned *live);
/* Call fn for every lease (all keys, key order). */
typedef int (*pt_each_lease_fn)(const char *key, pid_t pid, const pt_lease *l, void *arg);
int pt_index_each_lease(pt_index *idx, pt_each_lease_fn fn, void *arg);

/* Add delta to a named counter in its own transaction. */
int pt_index_count(pt_index *idx, const char *name, int64_t delta);
int pt_index_counters(pt_index *idx, pt_counters *out);

/* Call fn for every entry (read transaction, key order). fn returns 0 to go on,
 * non-zero to stop (that value is returned). */
typedef int (*pt_each_entry_fn)(const char *key, const pt_entry *e, void *arg);
int pt_index_each_entry(pt_index *idx, pt_each_entry_fn fn, void *arg);

/* Call fn for every ready entry, least recently used first (atime order). */
int pt_index_each_lru(pt_index *idx, pt_each_entry_fn fn, void *arg);


/* Services. put overwrites; get returns -ENOENT if unknown. */
int pt_index_service_put(pt_index *idx, const pt_service *s);
int pt_index_service_get(pt_index *idx, const char *id, pt_service *out);
int pt_index_service_del(pt_index *idx, const char *id);
typedef int (*pt_each_service_fn)(const pt_service *s, void *arg);
int pt_index_each_service(pt_index *idx, pt_each_service_fn fn, void *arg);

/* Users (`pactown run --user NAME`, the API's user_id): each has a uid of
 * its own, allocated once and kept, so the same user has the same uid after
 * a restart (systemd's DynamicUser is the model: no /etc/passwd entry). */
#define PT_USER_VERSION 1
typedef struct pt_user {
    uint32_t version;       /* PT_USER_VERSION */
    uint32_t uid;           /* also the user's gid */
    int64_t created;        /* epoch seconds */
} pt_user;

/* The record of user name (1..64 bytes), made on first use with the lowest
 * uid of [lo, hi] that no other user holds and taken(uid, arg) (may be NULL)
 * does not refuse (e.g. a uid /etc/passwd names), all in one write
 * transaction. *created (may be NULL): it was new. Errors: -EINVAL (lo > hi,
 * or a range wider than 2^24), -ENOSPC (every uid of the range is held, or
 * the map is full), other -errno of LMDB. */
int pt_index_user_uid(pt_index *idx, const char *name, uint32_t lo, uint32_t hi, bool (*taken)(uint32_t, void *),
                      void *arg, pt_user *out, bool *created);

/* A user's events of one kind ('s' a service started, 'r' an API request)
 * in a sliding window: in one write transaction, the events of user older
 * than window_us before now_us are deleted, the others counted (*count),
 * and unless max > 0 and *count >= max a new one is recorded at now_us
 * (*recorded). Times in microseconds. Errors: -EINVAL (user empty or
 * longer than 64), -errno of LMDB. */
int pt_index_user_event(pt_index *idx, char kind, const char *user, int64_t now_us, int64_t window_us, long max,
                        long *count, bool *recorded);

/* The record of user name; -ENOENT if it has none yet. */
int pt_index_user_get(pt_index *idx, const char *name, pt_user *out);

/* The store's disk use, as last measured (pactown/usage.h): kept in meta
 * ("usage") for `cache stats`, <mount>/stats and the eviction policy. */
#define PT_STORE_DISK_VERSION 1
typedef struct pt_store_disk {
    uint32_t version;       /* PT_STORE_DISK_VERSION */
    uint32_t reserved;
    uint64_t disk_bytes;    /* the whole store, each inode once */
    uint64_t cache_bytes;   /* of which the uv cache's own */
    uint64_t shared_files;  /* files of the uv cache that venvs link */
    int64_t measured_ms;    /* epoch ms */
} pt_store_disk;

/* One venv's measure for pt_index_usage_put. */
typedef struct pt_alone {
    char key[33];
    uint64_t alone_bytes;
} pt_alone;

/* Record a measure in one write transaction: the store's figures, and
 * alone_bytes of each of the n entries of v that is still ready (others are
 * left as they are). Returns 0 or -errno. */
int pt_index_usage_put(pt_index *idx, const pt_store_disk *disk, const pt_alone *v, size_t n);
/* The store's figures last recorded; -ENOENT if never measured. */
int pt_index_usage_get(pt_index *idx, pt_store_disk *out);

/* meta: opaque values by name. get returns a malloc'd NUL-terminated copy. */
int pt_index_meta_get(pt_index *idx, const char *name, char **out, size_t *len);
int pt_index_meta_put(pt_index *idx, const char *name, const void *val, size_t len);

/* Readable name of a state: "none", "building", "ready", "failed". */
const char *pt_state_name(uint32_t state);

/* A run's lease and its use in one write transaction (one commit: a hit of
 * `pactown run --prepare` costs no other): the leases of key whose process is
 * gone (kill(2) with signal 0: ESRCH) are deleted, pid's lease on key is
 * added (or refreshed) as pt_index_lease_add does, and, when use is true and
 * key's entry is READY in this transaction, a use is counted as
 * cli_note_use counts it: the entry's hits + 1, its last_access_ms = now_ms
 * (epoch milliseconds; its atime row moved with it) and the counter "hits"
 * + 1. key: 32 hex digits; lease: not retained. *used (may be NULL): true
 * when the use was counted (false when not asked, or the entry is not ready:
 * never built, evicted, or being built again). Errors: -EINVAL (key not 32
 * bytes, pid <= 0, lease NULL), -errno of LMDB (-ENOSPC map full, -EIO);
 * nothing is written then. */
int pt_index_lease_use(pt_index *idx, const char *key, pid_t pid, const pt_lease *lease, bool use, int64_t now_ms,
                       bool *used);

/* A service's record and its lease in one write transaction: s is stored as
 * pt_index_service_put stores it (version set), then, when add > 0, the
 * lease of pid add on s->key is added (lease: its record, not retained), and
 * when drop > 0 (and not add) the lease of pid drop on s->key is deleted
 * (none there is no error). A run hands its lease to the service it
 * started (add: the service's pid, drop: the run's own) and gives it up
 * when the service ends (add 0, drop: the service's pid; s with pid 0).
 * Errors: -EINVAL (s->key not 32 bytes, add or drop < 0, add > 0 without
 * lease), -errno of LMDB; nothing is written then. */
int pt_index_service_lease(pt_index *idx, const pt_service *s, pid_t add, const pt_lease *lease, pid_t drop);

#endif
