/* services.c — /health, /status, /stop, /logs/{id}, DELETE /services/{id},
 * /test/{id} and /cache/stats (api.h). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "runlog.h"
#include "../svcops.h"
#include "../testrun.h"
#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/proc.h"

void api_route_health(struct api_call *c, struct api_answer *ans)
{
    (void)c;
    ans->status = 200;
    ans->body = json_pack("{s:b, s:s}", "ok", 1, "service", "pactown-fs runner");
}

static json_t *status_of(struct api *api, const pt_service *s)
{
    bool alive = s->pid > 0 && pt_holder_alive(s->pid, s->pid_start);
    int64_t now = pt_wall_s();
    return json_pack("{s:s, s:s, s:o, s:b, s:i, s:i, s:f, s:o, s:s, s:I, s:I, s:I}", "service_id", s->id,
                     "service_name", s->service_name[0] ? s->service_name : s->id, "user_id",
                     s->user_id[0] ? json_string(s->user_id) : json_null(), "running", alive, "port", s->port, "pid",
                     alive ? s->pid : 0, "uptime", alive ? (double)(now - s->started) : 0.0, "sandbox",
                     json_sprintf("%s/%s%s%s%s", api->cli.cfg.sandbox_root, s->user_id[0] ? "@" : "", s->user_id,
                                                s->user_id[0] ? "/" : "", s->id), "key", s->key, "project_id",
                     (json_int_t)s->project_id, "started", (json_int_t)s->started, "ended",
                     (json_int_t)(alive ? 0 : s->ended));
}

struct list_ctx {
    struct api *api;
    json_t *list;
    const char *user;
    bool all;
};

static int list_one(const pt_service *s, void *arg)
{
    struct list_ctx *l = arg;
    if (l->user && strcmp(l->user, s->user_id) != 0)
        return 0;
    if (!l->all && !(s->pid > 0 && pt_holder_alive(s->pid, s->pid_start)))
        return 0;
    json_t *o = status_of(l->api, s);
    if (o)
        json_array_append_new(l->list, o);
    return 0;
}

void api_route_status(struct api_call *c, struct api_answer *ans, const char *id)
{
    struct api *api = c->api;
    if (id) {
        pt_service s;
        if (!pt_service_id_valid(id) || pt_index_service_get(api->cli.idx, id, &s) != 0) {
            ans->status = 404;
            ans->body = json_pack("{s:b, s:s, s:s}", "running", 0, "service_id", pt_service_id_valid(id) ? id : "",
                                  "error", "no such service");
            return;
        }
        ans->status = 200;
        ans->body = status_of(api, &s);
        return;
    }
    const char *all = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "all");
    struct list_ctx l = { .api = api, .list = json_array(),
                          .user = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "user_id"),
                          .all = all && (strcmp(all, "1") == 0 || strcmp(all, "true") == 0) };
    int rc = l.list ? pt_index_each_service(api->cli.idx, list_one, &l) : -ENOMEM;
    if (rc) {
        json_decref(l.list);
        api_fail(ans, 500, NULL, "index: %s", strerror(-rc));
        return;
    }
    ans->status = 200;
    ans->body = json_pack("{s:o}", "services", l.list);
}

void api_route_stop(struct api_call *c, struct api_answer *ans)
{
    struct api *api = c->api;
    json_t *o = api_body_object(c, ans);
    char id[PT_SERVICE_ID_MAX + 1];
    long long timeout = 10;
    if (!o || api_service_id(o, id, ans) || api_field_int(o, "timeout", false, 1, 600, &timeout, ans)) {
        json_decref(o);
        return;
    }
    /* a user stops its own services only */
    json_t *uj = json_object_get(o, "user_id");
    char who[65] = "";
    if (json_is_integer(uj))
        snprintf(who, sizeof who, "%lld", (long long)json_integer_value(uj));
    else if (json_is_string(uj))
        snprintf(who, sizeof who, "%s", json_string_value(uj));
    json_decref(o);
    pt_service s;
    if (who[0] && pt_index_service_get(api->cli.idx, id, &s) == 0 && s.user_id[0] && strcmp(s.user_id, who) != 0) {
        api_fail(ans, 403, "user_id", "service %s is not user %s's", id, who);
        return;
    }
    /* a run in flight on the id (a job, a health wait) is stopped too, once
     * its process runs: the run then ends and answers its own client */
    bool mine = api_busy_take(api, id);
    if (!mine && !(pt_index_service_get(api->cli.idx, id, &s) == 0 && s.pid > 0 && pt_holder_alive(s.pid, s.pid_start))) {
        api_fail(ans, 409, "service_id", "service %s is being started (no process yet): stop it once it runs", id);
        return;
    }
    struct runlog *lg = runlog_new();
    struct cli cli;
    api_cli(api, &cli, runlog_say, lg);
    bool was = false;
    int rc = lg ? cli_service_stop(&cli, id, (int)timeout, &s, &was) : EXIT_ERROR;
    if (mine)
        api_busy_drop(api, id);
    if (rc == EXIT_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, was ? "Stopped %s" : "%s was not running", id);
        runlog_say(lg, false, msg);
        ans->status = 200;
        ans->body = json_pack("{s:b, s:i, s:i, s:s, s:o, s:s, s:s, s:s}", "success", 1, "port", s.port, "pid", s.pid,
                              "message", msg, "logs", runlog_lines(lg), "error_category", "none", "stderr_output", "",
                              "service_id", id);
    } else {
        api_fail(ans, rc == EXIT_NOT_FOUND ? 404 : 500, NULL, "%s", lg ? runlog_last_error(lg) : "out of memory");
        json_object_set_new(ans->body, "service_id", json_string(id));
        json_object_set_new(ans->body, "message", json_string(lg ? runlog_last_error(lg) : "out of memory"));
        json_object_set_new(ans->body, "logs", lg ? runlog_lines(lg) : json_array());
        json_object_set_new(ans->body, "error_category", json_string("unknown"));
    }
    runlog_unref(lg);
}

