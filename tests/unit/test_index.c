/* test_index.c — the LMDB index: specs, entries, counters, services, meta,
 * and two processes writing at once. Each test runs in its own mkdtemp dir. */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/index.h"
#include "pactown/proc.h"
#include "testutil.h"

static char tmpdir[PATH_MAX];
static char idxdir[PATH_MAX]; /* tmpdir/a/b/index: created by pt_index_open */
static pt_index *idx;
static pid_t kids[4];
static int nkids;

#define KEY_A "0000000000000000000000000000000a"
#define KEY_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define KEY_C "5555555555555555555555555555555c"

static void open_idx(void)
{
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_index_open(idxdir, &idx, &err);
    cr_assert_eq(rc, 0, "pt_index_open: %d %s", rc, err.msg);
    cr_assert_not_null(idx);
}

static void setup(void)
{
    tu_tmpdir(tmpdir, "index");
    FMT(idxdir, "%s/a/b/index", tmpdir);
    idx = NULL;
    nkids = 0;
}

static void teardown(void)
{
    /* children left by a failed assertion: kill and reap */
    for (int i = 0; i < nkids; i++)
        if (kids[i] > 0)
            tu_kill_reap(kids[i]);
    pt_index_close(idx);
    idx = NULL;
    tu_rmtree(tmpdir);
}

TestSuite(index, .init = setup, .fini = teardown);

