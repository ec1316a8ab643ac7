/* run.c — POST /run, /run/stream, /sandbox/prepare and /validate: a
 * RunRequest checked field by field, a port from port_start..port_end, the
 * engine of `pactown run`, and pactown's RunResponse (api.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "api.h"
#include "pactown/warm.h"
#include "pactown/vec.h"
#include "runlog.h"
#include "../forms.h"
#include "pactown/cgroup.h"
#include "pactown/clock.h"
#include "pactown/health.h"
#include "pactown/proc.h"
#include "pactown/spawn.h"

#define MAX_ENVS 256
#define ENV_STRING_MAX 131072          /* MAX_ARG_STRLEN: one "KEY=VALUE" string of execve(2) */
#define ENV_TOTAL_MAX ((size_t)1 << 20) /* all of them: well inside ARG_MAX with the rest */

struct run_params {
    json_t *body;               /* the request (owns every string below) */
    char id[PT_SERVICE_ID_MAX + 1];
    long long project_id;
    const char *content;
    size_t content_len;
    char user_id[65];
    const char *service_name;
    long long port;             /* 0: one from port_start..port_end */
    bool skip_health, run_once, run_tests, prepare;
    const char *warm;           /* "yes", "no", "auto"; NULL: the setting warm (pactown/warm.h) */
    long long timeout_s;
    pt_profile profile;         /* the user's: the profiles file's, user_profile's fields over it */
    char *envs[MAX_ENVS];       /* "KEY=VALUE", malloc'd */
    int n_envs;
};

static void params_free(struct run_params *rp)
{
    for (int i = 0; i < rp->n_envs; i++)
        free(rp->envs[i]);
    json_decref(rp->body);
    free(rp);
}

