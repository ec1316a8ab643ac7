/* builds.c — build on miss, and start-up recovery.
 *
 * A readlink of a registered key that is not built calls pt_fs_resolve. The
 * first caller for a key takes the key's claim (claims.c) and starts a build
 * thread: it marks the entry `building`, runs one pactown-build process (its
 * output to logs/<key>.log), waits for it, records `ready` or `failed` — the
 * index is the commit point — and releases the claim, which answers every
 * request that waited on it: exactly one build however many lookups wait,
 * and no FUSE worker thread waits with them. Other keys are served meanwhile.
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/key.h"
#include "pactown/spawn.h"
#include "pactown/store.h"
#include "pactown/vec.h"
#include "pactown/venv.h"
#include "pactown/usage.h"
#include "pactown/uvcache.h"
#include "pactownfs.h"

/* the venv of key is complete and its base interpreter is there (pactown/venv.h) */
static int venv_check(struct pt_fs *fs, const char *key, char *why, size_t n)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%.64s", fs->store, key);
    return pt_venv_check(dir, why, n);
}

static bool store_dir_ok(struct pt_fs *fs, const char *key)
{
    char why[8];
    return venv_check(fs, key, why, sizeof why) == 0;
}

/* ---- index updates (each one short write transaction) ---- */

/* an access seen by the daemon (arg: struct pt_atime): the uses counted as
 * hits, whatever the entry's state now (a use of a venv evicted since still
 * happened), and the access time of a ready entry, unless a newer one is
 * stored already */
static int mark_access(pt_entry *e, void *arg)
{
    const struct pt_atime *a = arg;
    bool newer = e->state == PT_STATE_READY && e->last_access_ms < a->ms;
    if ((!newer && a->hits == 0) || e->created == 0) /* created 0: no such entry (never made here) */
        return 1;
    if (newer)
        e->last_access_ms = a->ms;
    e->hits += a->hits;
    return 0;
}

/* Note an access (a lookup: hits 0; a use: 1) in memory, for
 * pt_fs_flush_atimes. */
static void note_access(struct pt_fs *fs, const char *key, int64_t ms, unsigned hits)
{
    pthread_mutex_lock(&fs->atime_mu);
    size_t i;
    for (i = 0; i < fs->n_atimes; i++)
        if (strcmp(fs->atimes[i].key, key) == 0)
            break;
    if (i == fs->n_atimes) {
        struct pt_atime *p = pt_grow(fs->atimes, &fs->cap_atimes, fs->n_atimes, sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&fs->atime_mu);
            return; /* an access time is a hint for eviction, a hit a figure: losing one is fine */
        }
        fs->atimes = p;
        memset(&fs->atimes[i], 0, sizeof fs->atimes[i]);
        snprintf(fs->atimes[i].key, sizeof fs->atimes[i].key, "%s", key);
        fs->n_atimes++;
    }
    if (fs->atimes[i].ms < ms)
        fs->atimes[i].ms = ms;
    fs->atimes[i].hits += hits;
    pthread_mutex_unlock(&fs->atime_mu);
}

void pt_fs_note_use(struct pt_fs *fs, const char *key, int64_t ms)
{
    note_access(fs, key, ms, 1);
}

uint64_t pt_fs_pending_hits(struct pt_fs *fs)
{
    uint64_t n = 0;
    pthread_mutex_lock(&fs->atime_mu);
    for (size_t i = 0; i < fs->n_atimes; i++)
        n += fs->atimes[i].hits;
    pthread_mutex_unlock(&fs->atime_mu);
    return n;
}

void pt_fs_flush_atimes(struct pt_fs *fs)
{
    pthread_mutex_lock(&fs->atime_mu);
    struct pt_atime *list = fs->atimes;
    size_t n = fs->n_atimes;
    fs->atimes = NULL;
    fs->n_atimes = fs->cap_atimes = 0;
    pthread_mutex_unlock(&fs->atime_mu);
    int failed = 0;
    uint64_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = pt_index_update(fs->idx, list[i].key, mark_access, &list[i], NULL);
        failed += rc != 0 && rc != -ENOENT;
        hits += rc == 0 ? list[i].hits : 0; /* the counter as the entries: both or neither */
    }
    if (hits && pt_index_count(fs->idx, "hits", (int64_t)hits) != 0)
        failed++;
    if (failed)
        fprintf(stderr, "pactownfs: warning: %d access time(s) or hit count(s) could not be written to the index\n",
                failed);
    free(list);
}