Test(index, open_creates_directory)
{
    struct stat st;
    cr_assert_neq(stat(idxdir, &st), 0, "index dir exists before open");
    open_idx();
    cr_assert_eq(stat(idxdir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    char data[PATH_MAX];
    FMT(data, "%s/data.mdb", idxdir);
    cr_assert_eq(stat(data, &st), 0, "no data.mdb in the index dir");
}

Test(index, open_on_a_file_fails_with_message)
{
    char file[PATH_MAX];
    FMT(file, "%s/file", tmpdir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_index_open(file, &idx, &err);
    cr_assert_eq(rc, -ENOTDIR, "rc %d: %s", rc, err.msg);
    cr_assert_null(idx);
    cr_assert_not_null(strstr(err.msg, file), "msg: %s", err.msg);
}

Test(index, register_and_spec_round_trip)
{
    open_idx();
    const char *text = "pactown-venv/1\npython cpython 3.11.7 linux-x86_64\nrequests==2.31.0\n";
    size_t len = strlen(text);
    bool created = false;
    cr_assert_eq(pt_index_register(idx, KEY_A, text, len, &created), 0);
    cr_assert_eq(created, true);
    created = true;
    cr_assert_eq(pt_index_register(idx, KEY_A, text, len, &created), 0);
    cr_assert_eq(created, false);
    cr_assert_eq(pt_index_register(idx, KEY_A, text, len, NULL), 0);
    const char *other = "pactown-venv/1\npython cpython 3.11.7 linux-x86_64\nflask\n";
    created = true;
    cr_assert_eq(pt_index_register(idx, KEY_A, other, strlen(other), &created), -EEXIST);
    cr_assert_eq(created, false);
    /* a prefix of the stored text is a different text too */
    cr_assert_eq(pt_index_register(idx, KEY_A, text, len - 1, NULL), -EEXIST);

    char *out = NULL;
    size_t outlen = 0;
    cr_assert_eq(pt_index_spec(idx, KEY_A, &out, &outlen), 0);
    cr_assert_eq(outlen, len);
    cr_assert_str_eq(out, text); /* also checks the NUL terminator */
    free(out);
    out = NULL;
    cr_assert_eq(pt_index_spec(idx, KEY_B, &out, &outlen), -ENOENT);
    cr_assert_null(out);
}

static int set_ready(pt_entry *e, void *arg)
{
    e->state = PT_STATE_READY;
    e->bytes = *(uint64_t *)arg;
    e->builds++;
    return 0;
}

static int leave_alone(pt_entry *e, void *arg)
{
    (void)arg;
    e->state = PT_STATE_FAILED; /* must not be stored */
    return 1;
}

static int refuse(pt_entry *e, void *arg)
{
    (void)arg;
    e->state = PT_STATE_FAILED;
    return -EPERM;
}

Test(index, update_stores_entry_and_counters)
{
    cr_assert_eq(setenv("PACTOWN_FAKE_NOW", "1700000000", 1), 0);
    open_idx();
    pt_entry e;
    cr_assert_eq(pt_index_entry(idx, KEY_A, &e), -ENOENT);

    uint64_t bytes = 12345;
    const char *const counters[] = { "builds", NULL };
    cr_assert_eq(pt_index_update(idx, KEY_A, set_ready, &bytes, counters), 0);
    memset(&e, 0xff, sizeof e);
    cr_assert_eq(pt_index_entry(idx, KEY_A, &e), 0);
    cr_assert_eq(e.version, PT_ENTRY_VERSION);
    cr_assert_eq(e.state, PT_STATE_READY);
    cr_assert_eq(e.bytes, 12345);
    cr_assert_eq(e.builds, 1);
    cr_assert_eq(e.created, 1700000000);
    cr_assert_eq(e.hits, 0);
    cr_assert_eq(e.builder_pid, 0);

    pt_counters c;
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.builds, 1);
    cr_assert_eq(c.hits, 0);
    cr_assert_eq(c.misses, 0);
    cr_assert_eq(c.build_failures, 0);
    cr_assert_eq(c.evictions, 0);

    /* a second update sees the stored entry (read-modify-write) */
    cr_assert_eq(setenv("PACTOWN_FAKE_NOW", "1800000000", 1), 0);
    bytes = 99;
    cr_assert_eq(pt_index_update(idx, KEY_A, set_ready, &bytes, counters), 0);
    cr_assert_eq(pt_index_entry(idx, KEY_A, &e), 0);
    cr_assert_eq(e.builds, 2);
    cr_assert_eq(e.bytes, 99);
    cr_assert_eq(e.created, 1700000000, "created is kept from the first registration");
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.builds, 2);
}

Test(index, update_returning_1_or_error_stores_nothing)
{
    open_idx();
    pt_entry e;
    cr_assert_eq(pt_index_update(idx, KEY_A, leave_alone, NULL, NULL), 0);
    cr_assert_eq(pt_index_entry(idx, KEY_A, &e), -ENOENT);

    const char *const counters[] = { "build_failures", NULL };
    cr_assert_eq(pt_index_update(idx, KEY_B, refuse, NULL, counters), -EPERM);
    cr_assert_eq(pt_index_entry(idx, KEY_B, &e), -ENOENT);
    pt_counters c;
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.build_failures, 0, "an aborted update must not count");

    /* an existing entry is kept as it was */
    uint64_t bytes = 7;
    cr_assert_eq(pt_index_update(idx, KEY_C, set_ready, &bytes, NULL), 0);
    cr_assert_eq(pt_index_update(idx, KEY_C, leave_alone, NULL, NULL), 0);
    cr_assert_eq(pt_index_entry(idx, KEY_C, &e), 0);
    cr_assert_eq(e.state, PT_STATE_READY);
    cr_assert_eq(e.bytes, 7);
}

Test(index, count_adds_and_clamps_at_zero)
{
    open_idx();
    cr_assert_eq(pt_index_count(idx, "hits", 5), 0);
    cr_assert_eq(pt_index_count(idx, "misses", 2), 0);
    cr_assert_eq(pt_index_count(idx, "hits", -2), 0);
    cr_assert_eq(pt_index_count(idx, "evictions", -3), 0);
    pt_counters c;
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.hits, 3);
    cr_assert_eq(c.misses, 2);
    cr_assert_eq(c.evictions, 0);
    cr_assert_eq(c.builds, 0);
}

struct visit {
    int n;
    int stop_at; /* 1-based visit to stop at, 0 = never */
    char keys[4][33];
    uint32_t states[4];
};

