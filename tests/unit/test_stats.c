/* test_stats.c — cache figures from the index and their JSON text, parsed
 * back with jansson. Each test runs in its own mkdtemp directory. */
#include <criterion/criterion.h>

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/proc.h"
#include "pactown/stats.h"
#include "testutil.h"

static char tmpdir[PATH_MAX];
static pt_index *idx;
static json_t *doc;
static char *text;

static void setup(void)
{
    tu_tmpdir(tmpdir, "stats");
    char dir[PATH_MAX];
    FMT(dir, "%s/index", tmpdir);
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_index_open(dir, &idx, &err);
    cr_assert_eq(rc, 0, "pt_index_open: %d %s", rc, err.msg);
}

static void teardown(void)
{
    json_decref(doc);
    doc = NULL;
    free(text);
    text = NULL;
    pt_index_close(idx);
    idx = NULL;
    tu_rmtree(tmpdir);
}

TestSuite(stats, .init = setup, .fini = teardown);

struct fill {
    uint32_t state;
    uint64_t bytes;
    int64_t last_access;
};

static int fill_fn(pt_entry *e, void *arg)
{
    const struct fill *f = arg;
    e->state = f->state;
    e->bytes = f->bytes;
    e->last_access_ms = f->last_access * 1000;
    return 0;
}

static void put(const char *key, uint32_t state, uint64_t bytes, int64_t last_access)
{
    struct fill f = { state, bytes, last_access };
    cr_assert_eq(pt_index_update(idx, key, fill_fn, &f, NULL), 0);
}

/* Render s as JSON, check the text's shape and parse it into doc. */
static void render(const pt_stats *s, int64_t now)
{
    text = pt_stats_json(s, now);
    cr_assert_not_null(text);
    size_t n = strlen(text);
    cr_assert_gt(n, 0);
    cr_assert_eq(text[n - 1], '\n', "JSON text must end in a newline");
    json_error_t jerr;
    doc = json_loads(text, 0, &jerr);
    cr_assert_not_null(doc, "not JSON: %s (line %d)\n%s", jerr.text, jerr.line, text);
    cr_assert(json_is_object(doc));
    cr_assert_eq(json_object_size(doc), 22, "fields: %s", text);
}

static json_int_t int_field(const char *name)
{
    json_t *v = json_object_get(doc, name);
    cr_assert_not_null(v, "no field %s in %s", name, text);
    cr_assert(json_is_integer(v), "%s is not an integer in %s", name, text);
    return json_integer_value(v);
}

static void null_field(const char *name)
{
    json_t *v = json_object_get(doc, name);
    cr_assert_not_null(v, "no field %s in %s", name, text);
    cr_assert(json_is_null(v), "%s should be null in %s", name, text);
}

Test(stats, empty_index)
{
    pt_stats s;
    memset(&s, 0xff, sizeof s);
    cr_assert_eq(pt_stats_collect(idx, &s), 0);
    cr_assert_eq(s.entries, 0);
    cr_assert_eq(s.building, 0);
    cr_assert_eq(s.failed, 0);
    cr_assert_eq(s.registered, 0);
    cr_assert_eq(s.bytes, 0);
    cr_assert_eq(s.oldest_access, 0);
    cr_assert_eq(s.counters.hits, 0);
    cr_assert_eq(s.leased, 0);
    cr_assert_eq(s.waiting, -1, "the index does not know the daemon's waiting requests");
    render(&s, 1700000000);
    null_field("waiting");
    cr_assert_eq(int_field("entries"), 0);
    cr_assert_eq(int_field("leased"), 0);
    cr_assert_eq(int_field("registered"), 0);
    null_field("hit_rate");
    null_field("oldest_access");
    null_field("oldest_age_s");
    null_field("disk_bytes"); /* never measured: unknown, not 0 */
    null_field("disk_measured");
}

/* The daemon's measure of the store (pactown/usage.h) is what stats show
 * as its disk, beside the venvs' apparent size; what a venv holds alone is
 * kept for ready venvs only. */
