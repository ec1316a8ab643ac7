/* stats.c — cache figures from the index, and their JSON form (jansson). */
#include "pactown/stats.h"
#include "pactown/warm.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "pactown/proc.h"

static int add_entry(const char *key, const pt_entry *e, void *arg)
{
    (void)key;
    pt_stats *s = arg;
    s->registered++;
    switch (e->state) {
    case PT_STATE_READY:
        s->entries++;
        s->bytes += e->bytes;
        s->alone_bytes += e->alone_bytes;
        if (e->last_access_ms > 0 && (s->oldest_access == 0 || e->last_access_ms / 1000 < s->oldest_access))
            s->oldest_access = e->last_access_ms / 1000;
        break;
    case PT_STATE_BUILDING: s->building++; break;
    case PT_STATE_FAILED: s->failed++; break;
    default: break;
    }
    return 0;
}

/* leases come in key order: count each key with a live lease once */
struct leased { pt_stats *s; char last[33]; };
static int add_lease(const char *key, pid_t pid, const pt_lease *l, void *arg)
{
    struct leased *c = arg;
    if (strcmp(c->last, key) != 0 && pt_holder_alive(pid, l->pid_start)) {
        c->s->leased++;
        snprintf(c->last, sizeof c->last, "%s", key);
    }
    return 0;
}

int pt_stats_collect(pt_index *idx, pt_stats *out)
{
    memset(out, 0, sizeof *out);
    out->waiting = -1;
    int rc = pt_index_each_entry(idx, add_entry, out);
    struct leased c = { .s = out };
    if (rc == 0)
        rc = pt_index_each_lease(idx, add_lease, &c);
    if (rc)
        return rc;
    pt_store_disk d;
    if ((rc = pt_index_usage_get(idx, &d)) == 0) {
        out->disk_bytes = d.disk_bytes;
        out->uv_cache_bytes = d.cache_bytes;
        out->shared_files = d.shared_files;
        out->measured_ms = d.measured_ms;
    } else if (rc != -ENOENT) {
        return rc;
    }
    return pt_index_counters(idx, &out->counters);
}

static int sum_warm(const pt_warm_info *w, void *arg)
{
    pt_stats *s = arg;
    s->warm_processes++;
    s->warm_rss_bytes += w->rss_bytes;
    return 0;
}

void pt_stats_add_warm(pt_stats *s, const char *cache_dir)
{
    s->warm_processes = s->warm_rss_bytes = 0;
    pt_warm_each(cache_dir, sum_warm, s);
}

char *pt_stats_json(const pt_stats *s, int64_t now)
{
    uint64_t lookups = s->counters.hits + s->counters.misses;
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:o, s:o, s:I, s:o}",
        "entries", (json_int_t)s->entries,
        "building", (json_int_t)s->building,
        "failed", (json_int_t)s->failed,
        "registered", (json_int_t)s->registered,
        "size", (json_int_t)s->bytes,
        "hits", (json_int_t)s->counters.hits,
        "misses", (json_int_t)s->counters.misses,
        "hit_rate", lookups ? json_real((double)s->counters.hits / (double)lookups) : json_null(),
        "builds", (json_int_t)s->counters.builds,
        "build_failures", (json_int_t)s->counters.build_failures,
        "evictions", (json_int_t)s->counters.evictions,
        "oldest_access", s->oldest_access ? json_integer(s->oldest_access) : json_null(),
        "oldest_age_s", s->oldest_access ? json_integer(now - s->oldest_access) : json_null(),
        "leased", (json_int_t)s->leased,
        "waiting", s->waiting >= 0 ? json_integer(s->waiting) : json_null());
    /* the registry (pactown/registry.h): how venvs came, and pushes */
    if (o && json_object_set_new(o, "registry", json_pack("{s:I, s:I, s:I, s:I, s:I}",
            "pulled", (json_int_t)s->counters.pulled,
            "built", (json_int_t)(s->counters.builds >= s->counters.pulled ? s->counters.builds - s->counters.pulled : 0),
            "pull_failures", (json_int_t)s->counters.pull_failures,
            "pushed", (json_int_t)s->counters.pushed,
            "push_failures", (json_int_t)s->counters.push_failures)) != 0) {
        json_decref(o);
        o = NULL;
    }
    /* the warm processes (pactown/warm.h): their resident memory, shared with their children */
    if (o && json_object_set_new(o, "warm", json_pack("{s:I, s:I}", "processes", (json_int_t)s->warm_processes,
                                                      "rss_bytes", (json_int_t)s->warm_rss_bytes)) != 0) {
        json_decref(o);
        o = NULL;
    }
    /* the disk the store really takes (pactown/usage.h), as last measured */
    if (o && json_object_update_missing_new(o, json_pack("{s:o, s:I, s:o, s:o, s:o}",
            "disk_bytes", s->measured_ms ? json_integer((json_int_t)s->disk_bytes) : json_null(),
            "alone_bytes", (json_int_t)s->alone_bytes,
            "uv_cache_bytes", s->measured_ms ? json_integer((json_int_t)s->uv_cache_bytes) : json_null(),
            "shared_files", s->measured_ms ? json_integer((json_int_t)s->shared_files) : json_null(),
            "disk_measured", s->measured_ms ? json_integer(s->measured_ms / 1000) : json_null())) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (!o)
        return NULL;
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        return NULL;
    }
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    return withnl;
}