static int visit_entry(const char *key, const pt_entry *e, void *arg)
{
    struct visit *v = arg;
    if (v->n < 4) {
        snprintf(v->keys[v->n], sizeof v->keys[v->n], "%s", key);
        v->states[v->n] = e->state;
    }
    v->n++;
    return v->n == v->stop_at ? 42 : 0;
}

static int set_state(pt_entry *e, void *arg)
{
    e->state = *(uint32_t *)arg;
    return 0;
}

Test(index, each_entry_in_key_order_and_stop_value)
{
    open_idx();
    struct visit v = { 0 };
    cr_assert_eq(pt_index_each_entry(idx, visit_entry, &v), 0);
    cr_assert_eq(v.n, 0);

    uint32_t s;
    s = PT_STATE_FAILED;
    cr_assert_eq(pt_index_update(idx, KEY_B, set_state, &s, NULL), 0);
    s = PT_STATE_READY;
    cr_assert_eq(pt_index_update(idx, KEY_A, set_state, &s, NULL), 0);
    s = PT_STATE_BUILDING;
    cr_assert_eq(pt_index_update(idx, KEY_C, set_state, &s, NULL), 0);

    memset(&v, 0, sizeof v);
    cr_assert_eq(pt_index_each_entry(idx, visit_entry, &v), 0);
    cr_assert_eq(v.n, 3);
    cr_assert_str_eq(v.keys[0], KEY_A);
    cr_assert_str_eq(v.keys[1], KEY_C);
    cr_assert_str_eq(v.keys[2], KEY_B);
    cr_assert_eq(v.states[0], PT_STATE_READY);
    cr_assert_eq(v.states[1], PT_STATE_BUILDING);
    cr_assert_eq(v.states[2], PT_STATE_FAILED);

    memset(&v, 0, sizeof v);
    v.stop_at = 2;
    cr_assert_eq(pt_index_each_entry(idx, visit_entry, &v), 42);
    cr_assert_eq(v.n, 2, "walk went on after the callback stopped it");
}

struct svc_visit {
    int n;
    char ids[4][65];
};

static int visit_service(const pt_service *s, void *arg)
{
    struct svc_visit *v = arg;
    if (v->n < 4)
        snprintf(v->ids[v->n], sizeof v->ids[v->n], "%s", s->id);
    v->n++;
    return 0;
}

Test(index, services_put_get_del_each)
{
    open_idx();
    pt_service s = { 0 };
    s.pid = 4242;
    s.port = 8001;
    s.pid_start = 987654321ull;
    s.started = 1700000000;
    snprintf(s.key, sizeof s.key, "%s", KEY_A);
    snprintf(s.id, sizeof s.id, "web");
    cr_assert_eq(pt_index_service_put(idx, &s), 0);
    pt_service t = { 0 };
    snprintf(t.id, sizeof t.id, "api");
    t.port = 9000;
    cr_assert_eq(pt_index_service_put(idx, &t), 0);

    pt_service got;
    memset(&got, 0xff, sizeof got);
    cr_assert_eq(pt_index_service_get(idx, "web", &got), 0);
    cr_assert_eq(got.version, PT_SERVICE_VERSION);
    cr_assert_eq(got.pid, 4242);
    cr_assert_eq(got.port, 8001);
    cr_assert_eq(got.pid_start, 987654321ull);
    cr_assert_eq(got.started, 1700000000);
    cr_assert_str_eq(got.key, KEY_A);
    cr_assert_str_eq(got.id, "web");
    cr_assert_eq(pt_index_service_get(idx, "nope", &got), -ENOENT);

    /* put overwrites */
    s.pid = 0;
    s.port = 8002;
    cr_assert_eq(pt_index_service_put(idx, &s), 0);
    cr_assert_eq(pt_index_service_get(idx, "web", &got), 0);
    cr_assert_eq(got.pid, 0);
    cr_assert_eq(got.port, 8002);

    struct svc_visit v = { 0 };
    cr_assert_eq(pt_index_each_service(idx, visit_service, &v), 0);
    cr_assert_eq(v.n, 2);
    cr_assert_str_eq(v.ids[0], "api");
    cr_assert_str_eq(v.ids[1], "web");

    cr_assert_eq(pt_index_service_del(idx, "web"), 0);
    cr_assert_eq(pt_index_service_get(idx, "web", &got), -ENOENT);
    cr_assert_eq(pt_index_service_del(idx, "web"), -ENOENT);
    memset(&v, 0, sizeof v);
    cr_assert_eq(pt_index_each_service(idx, visit_service, &v), 0);
    cr_assert_eq(v.n, 1);
    cr_assert_str_eq(v.ids[0], "api");
}