static int mark_building(pt_entry *e, void *arg)
{
    (void)arg;
    e->state = PT_STATE_BUILDING;
    e->builds++;
    e->builder_pid = 0;
    return 0;
}

static int mark_pid(pt_entry *e, void *arg)
{
    e->builder_pid = *(pid_t *)arg;
    return 0;
}

struct build_result {
    int rc;
    pt_origin origin;       /* built here or pulled from the registry */
    bool pull_failed;       /* built here after a pull that failed (the reason is in the log) */
    bool interrupted;       /* the daemon stopped the build: not a failure */
    bool environment;       /* it failed for a cause of the environment (pt_fail_cause) */
    uint64_t ms;
    pt_venv_usage usage;    /* of the built venv (pactown/usage.h) */
};

static int mark_done(pt_entry *e, void *arg)
{
    const struct build_result *r = arg;
    int64_t now = pt_wall_s();
    e->builder_pid = 0;
    e->build_ms = r->ms;
    if (r->interrupted) {
        e->state = PT_STATE_NONE; /* built again on its next lookup */
    } else if (r->rc == 0) {
        e->state = PT_STATE_READY;
        e->bytes = r->usage.apparent_bytes;
        e->files = r->usage.files;
        e->alone_bytes = r->usage.alone_bytes;
        e->built_at = now;
        e->origin = r->origin;
        e->pull_failed = r->pull_failed;
        e->pushed_at = 0; /* this build has not been pushed yet */
        e->push_failed_at = 0;
        e->unsynced = 1; /* until sync_built (after the answer) */
        e->last_access_ms = pt_wall_ms();
    } else {
        e->state = PT_STATE_FAILED;
        e->failed_at = now;
        e->failures++;
        e->fail_cause = r->environment ? PT_FAIL_ENVIRONMENT : PT_FAIL_BUILD;
    }
    return 0;
}

/* the venv of build number *builds is on disk (the entry is unchanged if another build came since) */
static int mark_synced(pt_entry *e, void *arg)
{
    if (e->state != PT_STATE_READY || !e->unsynced || e->builds != *(const uint64_t *)arg)
        return 1;
    e->unsynced = 0;
    return 0;
}

static int mark_none(pt_entry *e, void *arg)
{
    (void)arg;
    if (e->state == PT_STATE_NONE && e->builder_pid == 0)
        return 1;
    e->state = PT_STATE_NONE;
    e->builder_pid = 0;
    return 0;
}

/* ---- one build ---- */

static void log_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(int fd, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
        /* the log may be unwritable (cache_dir full): keep the reason in the daemon's log */
        ssize_t w = write(fd, buf, len);
        if (w != (ssize_t)len)
            fprintf(stderr, "pactownfs: (build log unwritable: %s) %.*s", w < 0 ? strerror(errno) : "short write",
                    (int)len, buf);
    }
}

/* Wait for the builder with a deadline; on timeout SIGTERM its group, then SIGKILL. */
static int wait_builder(struct pt_fs *fs, struct pt_claim *claim, pid_t pid, long timeout_s, int *status,
                        bool *timed_out)
{
    *timed_out = false;
    int pfd = pidfd_open(pid, 0);
    if (pfd >= 0) {
        struct pollfd p = { .fd = pfd, .events = POLLIN };
        int r;
        do
            r = poll(&p, 1, timeout_s > 0 ? (int)(timeout_s * 1000) : -1);
        while (r < 0 && errno == EINTR);
        if (r == 0) {
            *timed_out = true;
            kill(-pid, SIGTERM);
            kill(pid, SIGTERM);
            do
                r = poll(&p, 1, 10000);
            while (r < 0 && errno == EINTR);
            if (r == 0) {
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
            }
        }
        close(pfd);
    }
    /* it has exited: once reaped its pid may be reused, so the stop must not signal it */
    pt_claim_set_pid(fs, claim, 0);
    return pt_wait(pid, status);
}

