/* pactown cache … and pactown lease … — look at and manage the cache. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"
#include "pactown/spawn.h"
#include "pactown/warm.h"
#include "pactown/vec.h"
#include "pactown/cgroup.h"
#include "pactown/proc.h"
#include "pactown/clock.h"
#include "pactown/proc.h"
#include "pactown/stats.h"

static const char cache_help[] =
    "usage: pactown cache COMMAND [options]\n"
    "\n"
    "  ls [--json]                 every venv: key, state, origin (built or pulled), size, last access,\n"
    "                              hits, leases, deps\n"
    "  show KEY [--json]           one venv: requirement set, figures, leases, paths (--json: as in ls --json)\n"
    "                              (KEY: a whole key or a unique prefix of 8+ hex digits)\n"
    "  stats [--json]              entries, size, hits, misses, hit rate, oldest, leased, evictions\n"
    "  gc [--dry-run] [--now T]    evict what the limits say (max_entries, max_age_hours, max_bytes,\n"
    "                              min_idle_seconds of the daemon); --now: as if at epoch second T\n"
    "  rm KEY [--force]            evict one venv; refused while a process holds a lease on it;\n"
    "                              for a failed build: forget the failure (the next lookup builds)\n"
    "  rebuild KEY [--force]       rm, then build it again through the daemon (with progress)\n"
    "  prewarm [-r FILE | REQ...]  register a requirement set and build it through the daemon\n"
    "          [--warm]            and start its warm process, ready for warm starts (docs/WARM.md)\n"
    "  ls --remote [--json]        the venvs in the registry (setting registry): key, size, layers, deps\n"
    "  push KEY                    push a venv built here to the registry (the daemon pushes each\n"
    "                              build by itself unless registry_push = no)\n"
    "  pull KEY                    fetch a venv from the registry through the daemon (KEY: whole);\n"
    "                              a set this host never saw is registered from the registry's copy\n"
    "\n"
    "gc, rm and rebuild ask the daemon (<cache_dir>/control.sock); the others read the index.\n"
    "exit codes: 0 ok, 1 error (pull: the venv was built here instead), 2 usage, 3 bad requirement,\n"
    "            4 build failed,\n"
    "            7 pactownfs not reachable, 8 no such venv, 9 venv leased or busy\n";

static const char lease_help[] =
    "usage: pactown lease add KEY [--pid PID] [--holder NAME]\n"
    "       pactown lease rm KEY [--pid PID]\n"
    "       pactown lease ls [--json]\n"
    "\n"
    "A venv with a live lease is never evicted. `pactown run` takes one for each service\n"
    "it starts. A process that uses a venv without `pactown run` (a cron job, a shell)\n"
    "takes one by hand: `pactown lease add KEY` leases it for the calling shell (the\n"
    "parent process; --pid for another). A lease ends with its process: leases of dead\n"
    "(or reused) pids are cleared.\n";

static void human_size(uint64_t b, char *out, size_t n)
{
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void human_age(int64_t secs, char *out, size_t n)
{
    if (secs < 0)
        secs = 0;
    if (secs < 120)
        snprintf(out, n, "%llds ago", (long long)secs);
    else if (secs < 7200)
        snprintf(out, n, "%lldm ago", (long long)(secs / 60));
    else if (secs < 172800)
        snprintf(out, n, "%lldh ago", (long long)(secs / 3600));
    else
        snprintf(out, n, "%lldd ago", (long long)(secs / 86400));
}

/* The requirement lines of key's set, as a JSON array. */
static json_t *deps_of(struct cli *cli, const char *key)
{
    json_t *a = json_array();
    char *spec = NULL;
    size_t len = 0;
    const char *reqs = NULL;
    if (pt_index_spec(cli->idx, key, &spec, &len) == 0 && pt_canonical_parse(spec, len, NULL, &reqs, NULL) == 0) {
        for (const char *p = reqs; p < spec + len;) {
            const char *nl = memchr(p, '\n', (size_t)(spec + len - p));
            size_t l = nl ? (size_t)(nl - p) : (size_t)(spec + len - p);
            json_array_append_new(a, json_stringn(p, l));
            p += l + 1;
        }
    }
    free(spec);
    return a;
}

