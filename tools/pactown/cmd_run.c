/* pactown run — start the service a markpact README describes on a cached
 * venv: parse, register the requirement set, write the sandbox, resolve the
 * venv through the mount (building on a miss), start the run command, wait
 * for health, and say what happened and how long it took. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "pactown/warm.h"
#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/health.h"
#include "pactown/markpact.h"
#include "pactown/proc.h"
#include "pactown/sandbox.h"
#include "pactown/spawn.h"
#include "engine.h"


extern char **environ;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pactown run README.md [options]\n"
            "\n"
            "Starts the service described by a markpact README: its markpact:deps become a\n"
            "cached venv (built by pactownfs on the first use), its markpact:file blocks are\n"
            "written to <sandbox_root>/<service-id>/, .venv points into the mount, and the\n"
            "markpact:run command runs there with /bin/sh -c, with PORT, MARKPACT_PORT, HOST,\n"
            "VIRTUAL_ENV and PATH set. Waits until the service answers: its own process group\n"
            "listens on the port (another program's listener never counts), then HTTP.\n"
            "\n"
            "  --service-id ID        sandbox and service name (default: from the README's file name)\n"
            "  --port N               port for the service (default: first free from 8001)\n"
            "  --host ADDR            HOST for the service and the health check (default 127.0.0.1)\n"
            "  --env K=V              extra environment variable (repeatable)\n"
            "  --skip-health-check    do not wait for the service to answer\n"
            "  --health-path P        HTTP path to probe (default: /health, then / when /health\n"
            "                         does not pass; any answer < 500 passes but a 404 on /health)\n"
            "  --timeout S            seconds to wait for health (default 60)\n"
            "  --detach               leave the service running in the background and exit\n"
            "                         (its output goes to <sandbox>/.pactown/service.log)\n"
            "  --prepare              write the sandbox and resolve (build) the venv, print the\n"
            "                         venv's path, and start nothing\n"
            "  --refresh              build the venv again first (refused while other services use it)\n"
            "  --warm, --no-warm      start it forked from the venv's warm process (a Python entry point\n"
            "                         of the venv: python FILE, python -m MODULE, a console script), or\n"
            "                         not (default: the setting warm; docs/WARM.md)\n"
            "  --once                 the run command is a job: run it to completion (output streamed,\n"
            "                         stdin passed on unless it is a terminal) and exit with its exit code\n"
            "  --test                 run the README's markpact:test tests once the service is healthy\n"
            "                         (after a job: its shell tests), then stop it unless --detach\n"
            "  --json                 with --test: the test report as JSON on stdout (the service's\n"
            "                         own output then goes to stderr)\n"
            "  --user NAME            run it as NAME's own uid (from user_uid_min..user_uid_max, kept in\n"
            "                         the index), in <sandbox_root>/@NAME/<id> (mode 0700), no groups,\n"
            "                         no capabilities, no new privileges, umask 077 (as root)\n"
            "  --limit FIELD=VALUE    with --user: a field of the user's profile, over the user_profiles\n"
            "                         file's: tier (free, basic, pro, enterprise, admin: pactown's\n"
            "                         presets), max_memory_mb, max_cpu_percent (100 = one CPU) and\n"
            "                         max_processes (the kernel holds them: a cgroup of its own),\n"
            "                         max_concurrent_services, max_services_per_hour, allowed_ports\n"
            "                         (8001,8002), blocked (yes/no), reason\n"
            "\n" CLI_COMMON_HELP
            "\n"
            "exit codes: 0 healthy (or stopped cleanly), 3 bad README, 4 build failed,\n"
            "            5 service exited, 6 health timeout, 7 pactownfs not mounted,\n"
            "            9 a service with this id is already running, 10 a test failed,\n"
            "            11 the port is held by another program, 12 refused (limits this host cannot\n"
            "            hold, another user's service), 2 usage, 1 other error;\n"
            "            --once: the job's exit code, 128+N when signal N killed it\n");
}

/* service id from the README's file name: "markpact-flask-blog.md" -> "markpact-flask-blog" */
static void default_service_id(const char *readme, char *out, size_t n)
{
    const char *base = strrchr(readme, '/');
    base = base ? base + 1 : readme;
    size_t k = 0;
    for (const char *p = base; *p && *p != '.' && k + 1 < n && k < PT_SERVICE_ID_MAX; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                  ch == '_';
        if (k == 0 && !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            continue;
        out[k++] = ok ? ch : '-';
    }
    out[k] = '\0';
    if (k == 0 || !strcasecmp(out, "readme")) {
        /* README.md: name the service after its directory */
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", readme);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            default_service_id(dir, out, n);
            if (*out)
                return;
        }
        snprintf(out, n, "service");
    }
}