static bool env_name_ok(const char *k)
{
    if (!*k || (*k >= '0' && *k <= '9') || strlen(k) > 255)
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* A RunRequest (or a /sandbox/prepare body), checked; NULL with a 400 in *ans. */
static struct run_params *parse_params(struct api_call *c, struct api_answer *ans, bool prepare)
{
    struct run_params *rp = calloc(1, sizeof *rp);
    if (!rp) {
        api_fail(ans, 500, NULL, "out of memory");
        return NULL;
    }
    rp->prepare = prepare;
    rp->timeout_s = 60;
    if (!(rp->body = api_body_object(c, ans)))
        goto bad;
    json_t *o = rp->body;
    const char *content = NULL, *uid = NULL;
    if (api_field_int(o, "project_id", true, 0, 999999999999LL, &rp->project_id, ans) ||
        api_field_str(o, "readme_content", true, (size_t)c->api->cli.cfg.api_max_body, &content, ans) ||
        api_service_id(o, rp->id, ans) || api_field_int(o, "port", false, 0, 65535, &rp->port, ans) ||
        api_field_str(o, "service_name", false, 64, &rp->service_name, ans) ||
        api_field_bool(o, "skip_health_check", &rp->skip_health, ans) ||
        api_field_bool(o, "run_once", &rp->run_once, ans) || api_field_bool(o, "run_tests", &rp->run_tests, ans) ||
        api_field_int(o, "health_timeout", false, 1, 3600, &rp->timeout_s, ans))
        goto bad;
    bool fast = true;
    if (api_field_bool(o, "fast_mode", &fast, ans))
        goto bad; /* every run is a fast one: accepted for pactown's clients */
    json_t *w = json_object_get(o, "warm");
    if (json_is_boolean(w)) {
        rp->warm = json_is_true(w) ? "yes" : "no";
    } else if (json_is_string(w) && (!strcmp(json_string_value(w), "yes") || !strcmp(json_string_value(w), "no") ||
                                     !strcmp(json_string_value(w), "auto"))) {
        rp->warm = json_string_value(w); /* the body outlives the run */
    } else if (w && !json_is_null(w)) {
        api_fail(ans, 400, "warm", "field 'warm': expected true, false, \"auto\" or null (the setting warm)");
        goto bad;
    }
    if (rp->port > 0 && rp->port < 1024) {
        /* the server may run as root: a service never takes a system port */
        api_fail(ans, 400, "port", "field 'port': %lld is below 1024 (ports of the system); give 0 or 1024..65535",
                 rp->port);
        goto bad;
    }
    rp->content = content;
    rp->content_len = json_string_length(json_object_get(o, "readme_content"));
    json_t *u = json_object_get(o, "user_id");
    if (json_is_integer(u))
        snprintf(rp->user_id, sizeof rp->user_id, "%lld", (long long)json_integer_value(u));
    else if (api_field_str(o, "user_id", false, 64, &uid, ans))
        goto bad;
    else if (uid)
        snprintf(rp->user_id, sizeof rp->user_id, "%s", uid);
    if (rp->user_id[0] && !pt_service_id_valid(rp->user_id)) {
        /* a user is a uid of its own and a directory of sandboxes */
        api_fail(ans, 400, "user_id", "field 'user_id': use 1-64 letters, digits, '.', '_' or '-', starting with a"
                                      " letter or digit");
        goto bad;
    }
    json_t *prof = json_object_get(o, "user_profile");
    if (prof && !json_is_null(prof) && !json_is_object(prof)) {
        api_fail(ans, 400, "user_profile", "field 'user_profile': expected an object");
        goto bad;
    }
    /* the profiles file's, then the request's fields over it */
    if (rp->user_id[0]) {
        pt_error perr = { 0 };
        if (pt_profile_load(c->api->cli.cfg.user_profiles, rp->user_id, &rp->profile, &perr) != 0) {
            api_fail(ans, 500, NULL, "%s", perr.msg);
            goto bad;
        }
    }
    const char *pk;
    json_t *pv;
    if (prof && json_is_object(prof)) {
        /* tier first: the fields beside it override its preset */
        json_t *tier = json_object_get(prof, "tier");
        pt_error perr = { 0 };
        if (json_is_string(tier) && pt_profile_tier(&rp->profile, json_string_value(tier), &perr) != 0) {
            api_fail(ans, 400, "user_profile.tier", "field 'user_profile.tier': %s", perr.msg);
            goto bad;
        }
        json_object_foreach(prof, pk, pv) {
            char text[1024] = "";
            if (strcmp(pk, "tier") == 0 || strcmp(pk, "user_id") == 0 || json_is_null(pv))
                continue;
            if (json_is_integer(pv))
                snprintf(text, sizeof text, "%lld", (long long)json_integer_value(pv));
            else if (json_is_boolean(pv))
                snprintf(text, sizeof text, "%s", json_is_true(pv) ? "yes" : "no");
            else if (json_is_string(pv))
                snprintf(text, sizeof text, "%s", json_string_value(pv));
            else if (json_is_array(pv)) {
                size_t i, k = 0;
                json_t *x;
                json_array_foreach(pv, i, x) if (k + 8 < sizeof text)
                    k += (size_t)snprintf(text + k, sizeof text - k, "%s%lld", i ? "," : "",
                                          json_is_integer(x) ? (long long)json_integer_value(x) : -1LL);
            }
            if (pt_profile_set(&rp->profile, pk, text, &perr) == -EINVAL) {
                api_fail(ans, 400, NULL, "field 'user_profile.%s': %s", pk, perr.msg);
                json_object_set_new(ans->body, "field", json_sprintf("user_profile.%s", pk));
                goto bad;
            } /* other fields (pactown's own extras) are ignored, as its server does */
        }
    }
    if (pt_profile_any(&rp->profile) && !rp->user_id[0]) {
        api_fail(ans, 400, "user_id", "field 'user_profile' sets limits: they are a user's, give 'user_id'");
        goto bad;
    }
    json_t *env = json_object_get(o, "env");
    if (env && !json_is_null(env)) {
        if (!json_is_object(env)) {
            api_fail(ans, 400, "env", "field 'env': expected an object of strings");
            goto bad;
        }
        const char *k;
        json_t *v;
        size_t env_bytes = 0;
        json_object_foreach(env, k, v) {
            if (!env_name_ok(k)) {
                api_fail(ans, 400, "env", "field 'env': '%.64s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)", k);
                goto bad;
            }
            const char *val = json_is_string(v) ? json_string_value(v) : NULL;
            /* the value is never echoed: it may be a secret */
            if (!val || strlen(val) != json_string_length(v) || strpbrk(val, "\r\n")) {
                api_fail(ans, 400, "env", "field 'env': the value of %s must be a string of one line (no NUL, CR"
                         " or LF: it becomes a line of the sandbox's .env)", k);
                goto bad;
            }
            env_bytes += strlen(k) + 1 + strlen(val) + 1;
            if (strlen(k) + 1 + strlen(val) >= ENV_STRING_MAX || env_bytes > ENV_TOTAL_MAX) {
                api_fail(ans, 400, "env", "field 'env': %s", env_bytes > ENV_TOTAL_MAX
                         ? "more than 1 MiB of variables in all"
                         : "a variable longer than 128 KiB (Linux's MAX_ARG_STRLEN, execve(2))");
                goto bad;
            }
            if (rp->n_envs == MAX_ENVS) {
                api_fail(ans, 400, "env", "field 'env': more than %d variables", MAX_ENVS);
                goto bad;
            }
            if (asprintf(&rp->envs[rp->n_envs], "%s=%s", k, json_string_value(v)) < 0) {
                api_fail(ans, 500, NULL, "out of memory");
                goto bad;
            }
            rp->n_envs++;
        }
    }
    return rp;
bad:
    params_free(rp);
    return NULL;
}

/* ---- ports ---- */

struct used_ports {
    int *v;
    size_t n, cap;
};

static int collect_port(const pt_service *s, void *arg)
{
    struct used_ports *u = arg;
    if (s->pid <= 0 || s->port <= 0 || !pt_holder_alive(s->pid, s->pid_start))
        return 0;
    int *nv = pt_grow(u->v, &u->cap, u->n, sizeof *u->v);
    if (!nv)
        return -ENOMEM;
    u->v = nv;
    u->v[u->n++] = s->port;
    return 0;
}

static bool in(const int *v, size_t n, int port)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == port)
            return true;
    return false;
}