/* the line of a canonical text that starts with prefix, as "%.*s" length and start */
static int line_of(const char *text, size_t len, const char *prefix, const char **start)
{
    size_t pl = strlen(prefix);
    for (const char *p = text; p < text + len;) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        if (l >= pl && memcmp(p, prefix, pl) == 0) {
            *start = p;
            return (int)l;
        }
        p += l + 1;
    }
    *start = "";
    return 0;
}

/* Write key's requirements for the builder. The key covers the interpreter
 * and the installer sources: build only what this daemon would build for it
 * now. Returns 0, -EIO (the stored set is unreadable) or -ESTALE (a cause of
 * the environment: registered for another interpreter or sources, or the
 * requirements file could not be written). */
static int write_requirements(struct pt_fs *fs, const pt_interp *interp, const char *key, const char *spec,
                              size_t len, char *path, size_t n, int logfd)
{
    pt_python_tag tag;
    const char *reqs = NULL;
    pt_error err = { 0 };
    int rc = pt_canonical_parse(spec, len, &tag, &reqs, &err);
    if (rc) {
        log_line(logfd, "pactown: the stored requirement set of %s is unreadable: %s\n", key, err.msg);
        return -EIO;
    }
    char *mine = NULL;
    size_t mine_len = 0;
    pt_reqset none;
    pt_reqset_init(&none);
    pt_source src = { .index_url = fs->cfg.index_url, .find_links = fs->cfg.find_links, .no_index = fs->cfg.no_index };
    rc = pt_canonical_text(&none, &interp->tag, &src, &mine, &mine_len);
    if (rc || mine_len != (size_t)(reqs - spec) || memcmp(mine, spec, mine_len) != 0) {
        const char *theirs_py, *mine_py;
        int tl = line_of(spec, (size_t)(reqs - spec), "python ", &theirs_py);
        int ml = mine ? line_of(mine, mine_len, "python ", &mine_py) : 0;
        if (ml && (tl != ml || memcmp(theirs_py, mine_py, (size_t)tl) != 0))
            log_line(logfd,
                     "pactown: %s was registered for '%.*s', but the interpreter the setting `python` (%s) finds"
                     " now is '%.*s' (%s): it changed since the set was registered. Run the command again"
                     " (pactown run, pactown hash --register): it gives the key of the interpreter that will"
                     " really run.\n",
                     key, tl, theirs_py, fs->cfg.python, ml, mine_py, interp->path);
        else
            log_line(logfd,
                     "pactown: %s was registered for other installer settings than this daemon builds with."
                     "\nregistered:\n%.*sthis daemon:\n%s"
                     "set `index_url`, `find_links` and `no_index` alike for the CLI and the daemon\n",
                     key, (int)(reqs - spec), spec, mine ? mine : "?\n");
        free(mine);
        return -ESTALE;
    }
    free(mine);
    snprintf(path, n, "%s/%.64s.requirements.txt", fs->tmp, key);
    rc = pt_write_file_atomic(path, reqs, len - (size_t)(reqs - spec), 0644);
    if (rc)
        log_line(logfd, "pactown: %s: %s\n", path, strerror(-rc));
    return rc ? -ESTALE : 0;
}