Test(index, meta_get_put)
{
    open_idx();
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(pt_index_meta_get(idx, "probe", &out, &len), -ENOENT);
    cr_assert_null(out);
    const char val[] = { 'a', '\0', 'b' };
    cr_assert_eq(pt_index_meta_put(idx, "probe", val, sizeof val), 0);
    cr_assert_eq(pt_index_meta_get(idx, "probe", &out, &len), 0);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(out, val, 3), 0);
    cr_assert_eq(out[3], '\0');
    free(out);
    cr_assert_eq(pt_index_meta_put(idx, "probe", "xy", 2), 0);
    cr_assert_eq(pt_index_meta_get(idx, "probe", &out, NULL), 0);
    cr_assert_str_eq(out, "xy");
    free(out);
    /* the schema version written at creation */
    cr_assert_eq(pt_index_meta_get(idx, "schema", &out, &len), 0);
    cr_assert_str_eq(out, "1");
    free(out);
}

Test(index, state_names)
{
    cr_assert_str_eq(pt_state_name(PT_STATE_NONE), "none");
    cr_assert_str_eq(pt_state_name(PT_STATE_BUILDING), "building");
    cr_assert_str_eq(pt_state_name(PT_STATE_READY), "ready");
    cr_assert_str_eq(pt_state_name(PT_STATE_FAILED), "failed");
    cr_assert_str_eq(pt_state_name(77), "unknown");
}

Test(index, reopen_keeps_data)
{
    open_idx();
    cr_assert_eq(pt_index_register(idx, KEY_A, "text\n", 5, NULL), 0);
    uint32_t s = PT_STATE_FAILED;
    cr_assert_eq(pt_index_update(idx, KEY_A, set_state, &s, (const char *const[]){ "misses", NULL }), 0);
    cr_assert_eq(pt_index_meta_put(idx, "m", "v", 1), 0);
    pt_index_close(idx);
    idx = NULL;
    open_idx();
    char *out = NULL;
    cr_assert_eq(pt_index_spec(idx, KEY_A, &out, NULL), 0);
    cr_assert_str_eq(out, "text\n");
    free(out);
    pt_entry e;
    cr_assert_eq(pt_index_entry(idx, KEY_A, &e), 0);
    cr_assert_eq(e.state, PT_STATE_FAILED);
    pt_counters c;
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.misses, 1);
    cr_assert_eq(pt_index_meta_get(idx, "m", &out, NULL), 0);
    cr_assert_str_eq(out, "v");
    free(out);
}

/* Wait for pid to end within timeout_ms (pidfd + poll: no sleeping); 0 with
 * *status, or -ETIMEDOUT (pid is then still ours to kill). */
static int wait_deadline(pid_t pid, int timeout_ms, int *status)
{
    if (tu_pidfd_wait(pid, timeout_ms) == 0) /* on a pidfd error, just wait */
        return -ETIMEDOUT;
    return waitpid(pid, status, 0) == pid ? 0 : -errno;
}

#define PER_CHILD 500

