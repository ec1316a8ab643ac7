/* index.c — the LMDB index: requirement sets, entries, services, counters.
 *
 * Every call is one short transaction; rc values are checked and mapped to
 * -errno in one place (map_rc). Databases are opened once, at open, in a
 * committed write transaction (lmdb.h, mdb_dbi_open).
 */
#include "pactown/index.h"

#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/proc.h"

/* tests/integration/durable.sh sets this field in the index with mdb_dump and mdb_load */
_Static_assert(offsetof(pt_entry, unsynced) == 128, "pt_entry.unsynced moved: update tests/integration/durable.sh");

struct pt_index {
    MDB_env *env;
    MDB_dbi spec, entry, atime, lease, service, meta, user, event;
};

/* atime and lease keys: 8 + 32 bytes and 32 + 4 bytes, big-endian numbers so
 * that LMDB's byte order is the numeric order */
#define KEY_LEN 32
struct atime_key { unsigned char ms[8]; char key[KEY_LEN]; };
struct lease_key { char key[KEY_LEN]; unsigned char pid[4]; };

static void put_be(unsigned char *out, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be(const unsigned char *in, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | in[i];
    return v;
}

#define SCHEMA_VERSION "1"

static int map_rc(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return 0;
    case MDB_NOTFOUND: return -ENOENT;
    case MDB_KEYEXIST: return -EEXIST;
    case MDB_MAP_FULL: return -ENOSPC;
    case MDB_READERS_FULL: return -EAGAIN;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH: return -EIO;
    default: return rc > 0 ? -rc : -EIO;
    }
}

static MDB_val sval(const char *s)
{
    return (MDB_val){ .mv_size = strlen(s), .mv_data = (void *)s };
}

int pt_index_open(const char *dir, pt_index **out, pt_error *err)
{
    int rc = pt_mkdir_p(dir, 0755);
    if (rc)
        return pt_error_set(err, rc, 0, "%s: cannot create the index directory: %s", dir, strerror(-rc));
    pt_index *idx = calloc(1, sizeof *idx);
    if (!idx)
        return pt_error_set(err, -ENOMEM, 0, "out of memory");
    MDB_txn *txn = NULL;
    const char *what = "mdb_env_create";
    if ((rc = mdb_env_create(&idx->env)) != 0)
        goto fail;
    what = "mdb_env_set_maxdbs";
    if ((rc = mdb_env_set_maxdbs(idx->env, 8)) != 0)
        goto env_close;
    what = "mdb_env_set_mapsize";
    if ((rc = mdb_env_set_mapsize(idx->env, (size_t)1 << 30)) != 0)
        goto env_close;
    what = "mdb_env_set_maxreaders";
    if ((rc = mdb_env_set_maxreaders(idx->env, 512)) != 0)
        goto env_close;
    what = "mdb_env_open";
    if ((rc = mdb_env_open(idx->env, dir, MDB_NOTLS, 0644)) != 0)
        goto env_close;
    int dead = 0;
    mdb_reader_check(idx->env, &dead);
    what = "mdb_txn_begin";
    if ((rc = mdb_txn_begin(idx->env, NULL, 0, &txn)) != 0)
        goto env_close;
    what = "mdb_dbi_open";
    if ((rc = mdb_dbi_open(txn, "spec", MDB_CREATE, &idx->spec)) != 0 ||
        (rc = mdb_dbi_open(txn, "entry", MDB_CREATE, &idx->entry)) != 0 ||
        (rc = mdb_dbi_open(txn, "atime", MDB_CREATE, &idx->atime)) != 0 ||
        (rc = mdb_dbi_open(txn, "lease", MDB_CREATE, &idx->lease)) != 0 ||
        (rc = mdb_dbi_open(txn, "service", MDB_CREATE, &idx->service)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &idx->meta)) != 0 ||
        (rc = mdb_dbi_open(txn, "user", MDB_CREATE, &idx->user)) != 0 ||
        (rc = mdb_dbi_open(txn, "event", MDB_CREATE, &idx->event)) != 0)
        goto txn_abort;
    MDB_val k = sval("schema"), v;
    if ((rc = mdb_get(txn, idx->meta, &k, &v)) == MDB_NOTFOUND) {
        v = sval(SCHEMA_VERSION);
        what = "mdb_put(schema)";
        if ((rc = mdb_put(txn, idx->meta, &k, &v, 0)) != 0)
            goto txn_abort;
    } else if (rc == 0 && (v.mv_size != 1 || memcmp(v.mv_data, SCHEMA_VERSION, 1) != 0)) {
        mdb_txn_abort(txn);
        mdb_env_close(idx->env);
        free(idx);
        return pt_error_set(err, -EPROTO, 0, "%s: index schema %.*s is not the supported schema " SCHEMA_VERSION,
                            dir, (int)v.mv_size, (const char *)v.mv_data);
    } else if (rc) {
        goto txn_abort;
    }
    what = "mdb_txn_commit";
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto env_close;
    *out = idx;
    return 0;