/* less than 16 MiB left where venvs are built: a failure there is the disk's */
static bool disk_nearly_full(const char *dir)
{
    struct statvfs sv;
    return statvfs(dir, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < (16u << 20);
}

static char **builder_env(struct pt_fs *fs)
{
    char *add[3] = { NULL, NULL, NULL };
    size_t n = 0;
    bool bad = false;
    if (*fs->cfg.index_url)
        bad |= asprintf(&add[n++], "PACTOWN_BUILD_INDEX_URL=%s", fs->cfg.index_url) < 0;
    if (!bad && *fs->cfg.find_links)
        bad |= asprintf(&add[n++], "PACTOWN_BUILD_FIND_LINKS=%s", fs->cfg.find_links) < 0;
    if (bad)
        add[n - 1] = NULL; /* asprintf leaves it undefined */
    static const char *const drop[] = { "PACTOWN_BUILD_", NULL };
    char **env = bad ? NULL : pt_env_new(NULL, drop, NULL, (const char *const *)add);
    free(add[0]);
    free(add[1]);
    return env;
}

/* One build of key (or pull: pactown-build tries the registry first). 0
 * ready, -errno failed; *built_here: ready, and built by the installer here
 * (not pulled): for the push. */
static int run_build(struct pt_fs *fs, struct pt_claim *claim, const char *key, bool *built_here)
{
    *built_here = false;
    char logpath[PATH_MAX], reqpath[PATH_MAX];
    snprintf(logpath, sizeof logpath, "%s/%.64s.log", fs->logs, key);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        fprintf(stderr, "pactownfs: %s: %s\n", logpath, strerror(errno));
        return -EIO;
    }
    char was_broken[PATH_MAX] = "";
    pt_entry old;
    if (pt_index_entry(fs->idx, key, &old) == 0 && old.state == PT_STATE_READY &&
        venv_check(fs, key, was_broken, sizeof was_broken) == -ESTALE)
        fprintf(stderr, "pactownfs: %s: %s; it is built again\n", key, was_broken);
    else
        was_broken[0] = '\0';
    static const char *const miss_counters[] = { "misses", "builds", NULL };
    int rc = pt_index_update(fs->idx, key, mark_building, NULL, miss_counters);
    char *spec = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = pt_index_spec(fs->idx, key, &spec, &len);
    if (rc) {
        log_line(logfd, "pactown: index: %s\n", strerror(-rc));
        close(logfd);
        return -EIO;
    }
    uint64_t t0 = pt_mono_ns();
    struct build_result res = { 0 };
    if (was_broken[0])
        log_line(logfd, "pactown: the venv %s was built but %s: building it again\n", key, was_broken);
    /* the interpreter, checked again: a re-pointed link or an upgraded binary
     * is seen now, not at the next restart (pactown/interp.h) */
    pt_interp interp;
    pt_error ierr = { 0 };
    rc = pt_interp_resolve(fs->cfg.python, fs->idx, PT_INTERP_DAEMON, &interp, &ierr);
    if (rc) {
        log_line(logfd, "pactown: the interpreter: %s\n", ierr.msg);
        rc = -ESTALE;
    } else {
        pthread_mutex_lock(&fs->interp_mu);
        bool changed = strcmp(interp.path, fs->interp.path) != 0 || memcmp(&interp.tag, &fs->interp.tag, sizeof interp.tag);
        if (changed)
            fs->interp = interp;
        pthread_mutex_unlock(&fs->interp_mu);
        if (changed)
            fprintf(stderr, "pactownfs: python %s is now %s (%s %s %s)\n", fs->cfg.python, interp.path,
                    interp.tag.impl, interp.tag.version, interp.tag.platform);
    }
    if (rc == 0)
        rc = write_requirements(fs, &interp, key, spec, len, reqpath, sizeof reqpath, logfd);
    if (rc == 0) {
        log_line(logfd, "pactown: requirement set %s:\n", key);
        pt_write_all(logfd, spec, len); /* whole: log_line cuts at 1 KiB */
        const char *argv[32];
        size_t n = 0;
        argv[n++] = fs->builder;
        argv[n++] = "--store"; argv[n++] = fs->store;
        argv[n++] = "--key"; argv[n++] = key;
        argv[n++] = "--python"; argv[n++] = interp.path;
        argv[n++] = "--requirements"; argv[n++] = reqpath;
        argv[n++] = "--installer"; argv[n++] = fs->installer;
        if (strcmp(fs->installer, "uv") == 0) {
            argv[n++] = "--uv"; argv[n++] = fs->uv;
        }
        if (*fs->cfg.uv_cache_dir) { argv[n++] = "--uv-cache-dir"; argv[n++] = fs->cfg.uv_cache_dir; }
        if (fs->cfg.no_index) argv[n++] = "--no-index";
        if (fs->cfg.offline) argv[n++] = "--offline";
        char timeout[24], deadline[24];
        if (*fs->cfg.registry) {
            /* fetch before building (pactown/registry.h) */
            snprintf(timeout, sizeof timeout, "%ld", fs->cfg.registry_timeout);
            argv[n++] = "--registry"; argv[n++] = fs->cfg.registry;
            if (*fs->cfg.registry_auth) { argv[n++] = "--registry-auth"; argv[n++] = fs->cfg.registry_auth; }
            argv[n++] = "--registry-timeout"; argv[n++] = timeout;
            /* a fetch that trickles on is given up in time for the build here */
            if (fs->cfg.build_timeout > 1) {
                snprintf(deadline, sizeof deadline, "%ld", fs->cfg.build_timeout / 2);
                argv[n++] = "--registry-deadline"; argv[n++] = deadline;
            }
        }
        argv[n] = NULL;
        /* the index URL and find-links may carry credentials: environment only */
        char **env = builder_env(fs);
        pt_spawn_opts so = { .argv = argv, .envp = (const char *const *)env, .stdin_fd = -1, .stdout_fd = logfd,
                             .stderr_fd = logfd, .new_pgrp = true, .death_signal = SIGTERM };
        pid_t pid;
        rc = !env ? -ENOMEM : pt_claims_stopping(fs) ? -ESHUTDOWN : pt_spawn(&so, &pid);
        pt_env_free(env);
        if (rc) {
            log_line(logfd, "pactown: cannot start %s: %s\n", fs->builder, strerror(-rc));
        } else {
            pt_claim_set_pid(fs, claim, pid);
            /* the pid lets a restart end a builder a killed daemon left: without it one may linger */
            int prc = pt_index_update(fs->idx, key, mark_pid, &pid, NULL);
            if (prc)
                log_line(logfd, "pactown: warning: cannot record the builder's pid in the index: %s\n", strerror(-prc));
            int status;
            bool timed_out;
            rc = wait_builder(fs, claim, pid, fs->cfg.build_timeout, &status, &timed_out);
            /* pactown-build exits 10 when it pulled the venv, 11 when it built it after a failed pull */
            if (rc == 0 && WIFEXITED(status) && (WEXITSTATUS(status) == 10 || WEXITSTATUS(status) == 11)) {
                res.origin = WEXITSTATUS(status) == 10 ? PT_ORIGIN_PULLED : PT_ORIGIN_BUILT;
                res.pull_failed = WEXITSTATUS(status) == 11;
                status = 0;
            }
            if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
                char how[96];
                pt_describe_status(status, how, sizeof how);
                if (timed_out)
                    log_line(logfd, "pactown: build timed out after %ld s (setting build_timeout)\n",
                             fs->cfg.build_timeout);
                log_line(logfd, "pactown: builder %s\n", how);
                /* a builder killed (SIGKILL, the OOM killer) could not remove
                 * its half venv: its links would keep wheels from the prune
                 * and count in max_bytes until the next start */
                if (WIFSIGNALED(status) && !pt_claims_stopping(fs)) {
                    int rrc = pt_fs_remove_store_dir(fs, key, pid);
                    log_line(logfd, "pactown: removed what the killed builder left%s\n", rrc ? " (failed)" : "");
                }
                /* pactown-build exits 3 when the disk is full */
                rc = WIFEXITED(status) && WEXITSTATUS(status) == 3 ? -ENOSPC : -EIO;
            }
        }
        unlink(reqpath);
    }
    res.ms = (pt_mono_ns() - t0) / 1000000;
    if (rc == 0 && !store_dir_ok(fs, key)) {
        log_line(logfd, "pactown: the builder exited 0 but %s/%s is incomplete\n", fs->store, key);
        rc = -EIO;
    }
    if (rc == 0) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%.64s", fs->store, key);
        pt_venv_usage_of(dir, &res.usage);
    }
    res.rc = rc ? -EIO : 0;
    res.interrupted = rc && pt_claims_stopping(fs);
    res.environment = rc == -ESTALE || rc == -ENOSPC || (rc && disk_nearly_full(fs->store));
    if (res.interrupted) {
        res.rc = -ENOTCONN;
        log_line(logfd, "pactown: build interrupted: the daemon is stopping; it is built again on its next lookup\n");
        fprintf(stderr, "pactownfs: stopped the build of %s (the daemon is stopping); it is built again on its next lookup\n",
                key);
    }
    const char *counters[3] = { NULL, NULL, NULL };
    size_t nc = 0;
    if (rc && !res.interrupted)
        counters[nc++] = "build_failures";
    if (res.pull_failed)
        counters[nc++] = "pull_failures";
    if (rc == 0 && res.origin == PT_ORIGIN_PULLED)
        counters[nc++] = "pulled";
    int irc = pt_index_update(fs->idx, key, mark_done, &res, nc ? counters : NULL);
    if (irc) {
        log_line(logfd, "pactown: cannot record the result in the index: %s\n", strerror(-irc));
        res.rc = -EIO;
    }
    log_line(logfd, "pactown: %s %s in %llu ms\n", key,
             res.interrupted ? "interrupted" : res.rc ? "FAILED" : res.origin == PT_ORIGIN_PULLED ? "ready (pulled)"
             : res.pull_failed ? "ready (built here: the pull failed)" : "ready (built)", (unsigned long long)res.ms);
    close(logfd);
    free(spec);
    *built_here = res.rc == 0 && res.origin == PT_ORIGIN_BUILT;
    return res.rc;
}

