/* pactown ps / stop / config — services started by `pactown run`, and the settings. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pactown/vec.h"
#include "svcops.h"
#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/proc.h"
#include "pactown/sandbox.h"

struct ps_ctx {
    json_t *list;
    int64_t now;
    const char *root;
    bool all;
    const char *user;   /* --user: only its services */
};

static int ps_one(const pt_service *s, void *arg)
{
    struct ps_ctx *ctx = arg;
    bool alive = s->pid > 0 && pt_holder_alive(s->pid, s->pid_start);
    if ((!alive && !ctx->all) || (ctx->user && strcmp(ctx->user, s->user_id) != 0))
        return 0;
    if (ctx->list) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:i, s:i, s:I, s:I, s:o}", "id", s->id, "user", s->user_id, "key",
                              s->key, "running", alive,
                              "pid", alive ? s->pid : 0, "port", s->port, "started", (json_int_t)s->started,
                              "ended", (json_int_t)(alive ? 0 : s->ended), "sandbox", json_sprintf("%s/%s%s%s%s", ctx->root,
                              s->user_id[0] ? "@" : "", s->user_id, s->user_id[0] ? "/" : "", s->id));
        if (o)
            json_array_append_new(ctx->list, o);
    } else {
        char pid[16] = "-", ended[32] = "-";
        if (alive)
            snprintf(pid, sizeof pid, "%d", (int)s->pid);
        time_t e = (time_t)s->ended;
        struct tm tm;
        if (!alive && e > 0 && localtime_r(&e, &tm))
            strftime(ended, sizeof ended, "%Y-%m-%d %H:%M:%S", &tm);
        if (ctx->all)
            printf("%-28s %-8s %-7s %-6d %-12.12s %-19s %s/%s%s%s%s\n", s->id, alive ? "running" : "stopped", pid,
                   s->port, s->key, ended, ctx->root, s->user_id[0] ? "@" : "", s->user_id, s->user_id[0] ? "/" : "",
                   s->id);
        else
            printf("%-28s %-8s %-7s %-6d %-12.12s %s/%s%s%s%s\n", s->id, alive ? "running" : "stopped", pid, s->port,
                   s->key, ctx->root, s->user_id[0] ? "@" : "", s->user_id, s->user_id[0] ? "/" : "", s->id);
    }
    return 0;
}