txn_abort:
    mdb_txn_abort(txn);
env_close:
    mdb_env_close(idx->env);
fail:
    free(idx);
    return pt_error_set(err, map_rc(rc), 0, "%s: %s failed: %s", dir, what, mdb_strerror(rc));
}

void pt_index_close(pt_index *idx)
{
    if (!idx)
        return;
    mdb_env_close(idx->env);
    free(idx);
}

int pt_index_register(pt_index *idx, const char *key, const char *canonical, size_t len, bool *created)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    MDB_val k = sval(key), v = { .mv_size = len, .mv_data = (void *)canonical };
    rc = mdb_put(txn, idx->spec, &k, &v, MDB_NOOVERWRITE);
    bool is_new = rc == 0;
    if (rc == MDB_KEYEXIST) {
        /* v now holds the stored text */
        bool same = v.mv_size == len && memcmp(v.mv_data, canonical, len) == 0;
        if (!same) {
            mdb_txn_abort(txn);
            if (created)
                *created = false;
            return -EEXIST;
        }
        rc = 0;
    }
    if (created)
        *created = is_new;
    /* a registered set is an entry in state `none` (listed by `cache ls`,
     * counted as registered) until it is built; an existing entry is kept */
    if (rc == 0 && strlen(key) == KEY_LEN) {
        pt_entry e;
        memset(&e, 0, sizeof e);
        e.version = PT_ENTRY_VERSION;
        e.created = pt_wall_s();
        MDB_val ev = { .mv_size = sizeof e, .mv_data = &e };
        rc = mdb_put(txn, idx->entry, &k, &ev, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST && !is_new) {
            mdb_txn_abort(txn); /* nothing new: no write */
            return 0;
        }
        if (rc == MDB_KEYEXIST)
            rc = 0;
    }
    if (rc) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    return map_rc(mdb_txn_commit(txn));
}

static int get_copy(pt_index *idx, MDB_dbi dbi, const char *name, char **out, size_t *len)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return map_rc(rc);
    MDB_val k = sval(name), v;
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0) {
        char *copy = malloc(v.mv_size + 1);
        if (!copy) {
            rc = ENOMEM;
        } else {
            memcpy(copy, v.mv_data, v.mv_size);
            copy[v.mv_size] = '\0';
            *out = copy;
            if (len)
                *len = v.mv_size;
        }
    }
    mdb_txn_abort(txn);
    return map_rc(rc);
}

int pt_index_spec(pt_index *idx, const char *key, char **out, size_t *len)
{
    return get_copy(idx, idx->spec, key, out, len);
}

int pt_index_meta_get(pt_index *idx, const char *name, char **out, size_t *len)
{
    return get_copy(idx, idx->meta, name, out, len);
}

int pt_index_meta_put(pt_index *idx, const char *name, const void *val, size_t len)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    MDB_val k = sval(name), v = { .mv_size = len, .mv_data = (void *)val };
    if ((rc = mdb_put(txn, idx->meta, &k, &v, 0)) != 0) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    return map_rc(mdb_txn_commit(txn));
}