/* ---- single flight ---- */

static int known_set(struct pt_fs *fs, const char *key);

/* What the index says without building: 0 ready, -ENOENT unknown, -EIO failed
 * recently, 1 must build. *e gets the entry when there is one. Reads the
 * index and the store: never called with a lock held. */
static int current_state(struct pt_fs *fs, const char *key, pt_entry *e)
{
    int rc = pt_index_entry(fs->idx, key, e);
    if (rc == 0 && e->state == PT_STATE_READY && store_dir_ok(fs, key))
        return 0;
    if (rc == 0 && e->state == PT_STATE_FAILED && pt_wall_s() - e->failed_at < fs->cfg.failure_ttl)
        return -EIO;
    if (rc == -ENOENT || rc == 0)
        return known_set(fs, key) == 0 ? 1 : -ENOENT;
    return -EIO;
}

int pt_fs_lookup_key(struct pt_fs *fs, const char *key)
{
    pt_entry e;
    int rc = pt_index_entry(fs->idx, key, &e); /* one read: an entry means a registered set */
    if (rc == 0)
        return e.state == PT_STATE_READY && store_dir_ok(fs, key) ? 1 : 0;
    if (rc == -ENOENT)
        return known_set(fs, key);
    return -EIO;
}

/* 0 if key's requirement set is registered, -ENOENT if not, -EIO if the index cannot be read */
static int known_set(struct pt_fs *fs, const char *key)
{
    char *spec = NULL;
    size_t len;
    int rc = pt_index_spec(fs->idx, key, &spec, &len);
    free(spec);
    return rc == 0 ? 0 : (rc == -ENOENT ? -ENOENT : -EIO);
}

