/* engine.c — one run of a markpact README, for `pactown run` and the API
 * (engine.h). */
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "forms.h"
#include "pactown/warm.h"
#include "pactown/cgroup.h"
#include "pactown/clock.h"
#include "pactown/health.h"
#include "pactown/markpact.h"
#include "pactown/mptest.h"
#include "pactown/proc.h"
#include "pactown/sandbox.h"
#include "pactown/spawn.h"
#include "testrun.h"

static double ms_since(uint64_t t0)
{
    return (double)(pt_mono_ns() - t0) / 1e6;
}

static int free_port(int from)
{
    for (int port = from; port < from + 200 && port < 65536; port++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return from;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_ANY) };
        int ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (ok)
            return port;
    }
    return from;
}

static int write_sandbox(struct cli *cli, const struct run_req *o, const char *parent, const pt_user *u,
                         const pt_markpact *mp, const char *key, int *dirfd)
{
    pt_error err = { 0 };
    if (pt_sandbox_open(parent, o->service_id, dirfd, &err) != 0) {
        cli_err(cli, "sandbox %s/%s: %s", parent, o->service_id, err.msg);
        return EXIT_ERROR;
    }
    for (size_t i = 0; i < mp->n_files; i++) {
        const pt_mp_block *f = &mp->files[i];
        /* a filled template may hold values of the environment (secrets): owner only */
        if (pt_sandbox_write_file(*dirfd, f->path, f->body, f->len, f->template ? 0600 : 0644, &err) != 0) {
            err.line = f->fence_line;
            cli_input_err(cli, f->source ? f->source : o->readme, &err);
            return err.code == -EINVAL || err.code == -ELOOP ? EXIT_BAD_INPUT : EXIT_ERROR;
        }
    }
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s/by-deps/%s", cli->cfg.mountpoint, key);
    if (pt_sandbox_link_venv(*dirfd, target, &err) != 0) {
        cli_err(cli, "sandbox %s/%s: %s", parent, o->service_id, err.msg);
        return EXIT_ERROR;
    }
    /* a user's sandbox is the user's alone (0700), .pactown/ stays the runner's;
     * <sandbox_root>/<user> lets others pass but not list */
    if (u && (pt_sandbox_give(*dirfd, u->uid, u->uid, &err) != 0 || chmod(parent, 0711) != 0)) {
        cli_err(cli, "sandbox %s/%s: %s", parent, o->service_id, err.msg[0] ? err.msg : strerror(errno));
        return EXIT_ERROR;
    }
    return 0;
}

/* After a service ended: the kernel's OOM killer, if it acted in its cgroup, is said. */
static void say_oom(struct cli *cli, const pt_cg_host *cg, bool made, const struct run_req *o)
{
    uint64_t kills = 0;
    if (made && pt_cgroup_oom_kills(cg, o->service_id, &kills) == 0 && kills)
        cli_err(cli, "the kernel killed %s: out of memory in its cgroup (max_memory_mb=%ld)", o->service_id,
                o->profile.max_memory_mb);
}

struct count_ctx {
    const char *user, *except;
    long n;
};

/* A warm start's health probes: sent by its warm process (pt_warm_probe), which has an HTTP
 * client loaded, where this process would load libcurl; when the warm process cannot, libcurl */
struct warm_probe {
    struct cli *cli;
    const char *id;
    uid_t uid;
    int fd;
    bool off;
};

static int warm_probe(void *arg, const char *host, int port, const char *path, int timeout_ms, long *status)
{
    struct warm_probe *w = arg;
    if (!w->off) {
        char why[256] = "";
        uint64_t t0 = pt_mono_ns();
        int rc = w->fd < 0 ? pt_warm_probe_open(w->cli->cfg.cache_dir, w->id, w->uid, &w->fd, why, sizeof why) : 0;
        if (rc == 0 && (rc = pt_warm_probe(w->fd, host, port, path, timeout_ms, status)) != -EPIPE)
            return rc;
        if (!why[0])
            snprintf(why, sizeof why, "its prober did not answer within %d ms, or answered otherwise", timeout_ms);
        timeout_ms -= (int)((pt_mono_ns() - t0) / 1000000); /* libcurl gets what is left of this probe's time */
        cli_note(w->cli, "warm: the warm process cannot send the health probes (%s): libcurl sends them", why);
        w->off = true;
        if (w->fd >= 0)
            close(w->fd);
        w->fd = -1;
        if (timeout_ms <= 0)
            return -ETIMEDOUT; /* the next round's probe is libcurl's, with its whole time */
    }
    return pt_http_probe(host, port, path, timeout_ms, status);
}

static int count_running(const pt_service *s, void *arg)
{
    struct count_ctx *c = arg;
    if (strcmp(s->user_id, c->user) == 0 && strcmp(s->id, c->except) != 0 && s->pid > 0 &&
        pt_holder_alive(s->pid, s->pid_start))
        c->n++;
    return 0;
}