/* Copy a stored record of at most sizeof(*out) bytes; older, shorter records
 * read with their missing tail zeroed. */
static void load_record(void *out, size_t size, const MDB_val *v)
{
    memset(out, 0, size);
    memcpy(out, v->mv_data, v->mv_size < size ? v->mv_size : size);
}

/* Read the fixed-size record stored under name in dbi. */
static int get_record(pt_index *idx, MDB_dbi dbi, const char *name, void *out, size_t size)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return map_rc(rc);
    MDB_val k = sval(name), v;
    if ((rc = mdb_get(txn, dbi, &k, &v)) == 0)
        load_record(out, size, &v);
    mdb_txn_abort(txn);
    return map_rc(rc);
}

int pt_index_entry(pt_index *idx, const char *key, pt_entry *out)
{
    return get_record(idx, idx->entry, key, out, sizeof *out);
}

int pt_index_usage_put(pt_index *idx, const pt_store_disk *disk, const pt_alone *v, size_t n)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    MDB_val k = sval("usage"), val = { .mv_size = sizeof *disk, .mv_data = (void *)disk };
    rc = mdb_put(txn, idx->meta, &k, &val, 0);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        MDB_val ek = sval(v[i].key), ev;
        pt_entry e;
        if ((rc = mdb_get(txn, idx->entry, &ek, &ev)) == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        load_record(&e, sizeof e, &ev);
        if (e.state != PT_STATE_READY || e.alone_bytes == v[i].alone_bytes)
            continue;
        e.alone_bytes = v[i].alone_bytes;
        ev = (MDB_val){ .mv_size = sizeof e, .mv_data = &e };
        rc = mdb_put(txn, idx->entry, &ek, &ev, 0);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    return map_rc(mdb_txn_commit(txn));
}

int pt_index_usage_get(pt_index *idx, pt_store_disk *out)
{
    return get_record(idx, idx->meta, "usage", out, sizeof *out);
}

static int counter_add_txn(pt_index *idx, MDB_txn *txn, const char *name, int64_t delta)
{
    char mk[64];
    snprintf(mk, sizeof mk, "counter:%s", name);
    MDB_val k = sval(mk), v;
    uint64_t cur = 0;
    int rc = mdb_get(txn, idx->meta, &k, &v);
    if (rc == 0 && v.mv_size == sizeof cur)
        memcpy(&cur, v.mv_data, sizeof cur);
    else if (rc && rc != MDB_NOTFOUND)
        return rc;
    cur = (delta < 0 && (uint64_t)-delta > cur) ? 0 : cur + (uint64_t)delta;
    v.mv_size = sizeof cur;
    v.mv_data = &cur;
    return mdb_put(txn, idx->meta, &k, &v, 0);
}

/* Keep the atime row of key in step with its entry: a row for every ready
 * entry, keyed by its access time. */