Test(index, two_processes_no_lost_update, .timeout = 60)
{
    open_idx(); /* create it, then let the children use their own handles */
    pt_index_close(idx);
    idx = NULL;

    int go[2];
    cr_assert_eq(pipe(go), 0);
    for (int i = 0; i < 2; i++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(go[1]);
            pt_index *mine = NULL;
            if (pt_index_open(idxdir, &mine, NULL) != 0)
                _exit(10);
            char c;
            if (read(go[0], &c, 1) != 0) /* start together: EOF when the parent closes */
                _exit(11);
            for (int k = 0; k < PER_CHILD; k++)
                if (pt_index_count(mine, "hits", 1) != 0)
                    _exit(12);
            pt_index_close(mine);
            _exit(0);
        }
        kids[nkids++] = pid;
    }
    close(go[0]);
    close(go[1]);
    for (int i = 0; i < nkids; i++) {
        int st = 0;
        int rc = wait_deadline(kids[i], 50000, &st);
        cr_assert_eq(rc, 0, "child %d did not finish: %d", (int)kids[i], rc);
        kids[i] = 0;
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed, status 0x%x", st);
    }
    open_idx();
    pt_counters c;
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.hits, 2 * PER_CHILD);
}

/* the leases of a key, for the lease_use and service_lease tests */
struct lease_seen {
    const char *key;
    int n;
    pid_t pids[8];
    char holders[8][65];
};

static int see_lease(const char *key, pid_t pid, const pt_lease *l, void *arg)
{
    struct lease_seen *s = arg;
    if (strcmp(key, s->key) == 0 && s->n < 8) {
        s->pids[s->n] = pid;
        snprintf(s->holders[s->n], sizeof s->holders[0], "%s", l->holder);
        s->n++;
    }
    return 0;
}

static struct lease_seen leases_of(const char *key)
{
    struct lease_seen s = { .key = key };
    cr_assert_eq(pt_index_each_lease(idx, see_lease, &s), 0);
    return s;
}

struct lru_seen {
    int n;
    char keys[4][33];
    int64_t ms[4];
};

static int see_lru(const char *key, const pt_entry *e, void *arg)
{
    struct lru_seen *s = arg;
    if (s->n < 4) {
        snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
        s->ms[s->n++] = e->last_access_ms;
    }
    return 0;
}

static int set_ready_at(pt_entry *e, void *arg)
{
    e->state = PT_STATE_READY;
    e->last_access_ms = *(int64_t *)arg;
    return 0;
}

/* a pid that no process has: a child, reaped */
static pid_t gone_pid(void)
{
    pid_t kid = fork();
    cr_assert_geq(kid, 0);
    if (kid == 0)
        _exit(0);
    int st;
    cr_assert_eq(waitpid(kid, &st, 0), kid);
    return kid;
}

/* a run's lease and its hit in one transaction: hits, access time (and the
 * LRU order), the counter, the lease; the leases of gone processes deleted */
Test(index, lease_use_counts_a_hit_with_the_lease)
{
    open_idx();
    int64_t t_a = 1000, t_b = 2000;
    cr_assert_eq(pt_index_update(idx, KEY_A, set_ready_at, &t_a, NULL), 0);
    cr_assert_eq(pt_index_update(idx, KEY_B, set_ready_at, &t_b, NULL), 0);
    pid_t gone = gone_pid();
    pt_lease old = { .since = 1 };
    snprintf(old.holder, sizeof old.holder, "left-by-a-prepare");
    cr_assert_eq(pt_index_lease_add(idx, KEY_A, gone, &old), 0);
    cr_assert_eq(pt_index_lease_add(idx, KEY_B, gone, &old), 0);

    pt_lease me = { .since = 2 };
    snprintf(me.holder, sizeof me.holder, "svc");
    bool used = false;
    cr_assert_eq(pt_index_lease_use(idx, KEY_A, getpid(), &me, true, 3000, &used), 0);
    cr_assert(used);
    pt_entry e;
    cr_assert_eq(pt_index_entry(idx, KEY_A, &e), 0);
    cr_assert_eq(e.hits, 1);
    cr_assert_eq(e.last_access_ms, 3000);
    cr_assert_eq(e.state, PT_STATE_READY);
    pt_counters c;
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.hits, 1);
    struct lease_seen s = leases_of(KEY_A);
    cr_assert_eq(s.n, 1, "the lease of a gone process was not deleted");
    cr_assert_eq(s.pids[0], getpid());
    cr_assert_str_eq(s.holders[0], "svc");
    cr_assert_eq(leases_of(KEY_B).n, 1, "only the key's own leases are looked at");
    /* the atime row moved with the entry: B is now the least recently used */
    struct lru_seen l = { 0 };
    cr_assert_eq(pt_index_each_lru(idx, see_lru, &l), 0);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.keys[0], KEY_B);
    cr_assert_str_eq(l.keys[1], KEY_A);
    cr_assert_eq(l.ms[1], 3000);

    /* again: a refresh of the same lease, a second hit */
    cr_assert_eq(pt_index_lease_use(idx, KEY_A, getpid(), &me, true, 4000, NULL), 0);
    cr_assert_eq(pt_index_entry(idx, KEY_A, &e), 0);
    cr_assert_eq(e.hits, 2);
    cr_assert_eq(leases_of(KEY_A).n, 1);

    /* no use asked: the lease only */
    cr_assert_eq(pt_index_lease_use(idx, KEY_B, getpid(), &me, false, 5000, &used), 0);
    cr_assert(!used);
    cr_assert_eq(pt_index_entry(idx, KEY_B, &e), 0);
    cr_assert_eq(e.hits, 0);
    cr_assert_eq(e.last_access_ms, 2000);
    s = leases_of(KEY_B);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.pids[0], getpid());
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.hits, 2);
}

