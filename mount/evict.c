/* evict.c — evicting venvs from the store, without pulling one from under a
 * running service or a lookup.
 *
 * Evicting key K:
 *   1. claim K (pt_claim_take): a build of K cannot start, and readlinks of K
 *      wait until the eviction is over (holding no worker thread), then look
 *      again (and rebuild);
 *   2. refuse if a live process holds a lease on K (unless forced);
 *   3. mark the entry `none` in the index (the commit point; the spec stays,
 *      so K can always be rebuilt) and count the eviction;
 *   4. tell the kernel to drop by-deps/K and its cached symlink target
 *      (notify_inval_entry / notify_inval_inode), so the next path walk comes
 *      to the daemon — and waits in step 1's claim or rebuilds;
 *   5. after a grace of evict_grace_ms for path walks that read the symlink
 *      just before step 4, remove the store directory: renamed aside first
 *      (atomically gone from its path, never half there), then deleted, by
 *      `pactown-build --remove` in the writable view of the store.
 * Processes that use the venv hold leases and are never in the way.
 * Kernel notifications are sent only from the eviction and control threads,
 * never from inside a FUSE operation (fuse_lowlevel.h warns that this can
 * deadlock).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "pactown/clock.h"
#include "pactown/proc.h"
#include "pactown/key.h"
#include "pactown/spawn.h"
#include "pactown/usage.h"
#include "pactown/uvcache.h"
#include "pactown/vec.h"
#include "pactown/venv.h"
#include "pactownfs.h"

struct evict_arg {
    bool was_ready;
};

static int mark_evicted(pt_entry *e, void *arg)
{
    struct evict_arg *a = arg;
    a->was_ready = e->state == PT_STATE_READY;
    if (!a->was_ready)
        return -ENOENT;
    e->state = PT_STATE_NONE;
    return 0;
}

/* Run pactown-build with argv (its output goes to the daemon's stderr);
 * 0, or -EAGAIN when it exits 75 (try later), -EIO when it fails, or -errno. */
static int run_builder(const char *const *argv)
{
    pt_spawn_opts so = { .argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .death_signal = SIGTERM };
    pid_t pid;
    int status, rc = pt_spawn(&so, &pid);
    if (rc == 0)
        rc = pt_wait(pid, &status);
    if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 75)
        rc = -EAGAIN;
    else if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        rc = -EIO;
    return rc;
}

int pt_fs_remove_store_dir(struct pt_fs *fs, const char *key, pid_t staging_pid)
{
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)staging_pid);
    const char *argv[] = { fs->builder, "--remove", "--store", fs->store, "--key", key,
                           staging_pid > 0 ? "--staging-pid" : NULL, pid, NULL };
    return run_builder(argv);
}

/* ---- the store's disk use, and the uv cache's prune ---- */

struct measure {
    pt_alone *v;
    size_t n, cap;
    int rc;
};

static void measured_venv(const char *name, const pt_venv_usage *u, void *arg)
{
    struct measure *m = arg;
    if (m->rc || !pt_key_is_valid(name))
        return;
    pt_alone *grown = pt_grow(m->v, &m->cap, m->n, sizeof *m->v);
    if (!grown) {
        m->rc = -ENOMEM;
        return;
    }
    m->v = grown;
    snprintf(m->v[m->n].key, sizeof m->v[m->n].key, "%s", name);
    m->v[m->n++].alone_bytes = u->alone_bytes;
}

/* The store's disk use: measured (one walk: pactown/usage.h) and recorded in
 * the index, with what each venv holds alone, when something changed since
 * the last measure and measure is true; otherwise the last record. */
static int store_disk(struct pt_fs *fs, pt_store_disk *out, bool measure)
{
    if (!measure || !atomic_load(&fs->usage_dirty)) {
        int rc = pt_index_usage_get(fs->idx, out);
        if (rc == 0 || !measure)
            return rc;
    }
    atomic_store(&fs->usage_dirty, false);
    pt_store_usage su;
    struct measure m = { 0 };
    int rc = pt_store_usage_of(fs->store, &su, measured_venv, &m);
    if (rc == 0 && m.rc)
        rc = m.rc;
    if (rc == 0) {
        *out = (pt_store_disk){ .version = PT_STORE_DISK_VERSION, .disk_bytes = su.disk_bytes,
                                .cache_bytes = su.cache_bytes, .shared_files = su.shared_files,
                                .measured_ms = pt_wall_ms() };
        rc = pt_index_usage_put(fs->idx, out, m.v, m.n);
    }
    free(m.v);
    if (rc) {
        atomic_store(&fs->usage_dirty, true);
        fprintf(stderr, "pactownfs: measuring the store's disk use failed: %s\n", strerror(-rc));
    }
    return rc;
}