static int atime_sync(pt_index *idx, MDB_txn *txn, const char *key, const pt_entry *old, const pt_entry *cur)
{
    bool had = old && old->state == PT_STATE_READY, has = cur->state == PT_STATE_READY;
    if (had == has && (!has || old->last_access_ms == cur->last_access_ms))
        return 0;
    struct atime_key ak;
    memcpy(ak.key, key, KEY_LEN);
    MDB_val k = { .mv_size = sizeof ak, .mv_data = &ak }, v = { .mv_size = 0, .mv_data = "" };
    int rc;
    if (had) {
        put_be(ak.ms, (uint64_t)old->last_access_ms, 8);
        if ((rc = mdb_del(txn, idx->atime, &k, NULL)) != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    if (has) {
        put_be(ak.ms, (uint64_t)cur->last_access_ms, 8);
        if ((rc = mdb_put(txn, idx->atime, &k, &v, 0)) != 0)
            return rc;
    }
    return 0;
}

/* The read-modify-write of pt_index_update in txn, which it commits or aborts. */
static int update_txn(pt_index *idx, MDB_txn *txn, const char *key, pt_entry_fn fn, void *arg,
                      const char *const *counters)
{
    MDB_val k = sval(key), v;
    pt_entry e, old;
    bool existed = false;
    int rc = mdb_get(txn, idx->entry, &k, &v);
    if (rc == 0) {
        load_record(&e, sizeof e, &v);
        old = e;
        existed = true;
    } else if (rc == MDB_NOTFOUND) {
        memset(&e, 0, sizeof e);
        e.version = PT_ENTRY_VERSION;
        e.created = pt_wall_s();
    } else {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    int r = fn ? fn(&e, arg) : 0;
    if (r < 0 || (r == 1 && !counters)) {
        mdb_txn_abort(txn);
        return r < 0 ? r : 0;
    }
    if (r == 0) {
        v.mv_size = sizeof e;
        v.mv_data = &e;
        if ((rc = mdb_put(txn, idx->entry, &k, &v, 0)) != 0 ||
            (rc = atime_sync(idx, txn, key, existed ? &old : NULL, &e)) != 0) {
            mdb_txn_abort(txn);
            return map_rc(rc);
        }
    }
    for (const char *const *c = counters; c && *c; c++)
        if ((rc = counter_add_txn(idx, txn, *c, 1)) != 0) {
            mdb_txn_abort(txn);
            return map_rc(rc);
        }
    return map_rc(mdb_txn_commit(txn));
}

static int live_leases_txn(pt_index *idx, MDB_txn *txn, const char *key, pid_t except, unsigned *live, bool *dirty);

/* pt_index_update, after counting the live leases on key (but except's) in
 * the same write transaction when unleased: -EBUSY if there is one. */
static int update_checked(pt_index *idx, const char *key, bool unleased, pid_t except, pt_entry_fn fn, void *arg,
                          const char *const *counters)
{
    if (strlen(key) != KEY_LEN)
        return -EINVAL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    unsigned live = 0;
    bool dirty = false;
    if (unleased && ((rc = live_leases_txn(idx, txn, key, except, &live, &dirty)) != 0 || live > 0)) {
        mdb_txn_abort(txn);
        return rc ? rc : -EBUSY;
    }
    return update_txn(idx, txn, key, fn, arg, counters);
}

int pt_index_update(pt_index *idx, const char *key, pt_entry_fn fn, void *arg, const char *const *counters)
{
    return update_checked(idx, key, false, 0, fn, arg, counters);
}

int pt_index_update_unleased(pt_index *idx, const char *key, pid_t except, pt_entry_fn fn, void *arg,
                             const char *const *counters)
{
    return update_checked(idx, key, true, except, fn, arg, counters);
}

int pt_index_count(pt_index *idx, const char *name, int64_t delta)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    if ((rc = counter_add_txn(idx, txn, name, delta)) != 0) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    return map_rc(mdb_txn_commit(txn));
}

int pt_index_counters(pt_index *idx, pt_counters *out)
{
    static const char *const names[] = { "hits", "misses", "builds", "build_failures", "evictions",
                                         "pulled", "pull_failures", "pushed", "push_failures" };
    uint64_t *fields[] = { &out->hits, &out->misses, &out->builds, &out->build_failures, &out->evictions,
                           &out->pulled, &out->pull_failures, &out->pushed, &out->push_failures };
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return map_rc(rc);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char mk[64];
        snprintf(mk, sizeof mk, "counter:%s", names[i]);
        MDB_val k = sval(mk), v;
        if (mdb_get(txn, idx->meta, &k, &v) == 0 && v.mv_size == sizeof(uint64_t))
            memcpy(fields[i], v.mv_data, sizeof(uint64_t));
    }
    mdb_txn_abort(txn);
    return 0;
}

/* Walk a database with a cursor; MDB_NOTFOUND at the end is success. */
typedef int (*walk_fn)(const MDB_val *k, const MDB_val *v, void *arg);
static int walk(pt_index *idx, MDB_dbi dbi, walk_fn fn, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return map_rc(rc);
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    MDB_val k, v;
    int r = 0;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0)
        if ((r = fn(&k, &v, arg)) != 0)
            break;
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (r)
        return r;
    return rc == MDB_NOTFOUND ? 0 : map_rc(rc);
}