/* a use of a key that is not ready (registered, evicted, building) is not a hit */
Test(index, lease_use_of_an_entry_not_ready_counts_nothing)
{
    open_idx();
    const char *text = "pactown-venv/1\nsix\n";
    cr_assert_eq(pt_index_register(idx, KEY_C, text, strlen(text), NULL), 0);
    pt_lease me = { .since = 2 };
    bool used = true;
    cr_assert_eq(pt_index_lease_use(idx, KEY_C, getpid(), &me, true, 3000, &used), 0);
    cr_assert(!used);
    pt_entry e;
    cr_assert_eq(pt_index_entry(idx, KEY_C, &e), 0);
    cr_assert_eq(e.state, PT_STATE_NONE);
    cr_assert_eq(e.hits, 0);
    cr_assert_eq(e.last_access_ms, 0);
    pt_counters c;
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.hits, 0);
    struct lru_seen l = { 0 };
    cr_assert_eq(pt_index_each_lru(idx, see_lru, &l), 0);
    cr_assert_eq(l.n, 0, "an entry that is not ready has no atime row");
    cr_assert_eq(leases_of(KEY_C).n, 1, "the lease is taken all the same");
    /* an unknown key: the lease, no entry made */
    cr_assert_eq(pt_index_lease_use(idx, KEY_B, getpid(), &me, true, 3000, &used), 0);
    cr_assert(!used);
    cr_assert_eq(pt_index_entry(idx, KEY_B, &e), -ENOENT);

    cr_assert_eq(pt_index_lease_use(idx, "short", getpid(), &me, true, 1, &used), -EINVAL);
    cr_assert_eq(pt_index_lease_use(idx, KEY_A, 0, &me, true, 1, &used), -EINVAL);
    cr_assert_eq(pt_index_lease_use(idx, KEY_A, getpid(), NULL, true, 1, &used), -EINVAL);
    cr_assert(!used);
}

/* a run hands its lease to the service it started, and the service's ends
 * with it: each one commit with the service's record */
