/* pactown/evict.h — the eviction policy: which ready venvs to remove.
 *
 * Limits (settings): max_entries, max_age_hours, max_bytes (0 = no limit
 * each) and min_idle_seconds. Candidates come in least-recently-used order;
 * a venv with a live lease is never a victim, nor one used less than
 * min_idle_seconds ago. Oldest first, a candidate is a victim when it is
 * older than max_age_hours, or when more than max_entries venvs / more than
 * max_bytes would otherwise stay. Bytes are disk: the store's real use, and
 * what evicting each venv frees (the disk it holds alone, pactown/usage.h);
 * max_bytes evicts nothing when evicting every candidate it may take would
 * still leave the store over it.
 * Pure: no I/O, no clock.
 */
#ifndef PACTOWN_EVICT_H
#define PACTOWN_EVICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pactown/config.h"
#include "pactown/index.h"

typedef struct pt_limits {
    long max_entries;       /* ready venvs kept at most; 0 = no limit */
    long max_age_hours;     /* unused this long: evicted; 0 = no limit */
    uint64_t max_bytes;     /* total size kept at most, bytes; 0 = no limit */
    long min_idle_seconds;  /* used more recently than this: never evicted */
} pt_limits;

typedef struct pt_candidate {
    char key[33];
    int64_t last_access_ms; /* epoch ms */
    uint64_t bytes;         /* what evicting it frees: alone_bytes once measured, else its apparent size */
    unsigned leases;        /* live leases */
    bool victim;            /* out */
    const char *reason;     /* out, static: "max_age_hours", "max_entries" or "max_bytes" */
} pt_candidate;

/* The limits in a configuration. */
void pt_limits_from_config(const pt_config *c, pt_limits *out);

/* Mark the victims among c[0..n), which must be in LRU order (oldest first).
 * now_ms: epoch ms. used_bytes: the store's disk use (pt_store_disk), held
 * against max_bytes; 0 = the sum of the candidates' bytes. Returns the
 * number of victims. */
size_t pt_evict_plan(pt_candidate *c, size_t n, const pt_limits *lim, int64_t now_ms, uint64_t used_bytes);

/* Read the candidates from the index: every ready entry in LRU order, with
 * its live leases counted (stale leases are cleared on the way).
 * *out is malloc'd (caller frees), *n its length. Returns 0 or -errno. */
int pt_evict_candidates(pt_index *idx, pt_candidate **out, size_t *n);

#endif
