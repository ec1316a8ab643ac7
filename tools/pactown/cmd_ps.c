/* pactown ps / stop / config — services started by `pactown run`, and the settings. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pactown/clock.h"
#include "pactown/proc.h"
#include "pactown/sandbox.h"

struct ps_ctx {
    json_t *list;
    int64_t now;
    const char *root;
};

static int ps_one(const pt_service *s, void *arg)
{
    struct ps_ctx *ctx = arg;
    bool alive = s->pid > 0 && pt_proc_alive(s->pid, s->pid_start);
    if (ctx->list) {
        json_t *o = json_pack("{s:s, s:s, s:b, s:i, s:i, s:I, s:o}", "id", s->id, "key", s->key, "running", alive,
                              "pid", alive ? s->pid : 0, "port", s->port, "started", (json_int_t)s->started,
                              "sandbox", json_sprintf("%s/%s", ctx->root, s->id));
        if (o)
            json_array_append_new(ctx->list, o);
    } else {
        char pid[16] = "-";
        if (alive)
            snprintf(pid, sizeof pid, "%d", (int)s->pid);
        printf("%-24s %-8s %-7s %-6d %-12.12s %s/%s\n", s->id, alive ? "running" : "stopped", pid, s->port, s->key,
               ctx->root, s->id);
    }
    return 0;
}

int cmd_ps(int argc, char **argv)
{
    struct cli cli = { .prog = "pactown ps" };
    bool json = false;
    int ret = cli_parse_simple(&cli, argc, argv, 0,
                           "usage: pactown ps [--json] [options]\n"
                           "Lists the services started with `pactown run`: id, state, pid, port, venv key, sandbox.\n"
                           "  --json    a JSON array of {id, key, running, pid, port, started, sandbox}\n",
                           &json, NULL);
    if (ret >= 0 || (ret = cli_setup(&cli)) != 0 || (ret = cli_open_index(&cli)) != 0)
        goto out;
    struct ps_ctx ctx = { .list = json ? json_array() : NULL, .now = pt_wall_s(), .root = cli.cfg.sandbox_root };
    if (!json)
        printf("%-24s %-8s %-7s %-6s %-12s %s\n", "ID", "STATE", "PID", "PORT", "KEY", "SANDBOX");
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
    if (!pt_service_id_valid(id) || pt_index_service_get(cli.idx, id, &s) != 0) {
        cli_err(&cli, "no service '%s' (see `pactown ps`)", id);
        ret = EXIT_NOT_FOUND;
        goto out;
    }
    if (s.pid <= 0 || !pt_proc_alive(s.pid, s.pid_start)) {
        printf("%s is not running\n", id);
        s.pid = 0;
        if (pt_index_service_put(cli.idx, &s) != 0)
            cli_err(&cli, "warning: cannot update the record of %s in the index", id);
        ret = EXIT_OK;
        goto out;
    }
    if (!pt_pgrp_stop(s.pid, timeout_s * 1000))
        fprintf(stderr, "pactown stop: %s did not stop within %d s; killed it\n", id, timeout_s);
    s.pid = 0;
    if (pt_index_service_put(cli.idx, &s) != 0)
        cli_err(&cli, "warning: cannot update the record of %s in the index", id);
    printf("stopped %s\n", id);
    ret = EXIT_OK;
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