struct warm_of {
    const char *key;
    json_t *list;
};

static int add_warm(const pt_warm_info *w, void *arg)
{
    struct warm_of *c = arg;
    if (strcmp(w->key, c->key) == 0)
        json_array_append_new(c->list, json_pack("{s:i, s:i, s:I, s:I}", "pid", (int)w->pid, "uid", (int)w->uid,
                                                 "rss_bytes", (json_int_t)w->rss_bytes, "last_use",
                                                 (json_int_t)w->last_use));
    return 0;
}

/* the warm processes of key (pactown/warm.h): pid, uid, resident memory, last use */
static json_t *warm_json(struct cli *cli, const char *key)
{
    struct warm_of c = { key, json_array() };
    if (c.list)
        pt_warm_each(cli->cfg.cache_dir, add_warm, &c);
    return c.list;
}

static json_t *entry_json(struct cli *cli, const char *key, const pt_entry *e)
{
    unsigned leases = 0;
    pt_index_lease_live(cli->idx, key, &leases);
    /* size: apparent; alone_bytes: the disk it holds alone, what evicting it frees (pactown/usage.h) */
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:I, s:I, s:i, s:o}", "key", key, "state",
                     pt_state_name(e->state), "size", (json_int_t)e->bytes, "alone_bytes", (json_int_t)e->alone_bytes,
                     "files", (json_int_t)e->files,
                     "last_access", e->last_access_ms ? json_integer(e->last_access_ms / 1000) : json_null(),
                     "built_at", e->built_at ? json_integer(e->built_at) : json_null(), "build_ms",
                     (json_int_t)e->build_ms, "hits", (json_int_t)e->hits, "builds", (json_int_t)e->builds,
                     "failures", (json_int_t)e->failures, "leases", (int)leases, "deps", deps_of(cli, key));
    /* the registry (pactown/registry.h): how the venv came, and its pushes */
    if (o && json_object_update_missing_new(o, json_pack("{s:o, s:b, s:s, s:b, s:o, s:o}",
            "warm", warm_json(cli, key), "synced", e->state == PT_STATE_READY && !e->unsynced,
            "origin", e->origin == PT_ORIGIN_PULLED ? "pulled" : "built", "pull_failed", e->pull_failed != 0,
            "pushed_at", e->pushed_at ? json_integer(e->pushed_at) : json_null(),
            "push_failed_at", e->push_failed_at ? json_integer(e->push_failed_at) : json_null())) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

struct ls_ctx {
    struct cli *cli;
    json_t *list;
};

static int ls_one(const char *key, const pt_entry *e, void *arg)
{
    struct ls_ctx *c = arg;
    json_t *o = entry_json(c->cli, key, e);
    if (!o)
        return -ENOMEM;
    json_array_append_new(c->list, o);
    return 0;
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        printf("%s\n", s);
    free(s);
}

static int cache_ls(struct cli *cli, bool json)
{
    cli_flush_uses(cli); /* the hits and access times the daemon holds in memory */
    struct ls_ctx c = { cli, json_array() };
    int rc = pt_index_each_entry(cli->idx, ls_one, &c);
    if (rc) {
        cli_err(cli, "index: %s", strerror(-rc));
        json_decref(c.list);
        return EXIT_ERROR;
    }
    if (json) {
        print_json(c.list);
    } else {
        printf("%-12s %-8s %-6s %10s %10s %-10s %5s %6s %10s  %s\n", "KEY", "STATE", "ORIGIN", "SIZE", "ALONE", "ACCESS",
               "HITS", "LEASED", "WARM", "DEPS");
        int64_t now = pt_wall_s();
        size_t i;
        json_t *o;
        json_array_foreach(c.list, i, o) {
            char size[32], alone[32], age[32] = "-", deps[80] = "", warm[64] = "-";
            human_size((uint64_t)json_integer_value(json_object_get(o, "size")), size, sizeof size);
            human_size((uint64_t)json_integer_value(json_object_get(o, "alone_bytes")), alone, sizeof alone);
            json_t *la = json_object_get(o, "last_access");
            if (json_is_integer(la))
                human_age(now - json_integer_value(la), age, sizeof age);
            size_t k = 0, j;
            json_t *d;
            json_array_foreach(json_object_get(o, "deps"), j, d) {
                if (k + 4 >= sizeof deps)
                    break;
                k += (size_t)snprintf(deps + k, sizeof deps - k, "%s%s", j ? ", " : "", json_string_value(d));
            }
            if (k >= sizeof deps - 1)
                memcpy(deps + sizeof deps - 4, "...", 4);
            /* its warm processes: how many, and their resident memory (shared with their children) */
            size_t nw = json_array_size(json_object_get(o, "warm"));
            uint64_t wrss = 0;
            json_array_foreach(json_object_get(o, "warm"), j, d)
                wrss += (uint64_t)json_integer_value(json_object_get(d, "rss_bytes"));
            if (nw) {
                char mem[32];
                human_size(wrss, mem, sizeof mem);
                char *sp = strchr(mem, ' '); /* one word in its column: "1:18.2MiB" */
                if (sp)
                    memmove(sp, sp + 1, strlen(sp));
                snprintf(warm, sizeof warm, "%zu:%s", nw, mem);
            }
            const char *state = json_string_value(json_object_get(o, "state"));
            printf("%-12.12s %-8s %-6s %10s %10s %-10s %5lld %6lld %10s  %s\n",
                   json_string_value(json_object_get(o, "key")), state,
                   strcmp(state, "ready") ? "-" : json_string_value(json_object_get(o, "origin")), size, alone, age,
                   (long long)json_integer_value(json_object_get(o, "hits")),
                   (long long)json_integer_value(json_object_get(o, "leases")), warm, deps);
        }
    }
    json_decref(c.list);
    return 0;
}

static int print_lease(const char *key, pid_t pid, const pt_lease *l, void *arg)
{
    json_t *list = arg;
    if (list) {
        json_array_append_new(list, json_pack("{s:s, s:i, s:s, s:I, s:b}", "key", key, "pid", (int)pid, "holder",
                                              l->holder, "since", (json_int_t)l->since, "alive",
                                              pt_holder_alive(pid, l->pid_start)));
    } else {
        printf("%-32s %8d %-8s %s\n", key, (int)pid, pt_holder_alive(pid, l->pid_start) ? "alive" : "stale",
               l->holder);
    }
    return 0;
}

struct show_ctx { const char *key; };
static int show_lease(const char *key, pid_t pid, const pt_lease *l, void *arg)
{
    struct show_ctx *c = arg;
    if (strcmp(key, c->key) == 0)
        printf("  lease: pid %d (%s)%s%s\n", (int)pid, pt_holder_alive(pid, l->pid_start) ? "alive" : "stale",
               *l->holder ? ", " : "", l->holder);
    return 0;
}

static int cache_show(struct cli *cli, const char *key, bool json)
{
    cli_flush_uses(cli);
    char *spec = NULL;
    size_t len;
    if (pt_index_spec(cli->idx, key, &spec, &len) != 0) {
        cli_err(cli, "no requirement set with key '%s' (see `pactown cache ls`)", key);
        return EXIT_NOT_FOUND;
    }
    pt_entry e = { 0 };
    pt_index_entry(cli->idx, key, &e);
    if (json) { /* the object of `cache ls --json` */
        free(spec);
        json_t *o = entry_json(cli, key, &e);
        if (!o) {
            cli_err(cli, "out of memory");
            return EXIT_FAILURE;
        }
        print_json(o);
        json_decref(o);
        return 0;
    }
    char size[32], alone[32], age[32] = "never";
    human_size(e.bytes, size, sizeof size);
    human_size(e.alone_bytes, alone, sizeof alone);
    if (e.last_access_ms)
        human_age(pt_wall_s() - e.last_access_ms / 1000, age, sizeof age);
    printf("key %s\nstate %s\nsize %s (%llu bytes, %llu files)\nalone %s on disk (what evicting it frees)\n"
           "last access %s\nhits %llu, builds %llu, failures %llu, "
           "last build %llu ms\nvenv %s/by-deps/%s\nlog %s/logs/%s.log\n",
           key, pt_state_name(e.state), size, (unsigned long long)e.bytes, (unsigned long long)e.files, alone, age,
           (unsigned long long)e.hits, (unsigned long long)e.builds, (unsigned long long)e.failures,
           (unsigned long long)e.build_ms, cli->cfg.mountpoint, key, cli->cfg.mountpoint, key);
    if (e.state == PT_STATE_READY) {
        char pushed[32] = "";
        if (e.pushed_at)
            human_age(pt_wall_s() - e.pushed_at, pushed, sizeof pushed);
        printf("origin %s%s%s%s%s\n", e.origin == PT_ORIGIN_PULLED ? "pulled from the registry" : "built here",
               e.pull_failed ? " (the pull failed)" : "", e.pushed_at ? ", pushed " : "", pushed,
               e.push_failed_at > e.pushed_at ? ", the last push failed" : "");
        if (e.unsynced)
            printf("not yet synced to disk (the daemon syncs it after answering)\n");
    }
    struct show_ctx c = { key };
    pt_index_each_lease(cli->idx, show_lease, &c);
    printf("requirement set:\n%s", spec);
    free(spec);
    return 0;
}

/* Per user: services running, memory in use from their cgroups, the largest limits among them. */
struct user_row {
    char user[PT_SERVICE_ID_MAX + 1];
    long running;
    uint64_t memory;
    int32_t mem_mb, cpu, procs;
};

struct users_ctx {
    struct user_row *v;
    size_t n, cap;
    pt_cg_host cg;
};

static int user_one(const pt_service *s, void *arg)
{
    struct users_ctx *c = arg;
    if (!s->user_id[0] || !(s->pid > 0 && pt_holder_alive(s->pid, s->pid_start)))
        return 0;
    size_t i = 0;
    while (i < c->n && strcmp(c->v[i].user, s->user_id) != 0)
        i++;
    if (i == c->n) {
        struct user_row *nv = pt_grow(c->v, &c->cap, c->n, sizeof *c->v);
        if (!nv)
            return -ENOMEM;
        c->v = nv;
        memset(&c->v[c->n], 0, sizeof c->v[0]);
        snprintf(c->v[c->n++].user, sizeof c->v[0].user, "%s", s->user_id);
    }
    struct user_row *r = &c->v[i];
    uint64_t m = 0;
    r->running++;
    if (pt_cgroup_memory(&c->cg, s->id, &m) == 0)
        r->memory += m;
    /* the largest limit among its running services (0: one runs without) */
    r->mem_mb = s->max_memory_mb > r->mem_mb ? s->max_memory_mb : r->mem_mb;
    r->cpu = s->max_cpu_percent > r->cpu ? s->max_cpu_percent : r->cpu;
    r->procs = s->max_processes > r->procs ? s->max_processes : r->procs;
    return 0;
}

static int cache_stats(struct cli *cli, bool json)
{
    cli_flush_uses(cli);
    struct users_ctx uc = { 0 };
    cli_cgroups(cli, &uc.cg);
    pt_index_each_service(cli->idx, user_one, &uc);
    pt_stats s;
    int rc = pt_stats_collect(cli->idx, &s);
    if (rc) {
        cli_err(cli, "index: %s", strerror(-rc));
        free(uc.v);
        return EXIT_ERROR;
    }
    pt_stats_add_warm(&s, cli->cfg.cache_dir);
    if (json) {
        char *text = pt_stats_json(&s, pt_wall_s());
        json_t *doc = text ? json_loads(text, 0, NULL) : NULL, *users = json_array();
        for (size_t i = 0; doc && users && i < uc.n; i++) {
            pt_user u = { 0 };
            pt_index_user_get(cli->idx, uc.v[i].user, &u);
            json_array_append_new(users, json_pack("{s:s, s:i, s:i, s:I, s:i, s:i, s:i}", "user", uc.v[i].user, "uid",
                                                   (int)u.uid, "running", (int)uc.v[i].running, "memory_bytes",
                                                   (json_int_t)uc.v[i].memory, "max_memory_mb", uc.v[i].mem_mb,
                                                   "max_cpu_percent", uc.v[i].cpu, "max_processes", uc.v[i].procs));
        }
        if (doc)
            json_object_set_new(doc, "users", users);
        else
            json_decref(users);
        char *out = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        fputs(out ? out : text ? text : "", stdout);
        if (out)
            fputc('\n', stdout);
        free(out);
        json_decref(doc);
        free(text);
        free(uc.v);
        return 0;
    }
    char size[32], age[32] = "-";
    human_size(s.bytes, size, sizeof size);
    if (s.oldest_access)
        human_age(pt_wall_s() - s.oldest_access, age, sizeof age);
    uint64_t lookups = s.counters.hits + s.counters.misses;
    printf("entries        %llu ready, %llu building, %llu failed, %llu registered\n", (unsigned long long)s.entries,
           (unsigned long long)s.building, (unsigned long long)s.failed, (unsigned long long)s.registered);
    printf("size           %s (apparent)\n", size);
    if (s.measured_ms) {
        char disk[32], uvc[32];
        human_size(s.disk_bytes, disk, sizeof disk);
        human_size(s.uv_cache_bytes, uvc, sizeof uvc);
        printf("disk           %s (the store, each file once), of which %s the uv cache's own; %llu shared files\n",
               disk, uvc, (unsigned long long)s.shared_files);
    }
    printf("hits           %llu\nmisses         %llu\n", (unsigned long long)s.counters.hits,
           (unsigned long long)s.counters.misses);
    if (lookups)
        printf("hit rate       %.1f%%\n", 100.0 * (double)s.counters.hits / (double)lookups);
    else
        printf("hit rate       -\n");
    printf("oldest access  %s\nleased         %llu\nbuilds         %llu (%llu failed)\nevictions      %llu\n", age,
           (unsigned long long)s.leased, (unsigned long long)s.counters.builds,
           (unsigned long long)s.counters.build_failures, (unsigned long long)s.counters.evictions);
    if (s.counters.pulled || s.counters.pull_failures || s.counters.pushed || s.counters.push_failures)
        printf("registry       %llu pulled (%llu pulls failed), %llu pushed (%llu pushes failed)\n",
               (unsigned long long)s.counters.pulled, (unsigned long long)s.counters.pull_failures,
               (unsigned long long)s.counters.pushed, (unsigned long long)s.counters.push_failures);
    if (s.warm_processes) {
        char mem[32];
        human_size(s.warm_rss_bytes, mem, sizeof mem);
        printf("warm           %llu warm processes, %s resident\n", (unsigned long long)s.warm_processes, mem);
    }
    for (size_t i = 0; i < uc.n; i++) {
        char mem[32];
        human_size(uc.v[i].memory, mem, sizeof mem);
        printf("%s%-14s %ld running, %s in use; max_memory_mb=%d max_cpu_percent=%d max_processes=%d (0: none)\n",
               i ? "" : "users:\n", uc.v[i].user, uc.v[i].running, mem, uc.v[i].mem_mb, uc.v[i].cpu, uc.v[i].procs);
    }
    free(uc.v);
    return 0;
}

static int cache_gc(struct cli *cli, bool dry_run, long long now, bool json)
{
    json_t *req = json_pack("{s:s, s:b}", "op", "gc", "dry_run", dry_run), *resp = NULL;
    if (now > 0)
        json_object_set_new(req, "now", json_integer(now));
    int ret = cli_control(cli, req, &resp);
    json_decref(req);
    if (ret)
        return ret;
    if (!json_is_true(json_object_get(resp, "ok"))) {
        cli_err(cli, "%s", json_string_value(json_object_get(resp, "error")));
        json_decref(resp);
        return EXIT_ERROR;
    }
    if (json) {
        print_json(resp);
    } else {
        size_t i;
        json_t *v;
        json_t *victims = json_object_get(resp, "victims");
        json_array_foreach(victims, i, v) {
            char size[32];
            human_size((uint64_t)json_integer_value(json_object_get(v, "size")), size, sizeof size);
            printf("%s %s (%s, %s)\n", dry_run ? "would evict" : "evicted", json_string_value(json_object_get(v, "key")),
                   json_string_value(json_object_get(v, "reason")), size);
        }
        printf("%zu venv%s %s\n", json_array_size(victims), json_array_size(victims) == 1 ? "" : "s",
               dry_run ? "would be evicted" : "evicted");
    }
    json_decref(resp);
    return 0;
}

static int cache_rm(struct cli *cli, const char *key, bool force, bool quiet_if_none)
{
    bool cleared = false;
    int ret = cli_evict(cli, key, force, quiet_if_none ? CLI_QUIET_NONE : 0, &cleared);
    if (ret == 0)
        printf("%s %s\n", cleared ? "cleared the failed build of" : "evicted", key);
    return ret;
}

/* rebuild: forget or evict what is there, then build it through the mount */
static int cache_rebuild(struct cli *cli, const char *key, bool force)
{
    int ret = cache_rm(cli, key, force, true);
    if (ret && ret != EXIT_NOT_FOUND)
        return ret;
    char *spec = NULL;
    size_t len = 0;
    int rc = pt_index_spec(cli->idx, key, &spec, &len);
    free(spec);
    if (rc == -ENOENT) {
        cli_err(cli, "no requirement set %s in the index (see `pactown cache ls`)", key);
        return EXIT_NOT_FOUND;
    }
    char venv[PATH_MAX];
    uint64_t t0 = pt_mono_ns();
    if ((ret = cli_check_mount(cli)) != 0 || (ret = cli_resolve_venv(cli, key, true, venv, sizeof venv)) != 0)
        return ret;
    printf("%s built in %.1f ms\n", key, (double)(pt_mono_ns() - t0) / 1e6);
    return 0;
}

int cli_venv_of(struct cli *cli, const pt_reqset *set, bool build, char key[PT_KEY_HEX + 1], char *venv, size_t n,
                bool *ready)
{
    char *canonical = NULL;
    size_t len;
    int ret = cli_check_mount(cli);
    *ready = false;
    venv[0] = '\0';
    if (ret == 0 && (ret = cli_key_of(cli, set, key, &canonical, &len)) == 0) {
        /* a look that builds nothing writes nothing either */
        if (build && pt_index_register(cli->idx, key, canonical, len, NULL) != 0) {
            cli_err(cli, "cannot register %s", key);
            ret = EXIT_ERROR;
        } else {
            pt_entry e;
            *ready = pt_index_entry(cli->idx, key, &e) == 0 && e.state == PT_STATE_READY;
            if (*ready || build)
                ret = cli_resolve_venv(cli, key, !*ready, venv, n);
            if (ret == 0 && *ready) /* a use of a built venv: a hit, and its access time */
                cli_note_use(cli, key);
        }
    }
    free(canonical);
    return ret;
}

/* The warm process of key started (as this uid, with this environment's
 * variables of the interpreter's start) and waited for until it listens. */
static int prewarm_warm(struct cli *cli, const char *key, const char *venv)
{
    char **env = cli_service_env(0, "127.0.0.1", venv, "/", NULL, 0, false);
    if (!env) {
        cli_err(cli, "out of memory");
        return EXIT_ERROR;
    }
    char id[128];
    pt_warm_id(key, geteuid(), pt_warm_env_sig(env), id, sizeof id);
    bool running = pt_warm_pid(cli->cfg.cache_dir, id) > 0;
    if (!running)
        engine_start_warm(cli, key, venv, id, env, NULL);
    pt_env_free(env);
    /* ready once it has preloaded (<id>/preloaded), then it listens */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/warm/%s/preloaded", cli->cfg.cache_dir, id);
    uint64_t deadline = pt_mono_ns() + 120ull * 1000000000ull;
    while (access(path, F_OK) != 0) {
        if (pt_warm_pid(cli->cfg.cache_dir, id) <= 0 || pt_mono_ns() > deadline) {
            cli_err(cli, "the warm process of %.12s did not get ready; its log: %s/warm/%s/zygote.log", key,
                    cli->cfg.cache_dir, id);
            return EXIT_ERROR;
        }
        struct pollfd none;
        poll(&none, 0, 20);
    }
    printf("%s warm process %s (pid %d)\n", key, running ? "running" : "ready", (int)pt_warm_pid(cli->cfg.cache_dir, id));
    return 0;
}

static int cache_prewarm(struct cli *cli, const char *file, char **args, int n, bool warm)
{
    pt_reqset set;
    pt_reqset_init(&set);
    char key[PT_KEY_HEX + 1], venv[PATH_MAX];
    bool ready;
    uint64_t t0 = pt_mono_ns();
    int ret = cli_read_reqs(cli, file, args, n, &set);
    if (ret == 0 && (ret = cli_venv_of(cli, &set, true, key, venv, sizeof venv, &ready)) == 0) {
        pt_entry e;
        bool pulled = !ready && pt_index_entry(cli->idx, key, &e) == 0 && e.origin == PT_ORIGIN_PULLED;
        printf("%s %s in %.1f ms\n", key, ready ? "already built" : pulled ? "pulled" : "built",
               (double)(pt_mono_ns() - t0) / 1e6);
        if (warm)
            ret = prewarm_warm(cli, key, venv);
    }
    pt_reqset_free(&set);
    return ret;
}

int cmd_cache(int argc, char **argv)
{
    struct cli cli = { .prog = "pactown cache" };
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(cache_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    static const struct option opts[] = {
        { "json", no_argument, NULL, OPT_JSON }, { "dry-run", no_argument, NULL, 'n' },
        { "force", no_argument, NULL, 'f' }, { "now", required_argument, NULL, 'T' },
        { "requirements", required_argument, NULL, 'r' }, { "remote", no_argument, NULL, 'R' },
        { "warm", no_argument, NULL, 'W' },
        CLI_COMMON_LONGOPTS, { 0 } };
    bool json = false, dry = false, force = false, remote = false, warm = false;
    long long now = 0;
    const char *file = NULL;
    int c, ret;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "hr:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: json = true; break;
        case 'n': dry = true; break;
        case 'f': force = true; break;
        case 'r': file = optarg; break;
        case 'R': remote = true; break;
        case 'W': warm = true; break;
        case 'T': now = strtoll(optarg, NULL, 10); break;
        default:
            if ((ret = cli_common_opt(&cli, c, optarg)) != 0) {
                fputs(cache_help, ret == 1 ? stdout : stderr);
                fputs("\n" CLI_COMMON_HELP, ret == 1 ? stdout : stderr);
                cli_free(&cli);
                return ret == 1 ? EXIT_OK : EXIT_USAGE;
            }
        }
    }
    int nargs = argc - optind;
    bool need_key = !strcmp(sub, "show") || !strcmp(sub, "rm") || !strcmp(sub, "rebuild") || !strcmp(sub, "push") ||
                    !strcmp(sub, "pull");
    bool known = need_key || !strcmp(sub, "ls") || !strcmp(sub, "stats") || !strcmp(sub, "gc") ||
                 !strcmp(sub, "prewarm");
    if (!known || (remote && strcmp(sub, "ls")) || (need_key && nargs != 1) || (!need_key && strcmp(sub, "prewarm") && nargs != 0) ||
        (!strcmp(sub, "prewarm") && ((file && nargs) || (!file && !nargs)))) {
        if (!known)
            cli_err(&cli, "unknown command '%s'", sub);
        fputs(cache_help, stderr);
        cli_free(&cli);
        return EXIT_USAGE;
    }
    char key[PT_KEY_HEX + 1];
    if ((ret = cli_setup(&cli)) == 0 && (ret = cli_open_index(&cli)) == 0) {
        if (!strcmp(sub, "ls"))
            ret = remote ? cache_ls_remote(&cli, json) : cache_ls(&cli, json);
        else if (!strcmp(sub, "pull")) /* the registry's keys are whole: no prefix of the local index */
            ret = cache_pull(&cli, argv[optind]);
        else if (need_key && (ret = cli_find_key(&cli, argv[optind], key)) != 0)
            ;
        else if (!strcmp(sub, "show"))
            ret = cache_show(&cli, key, json);
        else if (!strcmp(sub, "stats"))
            ret = cache_stats(&cli, json);
        else if (!strcmp(sub, "gc"))
            ret = cache_gc(&cli, dry, now, json);
        else if (!strcmp(sub, "rm"))
            ret = cache_rm(&cli, key, force, false);
        else if (!strcmp(sub, "rebuild"))
            ret = cache_rebuild(&cli, key, force);
        else if (!strcmp(sub, "push"))
            ret = cache_push(&cli, key);
        else
            ret = cache_prewarm(&cli, file, argv + optind, nargs, warm);
    }
    cli_free(&cli);
    return ret;
}

