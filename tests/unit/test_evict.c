/* test_evict.c — the eviction policy (victim order, leases, limits) and the
 * LRU order and leases of the index it reads. */
#include <criterion/criterion.h>

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/evict.h"
#include "pactown/proc.h"
#include "testutil.h"

#define HOUR_MS (3600LL * 1000)
#define NOW_MS (1700000000LL * 1000)

static void cand(pt_candidate *c, const char *key, int64_t age_ms, uint64_t bytes, unsigned leases)
{
    memset(c, 0, sizeof *c);
    snprintf(c->key, sizeof c->key, "%s", key);
    c->last_access_ms = NOW_MS - age_ms;
    c->bytes = bytes;
    c->leases = leases;
}

/* five venvs, oldest first, limit 3: the two oldest go, for max_entries */
Test(evict_plan, max_entries_evicts_least_recently_used)
{
    pt_candidate c[5];
    for (int i = 0; i < 5; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        cand(&c[i], k, (5 - i) * HOUR_MS / 10, 100, 0);
    }
    pt_limits lim = { .max_entries = 3 };
    cr_assert_eq(pt_evict_plan(c, 5, &lim, NOW_MS, 0), 2);
    cr_assert(c[0].victim && c[1].victim);
    cr_assert(!c[2].victim && !c[3].victim && !c[4].victim);
    cr_assert_str_eq(c[0].reason, "max_entries");
}

/* a leased venv stays whatever its age; the next oldest goes instead, and the
 * leased one still counts towards the limit */
Test(evict_plan, leased_never_evicted)
{
    pt_candidate c[4];
    cand(&c[0], "leased", 100 * HOUR_MS, 100, 1);
    cand(&c[1], "b", 3 * HOUR_MS, 100, 0);
    cand(&c[2], "c", 2 * HOUR_MS, 100, 0);
    cand(&c[3], "d", 1 * HOUR_MS, 100, 0);
    pt_limits lim = { .max_entries = 2, .max_age_hours = 24 };
    cr_assert_eq(pt_evict_plan(c, 4, &lim, NOW_MS, 0), 2);
    cr_assert(!c[0].victim);
    cr_assert(c[1].victim && c[2].victim && !c[3].victim);
}

/* nothing used within min_idle_seconds is a victim, even over the limit */
Test(evict_plan, min_idle_protects_recent_use)
{
    pt_candidate c[3];
    cand(&c[0], "a", 10 * 60 * 1000, 100, 0); /* 10 min */
    cand(&c[1], "b", 2 * 60 * 1000, 100, 0);  /* 2 min */
    cand(&c[2], "c", 1 * 60 * 1000, 100, 0);  /* 1 min */
    pt_limits lim = { .max_entries = 1, .min_idle_seconds = 300 };
    cr_assert_eq(pt_evict_plan(c, 3, &lim, NOW_MS, 0), 1);
    cr_assert(c[0].victim && !c[1].victim && !c[2].victim);
}

/* max_age_hours evicts every venv unused that long, within the other limits */
Test(evict_plan, max_age)
{
    pt_candidate c[3];
    cand(&c[0], "a", 30 * HOUR_MS, 100, 0);
    cand(&c[1], "b", 25 * HOUR_MS, 100, 0);
    cand(&c[2], "c", 23 * HOUR_MS, 100, 0);
    pt_limits lim = { .max_age_hours = 24 };
    cr_assert_eq(pt_evict_plan(c, 3, &lim, NOW_MS, 0), 2);
    cr_assert(c[0].victim && c[1].victim && !c[2].victim);
    cr_assert_str_eq(c[1].reason, "max_age_hours");
}

/* max_bytes: the oldest go until the rest fits */
Test(evict_plan, max_bytes)
{
    pt_candidate c[3];
    cand(&c[0], "a", 3 * HOUR_MS, 500, 0);
    cand(&c[1], "b", 2 * HOUR_MS, 300, 0);
    cand(&c[2], "c", 1 * HOUR_MS, 400, 0);
    pt_limits lim = { .max_bytes = 800 };
    cr_assert_eq(pt_evict_plan(c, 3, &lim, NOW_MS, 0), 1);
    cr_assert(c[0].victim && !c[1].victim && !c[2].victim);
    cr_assert_str_eq(c[0].reason, "max_bytes");
    lim.max_bytes = 399;
    cr_assert_eq(pt_evict_plan(c, 3, &lim, NOW_MS, 0), 3);
}

/* max_bytes against the store's disk (used_bytes), each victim freeing what
 * it holds alone: the oldest go until the store fits; and none goes when
 * even all of them could not make it fit (the rest is shared, the cache's,
 * or a leased venv's) */