/* Prune the uv cache's wheels that no venv links (pactown/uvcache.h), kept
 * ttl_s seconds; pactown-build does it in the store's writable view. */
static void prune_cache(struct pt_fs *fs, long ttl_s)
{
    char cache[PATH_MAX], ttl[24];
    struct stat st;
    if (strcmp(fs->installer, "uv") != 0 ||
        snprintf(cache, sizeof cache, "%s/" PT_UV_CACHE_NAME, fs->store) >= (int)sizeof cache || lstat(cache, &st) != 0)
        return;
    snprintf(ttl, sizeof ttl, "%ld", ttl_s > 0 ? ttl_s : 0);
    const char *argv[] = { fs->builder, "--prune", "--store", fs->store, "--uv", fs->uv, "--ttl", ttl, NULL };
    atomic_store(&fs->last_prune_ms, pt_wall_ms());
    int rc = run_builder(argv);
    if (rc == -EAGAIN)
        atomic_store(&fs->prune_due, true); /* a build holds the cache: the next run */
    else if (rc)
        fprintf(stderr, "pactownfs: pruning the uv cache %s failed (pactown-build said why above)\n", cache);
    atomic_store(&fs->usage_dirty, true);
}

static int mark_cleared(pt_entry *e, void *arg)
{
    (void)arg;
    if (e->state != PT_STATE_FAILED)
        return -ENOENT;
    e->state = PT_STATE_NONE;
    return 0;
}

int pt_fs_evict_key(struct pt_fs *fs, const char *key, bool force, pid_t except, const char *reason)
{
    struct pt_claim *claim = pt_claim_take(fs, key, PT_CLAIM_EVICT);
    if (!claim)
        return -EBUSY;
    pt_entry e;
    if (pt_index_entry(fs->idx, key, &e) == 0 && e.state == PT_STATE_FAILED) {
        /* nothing in the store: forget the failure, the next lookup builds again */
        int rc = pt_index_update(fs->idx, key, mark_cleared, NULL, NULL);
        if (rc == 0)
            fprintf(stderr, "pactownfs: cleared the failed build of %s (%s)\n", key, reason ? reason : "by request");
        pt_claim_release(fs, claim, rc);
        return rc ? rc : PT_EVICT_CLEARED;
    }
    /* the leases are counted in the transaction that marks it evicted: a
     * lease taken meanwhile (a run, a push) is never missed */
    struct evict_arg a = { false };
    static const char *const counters[] = { "evictions", NULL };
    int rc = force ? pt_index_update(fs->idx, key, mark_evicted, &a, counters)
                   : pt_index_update_unleased(fs->idx, key, except, mark_evicted, &a, counters);
    if (rc == 0) {
        fuse_ino_t ino = pt_node_find(fs, NODE_VENV, key);
        if (ino && fs->se)
            fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
        if (fs->se)
            fuse_lowlevel_notify_inval_entry(fs->se, INO_BY_DEPS, key, strlen(key));
        /* a path walk that read the symlink just before the invalidation is
         * still on its way into the store: let it arrive */
        long ms = fs->cfg.evict_grace_ms > 0 ? fs->cfg.evict_grace_ms : 0;
        struct timespec grace = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&grace, NULL);
        int rrc = pt_fs_remove_store_dir(fs, key, 0);
        atomic_store(&fs->usage_dirty, true);
        atomic_store(&fs->prune_due, true);
        fprintf(stderr, "pactownfs: evicted %s (%s)%s\n", key, reason ? reason : "by request",
                rrc ? "; removing its directory failed, it goes at the next start" : "");
    }
    pt_claim_release(fs, claim, rc);
    return rc;
}