struct entry_walk { pt_each_entry_fn fn; void *arg; };
static int entry_step(const MDB_val *k, const MDB_val *v, void *arg)
{
    struct entry_walk *w = arg;
    char key[65];
    pt_entry e;
    if (k->mv_size >= sizeof key)
        return 0;
    memcpy(key, k->mv_data, k->mv_size);
    key[k->mv_size] = '\0';
    load_record(&e, sizeof e, v);
    return w->fn(key, &e, w->arg);
}

int pt_index_each_entry(pt_index *idx, pt_each_entry_fn fn, void *arg)
{
    struct entry_walk w = { fn, arg };
    return walk(idx, idx->entry, entry_step, &w);
}

/* LRU walk: atime rows in order, each with its entry (read in the same transaction) */
struct lru_walk { pt_index *idx; MDB_txn *txn; pt_each_entry_fn fn; void *arg; };

int pt_index_each_lru(pt_index *idx, pt_each_entry_fn fn, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return map_rc(rc);
    if ((rc = mdb_cursor_open(txn, idx->atime, &cur)) != 0) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    MDB_val k, v;
    int r = 0;
    while (r == 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (k.mv_size != sizeof(struct atime_key))
            continue;
        char key[KEY_LEN + 1];
        memcpy(key, ((const struct atime_key *)k.mv_data)->key, KEY_LEN);
        key[KEY_LEN] = '\0';
        MDB_val ek = sval(key), ev;
        pt_entry e;
        if (mdb_get(txn, idx->entry, &ek, &ev) != 0)
            continue;
        load_record(&e, sizeof e, &ev);
        r = fn(key, &e, arg);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (r)
        return r;
    return rc == MDB_NOTFOUND ? 0 : map_rc(rc);
}

static MDB_val lease_key(struct lease_key *lk, const char *key, pid_t pid)
{
    memcpy(lk->key, key, KEY_LEN);
    put_be(lk->pid, (uint32_t)pid, 4);
    return (MDB_val){ .mv_size = sizeof *lk, .mv_data = lk };
}

int pt_index_lease_add(pt_index *idx, const char *key, pid_t pid, const pt_lease *lease)
{
    if (strlen(key) != KEY_LEN || pid <= 0)
        return -EINVAL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    struct lease_key lk;
    MDB_val k = lease_key(&lk, key, pid), v = { .mv_size = sizeof *lease, .mv_data = (void *)lease };
    if ((rc = mdb_put(txn, idx->lease, &k, &v, 0)) != 0) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    return map_rc(mdb_txn_commit(txn));
}

int pt_index_lease_del(pt_index *idx, const char *key, pid_t pid)
{
    if (strlen(key) != KEY_LEN)
        return -EINVAL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    struct lease_key lk;
    MDB_val k = lease_key(&lk, key, pid);
    if ((rc = mdb_del(txn, idx->lease, &k, NULL)) != 0) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    return map_rc(mdb_txn_commit(txn));
}

/* The live leases on key in txn (of pids other than except, when > 0) into
 * *live; the stale ones (dead or reused pids) are deleted (*dirty). 0 or -errno. */
static int live_leases_txn(pt_index *idx, MDB_txn *txn, const char *key, pid_t except, unsigned *live, bool *dirty)
{
    *live = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, idx->lease, &cur);
    if (rc)
        return map_rc(rc);
    struct lease_key lk;
    MDB_val k = lease_key(&lk, key, 0), v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != sizeof lk || memcmp(k.mv_data, key, KEY_LEN) != 0)
            break;
        pt_lease l;
        load_record(&l, sizeof l, &v);
        pid_t pid = (pid_t)get_be(((const struct lease_key *)k.mv_data)->pid, 4);
        if (pt_holder_alive(pid, l.pid_start)) {
            if (except <= 0 || pid != except)
                (*live)++;
        } else if ((rc = mdb_cursor_del(cur, 0)) != 0) {
            break;
        } else {
            *dirty = true;
        }
    }
    mdb_cursor_close(cur);
    return rc != 0 && rc != MDB_NOTFOUND ? map_rc(rc) : 0;
}