/* Reserve *port for this request (0: the first of port_start..port_end that
 * no running service, no request in flight and no other program holds).
 * Returns 0, or -1 with a 409/503 in *ans. */
static int port_take(struct api *api, int *port, struct api_answer *ans)
{
    struct used_ports u = { 0 };
    pt_index_each_service(api->cli.idx, collect_port, &u); /* read outside the lock */
    int got = 0;
    bool clash = false;
    pthread_mutex_lock(&api->mu);
    if (*port) {
        clash = in(api->ports, api->n_ports, *port);
        got = clash ? 0 : *port;
    } else {
        for (long p = api->cli.cfg.port_start; p <= api->cli.cfg.port_end && !got; p++)
            if (!in(api->ports, api->n_ports, (int)p) && !in(u.v, u.n, (int)p) && pt_port_free("127.0.0.1", (int)p) == 0)
                got = (int)p; /* bind(2) only: no I/O under the lock */
    }
    int *nports = got ? pt_grow(api->ports, &api->cap_ports, api->n_ports, sizeof *api->ports) : NULL;
    if (nports)
        api->ports = nports;
    else
        got = 0;
    if (got)
        api->ports[api->n_ports++] = got;
    pthread_mutex_unlock(&api->mu);
    free(u.v);
    if (clash) {
        api_fail(ans, 409, "port", "port %d is being given to another run in flight", *port);
        return -1;
    }
    if (!got) {
        api_fail(ans, 503, "port", "no free port in port_start..port_end (%ld..%ld)", api->cli.cfg.port_start,
                 api->cli.cfg.port_end);
        return -1;
    }
    *port = got;
    return 0;
}

static void port_drop(struct api *api, int port)
{
    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->n_ports; i++)
        if (api->ports[i] == port) {
            api->ports[i] = api->ports[--api->n_ports];
            break;
        }
    pthread_mutex_unlock(&api->mu);
}

/* ---- services the server started: reaped, their records closed ---- */

struct reap {
    struct api *api;
    pid_t pid;
    int exit_fd;            /* a warm start's (pactown/warm.h), or -1 */
    char id[PT_SERVICE_ID_MAX + 1];
    char key[PT_KEY_HEX + 1];
};

static void *reap_main(void *arg)
{
    struct reap *r = arg;
    int status = 0;
    pt_started_wait(r->pid, r->exit_fd, &status);
    if (r->exit_fd >= 0)
        close(r->exit_fd);
    pt_pgrp_stop(r->pid, 10000); /* what it left in its group */
    pt_service s;
    if (pt_index_service_get(r->api->cli.idx, r->id, &s) == 0 && s.pid == r->pid) {
        s.pid = 0;
        s.ended = pt_wall_s();
        pt_index_service_put(r->api->cli.idx, &s);
    }
    pt_index_lease_del(r->api->cli.idx, r->key, r->pid);
    pt_cg_host cg;
    cli_cgroups(&r->api->cli, &cg);
    pt_cgroup_remove(&cg, r->id);
    char how[96];
    pt_describe_status(status, how, sizeof how);
    fprintf(stderr, "pactown serve: service %s (pid %d) %s\n", r->id, (int)r->pid, how);
    free(r);
    return NULL;
}