int cmd_lease(int argc, char **argv)
{
    struct cli cli = { .prog = "pactown lease" };
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(lease_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    static const struct option opts[] = {
        { "pid", required_argument, NULL, 'p' }, { "holder", required_argument, NULL, 'H' },
        { "json", no_argument, NULL, OPT_JSON }, CLI_COMMON_LONGOPTS, { 0 } };
    pid_t pid = getppid();
    const char *holder = "";
    bool json = false;
    int c, ret;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'p')
            pid = (pid_t)atoi(optarg);
        else if (c == 'H')
            holder = optarg;
        else if (c == OPT_JSON)
            json = true;
        else if ((ret = cli_common_opt(&cli, c, optarg)) != 0) {
            fputs(lease_help, ret == 1 ? stdout : stderr);
            cli_free(&cli);
            return ret == 1 ? EXIT_OK : EXIT_USAGE;
        }
    }
    bool is_ls = !strcmp(sub, "ls");
    if ((!is_ls && strcmp(sub, "add") && strcmp(sub, "rm")) || argc - optind != (is_ls ? 0 : 1) || pid <= 0) {
        fputs(lease_help, stderr);
        cli_free(&cli);
        return EXIT_USAGE;
    }
    if ((ret = cli_setup(&cli)) != 0 || (ret = cli_open_index(&cli)) != 0)
        goto out;
    if (is_ls) {
        json_t *list = json ? json_array() : NULL;
        pt_index_each_lease(cli.idx, print_lease, list);
        if (list) {
            print_json(list);
            json_decref(list);
        }
        goto out;
    }
    char key[PT_KEY_HEX + 1];
    if ((ret = cli_find_key(&cli, argv[optind], key)) != 0)
        goto out;
    if (!strcmp(sub, "add")) {
        pt_lease l = { .since = pt_wall_s() };
        snprintf(l.holder, sizeof l.holder, "%s", holder);
        if (pt_proc_start_time(pid, &l.pid_start) != 0) {
            cli_err(&cli, "no process %d", (int)pid);
            ret = EXIT_USAGE;
            goto out;
        }
        int rc = pt_index_lease_add(cli.idx, key, pid, &l);
        if (rc) {
            cli_err(&cli, "index: %s", strerror(-rc));
            ret = EXIT_ERROR;
        }
    } else {
        int rc = pt_index_lease_del(cli.idx, key, pid);
        if (rc) {
            cli_err(&cli, "no lease of pid %d on %s", (int)pid, key);
            ret = EXIT_NOT_FOUND;
        }
    }
out:
    cli_free(&cli);
    return ret;
}