int cmd_ps(int argc, char **argv)
{
    struct cli cli = { .prog = "pactown ps" };
    bool json = false, all = false;
    static const char help[] =
        "usage: pactown ps [--all] [--user NAME] [--json] [options]\n"
        "Lists the services started with `pactown run` that are running: id, state, pid,\n"
        "port, venv key, sandbox. Stopped ones are kept (for `pactown rm`, logs and\n"
        "`pactown run` again) for stopped_service_ttl seconds, then pruned.\n"
        "  --all        the stopped services too\n"
        "  --user NAME  only NAME's services (run --user, the API's user_id)\n"
        "  --json       a JSON array of {id, user, key, running, pid, port, started, ended, sandbox}\n";
    static const struct option opts[] = { { "all", no_argument, NULL, 'a' }, { "json", no_argument, NULL, OPT_JSON },
                                          { "user", required_argument, NULL, 'u' }, CLI_COMMON_LONGOPTS, { 0 } };
    const char *user = NULL;
    int c, ret = 0;
    while ((c = getopt_long(argc, argv, "ha", opts, NULL)) != -1) {
        if (c == 'a') {
            all = true;
        } else if (c == 'u') {
            user = optarg;
        } else if (c == OPT_JSON) {
            json = true;
        } else if ((ret = cli_common_opt(&cli, c, optarg)) != 0) {
            fputs(help, ret == 1 ? stdout : stderr);
            fputs("\n" CLI_COMMON_HELP, ret == 1 ? stdout : stderr);
            cli_free(&cli);
            return ret == 1 ? EXIT_OK : EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fputs(help, stderr);
        cli_free(&cli);
        return EXIT_USAGE;
    }
    if ((ret = cli_setup(&cli)) != 0 || (ret = cli_open_index(&cli)) != 0)
        goto out;
    cli_prune_services(&cli);
    struct ps_ctx ctx = { .list = json ? json_array() : NULL, .now = pt_wall_s(), .root = cli.cfg.sandbox_root,
                          .all = all, .user = user };
    if (!json && all)
        printf("%-28s %-8s %-7s %-6s %-12s %-19s %s\n", "ID", "STATE", "PID", "PORT", "KEY", "ENDED", "SANDBOX");
    else if (!json)
        printf("%-28s %-8s %-7s %-6s %-12s %s\n", "ID", "STATE", "PID", "PORT", "KEY", "SANDBOX");
    int rc = pt_index_each_service(cli.idx, ps_one, &ctx);
    if (rc) {
        cli_err(&cli, "index: %s", strerror(-rc));
        ret = EXIT_ERROR;
    }
    if (json) {
        char *s = json_dumps(ctx.list, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(ctx.list);
    }
out:
    cli_free(&cli);
    return ret;
}

struct prune_ctx {
    int64_t before;
    char (*ids)[PT_SERVICE_ID_MAX + 1];
    size_t n, cap;
};

static int prune_pick(const pt_service *s, void *arg)
{
    struct prune_ctx *p = arg;
    int64_t when = s->ended ? s->ended : s->started; /* a v1 record has no end time */
    if (when >= p->before || (s->pid > 0 && pt_holder_alive(s->pid, s->pid_start))) /* the cheap test first */
        return 0;
    void *nv = pt_grow(p->ids, &p->cap, p->n, sizeof *p->ids);
    if (!nv)
        return -ENOMEM;
    p->ids = nv;
    snprintf(p->ids[p->n++], sizeof *p->ids, "%s", s->id);
    return 0;
}

void cli_prune_services(struct cli *cli)
{
    if (cli->cfg.stopped_service_ttl <= 0)
        return;
    struct prune_ctx p = { .before = pt_wall_s() - cli->cfg.stopped_service_ttl };
    pt_index_each_service(cli->idx, prune_pick, &p); /* collected first: no writes inside a cursor walk */
    size_t pruned = 0;
    cli_prune_services_ids(cli, p.ids, p.n, &pruned);
    if (pruned)
        fprintf(stderr, "pactown: pruned %zu service(s) stopped more than %ld s ago (stopped_service_ttl)\n", pruned,
                cli->cfg.stopped_service_ttl);
    free(p.ids);
}

int cmd_rm(int argc, char **argv)
{
    struct cli cli = { .prog = "pactown rm" };
    int ret = cli_parse_simple(&cli, argc, argv, 1,
                               "usage: pactown rm ID [options]\n"
                               "Removes a stopped service: its sandbox, its record (`pactown ps --all`) and its\n"
                               "by-service/ID entry on the mount (or a sandbox without a record, as `run --prepare`\n"
                               "leaves). The venv stays in the cache. A running service is refused: `pactown stop\n"
                               "ID` first.\n"
                               "exit codes: 0 removed, 8 no such service, 9 it is running, 2 usage, 1 error\n",
                               NULL, NULL);
    if (ret >= 0 || (ret = cli_setup(&cli)) != 0 || (ret = cli_open_index(&cli)) != 0)
        goto out;
    const char *id = argv[optind];
    bool had_record;
    ret = cli_service_rm(&cli, id, &had_record);
    if (ret == EXIT_OK)
        printf(had_record ? "removed %s\n" : "removed the sandbox of %s (it had no service record)\n", id);
out:
    cli_free(&cli);
    return ret < 0 ? 0 : ret;
}

int cmd_stop(int argc, char **argv)
{
    struct cli cli = { .prog = "pactown stop" };
    int timeout_s = 10;
    int ret = cli_parse_simple(&cli, argc, argv, 1,
                           "usage: pactown stop ID [--timeout S] [options]\n"
                           "Stops a service started with `pactown run`: SIGTERM to its whole process group\n"
                           "(so `uvicorn --reload` and its workers go too), SIGKILL after --timeout seconds\n"
                           "(default 10), and waits until the group is gone.\n"
                           "exit codes: 0 stopped (or was not running), 8 no such service, 2 usage, 1 error\n",
                           NULL, &timeout_s);
    if (ret >= 0 || (ret = cli_setup(&cli)) != 0 || (ret = cli_open_index(&cli)) != 0)
        goto out;
    const char *id = argv[optind];
    pt_service s;
    bool was_running;
    ret = cli_service_stop(&cli, id, timeout_s, &s, &was_running);
    if (ret == EXIT_OK)
        printf(was_running ? "stopped %s\n" : "%s is not running\n", id);
out:
    cli_free(&cli);
    return ret < 0 ? 0 : ret;
}

int cmd_config(int argc, char **argv)
{
    struct cli cli = { .prog = "pactown config" };
    int ret = cli_parse_simple(&cli, argc, argv, 0,
                           "usage: pactown config [options]\n"
                           "Prints the settings in effect: defaults, then the config file, then PACTOWN_* variables,\n"
                           "then flags.\n",
                           NULL, NULL);
    if (ret < 0 && (ret = cli_setup(&cli)) == 0)
        pt_config_print(&cli.cfg, stdout);
    cli_free(&cli);
    return ret < 0 ? 0 : ret;
}