static void reap_later(struct api *api, const struct run_out *out, const char *id)
{
    struct reap *r = calloc(1, sizeof *r);
    pthread_t t;
    pthread_attr_t at;
    if (!r)
        return;
    *r = (struct reap){ .api = api, .pid = out->pid, .exit_fd = out->exit_fd };
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->key, sizeof r->key, "%s", out->key);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 << 10);
    if (pthread_create(&t, &at, reap_main, r) != 0) {
        if (r->exit_fd >= 0)
            close(r->exit_fd);
        free(r); /* the service runs on; its end is seen by `pactown ps` (a zombie counts as ended) */
    }
    pthread_attr_destroy(&at);
}

/* ---- the run ---- */

/* pactown's ErrorCategory values (service_runner.py), so that its clients read them */
static const char *category_of(int exit)
{
    switch (exit) {
    case EXIT_OK: return "none";
    case EXIT_BAD_INPUT: case EXIT_USAGE: return "validation";
    case EXIT_BUILD: return "dependency";
    case EXIT_EXITED: return "process_crash";
    case EXIT_TIMEOUT: return "startup_timeout";
    case EXIT_NOT_MOUNTED: return "environment";
    case EXIT_PORT_TAKEN: return "port_conflict";
    case EXIT_REFUSED: return "permission";
    default: return "unknown";
    }
}

static unsigned status_of(int exit)
{
    switch (exit) {
    case EXIT_OK: case EXIT_TESTS_FAILED: return 200;
    case EXIT_BAD_INPUT: case EXIT_USAGE: return 400;
    case EXIT_RUNNING: case EXIT_PORT_TAKEN: return 409;
    case EXIT_BUILD: case EXIT_EXITED: return 422;
    case EXIT_TIMEOUT: return 504;
    case EXIT_NOT_MOUNTED: return 503;
    case EXIT_REFUSED: return 403;
    default: return 500;
    }
}

/* Run rp with the engine, messages into lg; returns the RunResponse and
 * its HTTP status. The port and the id are the request's (taken). */