Test(index, service_lease_hands_over_and_ends)
{
    open_idx();
    pid_t run = getpid(), svc_pid = getppid();
    pt_lease mine = { .since = 1 };
    snprintf(mine.holder, sizeof mine.holder, "web");
    cr_assert_eq(pt_index_lease_add(idx, KEY_A, run, &mine), 0);

    pt_service s = { .pid = svc_pid, .port = 8001, .started = 1700000000 };
    snprintf(s.key, sizeof s.key, "%s", KEY_A);
    snprintf(s.id, sizeof s.id, "web");
    pt_lease theirs = { .since = 2, .pid_start = 77 };
    snprintf(theirs.holder, sizeof theirs.holder, "web");
    cr_assert_eq(pt_index_service_lease(idx, &s, svc_pid, &theirs, run), 0);
    pt_service got;
    cr_assert_eq(pt_index_service_get(idx, "web", &got), 0);
    cr_assert_eq(got.version, PT_SERVICE_VERSION);
    cr_assert_eq(got.pid, svc_pid);
    cr_assert_eq(got.port, 8001);
    struct lease_seen l = leases_of(KEY_A);
    cr_assert_eq(l.n, 1, "the run's lease was not handed over");
    cr_assert_eq(l.pids[0], svc_pid);

    /* the service ends: record and lease in one commit; a second end finds no lease, and is no error */
    s.pid = 0;
    s.ended = 1700000100;
    cr_assert_eq(pt_index_service_lease(idx, &s, 0, NULL, svc_pid), 0);
    cr_assert_eq(pt_index_service_get(idx, "web", &got), 0);
    cr_assert_eq(got.pid, 0);
    cr_assert_eq(got.ended, 1700000100);
    cr_assert_eq(leases_of(KEY_A).n, 0);
    cr_assert_eq(pt_index_service_lease(idx, &s, 0, NULL, svc_pid), 0);

    /* add == drop: the lease is kept (added), not deleted */
    cr_assert_eq(pt_index_service_lease(idx, &s, run, &mine, run), 0);
    cr_assert_eq(leases_of(KEY_A).n, 1);

    pt_service bad = s;
    snprintf(bad.key, sizeof bad.key, "short");
    cr_assert_eq(pt_index_service_lease(idx, &bad, 0, NULL, run), -EINVAL);
    cr_assert_eq(pt_index_service_lease(idx, &s, run, NULL, 0), -EINVAL, "a lease to add without its record");
    cr_assert_eq(pt_index_service_lease(idx, &s, -1, &mine, 0), -EINVAL);
    cr_assert_eq(pt_index_service_lease(idx, &s, 0, NULL, -1), -EINVAL);
}

static int mark_none_fn(pt_entry *e, void *arg)
{
    (void)arg;
    e->state = PT_STATE_NONE;
    return 0;
}

Test(index, update_unleased_sees_every_live_lease)
{
    open_idx();
    int64_t t = 1000;
    cr_assert_eq(pt_index_update(idx, KEY_A, set_ready_at, &t, NULL), 0);
    pt_lease me = { .since = 2 };
    cr_assert_eq(pt_proc_start_time(getpid(), &me.pid_start), 0);
    cr_assert_eq(pt_index_lease_add(idx, KEY_A, getpid(), &me), 0);
    static const char *const counters[] = { "evictions", NULL };
    /* a live lease: refused, nothing written, no eviction counted */
    cr_assert_eq(pt_index_update_unleased(idx, KEY_A, 0, mark_none_fn, NULL, counters), -EBUSY);
    pt_entry e;
    cr_assert_eq(pt_index_entry(idx, KEY_A, &e), 0);
    cr_assert_eq(e.state, PT_STATE_READY);
    pt_counters c;
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.evictions, 0);
    /* the lease of the pid that asks does not count */
    cr_assert_eq(pt_index_update_unleased(idx, KEY_A, getpid(), mark_none_fn, NULL, counters), 0);
    cr_assert_eq(pt_index_entry(idx, KEY_A, &e), 0);
    cr_assert_eq(e.state, PT_STATE_NONE);
    /* a lease of a gone pid does not count either, and goes */
    cr_assert_eq(pt_index_update(idx, KEY_B, set_ready_at, &t, NULL), 0);
    pt_lease old = { .since = 1 };
    cr_assert_eq(pt_index_lease_add(idx, KEY_B, gone_pid(), &old), 0);
    cr_assert_eq(pt_index_update_unleased(idx, KEY_B, 0, mark_none_fn, NULL, counters), 0);
    cr_assert_eq(pt_index_counters(idx, &c), 0);
    cr_assert_eq(c.evictions, 2);
}
