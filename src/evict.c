/* evict.c — the eviction policy (pure) and the reading of its candidates. */
#include "pactown/evict.h"
#include "pactown/vec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pt_limits_from_config(const pt_config *c, pt_limits *out)
{
    out->max_entries = c->max_entries;
    out->max_age_hours = c->max_age_hours;
    out->max_bytes = c->max_bytes > 0 ? (uint64_t)c->max_bytes : 0;
    out->min_idle_seconds = c->min_idle_seconds;
}

size_t pt_evict_plan(pt_candidate *c, size_t n, const pt_limits *lim, int64_t now_ms, uint64_t used_bytes)
{
    uint64_t kept_bytes = 0;
    size_t kept = n, victims = 0;
    for (size_t i = 0; i < n; i++) {
        kept_bytes += c[i].bytes;
        c[i].victim = false;
        c[i].reason = NULL;
    }
    if (used_bytes)
        kept_bytes = used_bytes;
    /* max_bytes only where it can be met: evicting every venv it may take
     * must bring the store under it (the rest is leased or recent venvs,
     * and what no eviction frees: a killed build's leftovers, uv's own
     * metadata), else it would empty the cache for nothing */
    uint64_t freeable = 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].leases == 0 && now_ms - c[i].last_access_ms >= (int64_t)lim->min_idle_seconds * 1000)
            freeable += c[i].bytes;
    bool bytes_reachable = lim->max_bytes > 0 && kept_bytes - (freeable < kept_bytes ? freeable : kept_bytes) <= lim->max_bytes;
    for (size_t i = 0; i < n; i++) {
        int64_t idle_ms = now_ms - c[i].last_access_ms;
        if (c[i].leases > 0 || idle_ms < (int64_t)lim->min_idle_seconds * 1000)
            continue;
        const char *reason = NULL;
        if (lim->max_age_hours > 0 && idle_ms >= (int64_t)lim->max_age_hours * 3600 * 1000)
            reason = "max_age_hours";
        else if (lim->max_entries > 0 && kept > (size_t)lim->max_entries)
            reason = "max_entries";
        else if (bytes_reachable && kept_bytes > lim->max_bytes)
            reason = "max_bytes";
        if (reason) {
            c[i].victim = true;
            c[i].reason = reason;
            kept--;
            kept_bytes -= c[i].bytes < kept_bytes ? c[i].bytes : kept_bytes;
            victims++;
        }
    }
    return victims;
}

struct collect {
    pt_candidate *c;
    size_t n, cap;
};

static int collect_one(const char *key, const pt_entry *e, void *arg)
{
    struct collect *col = arg;
    pt_candidate *p = pt_grow(col->c, &col->cap, col->n, sizeof *p);
    if (!p)
        return -ENOMEM;
    col->c = p;
    pt_candidate *c = &col->c[col->n++];
    memset(c, 0, sizeof *c);
    memcpy(c->key, key, sizeof c->key - 1);
    c->last_access_ms = e->last_access_ms;
    c->bytes = e->alone_bytes ? e->alone_bytes : e->bytes; /* what evicting it frees, once measured */
    return 0;
}

int pt_evict_candidates(pt_index *idx, pt_candidate **out, size_t *n)
{
    struct collect col = { 0 };
    int rc = pt_index_each_lru(idx, collect_one, &col);
    /* leases after the walk: counting them may write (stale leases go) */
    for (size_t i = 0; rc == 0 && i < col.n; i++)
        rc = pt_index_lease_live(idx, col.c[i].key, &col.c[i].leases);
    if (rc) {
        free(col.c);
        return rc;
    }
    *out = col.c;
    *n = col.n;
    return 0;
}