static json_t *do_run(struct api *api, struct run_params *rp, struct runlog *lg, int port, unsigned *status)
{
    struct cli cli;
    api_cli(api, &cli, runlog_say, lg);
    struct run_req rq = { .readme = "readme_content", .content = rp->content, .content_len = rp->content_len,
                          .service_id = rp->id, .port = port, .host = "127.0.0.1", .timeout_s = (int)rp->timeout_s,
                          .skip_health = rp->skip_health, .prepare = rp->prepare, .once = rp->run_once,
                          .test = rp->run_tests, .envs = rp->envs, .n_envs = rp->n_envs, .t0 = pt_mono_ns(),
                          .user_id = rp->user_id, .project_id = rp->project_id,
                          .service_name = rp->service_name, .user = rp->user_id[0] ? rp->user_id : NULL,
                          .profile = rp->profile, .warm = rp->warm };
    struct run_out out;
    off_t log_from = api_log_size(api, rp->id); /* stderr_output: this run's lines only */
    int exit = engine_run(&cli, &rq, &out);
    if (out.running)
        reap_later(api, &out, rp->id);
    /* a job's own exit code is its, not one of pactown's (engine.h): said apart */
    bool job = rp->run_once && out.job_done;
    int job_code = !job ? 0 : WIFEXITED(out.job_status) ? WEXITSTATUS(out.job_status) : 128 + WTERMSIG(out.job_status);
    bool tests_failed = job ? job_code == 0 && exit != 0 : exit == EXIT_TESTS_FAILED;
    bool ok = job ? job_code == 0 && exit == 0 : exit == 0;
    char msg[1200];
    const char *cached = out.hit ? ", cached" : "";
    if (rp->prepare && exit == 0)
        snprintf(msg, sizeof msg, "Sandbox ready in %.0fms%s", out.sandbox_ms, out.hit ? " (cached)" : "");
    else if (job && WIFEXITED(out.job_status))
        snprintf(msg, sizeof msg, "Job exited with code %d in %.0fms%s", job_code, out.total_ms, cached);
    else if (job)
        snprintf(msg, sizeof msg, "Job killed by signal %d in %.0fms%s", WTERMSIG(out.job_status), out.total_ms,
                 cached);
    else if (exit == 0 && rp->skip_health)
        snprintf(msg, sizeof msg, "Started in %.0fms (async%s)", out.total_ms, cached);
    else if (exit == 0 || (tests_failed && out.healthy))
        snprintf(msg, sizeof msg, "Running on port %d (%.0fms%s)", out.port, out.total_ms, cached);
    else
        snprintf(msg, sizeof msg, "%s", runlog_last_error(lg));
    if (tests_failed)
        snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "; the README's tests failed");
    const char *cat = ok ? "none" : job_code ? "process_crash" : tests_failed ? "unknown" : category_of(exit);
    json_t *tail = NULL;
    char blog[PATH_MAX];
    int bfd;
    if (exit == EXIT_BUILD && out.key[0] && !out.venv[0] && /* the venv, not markpact:build */
        strlen(out.key) + 5 < sizeof blog &&
        pt_config_cache_path(&api->cli.cfg, "logs", out.key, blog, sizeof blog - 5) == 0 &&
        (bfd = open(strcat(blog, ".log"), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0)
        tail = api_fd_tail(bfd, 40, 0); /* why the build failed: the installer's last words */
    else if (!ok || job)
        tail = api_log_tail(api, rp->id, 40, log_from);
    char *stderr_text = NULL;
    size_t k = 0;
    FILE *mf = tail ? open_memstream(&stderr_text, &k) : NULL;
    for (size_t i = 0; mf && i < json_array_size(tail); i++)
        fprintf(mf, "%s\n", json_string_value(json_array_get(tail, i)));
    if (mf)
        fclose(mf);
    json_decref(tail);
    json_t *r = json_pack("{s:b, s:i, s:i, s:o, s:o, s:o, s:o, s:n, s:n, s:[], s:{}, s:o, s:o, s:o, s:s, s:b, s:o}",
                          "success", ok, "port", rp->run_once || rp->prepare ? 0 : out.port, "pid",
                          out.running ? (int)out.pid : 0, "message", api_text(msg, strlen(msg)), "logs",
                          runlog_lines(lg), "error_category", json_string(cat), "stderr_output",
                          api_text(stderr_text ? stderr_text : "", stderr_text ? strlen(stderr_text) : 0), "error_context",
                          "error_report_md", "suggestions", "diagnostics", "service_name",
                          rp->service_name ? json_string(rp->service_name) : json_string(rp->id), "sandbox_path",
                          out.sandbox[0] ? json_string(out.sandbox) : json_null(), "user_id",
                          rp->user_id[0] ? json_string(rp->user_id) : json_null(), "service_id", rp->id, "cache_hit",
                          out.hit, "key", out.key[0] ? json_string(out.key) : json_null());
    if (r)
        json_object_set_new(r, "warm", json_boolean(out.warm)); /* started forked from a warm process */
    free(stderr_text);
    if (r && job)
        json_object_set_new(r, "exit_code", json_integer(job_code));
    if (r && out.tests)
        json_object_set_new(r, "tests", out.tests);
    else
        json_decref(out.tests);
    if (r && !ok && exit == EXIT_EXITED)
        json_array_append_new(json_object_get(r, "suggestions"),
                              json_string("the service ended before it answered: see stderr_output; a command"
                                          " that ends by itself runs with run_once"));
    if (r && rp->prepare) {
        json_object_set_new(r, "sandbox", out.sandbox[0] ? json_string(out.sandbox) : json_null());
        json_object_set_new(r, "venv", out.venv[0] ? json_string(out.venv) : json_null());
        json_object_set_new(r, "files", api_sandbox_files(api, rp->id));
    }
    *status = job || tests_failed ? 200 : exit == EXIT_REFUSED && out.too_many ? 429 : status_of(exit);
    return r;
}

/* /run/stream: the engine in a thread of its own, its lines sent as they come. */
struct stream_job {
    struct api *api;
    struct run_params *rp;
    struct runlog *lg;
    int port;
};

static void *stream_main(void *arg)
{
    struct stream_job *j = arg;
    unsigned status;
    json_t *r = do_run(j->api, j->rp, j->lg, j->port, &status);
    if (!j->rp->run_once) /* a job reserved no port */
        port_drop(j->api, j->port);
    api_busy_drop(j->api, j->rp->id);
    runlog_finish(j->lg, r);
    runlog_unref(j->lg);
    params_free(j->rp);
    free(j);
    return NULL;
}

void api_route_run(struct api_call *c, struct api_answer *ans, bool stream)
{
    struct run_params *rp = parse_params(c, ans, false);
    if (!rp)
        return;
    struct api *api = c->api;
    if (!api_busy_take(api, rp->id)) {
        api_fail(ans, 409, "service_id", "service %s: another request on it is in flight", rp->id);
        params_free(rp);
        return;
    }
    int port = (int)rp->port;
    if (!rp->run_once && port_take(api, &port, ans) != 0) {
        api_busy_drop(api, rp->id);
        params_free(rp);
        return;
    }
    struct runlog *lg = runlog_new();
    if (!lg) {
        api_fail(ans, 500, NULL, "out of memory");
        goto done;
    }
    if (!stream) {
        ans->body = do_run(api, rp, lg, port, &ans->status);
        if (!ans->body)
            api_fail(ans, 500, NULL, "out of memory");
        runlog_unref(lg);
        goto done;
    }
    struct stream_job *j = calloc(1, sizeof *j);
    c->stream = j ? runlog_response(lg) : NULL; /* holds a reference of its own */
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (!c->stream || (*j = (struct stream_job){ api, rp, lg, port }, pthread_create(&t, &at, stream_main, j)) != 0) {
        pthread_attr_destroy(&at);
        if (c->stream)
            MHD_destroy_response(c->stream);
        c->stream = NULL;
        free(j);
        runlog_unref(lg);
        api_fail(ans, 500, NULL, "cannot start the run: %s", strerror(errno));
        goto done;
    }
    pthread_attr_destroy(&at);
    ans->status = 200;
    return; /* the thread owns rp, the port and the id now */
done:
    if (!rp->run_once)
        port_drop(api, port);
    api_busy_drop(api, rp->id);
    params_free(rp);
}

void api_route_prepare(struct api_call *c, struct api_answer *ans)
{
    struct run_params *rp = parse_params(c, ans, true);
    if (!rp)
        return;
    struct api *api = c->api;
    struct runlog *lg = runlog_new();
    if (!api_busy_take(api, rp->id)) {
        api_fail(ans, 409, "service_id", "service %s: another request on it is in flight", rp->id);
    } else {
        if (lg)
            ans->body = do_run(api, rp, lg, (int)rp->port, &ans->status);
        if (!ans->body)
            api_fail(ans, 500, NULL, "out of memory");
        api_busy_drop(api, rp->id);
    }
    runlog_unref(lg);
    params_free(rp);
}

void api_route_validate(struct api_call *c, struct api_answer *ans)
{
    json_t *o = api_body_object(c, ans);
    const char *content = NULL;
    if (!o || api_field_str(o, "readme_content", true, (size_t)c->api->cli.cfg.api_max_body, &content, ans)) {
        json_decref(o);
        return;
    }
    struct runlog *lg = runlog_new();
    struct cli cli;
    api_cli(c->api, &cli, runlog_say, lg);
    pt_markpact mp = { 0 };
    pt_reqset set;
    pt_reqset_init(&set);
    int rc = lg ? cli_readme_text(&cli, "readme_content", content, json_string_length(json_object_get(o, "readme_content")),
                                  &mp, &set)
                : EXIT_ERROR;
    json_t *deps = json_array(), *files = json_array();
    for (size_t i = 0; rc == 0 && i < set.n; i++)
        json_array_append_new(deps, api_text(set.lines[i], strlen(set.lines[i])));
    for (size_t i = 0; rc == 0 && i < mp.n_files; i++)
        json_array_append_new(files, api_text(mp.files[i].path, strlen(mp.files[i].path)));
    ans->status = 200;
    ans->body = json_pack("{s:b, s:o, s:o, s:o, s:o, s:o, s:i}", "valid", rc == 0, "errors",
                          lg ? runlog_errors(lg) : json_array(), "warnings", lg ? runlog_notes(lg) : json_array(),
                          "deps", deps, "files", files, "run_command",
                          rc == 0 && mp.run ? api_text(mp.run->body, strcspn(mp.run->body, "\n")) : json_null(),
                          "tests", (int)mp.n_tests);
    if (!ans->body)
        api_fail(ans, 500, NULL, "out of memory");
    pt_reqset_free(&set);
    pt_markpact_free(&mp);
    runlog_unref(lg);
    json_decref(o);
}