/* a use of a built key seen by the daemon: its access time, throttled (a
 * busy venv is not a stream of writes). Hits are counted by whoever uses the
 * venv (pactown run). */
static void note_use(struct pt_fs *fs, const char *key, const pt_entry *e)
{
    int64_t now = pt_wall_ms();
    if (e->state == PT_STATE_READY && now - e->last_access_ms >= fs->cfg.atime_throttle * 1000)
        note_access(fs, key, now, 0);
}

static void reply_target(struct pt_fs *fs, fuse_req_t req, const char *key)
{
    char target[PATH_MAX];
    pt_reply_link(req, pt_fs_venv_target(fs, key, target, sizeof target), target);
}

/* a request that waited on key's claim */
static void answer_waiter(struct pt_fs *fs, fuse_req_t req, const char *key, int rc, bool again)
{
    if (again)
        pt_fs_resolve(fs, req, key, true); /* an eviction ended: look again (and rebuild) */
    else if (rc)
        fuse_reply_err(req, -rc);
    else
        reply_target(fs, req, key);
}

struct build_job {
    struct pt_fs *fs;
    struct pt_claim *claim;
    char key[PT_KEY_HEX + 1];
};

/* After the answer: the new venv's files to disk (syncfs(2) of the store's
 * filesystem), then the entry's unsynced flag cleared. A build or pull no
 * longer waits on the writeback (12-22 ms for a fastapi venv): a crash before
 * this leaves the entry unsynced, and the next start builds it again. */