static volatile sig_atomic_t forward_pgid, got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
    if (forward_pgid > 0)
        kill(-forward_pgid, SIGTERM);
}

/* --limit FIELD=VALUE: a field of the user's profile (pactown/profile.h),
 * checked now, applied over the profiles file's once the settings are read */
static int limit_opt(const struct cli *cli, char *arg, char **limits, int *n)
{
    pt_profile scratch = { 0 };
    pt_error err = { 0 };
    char *eq = strchr(arg, '=');
    if (!eq) {
        cli_err(cli, "--limit %s: expected FIELD=VALUE (e.g. max_memory_mb=64, tier=free)", arg);
        return -1;
    }
    *eq = '\0';
    int rc = pt_profile_set(&scratch, arg, eq + 1, &err);
    *eq = '=';
    if (rc) {
        cli_err(cli, "--limit %s: %s", arg, err.msg);
        return -1;
    }
    if (*n == 32) {
        cli_err(cli, "--limit: at most 32 of them");
        return -1;
    }
    limits[(*n)++] = arg;
    return 0;
}

static int apply_limits(struct cli *cli, struct run_req *o, char **limits, int n)
{
    if (o->user && engine_profile(cli, o->user, &o->profile) != 0)
        return EXIT_USAGE;
    for (int i = 0; i < n; i++) {
        char *eq = strchr(limits[i], '=');
        *eq = '\0';
        pt_error err = { 0 };
        int rc = pt_profile_set(&o->profile, limits[i], eq + 1, &err);
        *eq = '=';
        if (rc) {
            cli_err(cli, "--limit %s: %s", limits[i], err.msg);
            return EXIT_USAGE;
        }
    }
    return 0;
}