/* service.log of id's sandbox, opened beneath it (never through a symlink
 * its service planted), a regular file; -1 if none. */
static int open_log(struct api *api, const char *id)
{
    int sb = api_open_sandbox(api, id);
    int fd = sb >= 0 ? api_open_file(sb, ".pactown/service.log", O_RDONLY | O_NONBLOCK) : -1;
    if (sb >= 0)
        close(sb);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    return fd;
}

off_t api_log_size(struct api *api, const char *id)
{
    int fd = open_log(api, id);
    off_t n = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;
    if (fd >= 0)
        close(fd);
    return n > 0 ? n : 0;
}

json_t *api_log_tail(struct api *api, const char *id, int lines, off_t since)
{
    int fd = open_log(api, id);
    return fd < 0 ? NULL : api_fd_tail(fd, lines, since);
}

json_t *api_fd_tail(int fd, int lines, off_t since)
{
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (1 << 20) ? size - (1 << 20) : 0;
    if (from < since && since <= size)
        from = since;
    size_t want = (size_t)(size - from);
    char *buf = malloc(want + 1);
    ssize_t got = buf ? pread(fd, buf, want, from) : -1;
    close(fd);
    if (got < 0) {
        free(buf);
        return NULL;
    }
    buf[got] = '\0';
    json_t *arr = json_array();
    /* the last `lines` lines: walk back from the end */
    size_t end = (size_t)got;
    if (end && buf[end - 1] == '\n')
        end--;
    size_t start = end;
    for (int n = 0; start > 0; start--)
        if (buf[start - 1] == '\n' && ++n == lines)
            break;
    if (start == 0 && from > 0 && from != since) { /* the first line read may be cut */
        char *nl = memchr(buf, '\n', end);
        start = nl ? (size_t)(nl - buf) + 1 : end;
    }
    for (size_t p = start; arr && p < end;) {
        char *nl = memchr(buf + p, '\n', end - p);
        size_t len = nl ? (size_t)(nl - (buf + p)) : end - p;
        json_array_append_new(arr, api_text(buf + p, len));
        p += len + 1;
    }
    free(buf);
    return arr;
}

void api_route_logs(struct api_call *c, struct api_answer *ans, const char *id)
{
    struct api *api = c->api;
    const char *t = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "tail");
    long tail = 200;
    if (t) {
        char *end;
        tail = strtol(t, &end, 10);
        if (*end || end == t || tail < 1 || tail > 100000) {
            api_fail(ans, 400, "tail", "tail=%.32s: expected lines 1..100000", t);
            return;
        }
    }
    pt_service s;
    if (!pt_service_id_valid(id)) {
        api_fail(ans, 404, NULL, "no such service");
        return;
    }
    bool known = pt_index_service_get(api->cli.idx, id, &s) == 0;
    json_t *lines = api_log_tail(api, id, (int)tail, 0);
    if (!lines && !known) {
        api_fail(ans, 404, NULL, "no service '%s'", id);
        return;
    }
    bool alive = known && s.pid > 0 && pt_holder_alive(s.pid, s.pid_start);
    ans->status = 200;
    ans->body = json_pack("{s:s, s:b, s:o}", "service_id", id, "running", alive, "lines", lines ? lines : json_array());
}

