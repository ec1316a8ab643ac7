/* pactown/stats.h — cache figures, as shown by <mount>/stats and
 * `pactown cache stats --json`. */
#ifndef PACTOWN_STATS_H
#define PACTOWN_STATS_H

#include <stdint.h>

#include "pactown/index.h"

typedef struct pt_stats {
    uint64_t entries;        /* ready venvs */
    uint64_t building;       /* builds running */
    uint64_t failed;         /* last build failed */
    uint64_t registered;     /* entries known in any state */
    uint64_t bytes;          /* total apparent size of ready venvs */
    uint64_t alone_bytes;    /* sum of what each ready venv holds alone (pactown/usage.h) */
    uint64_t disk_bytes;     /* the disk the store takes, each inode once, uv cache included */
    uint64_t uv_cache_bytes; /* of which the uv cache's own (wheels no venv links, uv's metadata) */
    uint64_t shared_files;   /* files of the uv cache that venvs link */
    int64_t measured_ms;     /* when the disk figures were measured (epoch ms), 0 never */
    pt_counters counters;    /* hits, misses, builds, build_failures, evictions */
    int64_t oldest_access;   /* epoch seconds of the least recently used ready venv, 0 if none */
    uint64_t leased;         /* venvs with at least one live lease */
    int64_t waiting;         /* requests waiting in the daemon on a build or an
                              * eviction: the mount's stats only, -1 elsewhere */
    uint64_t warm_processes; /* warm processes (pactown/warm.h), once pt_stats_add_warm counted them */
    uint64_t warm_rss_bytes; /* their resident memory (shared with their children) */
} pt_stats;

/* Gather the figures from the index (waiting is -1). Returns 0 or -errno. */
int pt_stats_collect(pt_index *idx, pt_stats *out);

/* Count the warm processes of <cache_dir>/warm (pactown/warm.h
 * pt_warm_each: their pid files and /proc) into s->warm_*. */
void pt_stats_add_warm(pt_stats *s, const char *cache_dir);

/* The figures as a JSON object (jansson), malloc'd, NUL-terminated, ending in
 * a newline; now is the wall-clock time used for ages. Caller frees. NULL on
 * out-of-memory. Fields: entries, building, failed, registered, size (apparent
 * bytes of the ready venvs), hits,
 * misses, hit_rate (0..1, null before any lookup), builds, build_failures,
 * evictions, oldest_access (epoch s or null), oldest_age_s (or null), leased, waiting (null when -1),
 * disk_bytes (the store's disk, uv cache included; null before the daemon
 * measured it), alone_bytes, uv_cache_bytes, shared_files (or null), disk_measured (epoch s or null), registry {pulled, built, pull_failures,
 * pushed, push_failures}, warm {processes, rss_bytes}. */
char *pt_stats_json(const pt_stats *s, int64_t now);

#endif