int pt_index_lease_live(pt_index *idx, const char *key, unsigned *live)
{
    *live = 0;
    if (strlen(key) != KEY_LEN)
        return -EINVAL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    bool dirty = false;
    if ((rc = live_leases_txn(idx, txn, key, 0, live, &dirty)) != 0 || !dirty) {
        mdb_txn_abort(txn);
        return rc;
    }
    return map_rc(mdb_txn_commit(txn));
}

struct lease_walk { pt_each_lease_fn fn; void *arg; };
static int lease_step(const MDB_val *k, const MDB_val *v, void *arg)
{
    struct lease_walk *w = arg;
    if (k->mv_size != sizeof(struct lease_key))
        return 0;
    const struct lease_key *lk = k->mv_data;
    char key[KEY_LEN + 1];
    memcpy(key, lk->key, KEY_LEN);
    key[KEY_LEN] = '\0';
    pt_lease l;
    load_record(&l, sizeof l, v);
    l.holder[sizeof l.holder - 1] = '\0';
    return w->fn(key, (pid_t)get_be(lk->pid, 4), &l, w->arg);
}

int pt_index_each_lease(pt_index *idx, pt_each_lease_fn fn, void *arg)
{
    struct lease_walk w = { fn, arg };
    return walk(idx, idx->lease, lease_step, &w);
}

int pt_index_service_put(pt_index *idx, const pt_service *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    pt_service copy = *s;
    copy.version = PT_SERVICE_VERSION;
    MDB_val k = sval(s->id), v = { .mv_size = sizeof copy, .mv_data = &copy };
    if ((rc = mdb_put(txn, idx->service, &k, &v, 0)) != 0) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    return map_rc(mdb_txn_commit(txn));
}

int pt_index_service_get(pt_index *idx, const char *id, pt_service *out)
{
    int rc = get_record(idx, idx->service, id, out, sizeof *out);
    if (rc == 0) {
        out->id[sizeof out->id - 1] = '\0';
        out->key[sizeof out->key - 1] = '\0';
    }
    return rc;
}

int pt_index_service_del(pt_index *idx, const char *id)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    MDB_val k = sval(id);
    if ((rc = mdb_del(txn, idx->service, &k, NULL)) != 0) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    return map_rc(mdb_txn_commit(txn));
}

struct service_walk { pt_each_service_fn fn; void *arg; };
static int service_step(const MDB_val *k, const MDB_val *v, void *arg)
{
    (void)k;
    struct service_walk *w = arg;
    pt_service s;
    load_record(&s, sizeof s, v);
    s.id[sizeof s.id - 1] = '\0';
    s.key[sizeof s.key - 1] = '\0';
    return w->fn(&s, w->arg);
}

int pt_index_each_service(pt_index *idx, pt_each_service_fn fn, void *arg)
{
    struct service_walk w = { fn, arg };
    return walk(idx, idx->service, service_step, &w);
}

const char *pt_state_name(uint32_t state)
{
    switch (state) {
    case PT_STATE_NONE: return "none";
    case PT_STATE_BUILDING: return "building";
    case PT_STATE_READY: return "ready";
    case PT_STATE_FAILED: return "failed";
    default: return "unknown";
    }
}