void api_route_delete(struct api_call *c, struct api_answer *ans, const char *id)
{
    struct api *api = c->api;
    if (!pt_service_id_valid(id)) {
        api_fail(ans, 404, NULL, "no such service");
        return;
    }
    if (!api_busy_take(api, id)) {
        api_fail(ans, 409, NULL, "service %s: another request on it is in flight", id);
        return;
    }
    struct runlog *lg = runlog_new();
    struct cli cli;
    api_cli(api, &cli, runlog_say, lg);
    bool had = false;
    int rc = lg ? cli_service_rm(&cli, id, &had) : EXIT_ERROR;
    api_busy_drop(api, id);
    if (rc == EXIT_OK) {
        ans->status = 200;
        ans->body = json_pack("{s:b, s:s, s:s}", "success", 1, "service_id", id, "message",
                              had ? "removed" : "removed the sandbox (it had no service record)");
    } else {
        api_fail(ans, rc == EXIT_NOT_FOUND ? 404 : rc == EXIT_RUNNING ? 409 : 500, NULL, "%s",
                 lg ? runlog_last_error(lg) : "out of memory");
    }
    runlog_unref(lg);
}

void api_route_test(struct api_call *c, struct api_answer *ans, const char *id)
{
    struct runlog *lg = runlog_new();
    struct cli cli;
    api_cli(c->api, &cli, runlog_say, lg);
    json_t *report = NULL;
    int rc = lg ? cli_test_service(&cli, id, NULL, 0, true, &report) : EXIT_ERROR;
    if ((rc == EXIT_OK || rc == EXIT_TESTS_FAILED) && report) {
        ans->status = 200;
        ans->body = json_pack("{s:b, s:O, s:O, s:O, s:O}", "success", rc == EXIT_OK, "results",
                              json_object_get(report, "tests"), "passed", json_object_get(report, "passed"), "failed",
                              json_object_get(report, "failed"), "skipped", json_object_get(report, "skipped"));
    } else {
        api_fail(ans, rc == EXIT_NOT_FOUND ? 404 : rc == EXIT_EXITED ? 409 : rc == EXIT_BAD_INPUT ? 422 : 500, NULL,
                 "%s", lg ? runlog_last_error(lg) : "out of memory");
    }
    json_decref(report);
    runlog_unref(lg);
}

struct stats_ctx {
    pt_index *idx;
    json_t *entries;
    uint64_t bytes;
    int64_t oldest;
    int64_t now;
    long ready;
};

static int stats_one(const char *key, const pt_entry *e, void *arg)
{
    struct stats_ctx *s = arg;
    if (e->state != PT_STATE_READY)
        return 0;
    s->ready++;
    s->bytes += e->bytes;
    if (!s->oldest || e->built_at < s->oldest)
        s->oldest = e->built_at;
    char *spec = NULL;
    size_t len = 0;
    int deps = 0;
    if (pt_index_spec(s->idx, key, &spec, &len) == 0) {
        /* the canonical text: three header lines, then one line per requirement (and index option) */
        int line = 0;
        for (char *p = spec; *p; line++) {
            char *nl = strchr(p, '\n');
            if (line >= 3 && *p && strncmp(p, "--", 2) != 0)
                deps++;
            p = nl ? nl + 1 : p + strlen(p);
        }
        free(spec);
    }
    json_t *o = json_pack("{s:s, s:i, s:f, s:f, s:I}", "hash", key, "deps_count", deps, "age_hours",
                          (double)(s->now - e->built_at) / 3600.0, "size_mb", (double)e->bytes / (1024.0 * 1024.0),
                          "hits", (json_int_t)e->hits);
    if (o)
        json_array_append_new(s->entries, o);
    return 0;
}