Test(stats, disk_figures_from_the_measure)
{
    put("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", PT_STATE_READY, 5000000, 1700000000);
    put("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", PT_STATE_READY, 6000000, 1700000001);
    put("cccccccccccccccccccccccccccccccc", PT_STATE_FAILED, 0, 0);
    pt_store_disk d = { .version = PT_STORE_DISK_VERSION, .disk_bytes = 7340032, .cache_bytes = 1048576,
                        .shared_files = 321, .measured_ms = 1700000100123 };
    pt_alone v[] = { { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 409600 }, { "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 1228800 },
                     { "cccccccccccccccccccccccccccccccc", 99 }, { "dddddddddddddddddddddddddddddddd", 98 } };
    cr_assert_eq(pt_index_usage_put(idx, &d, v, 4), 0);
    pt_entry e;
    cr_assert_eq(pt_index_entry(idx, "cccccccccccccccccccccccccccccccc", &e), 0);
    cr_assert_eq(e.alone_bytes, 0, "a venv that is not ready holds nothing");
    cr_assert_eq(pt_index_entry(idx, "dddddddddddddddddddddddddddddddd", &e), -ENOENT, "no entry is made");
    pt_stats s;
    cr_assert_eq(pt_stats_collect(idx, &s), 0);
    render(&s, 1700000200);
    cr_assert_eq(int_field("size"), 11000000, "apparent: the venvs' files, each counted whole");
    cr_assert_eq(int_field("alone_bytes"), 1638400);
    cr_assert_eq(int_field("disk_bytes"), 7340032);
    cr_assert_eq(int_field("uv_cache_bytes"), 1048576);
    cr_assert_eq(int_field("shared_files"), 321);
    cr_assert_eq(int_field("disk_measured"), 1700000100);
}

/* the daemon fills in its waiting requests; the mount's stats show them */
Test(stats, waiting_from_the_daemon)
{
    pt_stats s;
    cr_assert_eq(pt_stats_collect(idx, &s), 0);
    s.waiting = 7;
    render(&s, 1700000000);
    cr_assert_eq(int_field("waiting"), 7);
}

Test(stats, collect_over_states_and_json)
{
    put("00000000000000000000000000000001", PT_STATE_READY, 1000, 1700000500);
    put("00000000000000000000000000000002", PT_STATE_READY, 2500, 1700000100); /* least recently used */
    put("00000000000000000000000000000003", PT_STATE_READY, 40, 1700000900);
    put("00000000000000000000000000000004", PT_STATE_BUILDING, 777, 10);  /* not ready: no bytes, no age */
    put("00000000000000000000000000000005", PT_STATE_FAILED, 888, 20);
    put("00000000000000000000000000000006", PT_STATE_FAILED, 0, 0);
    put("00000000000000000000000000000007", PT_STATE_NONE, 999, 5);
    cr_assert_eq(pt_index_count(idx, "hits", 3), 0);
    cr_assert_eq(pt_index_count(idx, "misses", 1), 0);
    cr_assert_eq(pt_index_count(idx, "builds", 6), 0);
    cr_assert_eq(pt_index_count(idx, "build_failures", 2), 0);
    cr_assert_eq(pt_index_count(idx, "evictions", 4), 0);

    pt_stats s;
    cr_assert_eq(pt_stats_collect(idx, &s), 0);
    cr_assert_eq(s.entries, 3);
    cr_assert_eq(s.building, 1);
    cr_assert_eq(s.failed, 2);
    cr_assert_eq(s.registered, 7);
    cr_assert_eq(s.bytes, 3540);
    cr_assert_eq(s.oldest_access, 1700000100);
    cr_assert_eq(s.counters.hits, 3);
    cr_assert_eq(s.counters.misses, 1);
    cr_assert_eq(s.counters.builds, 6);
    cr_assert_eq(s.counters.build_failures, 2);
    cr_assert_eq(s.counters.evictions, 4);

    render(&s, 1700001000);
    cr_assert_eq(int_field("entries"), 3);
    cr_assert_eq(int_field("building"), 1);
    cr_assert_eq(int_field("failed"), 2);
    cr_assert_eq(int_field("registered"), 7);
    cr_assert_eq(int_field("size"), 3540);
    cr_assert_eq(int_field("hits"), 3);
    cr_assert_eq(int_field("misses"), 1);
    json_t *rate = json_object_get(doc, "hit_rate");
    cr_assert(json_is_real(rate), "hit_rate not a number: %s", text);
    cr_assert_float_eq(json_real_value(rate), 0.75, 1e-12);
    cr_assert_eq(int_field("builds"), 6);
    cr_assert_eq(int_field("build_failures"), 2);
    cr_assert_eq(int_field("evictions"), 4);
    cr_assert_eq(int_field("oldest_access"), 1700000100);
    cr_assert_eq(int_field("oldest_age_s"), 900);
}

/* leased counts venvs with a live lease once, whatever their number of
 * leases; leases of dead processes do not count */
Test(stats, leased_counts_live_leases_per_venv)
{
    put("00000000000000000000000000000001", PT_STATE_READY, 10, 1700000000);
    put("00000000000000000000000000000002", PT_STATE_READY, 10, 1700000000);
    pt_lease mine = { .since = 1700000000 };
    cr_assert_eq(pt_proc_start_time(getpid(), &mine.pid_start), 0);
    cr_assert_eq(pt_index_lease_add(idx, "00000000000000000000000000000001", getpid(), &mine), 0);
    pt_lease parent = { .since = 1700000000 };
    cr_assert_eq(pt_proc_start_time(getppid(), &parent.pid_start), 0);
    cr_assert_eq(pt_index_lease_add(idx, "00000000000000000000000000000001", getppid(), &parent), 0);
    int release;
    pid_t kid = tu_held_child(&release); /* alive until its start time is read: a zombie has none */
    pt_lease dead = { .since = 1700000000 };
    cr_assert_eq(pt_proc_start_time(kid, &dead.pid_start), 0);
    tu_release_reap(kid, release);
    cr_assert_eq(pt_index_lease_add(idx, "00000000000000000000000000000002", kid, &dead), 0);
    pt_stats s;
    cr_assert_eq(pt_stats_collect(idx, &s), 0);
    cr_assert_eq(s.leased, 1);
    render(&s, 1700000000);
    cr_assert_eq(int_field("leased"), 1);
}

Test(stats, hit_rate_null_without_lookups)
{
    put("00000000000000000000000000000001", PT_STATE_READY, 10, 1700000000);
    cr_assert_eq(pt_index_count(idx, "builds", 1), 0);
    pt_stats s;
    cr_assert_eq(pt_stats_collect(idx, &s), 0);
    render(&s, 1700000060);
    null_field("hit_rate");
    cr_assert_eq(int_field("hits"), 0);
    cr_assert_eq(int_field("misses"), 0);
    cr_assert_eq(int_field("builds"), 1);
    cr_assert_eq(int_field("oldest_access"), 1700000000);
    cr_assert_eq(int_field("oldest_age_s"), 60);
}

Test(stats, registry_counters)
{
    /* five builds started, two of them pulls; one pull failed (then built), three pushes, one failed */
    cr_assert_eq(pt_index_count(idx, "builds", 5), 0);
    cr_assert_eq(pt_index_count(idx, "pulled", 2), 0);
    cr_assert_eq(pt_index_count(idx, "pull_failures", 1), 0);
    cr_assert_eq(pt_index_count(idx, "pushed", 3), 0);
    cr_assert_eq(pt_index_count(idx, "push_failures", 1), 0);
    pt_stats s;
    cr_assert_eq(pt_stats_collect(idx, &s), 0);
    render(&s, 1700000060);
    json_t *r = json_object_get(doc, "registry");
    cr_assert(json_is_object(r), "no registry object in %s", text);
    cr_assert_eq(json_integer_value(json_object_get(r, "pulled")), 2);
    cr_assert_eq(json_integer_value(json_object_get(r, "built")), 3);
    cr_assert_eq(json_integer_value(json_object_get(r, "pull_failures")), 1);
    cr_assert_eq(json_integer_value(json_object_get(r, "pushed")), 3);
    cr_assert_eq(json_integer_value(json_object_get(r, "push_failures")), 1);
}

Test(stats, warm_processes)
{
    pt_stats s;
    cr_assert_eq(pt_stats_collect(idx, &s), 0);
    render(&s, 1700000060);
    json_t *w = json_object_get(doc, "warm");
    cr_assert(json_is_object(w), "no warm object in %s", text);
    cr_assert_eq(json_integer_value(json_object_get(w, "processes")), 0, "none counted yet: %s", text);
    json_decref(doc);
    doc = NULL;
    free(text);
    text = NULL;
    /* a cache without a warm directory: none */
    pt_stats_add_warm(&s, "/nonexistent-pactown-cache");
    cr_assert_eq(s.warm_processes, 0);
    s.warm_processes = 2;
    s.warm_rss_bytes = 3u << 20;
    render(&s, 1700000060);
    w = json_object_get(doc, "warm");
    cr_assert_eq(json_integer_value(json_object_get(w, "processes")), 2);
    cr_assert_eq(json_integer_value(json_object_get(w, "rss_bytes")), 3 << 20);
}

Test(stats, hit_rate_edges)
{
    pt_stats s = { 0 };
    s.counters.misses = 4;
    render(&s, 0);
    cr_assert_float_eq(json_real_value(json_object_get(doc, "hit_rate")), 0.0, 1e-12);
    json_decref(doc);
    doc = NULL;
    free(text);
    text = NULL;
    s.counters.hits = 5;
    s.counters.misses = 0;
    render(&s, 0);
    cr_assert_float_eq(json_real_value(json_object_get(doc, "hit_rate")), 1.0, 1e-12);
}