static void on_start(void *ctx, pid_t pid)
{
    (void)ctx;
    forward_pgid = pid;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int cmd_run(int argc, char **argv)
{
    uint64_t t0 = pt_mono_ns();
    struct cli cli = { .prog = "pactown run" };
    struct run_req o = { .host = "127.0.0.1", .timeout_s = 60, .t0 = t0, .on_start = on_start, .stopped = &got_signal };
    char *envs[64], *limits[32];
    int n_limits = 0;
    o.envs = envs;
    enum { O_ID = 1, O_PORT, O_HOST, O_ENV, O_SKIP, O_HPATH, O_TIMEOUT, O_DETACH, O_PREPARE, O_REFRESH, O_ONCE,
           O_TEST, O_USER, O_LIMIT, O_WARM, O_NO_WARM };
    static const struct option opts[] = {
        { "service-id", required_argument, NULL, O_ID }, { "port", required_argument, NULL, O_PORT },
        { "host", required_argument, NULL, O_HOST }, { "env", required_argument, NULL, O_ENV },
        { "skip-health-check", no_argument, NULL, O_SKIP }, { "health-path", required_argument, NULL, O_HPATH },
        { "timeout", required_argument, NULL, O_TIMEOUT }, { "detach", no_argument, NULL, O_DETACH },
        { "prepare", no_argument, NULL, O_PREPARE }, { "refresh", no_argument, NULL, O_REFRESH },
        { "once", no_argument, NULL, O_ONCE }, { "test", no_argument, NULL, O_TEST },
        { "user", required_argument, NULL, O_USER }, { "limit", required_argument, NULL, O_LIMIT },
        { "warm", no_argument, NULL, O_WARM }, { "no-warm", no_argument, NULL, O_NO_WARM },
        { "json", no_argument, NULL, OPT_JSON }, CLI_COMMON_LONGOPTS, { 0 } };
    int c, ret = 0;
    char *end;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_ID: o.service_id = optarg; break;
        case O_PORT:
            o.port = (int)strtol(optarg, &end, 10);
            if (*end || optarg[0] < '0' || optarg[0] > '9' || o.port < 1 || o.port > 65535) {
                cli_err(&cli, "--port %s: expected 1..65535", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_HOST: o.host = optarg; break;
        case O_ENV:
            if (cli_env_opt(&cli, optarg, envs, &o.n_envs, 64) != 0)
                return EXIT_USAGE;
            break;
        case O_SKIP: o.skip_health = true; break;
        case O_HPATH: o.health_path = optarg; break;
        case O_TIMEOUT:
            o.timeout_s = (int)strtol(optarg, &end, 10);
            if (*end || o.timeout_s < 1) {
                cli_err(&cli, "--timeout %s: expected whole seconds >= 1", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_DETACH: o.detach = true; break;
        case O_PREPARE: o.prepare = true; break;
        case O_REFRESH: o.refresh = true; break;
        case O_ONCE: o.once = true; break;
        case O_TEST: o.test = true; break;
        case O_WARM: o.warm = "yes"; break;
        case O_NO_WARM: o.warm = "no"; break;
        case O_USER: o.user = optarg; break;
        case O_LIMIT:
            if (limit_opt(&cli, optarg, limits, &n_limits) != 0)
                return EXIT_USAGE;
            break;
        case OPT_JSON: o.json = true; break;
        default:
            if ((ret = cli_other_opt(&cli, c, optarg, usage)) >= 0)
                return ret;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        cli_free(&cli);
        return EXIT_USAGE;
    }
    o.readme = argv[optind];
    char idbuf[PT_SERVICE_ID_MAX + 1];
    if (!o.service_id) {
        default_service_id(o.readme, idbuf, sizeof idbuf);
        o.service_id = idbuf;
    }
    if (!pt_service_id_valid(o.service_id)) {
        cli_err(&cli, "--service-id '%s': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                o.service_id);
        cli_free(&cli);
        return EXIT_USAGE;
    }
    if ((o.once && (o.detach || o.prepare)) || (o.json && !o.test)) {
        cli_err(&cli, "%s", o.json && !o.test ? "--json goes with --test"
                                                : "--once runs a job to its end: not with --detach or --prepare");
        cli_free(&cli);
        return EXIT_USAGE;
    }
    if (n_limits && !o.user) {
        cli_err(&cli, "--limit goes with --user NAME: limits are a user's");
        cli_free(&cli);
        return EXIT_USAGE;
    }
    if (o.health_path && o.health_path[0] != '/') {
        cli_err(&cli, "--health-path %s: must start with /", o.health_path);
        cli_free(&cli);
        return EXIT_USAGE;
    }

    struct run_out r;
    if ((ret = cli_setup(&cli)) != 0 || (ret = apply_limits(&cli, &o, limits, n_limits)) != 0)
        goto out;
    ret = engine_run(&cli, &o, &r);
    json_decref(r.tests);
    if (ret != 0 || !r.running || o.detach)
        goto out;
    pid_t pid = r.pid;
    pt_service svc;
    if (pt_index_service_get(cli.idx, o.service_id, &svc) != 0) {
        cli_err(&cli, "the record of %s is gone from the index", o.service_id);
        ret = EXIT_ERROR;
        goto out;
    }
    /* foreground: wait for the service; Ctrl-C ends its whole process group */
    int status;
    pt_started_wait(pid, r.exit_fd, &status);
    if (r.exit_fd >= 0)
        close(r.exit_fd);
    pt_pgrp_stop(pid, 10000); /* the rest of its group (uvicorn's reloader and workers) */
    pt_cg_host cg;
    cli_cgroups(&cli, &cg);
    pt_cgroup_remove(&cg, o.service_id);
    /* its lease goes only now that the whole group is gone, with its record's end */
    engine_end_service(&cli, &svc, pid);
    if (got_signal) {
        fprintf(stderr, "pactown: stopped %s\n", o.service_id);
        ret = EXIT_OK;
    } else {
        char how[96];
        pt_describe_status(status, how, sizeof how);
        fprintf(stderr, "pactown: the service %s\n", how);
        ret = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? EXIT_OK : EXIT_EXITED;
    }
out:
    cli_free(&cli);
    return ret;
}