void api_route_cache_stats(struct api_call *c, struct api_answer *ans)
{
    struct api *api = c->api;
    cli_flush_uses(&api->cli); /* the CLI's hits the daemon holds in memory */
    struct stats_ctx s = { .idx = api->cli.idx, .entries = json_array(), .now = pt_wall_s() };
    pt_counters k = { 0 };
    int rc = s.entries ? pt_index_each_entry(api->cli.idx, stats_one, &s) : -ENOMEM;
    if (rc == 0)
        rc = pt_index_counters(api->cli.idx, &k);
    if (rc) {
        json_decref(s.entries);
        api_fail(ans, 500, NULL, "index: %s", strerror(-rc));
        return;
    }
    double uses = (double)(k.hits + k.misses);
    double oldest_h = s.oldest ? (double)(s.now - s.oldest) / 3600.0 : 0.0;
    ans->status = 200;
    ans->body = json_pack("{s:b, s:b, s:{s:I, s:I, s:O}, s:I, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I}",
                          "caching_enabled", 1, "pool_enabled", 0, "dep_cache", "cached_venvs", (json_int_t)s.ready,
                          "max_size", (json_int_t)api->cli.cfg.max_entries, "entries", s.entries, "cache_entries",
                          (json_int_t)s.ready, "total_size_mb", (double)s.bytes / (1024.0 * 1024.0), "hit_rate",
                          uses > 0 ? (double)k.hits / uses : 0.0, "oldest_entry_hours", oldest_h, "hits",
                          (json_int_t)k.hits, "misses", (json_int_t)k.misses, "builds", (json_int_t)k.builds,
                          "build_failures", (json_int_t)k.build_failures, "evictions", (json_int_t)k.evictions);
    /* venvs shared through a registry (docs/REGISTRY.md) */
    if (ans->body)
        json_object_set_new(ans->body, "registry",
                            json_pack("{s:b, s:I, s:I, s:I, s:I}", "enabled", *api->cli.cfg.registry != '\0', "pulled",
                                      (json_int_t)k.pulled, "pull_failures", (json_int_t)k.pull_failures, "pushed",
                                      (json_int_t)k.pushed, "push_failures", (json_int_t)k.push_failures));
    json_decref(s.entries);
}

void api_route_cache_venv(struct api_call *c, struct api_answer *ans)
{
    json_t *o = api_body_object(c, ans), *deps = o ? json_object_get(o, "deps") : NULL;
    bool create = false;
    if (!o || api_field_bool(o, "create", &create, ans)) {
        json_decref(o);
        return;
    }
    if (!json_is_array(deps)) {
        api_fail(ans, 400, "deps", "field 'deps': expected an array of requirement strings");
        json_decref(o);
        return;
    }
    struct runlog *lg = runlog_new();
    struct cli cli;
    api_cli(c->api, &cli, runlog_say, lg);
    pt_reqset set;
    pt_reqset_init(&set);
    pt_error err = { 0 };
    size_t i;
    json_t *d;
    int rc = lg ? 0 : EXIT_ERROR;
    json_array_foreach(deps, i, d) {
        if (rc)
            break;
        if (!json_is_string(d) || strlen(json_string_value(d)) != json_string_length(d) || strchr(json_string_value(d), '\n')) {
            api_fail(ans, 400, "deps", "field 'deps': item %zu is not a one-line requirement string", i);
            rc = -1;
        } else if (pt_reqset_add_line(&set, json_string_value(d), (unsigned)(i + 1), &err) != 0) {
            api_fail(ans, 400, "deps", "field 'deps': item %zu: %s", i, err.msg);
            rc = -1;
        }
    }
    char key[PT_KEY_HEX + 1] = "", venv[PATH_MAX] = "";
    bool ready = false;
    if (rc == 0) {
        pt_reqset_finish(&set);
        rc = cli_venv_of(&cli, &set, create, key, venv, sizeof venv, &ready);
        if (rc == 0) {
            ans->status = 200;
            ans->body = json_pack("{s:s, s:b, s:b, s:o, s:o, s:O}", "key", key, "cached", ready || venv[0], "was_cached",
                                  ready, "venv_path", venv[0] ? json_string(venv) : json_null(), "logs",
                                  runlog_lines(lg), "deps", deps);
        } else {
            api_fail(ans, rc == EXIT_BUILD ? 422 : rc == EXIT_BAD_INPUT ? 400 : rc == EXIT_NOT_MOUNTED ? 503 : 500,
                     NULL, "%s", runlog_last_error(lg));
        }
    }
    pt_reqset_free(&set);
    runlog_unref(lg);
    json_decref(o);
}