/* The user's profile lets this start: blocked, requests in the last minute
 * (the API's), services running at once. Refusals name the limit and the
 * figure. Returns 0 or EXIT_REFUSED (out->too_many for a count). */
static int admit(struct cli *cli, const struct run_req *o, const char *user, struct run_out *out)
{
    const pt_profile *p = &o->profile;
    if (p->blocked) {
        cli_err(cli, "user %s is blocked%s%s", user, p->reason[0] ? ": " : "", p->reason);
        return EXIT_REFUSED;
    }
    if (cli->api && p->max_requests_per_minute) {
        long n = 0;
        bool ok = false;
        if (pt_index_user_event(cli->idx, 'r', user, pt_wall_ms() * 1000, 60LL * 1000000, p->max_requests_per_minute,
                                &n, &ok) == 0 && !ok) {
            cli_err(cli, "user %s: %ld of %ld runs asked in the last minute (max_requests_per_minute)", user, n,
                    p->max_requests_per_minute);
            out->too_many = true;
            return EXIT_REFUSED;
        }
    }
    if (p->max_concurrent_services) {
        struct count_ctx c = { .user = user, .except = o->service_id };
        pt_index_each_service(cli->idx, count_running, &c);
        if (c.n >= p->max_concurrent_services) {
            cli_err(cli, "user %s: %ld of %ld concurrent services running (max_concurrent_services)", user, c.n,
                    p->max_concurrent_services);
            out->too_many = true;
            return EXIT_REFUSED;
        }
    }
    return 0;
}

int engine_profile(struct cli *cli, const char *user, pt_profile *p)
{
    memset(p, 0, sizeof *p);
    pt_error err = { 0 };
    if (pt_profile_load(cli->cfg.user_profiles, user, p, &err) != 0) {
        cli_err(cli, "%s", err.msg);
        return EXIT_USAGE;
    }
    return 0;
}

/* a uid that /etc/passwd or /etc/group already gives someone is not handed out */
static bool uid_taken(uint32_t uid, void *arg)
{
    (void)arg;
    if (getpwuid(uid) != NULL || getgrgid(uid) != NULL)
        return true;
    /* nor one a process runs as (another runner's, a systemd DynamicUser's):
     * the owner of /proc/PID is the process's effective uid (proc(5)) */
    DIR *d = opendir("/proc");
    bool used = false;
    struct dirent *de;
    while (d && !used && (de = readdir(d)))
        if (de->d_name[0] >= '1' && de->d_name[0] <= '9') {
            struct stat st;
            used = fstatat(dirfd(d), de->d_name, &st, 0) == 0 && st.st_uid == uid;
        }
    if (d)
        closedir(d);
    return used;
}

/* The uid of user (made on first use), said when new. Returns 0 or an exit code. */
static int user_of(struct cli *cli, const char *user, pt_user *u)
{
    if (!pt_service_id_valid(user)) {
        cli_err(cli, "user '%s': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", user);
        return EXIT_USAGE;
    }
    if (geteuid() != 0) {
        cli_err(cli, "user %s: running a service as a user of its own needs root (uids, cgroups)", user);
        return EXIT_REFUSED;
    }
    long lo = cli->cfg.user_uid_min, hi = cli->cfg.user_uid_max;
    bool created = false;
    int rc = lo >= 1 && hi >= lo && hi < (1L << 31) ? pt_index_user_uid(cli->idx, user, (uint32_t)lo, (uint32_t)hi, uid_taken,
                                                                         NULL, u, &created)
                                                    : -EINVAL;
    if (rc == -ENOSPC) {
        cli_err(cli, "user %s: every uid of user_uid_min..user_uid_max (%ld..%ld) is held (by a user of pactown,"
                     " /etc/passwd, /etc/group or a running process)", user, lo, hi);
        return EXIT_REFUSED;
    }
    if (rc) {
        cli_err(cli, "user %s: cannot give it a uid: %s", user,
                rc == -EINVAL ? "user_uid_min..user_uid_max is not a range of uids" : strerror(-rc));
        return EXIT_ERROR;
    }
    if (created)
        cli_note(cli, "user %s: uid %u (new; kept in the index)", user, (unsigned)u->uid);
    return 0;
}

void engine_note_service(struct cli *cli, pt_service *svc)
{
    if (svc->pid == 0 && !svc->ended)
        svc->ended = pt_wall_s();
    int rc = pt_index_service_put(cli->idx, svc);
    if (rc)
        cli_err(cli, "warning: cannot update the record of %s in the index: %s (`pactown ps` may be out of date)",
                svc->id, strerror(-rc));
}

void engine_end_service(struct cli *cli, pt_service *svc, pid_t pid)
{
    svc->pid = 0;
    if (!svc->ended)
        svc->ended = pt_wall_s();
    int rc = pt_index_service_lease(cli->idx, svc, 0, NULL, pid);
    if (rc)
        cli_err(cli, "warning: cannot update the record of %s in the index: %s (`pactown ps` may be out of date)",
                svc->id, strerror(-rc));
}