static void sync_built(struct pt_fs *fs, const char *key)
{
    pt_entry e;
    if (pt_index_entry(fs->idx, key, &e) != 0 || e.state != PT_STATE_READY || !e.unsynced)
        return;
    uint64_t builds = e.builds;
    int fd = open(fs->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) != 0) {
        fprintf(stderr, "pactownfs: %s: syncfs: %s; %s stays unsynced (built again after a restart)\n", fs->store,
                strerror(errno), key);
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
    int rc = pt_index_update(fs->idx, key, mark_synced, &builds, NULL);
    if (rc)
        fprintf(stderr, "pactownfs: %s: cannot record that it is synced: %s\n", key, strerror(-rc));
}

static void *build_thread(void *arg)
{
    struct build_job *job = arg;
    struct pt_fs *fs = job->fs;
    bool built_here;
    int rc = run_build(fs, job->claim, job->key, &built_here);
    if (rc == 0)
        atomic_store(&fs->usage_dirty, true);
    pt_claim_release(fs, job->claim, rc);
    if (rc == 0)
        sync_built(fs, job->key);
    if (rc == 0)
        pt_fs_evict_soon(fs); /* a new venv may push the cache over its limits */
    /* in the background: the venv is ready when built, not when uploaded */
    if (built_here && *fs->cfg.registry && fs->cfg.registry_push)
        pt_fs_push(fs, job->key);
    free(job);
    pt_claims_thread_done(fs);
    return NULL;
}

static int start_build(struct pt_fs *fs, struct pt_claim *claim, const char *key)
{
    struct build_job *job = malloc(sizeof *job);
    if (!job)
        return -ENOMEM;
    job->fs = fs;
    job->claim = claim;
    memcpy(job->key, key, sizeof job->key);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    pt_claims_thread_started(fs);
    int rc = pthread_create(&t, &attr, build_thread, job);
    pthread_attr_destroy(&attr);
    if (rc) {
        pt_claims_thread_done(fs);
        free(job);
        fprintf(stderr, "pactownfs: cannot start a build thread for %s: %s\n", key, strerror(rc));
        return -rc;
    }
    return 0;
}

void pt_fs_resolve(struct pt_fs *fs, fuse_req_t req, const char *name, bool wait)
{
    /* a copy: name is the node's, which a forget may free once req is answered */
    char key[PT_KEY_HEX + 1];
    snprintf(key, sizeof key, "%s", name);
    pt_entry e;
    if (!wait) {
        /* a built key's own inode: its target never changes, and the kernel
         * reads it under that inode's page lock, which an eviction's
         * notify_inval_inode must take: answer at once, never wait */
        if (pt_index_entry(fs->idx, key, &e) == 0)
            note_use(fs, key, &e);
        reply_target(fs, req, key);
        return;
    }
    int st = current_state(fs, key, &e);
    if (st == 0) {
        note_use(fs, key, &e);
        reply_target(fs, req, key);
        return;
    }
    if (st < 0) {
        fuse_reply_err(req, -st);
        return;
    }
    struct pt_claim *c = pt_claim_or_wait(fs, req, key, answer_waiter);
    if (!c)
        return; /* req waits on the build or eviction in flight, or was answered */
    /* Ours: look again without a lock, a build may have finished since. */
    st = current_state(fs, key, &e);
    if (st > 0 && (st = start_build(fs, c, key)) == 0)
        return; /* the build thread releases c, which answers req */
    pt_claim_release(fs, c, st < 0 ? st : 0);
}