int pt_fs_evict_run(struct pt_fs *fs, const pt_limits *lim, int64_t now_ms, bool dry_run, bool measure,
                    json_t *report)
{
    pt_candidate *c = NULL;
    size_t n = 0;
    pt_fs_uses_drain(fs);
    pt_fs_flush_atimes(fs); /* the LRU order must include the lookups and uses seen */
    long keep_s = fs->cfg.wheel_keep_hours > 0 ? fs->cfg.wheel_keep_hours * 3600 : 0;
    pt_store_disk disk = { 0 };
    /* max_bytes is held against the disk as it is now; without it the
     * figures can wait for a run that has the time */
    store_disk(fs, &disk, measure || lim->max_bytes > 0);
    bool over = lim->max_bytes > 0 && disk.disk_bytes > lim->max_bytes;
    if (over && !dry_run && disk.cache_bytes > 0) {
        prune_cache(fs, 0); /* wheels no venv links go before any venv does */
        store_disk(fs, &disk, true);
    }
    int rc = pt_evict_candidates(fs->idx, &c, &n);
    if (rc)
        return rc;
    pt_evict_plan(c, n, lim, now_ms, disk.disk_bytes);
    for (size_t i = 0; i < n; i++) {
        if (!c[i].victim)
            continue;
        int r = dry_run ? 0 : pt_fs_evict_key(fs, c[i].key, false, 0, c[i].reason);
        if (r == 0 && report)
            json_array_append_new(report, json_pack("{s:s, s:s, s:I, s:I}", "key", c[i].key, "reason", c[i].reason,
                                                    "size", (json_int_t)c[i].bytes,
                                                    "last_access", (json_int_t)(c[i].last_access_ms / 1000)));
    }
    free(c);
    /* The uv cache's wheels that no venv links: after evictions when they go
     * at once (wheel_keep_hours 0, or over max_bytes), else hourly (a wheel
     * unlinked earlier may have passed wheel_keep_hours since) */
    if (!dry_run) {
        bool evicted = atomic_load(&fs->prune_due), now_over = false;
        if (lim->max_bytes > 0 && !(evicted && keep_s == 0)) { /* with keep 0 it prunes, and at once, anyway */
            store_disk(fs, &disk, true);
            now_over = disk.disk_bytes > lim->max_bytes;
        }
        if ((evicted && (keep_s == 0 || now_over)) || now_ms - atomic_load(&fs->last_prune_ms) >= 3600 * 1000LL) {
            atomic_store(&fs->prune_due, false);
            prune_cache(fs, now_over ? 0 : keep_s);
        }
    }
    if (measure || lim->max_bytes > 0)
        store_disk(fs, &disk, true);
    return 0;
}

/* Built venvs whose base interpreter went away (pactown/venv.h): evicted, so
 * that the kernel forgets them and the next use rebuilds them, even when
 * every use of them is answered from the kernel's cache (by-deps/<key>/bin/python
 * run directly). Leased ones stay: a running service holds them. */
static void evict_broken(struct pt_fs *fs)
{
    pt_candidate *c = NULL;
    size_t n = 0;
    if (pt_evict_candidates(fs->idx, &c, &n) != 0)
        return;
    for (size_t i = 0; i < n && !pt_claims_stopping(fs); i++) {
        char dir[PATH_MAX], why[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", fs->store, c[i].key);
        if (c[i].leases == 0 && pt_venv_check(dir, why, sizeof why) == -ESTALE) {
            fprintf(stderr, "pactownfs: %s: %s; it is evicted and built again on its next use\n", c[i].key, why);
            pt_fs_evict_key(fs, c[i].key, false, 0, why);
        }
    }
    free(c);
}

static void *evict_main(void *arg)
{
    struct pt_fs *fs = arg;
    pt_limits lim;
    pt_limits_from_config(&fs->cfg, &lim);
    pthread_mutex_lock(&fs->evict_mu);
    while (!fs->evict_quit) {
        if (!fs->evict_wake) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += fs->cfg.evict_interval > 0 ? fs->cfg.evict_interval : 60;
            pthread_cond_timedwait(&fs->evict_cond, &fs->evict_mu, &until);
        }
        if (fs->evict_quit)
            break;
        bool woken = fs->evict_wake; /* by a build or an eviction: soon after it, and maybe before the next */
        fs->evict_wake = false;
        pthread_mutex_unlock(&fs->evict_mu);
        evict_broken(fs);
        int rc = pt_fs_evict_run(fs, &lim, pt_wall_ms(), false, !woken, NULL);
        if (rc)
            fprintf(stderr, "pactownfs: eviction run failed: %s\n", strerror(-rc));
        pthread_mutex_lock(&fs->evict_mu);
    }
    pthread_mutex_unlock(&fs->evict_mu);
    return NULL;
}

void pt_fs_evict_soon(struct pt_fs *fs)
{
    pthread_mutex_lock(&fs->evict_mu);
    fs->evict_wake = true;
    pthread_cond_signal(&fs->evict_cond);
    pthread_mutex_unlock(&fs->evict_mu);
}

int pt_fs_evict_start(struct pt_fs *fs)
{
    atomic_store(&fs->usage_dirty, true); /* the store may have changed while no daemon ran */
    atomic_store(&fs->last_prune_ms, pt_wall_ms()); /* the first hourly prune an hour from now */
    int rc = pthread_create(&fs->evict_thread, NULL, evict_main, fs);
    fs->evict_running = rc == 0;
    return -rc;
}

void pt_fs_evict_stop(struct pt_fs *fs)
{
    if (!fs->evict_running)
        return;
    pthread_mutex_lock(&fs->evict_mu);
    fs->evict_quit = true;
    pthread_cond_signal(&fs->evict_cond);
    pthread_mutex_unlock(&fs->evict_mu);
    pthread_join(fs->evict_thread, NULL);
    fs->evict_running = false;
}