/* --test of a README without test blocks: said, and not a failure. */
static int no_tests(struct cli *cli, const struct run_req *o, json_t **report)
{
    if (report)
        *report = json_pack("{s:s, s:i, s:i, s:i, s:[], s:s}", "service", o->service_id, "passed", 0, "failed", 0,
                            "skipped", 0, "tests", "note", "no markpact:test block");
    else if (o->json)
        printf("{\"service\": \"%s\", \"passed\": 0, \"failed\": 0, \"skipped\": 0, \"tests\": [],"
               " \"note\": \"no markpact:test block\"}\n", o->service_id);
    cli_note(cli, "%s has no markpact:test block: nothing to test", o->readme);
    return EXIT_OK;
}

/* The README's tests against tg: printed by the CLI, kept in out->tests for the API. */
static int run_tests(struct cli *cli, const struct run_req *o, bool tests_ok, const pt_mp_tests *tt,
                     const struct test_target *tg, struct run_out *out)
{
    if (!tests_ok)
        return EXIT_BAD_INPUT;
    json_t **report = cli->api ? &out->tests : NULL;
    return tt->n ? cli_run_tests(cli, tt, tg, o->json, report) : no_tests(cli, o, report);
}

/* The run command's first line, at most n - 4 bytes and "..." when cut. */
void engine_start_warm(struct cli *cli, const char *key, const char *venv, const char *warm_id, char *const *env,
                       const pt_user *u)
{
    char **wenv = pt_warm_env(env);
    if (!wenv)
        return;
    pt_warm_spawn_opts so = { .cache_dir = cli->cfg.cache_dir, .venv = venv, .id = warm_id, .env = wenv,
                              .set_ids = u != NULL, .uid = u ? u->uid : geteuid(), .gid = u ? u->uid : getegid(),
                              .idle_seconds = cli->cfg.warm_idle_seconds };
    char ended[128] = "";
    if (pt_warm_make_room(cli->cfg.cache_dir, cli->cfg.max_warm, ended, sizeof ended) > 0)
        cli_note(cli, "warm: ended the least recently used warm process (%.12s, max_warm=%ld)", ended,
                 cli->cfg.max_warm);
    pid_t zpid = 0;
    int rc = pt_warm_spawn(&so, &zpid);
    pt_env_free(wenv);
    if (rc && rc != -EEXIST) {
        cli_note(cli, "warm: cannot start the warm process of %.12s: %s", key, strerror(-rc));
        return;
    }
    if (rc)
        return;
    /* it leases the venv for as long as it runs: a venv with a warm process is never evicted */
    pt_lease lease = { .since = pt_wall_s() };
    snprintf(lease.holder, sizeof lease.holder, "warm:%u", (unsigned)so.uid);
    if (zpid <= 0 || pt_proc_start_time(zpid, &lease.pid_start) != 0 ||
        pt_index_lease_add(cli->idx, key, zpid, &lease) != 0) {
        cli_note(cli, "warm: the warm process of %.12s did not start (or cannot lease its venv): %s/warm/%s/zygote.log",
                 key, cli->cfg.cache_dir, warm_id);
        pt_warm_stop(cli->cfg.cache_dir, warm_id);
        return;
    }
    cli_note(cli, "warm: started the warm process of %.12s for the next start (pid %d)", key, (int)zpid);
}

static void command_line(const char *body, char *buf, size_t n)
{
    size_t len = strcspn(body, "\n");
    if (len < n)
        snprintf(buf, n, "%.*s", (int)len, body);
    else
        snprintf(buf, n, "%.*s...", (int)(n - 4), body);
}