/* ---- recovery ---- */

/* A builder left by a killed daemon: end its process group if it is still ours. */
static void end_stale_builder(pid_t pid)
{
    char path[64], cmd[256];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, cmd, sizeof cmd - 1);
    close(fd);
    if (n <= 0)
        return;
    cmd[n] = '\0';
    if (strstr(cmd, "pactown-build")) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        fprintf(stderr, "pactownfs: ended builder %d left by an earlier daemon\n", (int)pid);
    }
}

static int recover_entry(const char *key, const pt_entry *e, void *arg)
{
    struct pt_fs *fs = arg;
    char why[PATH_MAX];
    if (e->state == PT_STATE_BUILDING) {
        if (e->builder_pid > 0)
            end_stale_builder(e->builder_pid);
        if (pt_index_update(fs->idx, key, mark_none, NULL, NULL) != 0)
            return -EIO;
        fprintf(stderr, "pactownfs: %s was being built when the daemon stopped; it will be built again on its next lookup\n", key);
    } else if (e->state == PT_STATE_READY && e->unsynced && !fs->recover_same_boot) {
        /* the machine restarted before its files reached the disk (sync_built): they may be lost */
        if (pt_index_update(fs->idx, key, mark_none, NULL, NULL) != 0)
            return -EIO;
        fprintf(stderr, "pactownfs: %s was not yet synced to disk when the machine restarted; it will be built "
                        "again on its next lookup\n", key);
    } else if (e->state == PT_STATE_READY && e->unsynced && venv_check(fs, key, why, sizeof why) == 0) {
        /* the daemon stopped, the machine did not: the files are whole in the page cache */
        sync_built(fs, key);
    } else if (e->state == PT_STATE_READY && venv_check(fs, key, why, sizeof why) != 0) {
        pt_index_update(fs->idx, key, mark_none, NULL, NULL);
        if (*why)
            fprintf(stderr, "pactownfs: %s: %s; it is built again on its next lookup\n", key, why);
    } else if (e->state == PT_STATE_FAILED && e->fail_cause == PT_FAIL_ENVIRONMENT) {
        pt_index_update(fs->idx, key, mark_none, NULL, NULL);
        fprintf(stderr, "pactownfs: %s: its last build failed for a cause of the environment (interpreter, disk);"
                        " it is built again on its next lookup\n", key);
    }
    return 0;
}

/* Whether the last daemon ran since this boot (the kernel's boot_id, kept in
 * the index's meta): then the page cache it wrote through is still there. */
static bool same_boot(struct pt_fs *fs)
{
    char now[64] = "", *before = NULL;
    size_t n = 0, len = 0;
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = read(fd, now, sizeof now - 1);
        n = r > 0 ? (size_t)r : 0;
        close(fd);
    }
    now[n] = '\0';
    bool same = n > 0 && pt_index_meta_get(fs->idx, "boot_id", &before, &len) == 0 && len == n &&
                memcmp(before, now, n) == 0;
    free(before);
    if (n > 0 && !same)
        pt_index_meta_put(fs->idx, "boot_id", now, n);
    return same;
}

int pt_fs_recover(struct pt_fs *fs)
{
    fs->recover_same_boot = same_boot(fs);
    int rc = pt_index_each_entry(fs->idx, recover_entry, fs);
    if (rc)
        return rc;
    DIR *d = opendir(fs->store);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, PT_UV_CACHE_NAME))
            continue; /* the builder's uv cache (pactown/uvcache.h) */
        pt_entry e;
        bool keep = pt_key_is_valid(de->d_name) && pt_index_entry(fs->idx, de->d_name, &e) == 0 &&
                    e.state == PT_STATE_READY;
        if (!keep) {
            fprintf(stderr, "pactownfs: removing %s/%s (not ready in the index)\n", fs->store, de->d_name);
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%.255s", fs->store, de->d_name);
            pt_rm_rf(path);
        }
    }
    closedir(d);
    return 0;
}