int pt_index_user_uid(pt_index *idx, const char *name, uint32_t lo, uint32_t hi, bool (*taken)(uint32_t, void *),
                      void *arg, pt_user *out, bool *created)
{
    if (created)
        *created = false;
    if (lo > hi || hi - lo >= (1u << 24))
        return -EINVAL;
    /* a known user (every run but its first) costs a read, not the write lock */
    int rc = get_record(idx, idx->user, name, out, sizeof *out);
    if (rc != -ENOENT)
        return rc;
    MDB_txn *txn;
    rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    MDB_val k = sval(name), v;
    rc = mdb_get(txn, idx->user, &k, &v);
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        memcpy(out, v.mv_data, v.mv_size < sizeof *out ? v.mv_size : sizeof *out);
        mdb_txn_abort(txn);
        return 0;
    }
    if (rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    /* the uids held, as a bitmap of the range: no two users ever share one */
    size_t n = (size_t)(hi - lo) + 1;
    unsigned char *held = calloc((n + 7) / 8, 1);
    MDB_cursor *cur = NULL;
    if (!held || (rc = mdb_cursor_open(txn, idx->user, &cur)) != 0) {
        free(held);
        mdb_txn_abort(txn);
        return held ? map_rc(rc) : -ENOMEM;
    }
    MDB_val ck, cv;
    for (rc = mdb_cursor_get(cur, &ck, &cv, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &ck, &cv, MDB_NEXT)) {
        pt_user u = { 0 };
        memcpy(&u, cv.mv_data, cv.mv_size < sizeof u ? cv.mv_size : sizeof u);
        if (u.uid >= lo && u.uid <= hi)
            held[(u.uid - lo) / 8] |= (unsigned char)(1u << ((u.uid - lo) % 8));
    }
    mdb_cursor_close(cur);
    size_t i = 0;
    while (i < n && ((held[i / 8] >> (i % 8)) & 1 || (taken && taken(lo + (uint32_t)i, arg))))
        i++;
    free(held);
    if (i == n) {
        mdb_txn_abort(txn);
        return -ENOSPC;
    }
    pt_user u = { .version = PT_USER_VERSION, .uid = lo + (uint32_t)i, .created = pt_wall_s() };
    v = (MDB_val){ .mv_size = sizeof u, .mv_data = &u };
    if ((rc = mdb_put(txn, idx->user, &k, &v, MDB_NOOVERWRITE)) != 0) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return map_rc(rc);
    *out = u;
    if (created)
        *created = true;
    return 0;
}

int pt_index_user_get(pt_index *idx, const char *name, pt_user *out)
{
    return get_record(idx, idx->user, name, out, sizeof *out);
}

int pt_index_user_event(pt_index *idx, char kind, const char *user, int64_t now_us, int64_t window_us, long max,
                        long *count, bool *recorded)
{
    size_t ul = strlen(user);
    if (ul == 0 || ul > 64)
        return -EINVAL;
    /* key: kind, user, NUL, time in microseconds big-endian: one user's events of a kind in time order */
    unsigned char key[1 + 64 + 1 + 8], from[sizeof key];
    size_t kl = 1 + ul + 1 + 8;
    key[0] = (unsigned char)kind;
    memcpy(key + 1, user, ul);
    key[1 + ul] = 0;
    memcpy(from, key, 2 + ul);
    put_be(from + 2 + ul, (uint64_t)(now_us > window_us ? now_us - window_us : 0), 8);
    *count = 0;
    *recorded = false;
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, idx->event, &cur)) != 0) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    /* the ones before the window go; the ones in it count */
    MDB_val k = { .mv_size = 2 + ul, .mv_data = key }, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != kl || memcmp(k.mv_data, key, 2 + ul) != 0)
            break;
        if (memcmp(k.mv_data, from, kl) < 0) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                break;
            continue;
        }
        (*count)++;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    if (max > 0 && *count >= max) {
        rc = mdb_txn_commit(txn); /* the pruning stays */
        return map_rc(rc);
    }
    for (int64_t t = now_us;; t++) { /* two events in one microsecond: the next one free */
        put_be(key + 2 + ul, (uint64_t)t, 8);
        MDB_val nk = { .mv_size = kl, .mv_data = key }, nv = { .mv_size = 0, .mv_data = NULL };
        rc = mdb_put(txn, idx->event, &nk, &nv, MDB_NOOVERWRITE);
        if (rc != MDB_KEYEXIST)
            break;
    }
    if (rc) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return map_rc(rc);
    *recorded = true;
    return 0;
}