int engine_run(struct cli *cli, const struct run_req *o, struct run_out *out)
{
    uint64_t t0 = o->t0 ? o->t0 : pt_mono_ns();
    pid_t me = gettid(); /* the lease holder while the venv resolves: this thread (one per API request) */
    int ret = 0, port = o->port;
    memset(out, 0, sizeof *out);
    out->exit_fd = -1;
    int exit_fd = -1; /* a warm start's (pactown/warm.h) */
    bool spawn_warm = false;
    char warm_id[128] = "";
    pt_warm_plan plan = { 0 };
    pt_markpact mp = { 0 };
    pt_reqset set;
    pt_reqset_init(&set);
    char *key = out->key, *canonical = NULL, *venv = out->venv, *sandbox = out->sandbox, parent[PATH_MAX];
    char *envs[ENGINE_ENVS + 3];
    int n_envs = 0, cg_fds[PT_CG_N], n_cg = 0;
    pt_cg_host cg = { 0 };
    pt_limits lim = { .max_memory_mb = o->profile.max_memory_mb, .max_cpu_percent = o->profile.max_cpu_percent,
                      .max_processes = o->profile.max_processes };
    bool limited = lim.max_memory_mb || lim.max_cpu_percent || lim.max_processes, made_cg = false;
    char *who[3] = { NULL, NULL, NULL };
    size_t clen = 0;
    char **env = NULL;
    int dirfd = -1;
    bool leased_by_me = false, tests_ok = false;
    pt_mp_tests tt = { 0 };
    ret = o->content ? cli_readme_text(cli, o->readme, o->content, o->content_len, &mp, &set)
                     : cli_readme_load(cli, o->readme, &mp, &set);
    if (ret != 0 || (ret = cli_check_mount(cli)) != 0 || (!cli->idx && (ret = cli_open_index(cli)) != 0) ||
        (ret = cli_key_of(cli, &set, key, &canonical, &clen)) != 0)
        goto out;
    if (!cli->api)
        cli_prune_services(cli); /* pactown serve prunes at its start */
    command_line(mp.run->body, out->command, sizeof out->command);
    pt_error terr = { 0 };
    tests_ok = pt_mp_tests_parse(mp.tests, mp.n_tests, &tt, &terr) == 0;
    if (!tests_ok) {
        cli_input_err(cli, o->readme, &terr);
        if (o->test) {
            ret = EXIT_BAD_INPUT;
            goto out;
        }
        cli_err(cli, "warning: the README's tests cannot run (`pactown test` will say so)");
    }
    const char *user = o->user && *o->user ? o->user : NULL;
    pt_user u = { 0 };
    if (user && (ret = user_of(cli, user, &u)) != 0)
        goto out;
    pt_service old;
    bool had = pt_index_service_get(cli->idx, o->service_id, &old) == 0;
    if (had && old.user_id[0] && strcmp(old.user_id, user ? user : "") != 0) {
        /* ids are one namespace: a user never takes over another's service */
        if (user || cli->api) {
            cli_err(cli, "service %s belongs to user %s", o->service_id, old.user_id);
            ret = EXIT_REFUSED;
            goto out;
        }
        cli_note(cli, "note: service %s was user %s's: run as root now, in %s/%s", o->service_id, old.user_id,
                 cli->cfg.sandbox_root, o->service_id);
    }
    if (had && old.pid > 0 && pt_holder_alive(old.pid, old.pid_start)) {
        cli_err(cli, "service %s is already running (pid %d, port %d); stop it first%s%s", o->service_id,
                (int)old.pid, old.port, cli->api ? "" : ": pactown stop ", cli->api ? "" : o->service_id);
        ret = EXIT_RUNNING;
        goto out;
    }
    if (user && (ret = admit(cli, o, user, out)) != 0)
        goto out;
    if (pt_index_register(cli->idx, key, canonical, clen, NULL) != 0) {
        cli_err(cli, "cannot register the requirement set %s in the index", key);
        ret = EXIT_ERROR;
        goto out;
    }
    pt_entry e = { 0 };
    bool hit = pt_index_entry(cli->idx, key, &e) == 0 && e.state == PT_STATE_READY;
    if (o->refresh && (hit || e.state == PT_STATE_FAILED)) {
        bool cleared;
        if ((ret = cli_evict(cli, key, false, CLI_QUIET_NONE | CLI_QUIET_BUSY, &cleared)) != 0 && ret != EXIT_NOT_FOUND) {
            if (ret == EXIT_RUNNING)
                cli_err(cli, "--refresh: the venv %.12s is in use (leased) or being built; stop its services, or"
                              " `pactown cache rebuild %.12s --force`", key, key);
            goto out;
        }
        if (ret == 0)
            cli_say(cli, "--refresh: %s %.12s", cleared ? "forgot the failed build of" : "evicted", key);
        ret = 0;
        hit = false;
        e.state = PT_STATE_NONE;
    }
    char summary[256] = "";
    for (size_t i = 0, k = 0; i < set.n && k + 2 < sizeof summary; i++)
        k += (size_t)snprintf(summary + k, sizeof summary - k, "%s%s", i ? ", " : "", set.lines[i]);
    if ((ret = cli_check_env_example(cli, o->readme, &mp, o->envs, o->n_envs)) != 0 ||
        (ret = cli_fill_templates(cli, o->readme, &mp, o->envs, o->n_envs)) != 0 ||
        (ret = cli_sandbox_parent(&cli->cfg, user, parent, sizeof parent) ? EXIT_ERROR : 0) != 0 ||
        (ret = write_sandbox(cli, o, parent, user ? &u : NULL, &mp, key, &dirfd)) != 0)
        goto out;
    if (snprintf(sandbox, sizeof out->sandbox, "%s/%s", parent, o->service_id) >= (int)sizeof out->sandbox) {
        cli_err(cli, "sandbox_root %s: path too long", cli->cfg.sandbox_root);
        ret = EXIT_ERROR;
        goto out;
    }
    cli_tests_save(cli, dirfd, &mp, o->readme, o->host);
    out->hit = hit;
    if (hit && cli->api) {
        cli_say(cli, "\u26a1 Cache hit! Reusing venv (%.8s)", key); /* the Fast Start page's words */
    } else if (hit) {
        cli_say(cli, "cache hit %.12s (%s)", key, set.n ? summary : "no dependencies");
    } else if (e.state == PT_STATE_FAILED && cli->cfg.failure_ttl > 0 &&
               pt_wall_s() - e.failed_at < cli->cfg.failure_ttl) {
        /* the daemon answers from the remembered failure: say so, not "building" */
        cli_say(cli,
                "the build of %.12s (%s) failed %lld s ago and is remembered for %ld s (failure_ttl);"
                " `pactown cache rm %.12s` forgets it; log %s/logs/%s.log",
                key, set.n ? summary : "no dependencies", (long long)(pt_wall_s() - e.failed_at),
                cli->cfg.failure_ttl, key, cli->cfg.mountpoint, key);
    } else {
        cli_say(cli, "cache miss %.12s (%s): building; log %s/logs/%s.log", key,
                set.n ? summary : "no dependencies", cli->cfg.mountpoint, key);
    }
    /* lease the venv for this process while it is resolved and the service
     * starts, so that an eviction cannot remove it in between; a hit is
     * counted (hits, access time) in the same commit: the lease makes it one.
     * A --prepare hit of the CLI starts nothing to hand a lease to: it tells
     * the daemon its use instead (cli_note_use: one datagram,
     * pactown/control.h) and commits nothing; without the daemon's ear (not
     * root) it commits the count. */
    pt_lease lease = { .since = pt_wall_s() };
    snprintf(lease.holder, sizeof lease.holder, "%s", o->service_id);
    pt_proc_start_time(me, &lease.pid_start);
    bool tell = o->prepare && !cli->api && hit;
    int lrc = tell ? 0 : pt_index_lease_use(cli->idx, key, me, &lease, hit, pt_wall_ms(), NULL);
    if (lrc) {
        cli_err(cli, "cannot lease the venv %s in the index: %s (without a lease it could be evicted under the"
                      " service)", key, strerror(-lrc));
        ret = EXIT_ERROR;
        goto out;
    }
    leased_by_me = !tell;
    uint64_t tb = pt_mono_ns();
    if ((ret = cli_resolve_venv(cli, key, !hit, venv, sizeof out->venv)) != 0)
        goto out;
    if (tell)
        cli_note_use(cli, key);
    if (!hit)
        cli_say(cli, "built %.12s in %.1f s", key, ms_since(tb) / 1000.0);
    out->sandbox_ms = ms_since(t0);
    if (cli->api)
        cli_say(cli, "\u26a1 Sandbox ready in %.0fms (%s)", out->sandbox_ms, hit ? "cached" : "built");
    else
        cli_say(cli, "sandbox ready in %.1f ms (%s)", out->sandbox_ms, sandbox);
    if (o->prepare) {
        if (!cli->api) {
            printf("%s\n", venv);
            /* a miss's lease ends with this process, in a moment: a lease
             * of a gone process counts for nothing, and the next run on key
             * (or the eviction) deletes it; not dropping it saves a commit.
             * A hit took none. The API's thread lives on: its lease is
             * dropped. */
            leased_by_me = false;
        }
        ret = EXIT_OK;
        goto out;
    }

    /* start the run command: /bin/sh -c, as markpact defines it */
    bool chose_port = !port;
    for (int i = 0; !port && user && i < o->profile.n_allowed_ports; i++)
        if (pt_port_free(o->host, o->profile.allowed_ports[i]) == 0)
            port = o->profile.allowed_ports[i]; /* a user with allowed ports gets one of them */
    if (!port)
        port = free_port(8001);
    out->port = port;
    if (user && !o->once && !pt_profile_port_ok(&o->profile, port)) {
        cli_err(cli, "user %s: port %d is not one of its allowed_ports", user, port);
        ret = EXIT_REFUSED;
        goto out;
    }
    if (user && o->profile.max_services_per_hour) {
        long n = 0;
        bool ok = false;
        int erc = pt_index_user_event(cli->idx, 's', user, pt_wall_ms() * 1000, 3600LL * 1000000,
                                      o->profile.max_services_per_hour, &n, &ok);
        if (erc == 0 && !ok) {
            cli_err(cli, "user %s: %ld of %ld services started in the last hour (max_services_per_hour)", user, n,
                    o->profile.max_services_per_hour);
            out->too_many = true;
            ret = EXIT_REFUSED;
            goto out;
        }
    }
    if (!o->once) {
        int fr = pt_port_free(o->host, port);
        if (fr == -EADDRINUSE) {
            cli_err(cli, "port %d on %s is taken: not starting %s on it%s", port, o->host, o->service_id,
                    chose_port ? "" : cli->api ? " (give another port, or port 0 for a free one)"
                                               : " (choose another with --port, or stop what holds it)");
            cli_say_port_holders(cli, port, 0);
            ret = EXIT_PORT_TAKEN;
            goto out;
        }
        if (fr == -EINVAL) {
            cli_err(cli, "--host %s: expected a numeric IPv4 or IPv6 address, or localhost", o->host);
            ret = EXIT_USAGE;
            goto out;
        }
    }
    /* a user's programs that ask who they are (HOME, USER, LOGNAME) get an answer; --env still wins */
    if (user && (asprintf(&who[0], "HOME=%s", sandbox) < 0 || asprintf(&who[1], "USER=%s", user) < 0 ||
                 asprintf(&who[2], "LOGNAME=%s", user) < 0)) {
        cli_err(cli, "out of memory");
        ret = EXIT_ERROR;
        goto out;
    }
    for (int i = 0; user && i < 3; i++)
        envs[n_envs++] = who[i];
    for (int i = 0; i < o->n_envs && n_envs < ENGINE_ENVS + 3; i++)
        envs[n_envs++] = o->envs[i];
    if (user) {
        cli->run_as = true;
        cli->run_uid = u.uid;
    }
    env = cli_service_env(port, o->host, venv, sandbox, envs, n_envs, user != NULL);
    if (!env) {
        cli_err(cli, "out of memory");
        ret = EXIT_ERROR;
        goto out;
    }
    /* its own cgroup, with the limits asked (or none, for a user's: its memory is counted) */
    if (limited || user) {
        cli_cgroups(cli, &cg);
        pt_error cerr = { 0 };
        char what[96];
        int crc = pt_cgroup_create(&cg, o->service_id, &lim, cg_fds, &n_cg, &cerr);
        if (crc && limited) {
            cli_err(cli, "%s: the limits cannot be held on this host (%s); not starting %s", cerr.msg,
                    pt_cgroup_describe(&cg, what, sizeof what), o->service_id);
            ret = EXIT_REFUSED;
            goto out;
        }
        made_cg = crc == 0;
        if (crc)
            cli_note(cli, "note: no cgroup for %s (%s): its memory is not measured", o->service_id, cerr.msg);
        else if (limited)
            cli_note(cli, "%s: max_memory_mb=%ld max_cpu_percent=%ld max_processes=%ld (0: none)",
                     pt_cgroup_describe(&cg, what, sizeof what), lim.max_memory_mb, lim.max_cpu_percent,
                     lim.max_processes);
    }
    cli->cg_procs = cg_fds; /* the build step and the shell tests join them too */
    cli->n_cg_procs = n_cg;
    if ((ret = cli_write_dotenv(cli, dirfd, &mp, port, o->envs, o->n_envs)) != 0 ||
        (ret = cli_build_step(cli, &mp, dirfd, sandbox, env)) != 0)
        goto out;
    bool to_log = o->detach || cli->api; /* the API's services and jobs have no terminal */
    int logfd = to_log ? cli_dotdir_open(dirfd, "service.log", O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
    if (to_log && logfd < 0) {
        cli_err(cli, "%s/.pactown/service.log: %s", sandbox, strerror(errno));
        ret = EXIT_ERROR;
        goto out;
    }
    /* a job may read its input: stdin is passed on, unless it is a terminal
     * (the job runs in its own session, where a terminal read would fail) */
    int in_fd = o->once && !cli->api && !isatty(STDIN_FILENO) ? STDIN_FILENO : -1;
    const char *argv_sh[] = { "/bin/sh", "-c", mp.run->body, NULL };
    pt_spawn_opts so = { .argv = argv_sh, .envp = (const char *const *)env, .cwd = sandbox, .stdin_fd = in_fd,
                         .stdout_fd = logfd >= 0 ? logfd : o->json ? STDERR_FILENO : -1, .stderr_fd = logfd,
                         .new_session = true, /* --json: stdout is the report's alone */
                         .cgroup_procs = cg_fds, .n_cgroup_procs = n_cg, .set_ids = user != NULL, .uid = u.uid,
                         .gid = u.uid };
    pid_t pid = 0;
    uint64_t ts = pt_mono_ns();
    if (cli->api)
        cli_say(cli, "Starting: %s", out->command);
    const char *warm = o->warm ? o->warm : cli->cfg.warm;
    uid_t svc_uid = user ? u.uid : geteuid();
    if (warm && strcmp(warm, "no") != 0) {
        /* a warm start: forked from the venv's warm process, when the command is a Python entry
         * point it can run exactly; else, or when that fails, cold as below */
        int prc = pt_warm_plan_make(mp.run->body, venv, sandbox, env, !cli->api, &plan);
        if (prc == 0 && plan.kind == PT_WARM_COLD) {
            cli_note(cli, "warm: starting cold: %s", plan.why);
        } else if (prc == 0) {
            pt_warm_id(key, svc_uid, plan.env_sig, warm_id, sizeof warm_id);
            char why[320];
            pt_warm_start_opts wo = { .cache_dir = cli->cfg.cache_dir, .id = warm_id, .plan = &plan, .cwd = sandbox,
                                      .env = env, .stdin_fd = in_fd, .stdout_fd = so.stdout_fd,
                                      .stderr_fd = so.stderr_fd, .uid = svc_uid, .cgroup_procs = cg_fds,
                                      .n_cgroup_procs = n_cg };
            int wrc = pt_warm_start(&wo, &pid, &exit_fd, why, sizeof why);
            if (wrc == 0) {
                out->warm = true;
            } else {
                cli_note(cli, "warm: %s; starting cold", why);
                spawn_warm = pt_warm_pid(cli->cfg.cache_dir, warm_id) == 0;
            }
        }
    }
    int rc = out->warm ? 0 : pt_spawn(&so, &pid);
    if (logfd >= 0)
        close(logfd);
    if (rc) {
        cli_err(cli, "cannot start /bin/sh: %s", strerror(-rc));
        ret = EXIT_ERROR;
        goto out;
    }
    out->pid = pid;
    if (o->on_start)
        o->on_start(o->on_start_ctx, pid);
    pt_service svc = { .pid = pid, .port = o->once ? 0 : port, .started = pt_wall_s() };
    pt_proc_start_time(pid, &svc.pid_start);
    snprintf(svc.key, sizeof svc.key, "%s", key);
    snprintf(svc.id, sizeof svc.id, "%s", o->service_id);
    snprintf(svc.user_id, sizeof svc.user_id, "%s", user ? user : o->user_id ? o->user_id : "");
    snprintf(svc.service_name, sizeof svc.service_name, "%s", o->service_name ? o->service_name : "");
    svc.project_id = o->project_id;
    if (made_cg) {
        svc.max_memory_mb = (int32_t)lim.max_memory_mb;
        svc.max_cpu_percent = (int32_t)lim.max_cpu_percent;
        svc.max_processes = (int32_t)lim.max_processes;
    }
    /* the service holds the lease from now on; it ends with the service.
     * Its record, its lease and the end of this thread's: one commit */
    lease.pid_start = svc.pid_start;
    if ((lrc = pt_index_service_lease(cli->idx, &svc, pid, &lease, me)) != 0) {
        cli_err(cli, "cannot record the service %s in the index: %s; stopping it (it would run unseen by"
                      " `pactown ps` and unleased)", o->service_id, strerror(-lrc));
        pt_started_stop(pid, exit_fd, 10000, NULL);
        ret = EXIT_ERROR;
        goto out;
    }
    leased_by_me = false;
    struct test_target tg = { .id = o->service_id, .host = o->host, .port = o->once ? 0 : port, .sandbox = sandbox,
                              .sandbox_fd = dirfd, .env = env, .run_as = user != NULL, .uid = u.uid,
                              .cg_procs = cg_fds, .n_cg_procs = n_cg };

    if (o->once) {
        cli_say(cli, "job %s started (pid %d)", o->service_id, (int)pid);
        int status = 0;
        pt_started_wait(pid, exit_fd, &status);
        out->job_status = status;
        out->job_done = true;
        double job_ms = ms_since(ts);
        out->total_ms = ms_since(t0);
        pt_pgrp_stop(pid, 10000); /* what the job left running in its group */
        say_oom(cli, &cg, made_cg, o); /* its cgroups go at the end: the shell tests run in them first */
        engine_end_service(cli, &svc, pid);
        char how[96];
        pt_describe_status(status, how, sizeof how);
        cli_say(cli, "job %s %s after %.1f ms (%.1f ms in all)", o->service_id, how, job_ms,
                ms_since(t0));
        ret = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : EXIT_ERROR;
        if (o->test && !(o->stopped && *o->stopped)) {
            int tr = run_tests(cli, o, tests_ok, &tt, &tg, out);
            if (ret == 0)
                ret = tr;
        }
        goto out;
    }
    if (!cli->api)
        cli_say(cli, "started %s (pid %d, port %d)", o->service_id, (int)pid, port);

    if (!o->skip_health) {
        pt_health_opts ho = { .pid = pid, .pgid = pid, .exit_fd = exit_fd > 0 ? exit_fd : 0, .host = o->host,
                              .port = port, .path = o->health_path, .auto_path = !o->health_path,
                              .timeout_ms = o->timeout_s * 1000, .poll_ms = 10 };
        struct warm_probe wp = { .cli = cli, .id = warm_id, .uid = svc_uid, .fd = -1 };
        if (out->warm) {
            ho.probe = warm_probe;
            ho.probe_arg = &wp;
        }
        pt_health_result hr;
        int hrc = pt_health_wait(&ho, &hr);
        if (wp.fd >= 0)
            close(wp.fd);
        if (hrc != 0) {
            cli_err(cli, "health check: %s; stopping %s", pt_http_strerror(hrc), o->service_id);
            pt_started_stop(pid, exit_fd, 10000, NULL);
            engine_end_service(cli, &svc, pid);
            ret = EXIT_ERROR;
            goto out;
        }
        if (hr.status == PT_HEALTH_EXITED) {
            char how[96];
            pt_describe_status(hr.wait_status, how, sizeof how);
            cli_err(cli, "the service %s before it answered on port %d", how, port);
            if (WIFEXITED(hr.wait_status) && WEXITSTATUS(hr.wait_status) == 0)
                cli_err(cli, "it looks like a job (a command that ends by itself, such as a CLI tool): run it"
                              " %s%s", cli->api ? "with run_once" : "with `pactown run --once ",
                        cli->api ? "" : o->readme);
            if (hr.foreign)
                cli_say_port_holders(cli, port, pid);
            if (o->detach && !cli->api) {
                char lp[PATH_MAX + 32];
                snprintf(lp, sizeof lp, "%s/.pactown/service.log", sandbox);
                cli_print_tail(lp, 15, "", true);
            }
            pt_pgrp_stop(pid, 10000); /* what it left running in its group */
            say_oom(cli, &cg, made_cg, o);
            engine_end_service(cli, &svc, pid);
            ret = EXIT_EXITED;
            goto out;
        }
        if (hr.status == PT_HEALTH_TIMEOUT) {
            char last[400] = "";
            if (hr.foreign)
                snprintf(last, sizeof last, "; port %d answers, but another program holds it", port);
            else if (hr.http_status)
                snprintf(last, sizeof last, "; last answer: %s -> %ld for %ld s", hr.path, hr.http_status,
                         (hr.status_since_ms + 500) / 1000);
            else if (hr.port && hr.probe_error == -EIO)
                snprintf(last, sizeof last, "; port %d accepts connections but does not answer HTTP", hr.port);
            else if (hr.port)
                snprintf(last, sizeof last, "; port %d accepts connections, HTTP: %s", hr.port,
                         strerror(-hr.probe_error));
            cli_err(cli, "the service was not healthy on %s:%d within %d s%s; stopping it", o->host, port,
                    o->timeout_s, last);
            if (hr.foreign)
                cli_say_port_holders(cli, port, pid);
            pt_started_stop(pid, exit_fd, 10000, NULL);
            engine_end_service(cli, &svc, pid);
            ret = EXIT_TIMEOUT;
            goto out;
        }
        if (hr.port != port) {
            cli_say(cli, "note: the service listens on port %d, not on PORT=%d (its run command ignores $PORT)",
                    hr.port, port);
            svc.port = hr.port;
            tg.port = hr.port;
            out->port = hr.port;
            engine_note_service(cli, &svc);
        }
        out->healthy = true;
        out->total_ms = ms_since(t0);
        bool v6 = strchr(o->host, ':') != NULL;
        if (cli->api)
            cli_say(cli, "\u2713 Running in %.0fms", out->total_ms); /* the Fast Start page's words; warm: the answer's field */
        else
            cli_say(cli, "running in %.1f ms (pid %d, http://%s%s%s:%d%s -> %ld%s)", ms_since(t0), (int)pid,
                v6 ? "[" : "", o->host, v6 ? "]" : "", hr.port, hr.path ? hr.path : "", hr.http_status,
                out->warm ? ", warm" : "");
    } else {
        out->total_ms = ms_since(t0);
        if (cli->api)
            cli_say(cli, "Started in %.0fms (async)", out->total_ms);
        else
            cli_say(cli, "running in %.1f ms (pid %d, health check skipped)", out->total_ms, (int)pid);
    }
    if (spawn_warm)
        engine_start_warm(cli, key, venv, warm_id, env, user ? &u : NULL);
    if (o->test) {
        int tr = run_tests(cli, o, tests_ok, &tt, &tg, out);
        if (!o->detach && !cli->api) {
            /* --test in the foreground: the service was started to be tested */
            pt_started_stop(pid, exit_fd, 10000, NULL);
            engine_end_service(cli, &svc, pid);
            cli_say(cli, "stopped %s after its tests", o->service_id);
        }
        ret = tr;
        out->running = o->detach || cli->api;
        if (o->detach && !cli->api)
            cli_say(cli, "detached; stop it with: pactown stop %s", o->service_id);
        goto out;
    }
    out->running = true;
    if (o->detach && !cli->api)
        cli_say(cli, "detached; output in %s/.pactown/service.log; stop it with: pactown stop %s", sandbox,
                o->service_id);
    ret = EXIT_OK;
out:
    if (out->running && exit_fd >= 0)
        out->exit_fd = exit_fd; /* the caller waits on it */
    else if (exit_fd >= 0)
        close(exit_fd);
    pt_warm_plan_free(&plan);
    for (int i = 0; i < n_cg; i++)
        close(cg_fds[i]);
    if (made_cg && !out->running)
        pt_cgroup_remove(&cg, o->service_id); /* the service ended here: its cgroup goes (empty by now) */
    for (int i = 0; i < 3; i++)
        free(who[i]);
    cli->run_as = false;
    cli->cg_procs = NULL;
    cli->n_cg_procs = 0;
    if (leased_by_me)
        pt_index_lease_del(cli->idx, key, me);
    if (dirfd >= 0)
        close(dirfd);
    pt_env_free(env);
    free(canonical);
    pt_mp_tests_free(&tt);
    pt_reqset_free(&set);
    pt_markpact_free(&mp);
    out->exit = ret;
    return ret;
}