Test(evict_plan, max_bytes_against_the_disk)
{
    pt_candidate c[4];
    cand(&c[0], "a", 4 * HOUR_MS, 100, 0);
    cand(&c[1], "b", 3 * HOUR_MS, 100, 0);
    cand(&c[2], "c", 2 * HOUR_MS, 100, 0);
    cand(&c[3], "d", 1 * HOUR_MS, 100, 2); /* leased */
    pt_limits lim = { .max_bytes = 500 };
    cr_assert_eq(pt_evict_plan(c, 4, &lim, NOW_MS, 700), 2, "700 - a - b = 500");
    cr_assert(c[0].victim && c[1].victim && !c[2].victim && !c[3].victim);
    cr_assert_str_eq(c[1].reason, "max_bytes");
    cr_assert_eq(pt_evict_plan(c, 4, &lim, NOW_MS, 801), 0,
                 "801 - 300 (all but the leased one) > 500: evicting would empty the cache for nothing");
    cr_assert_eq(pt_evict_plan(c, 4, &lim, NOW_MS, 800), 3, "800 - 300 = 500: reachable, all three go");
}

/* no limits: nothing goes */
Test(evict_plan, no_limits)
{
    pt_candidate c[2];
    cand(&c[0], "a", 1000 * HOUR_MS, 1u << 30, 0);
    cand(&c[1], "b", 1000 * HOUR_MS, 1u << 30, 0);
    pt_limits lim = { 0 };
    cr_assert_eq(pt_evict_plan(c, 2, &lim, NOW_MS, 0), 0);
}

/* ---- the index side: atime order and leases ---- */

static char tmpdir[PATH_MAX];
static pt_index *idx;

static void setup(void)
{
    tu_tmpdir(tmpdir, "evict");
    char dir[PATH_MAX];
    FMT(dir, "%s/index", tmpdir);
    pt_error err;
    pt_error_clear(&err);
    cr_assert_eq(pt_index_open(dir, &idx, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    pt_index_close(idx);
    tu_rmtree(tmpdir);
}

struct set_arg { uint32_t state; int64_t ms; uint64_t bytes; };
static int set_entry(pt_entry *e, void *arg)
{
    const struct set_arg *a = arg;
    e->state = a->state;
    e->last_access_ms = a->ms;
    e->bytes = a->bytes;
    return 0;
}

static void put(const char *key, uint32_t state, int64_t ms)
{
    struct set_arg a = { state, ms, 10 };
    cr_assert_eq(pt_index_update(idx, key, set_entry, &a, NULL), 0);
}

#define KA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define KB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define KC "cccccccccccccccccccccccccccccccc"
#define KD "dddddddddddddddddddddddddddddddd"

/* candidates come in access order, only ready entries, and follow updates */
TestSuite(evict_index, .init = setup, .fini = teardown);
Test(evict_index, lru_order_follows_access_times)
{
    put(KA, PT_STATE_READY, 3000);
    put(KB, PT_STATE_READY, 1000);
    put(KC, PT_STATE_READY, 2000);
    put(KD, PT_STATE_FAILED, 500);
    pt_candidate *c;
    size_t n;
    cr_assert_eq(pt_evict_candidates(idx, &c, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(c[0].key, KB);
    cr_assert_str_eq(c[1].key, KC);
    cr_assert_str_eq(c[2].key, KA);
    free(c);
    put(KB, PT_STATE_READY, 4000); /* B used again: now the newest */
    put(KC, PT_STATE_NONE, 2000);  /* C evicted: no longer a candidate */
    cr_assert_eq(pt_evict_candidates(idx, &c, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(c[0].key, KA);
    cr_assert_str_eq(c[1].key, KB);
    cr_assert_eq(c[1].last_access_ms, 4000);
    free(c);
}

/* live leases count; a dead process's lease is cleared when counted */
Test(evict_index, leases_live_and_stale)
{
    put(KA, PT_STATE_READY, 1000);
    pt_lease me = { .since = 1 };
    cr_assert_eq(pt_proc_start_time(getpid(), &me.pid_start), 0);
    cr_assert_eq(pt_index_lease_add(idx, KA, getpid(), &me), 0);
    int release;
    pid_t kid = tu_held_child(&release); /* alive until its start time is read: a zombie has none */
    pt_lease dead = { .since = 1 };
    cr_assert_eq(pt_proc_start_time(kid, &dead.pid_start), 0);
    tu_release_reap(kid, release);
    cr_assert_eq(pt_index_lease_add(idx, KA, kid, &dead), 0);
    /* a lease whose pid was reused: same pid (ours), another start time */
    pt_lease reused = { .since = 1, .pid_start = me.pid_start + 1 };
    cr_assert_eq(pt_index_lease_add(idx, KB, getpid(), &reused), 0);

    unsigned live = 99;
    cr_assert_eq(pt_index_lease_live(idx, KA, &live), 0);
    cr_assert_eq(live, 1);
    cr_assert_eq(pt_index_lease_del(idx, KA, kid), -ENOENT, "the stale lease was not cleared");
    cr_assert_eq(pt_index_lease_live(idx, KB, &live), 0);
    cr_assert_eq(live, 0);
    pt_candidate *c;
    size_t n;
    cr_assert_eq(pt_evict_candidates(idx, &c, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(c[0].leases, 1);
    free(c);
    cr_assert_eq(pt_index_lease_del(idx, KA, getpid()), 0);
    cr_assert_eq(pt_index_lease_live(idx, KA, &live), 0);
    cr_assert_eq(live, 0);
}