/* Delete the leases of key whose process is gone (kill(pid, 0): ESRCH),
 * in txn. A reused pid is not looked for here (that reads /proc): the
 * eviction's pt_index_lease_live deletes those. */
static int lease_drop_gone(pt_index *idx, MDB_txn *txn, const char *key)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, idx->lease, &cur);
    if (rc)
        return rc;
    struct lease_key lk;
    MDB_val k = lease_key(&lk, key, 0), v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != sizeof lk || memcmp(k.mv_data, key, KEY_LEN) != 0)
            break;
        pid_t pid = (pid_t)get_be(((const struct lease_key *)k.mv_data)->pid, 4);
        if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH && (rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int count_use_txn(pt_index *idx, MDB_txn *txn, const char *key, int64_t now_ms, bool *used)
{
    MDB_val k = sval(key), v;
    int rc = mdb_get(txn, idx->entry, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    pt_entry e, old;
    load_record(&e, sizeof e, &v);
    if (e.state != PT_STATE_READY)
        return 0;
    old = e;
    e.hits++;
    e.last_access_ms = now_ms;
    v.mv_size = sizeof e;
    v.mv_data = &e;
    if ((rc = mdb_put(txn, idx->entry, &k, &v, 0)) != 0 || (rc = atime_sync(idx, txn, key, &old, &e)) != 0 ||
        (rc = counter_add_txn(idx, txn, "hits", 1)) != 0)
        return rc;
    *used = true;
    return 0;
}

int pt_index_lease_use(pt_index *idx, const char *key, pid_t pid, const pt_lease *lease, bool use, int64_t now_ms,
                       bool *used)
{
    if (used)
        *used = false;
    if (strlen(key) != KEY_LEN || pid <= 0 || !lease)
        return -EINVAL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    bool counted = false;
    struct lease_key lk;
    MDB_val k = lease_key(&lk, key, pid), v = { .mv_size = sizeof *lease, .mv_data = (void *)lease };
    if ((rc = lease_drop_gone(idx, txn, key)) != 0 || (rc = mdb_put(txn, idx->lease, &k, &v, 0)) != 0 ||
        (use && (rc = count_use_txn(idx, txn, key, now_ms, &counted)) != 0)) {
        mdb_txn_abort(txn);
        return map_rc(rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return map_rc(rc);
    if (used)
        *used = counted;
    return 0;
}

int pt_index_service_lease(pt_index *idx, const pt_service *s, pid_t add, const pt_lease *lease, pid_t drop)
{
    if (!s || strlen(s->key) != KEY_LEN || add < 0 || drop < 0 || (add > 0 && !lease))
        return -EINVAL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc)
        return map_rc(rc);
    pt_service copy = *s;
    copy.version = PT_SERVICE_VERSION;
    MDB_val k = sval(s->id), v = { .mv_size = sizeof copy, .mv_data = &copy };
    struct lease_key lk;
    if ((rc = mdb_put(txn, idx->service, &k, &v, 0)) != 0)
        goto fail;
    if (add > 0) {
        k = lease_key(&lk, s->key, add);
        v = (MDB_val){ .mv_size = sizeof *lease, .mv_data = (void *)lease };
        if ((rc = mdb_put(txn, idx->lease, &k, &v, 0)) != 0)
            goto fail;
    }
    if (drop > 0 && drop != add) {
        k = lease_key(&lk, s->key, drop);
        if ((rc = mdb_del(txn, idx->lease, &k, NULL)) != 0 && rc != MDB_NOTFOUND)
            goto fail;
    }
    return map_rc(mdb_txn_commit(txn));
fail:
    mdb_txn_abort(txn);
    return map_rc(rc);
}
