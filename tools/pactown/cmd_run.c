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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/health.h"
#include "pactown/markpact.h"
#include "pactown/proc.h"
#include "pactown/sandbox.h"
#include "pactown/spawn.h"
#include "forms.h"
#include "testrun.h"


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
            "  --once                 the run command is a job: run it to completion (output streamed,\n"
            "                         stdin passed on unless it is a terminal) and exit with its exit code\n"
            "  --test                 run the README's markpact:test tests once the service is healthy\n"
            "                         (after a job: its shell tests), then stop it unless --detach\n"
            "  --json                 with --test: the test report as JSON on stdout (the service's\n"
            "                         own output then goes to stderr)\n"
            "\n" CLI_COMMON_HELP
            "\n"
            "exit codes: 0 healthy (or stopped cleanly), 3 bad README, 4 build failed,\n"
            "            5 service exited, 6 health timeout, 7 pactownfs not mounted,\n"
            "            9 a service with this id is already running, 10 a test failed,\n"
            "            11 the port is held by another program, 2 usage, 1 other error;\n"
            "            --once: the job's exit code, 128+N when signal N killed it\n");
}

struct run_opts {
    const char *readme;
    const char *service_id;
    int port;
    const char *host;
    const char *health_path;
    int timeout_s;
    bool skip_health;
    bool detach;
    bool prepare;       /* sandbox and venv only: print the venv path, start nothing */
    bool refresh;       /* build the venv again first */
    bool once;          /* a job: run to completion, exit with its code */
    bool test;          /* run the README's tests */
    bool json;          /* the test report as JSON */
    char *envs[64];
    int n_envs;
};

static double ms_since(uint64_t t0)
{
    return (double)(pt_mono_ns() - t0) / 1e6;
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

/* ---- the sandbox ---- */

static int write_sandbox(struct cli *cli, const struct run_opts *o, const pt_markpact *mp, const char *key,
                         int *dirfd)
{
    pt_error err = { 0 };
    if (pt_sandbox_open(cli->cfg.sandbox_root, o->service_id, dirfd, &err) != 0) {
        cli_err(cli, "sandbox %s/%s: %s", cli->cfg.sandbox_root, o->service_id, err.msg);
        return EXIT_ERROR;
    }
    for (size_t i = 0; i < mp->n_files; i++) {
        const pt_mp_block *f = &mp->files[i];
        /* a filled template may hold values of the environment (secrets): owner only */
        if (pt_sandbox_write_file(*dirfd, f->path, f->body, f->len, f->template ? 0600 : 0644, &err) != 0) {
            err.line = f->fence_line;
            cli_input_err(cli, o->readme, &err);
            return err.code == -EINVAL || err.code == -ELOOP ? EXIT_BAD_INPUT : EXIT_ERROR;
        }
    }
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s/by-deps/%s", cli->cfg.mountpoint, key);
    if (pt_sandbox_link_venv(*dirfd, target, &err) != 0) {
        cli_err(cli, "sandbox %s/%s: %s", cli->cfg.sandbox_root, o->service_id, err.msg);
        return EXIT_ERROR;
    }
    return 0;
}

/* ---- the service ---- */

/* a later update of a running or ended service's record: a failure is said */
static void note_service(struct cli *cli, pt_service *svc)
{
    if (svc->pid == 0 && !svc->ended)
        svc->ended = pt_wall_s();
    int rc = pt_index_service_put(cli->idx, svc);
    if (rc)
        cli_err(cli, "warning: cannot update the record of %s in the index: %s (`pactown ps` may be out of date)",
                svc->id, strerror(-rc));
}

static volatile sig_atomic_t forward_pgid, got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
    if (forward_pgid > 0)
        kill(-forward_pgid, SIGTERM);
}

/* --test of a README without test blocks: said, and not a failure. */
static int no_tests(struct cli *cli, const char *readme, bool json, const char *id)
{
    if (json)
        printf("{\"service\": \"%s\", \"passed\": 0, \"failed\": 0, \"skipped\": 0, \"tests\": [],"
               " \"note\": \"no markpact:test block\"}\n", id);
    fprintf(stderr, "%s: %s has no markpact:test block: nothing to test\n", cli->prog, readme);
    return EXIT_OK;
}

int cmd_run(int argc, char **argv)
{
    uint64_t t0 = pt_mono_ns();
    struct cli cli = { .prog = "pactown run" };
    struct run_opts o = { .host = "127.0.0.1", .timeout_s = 60 };
    enum { O_ID = 1, O_PORT, O_HOST, O_ENV, O_SKIP, O_HPATH, O_TIMEOUT, O_DETACH, O_PREPARE, O_REFRESH, O_ONCE,
           O_TEST };
    static const struct option opts[] = {
        { "service-id", required_argument, NULL, O_ID }, { "port", required_argument, NULL, O_PORT },
        { "host", required_argument, NULL, O_HOST }, { "env", required_argument, NULL, O_ENV },
        { "skip-health-check", no_argument, NULL, O_SKIP }, { "health-path", required_argument, NULL, O_HPATH },
        { "timeout", required_argument, NULL, O_TIMEOUT }, { "detach", no_argument, NULL, O_DETACH },
        { "prepare", no_argument, NULL, O_PREPARE }, { "refresh", no_argument, NULL, O_REFRESH },
        { "once", no_argument, NULL, O_ONCE }, { "test", no_argument, NULL, O_TEST },
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
            if (cli_env_opt(&cli, optarg, o.envs, &o.n_envs, 64) != 0)
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
    if (o.health_path && o.health_path[0] != '/') {
        cli_err(&cli, "--health-path %s: must start with /", o.health_path);
        cli_free(&cli);
        return EXIT_USAGE;
    }

    pt_markpact mp = { 0 };
    pt_reqset set;
    pt_reqset_init(&set);
    char key[PT_KEY_HEX + 1], *canonical = NULL, venv[PATH_MAX], sandbox[PATH_MAX];
    size_t clen = 0;
    char **env = NULL;
    int dirfd = -1;
    bool leased_by_me = false, tests_ok = false;
    pt_mp_tests tt = { 0 };
    if ((ret = cli_setup(&cli)) != 0 || (ret = cli_readme_load(&cli, o.readme, &mp, &set)) != 0 ||
        (ret = cli_check_mount(&cli)) != 0 || (ret = cli_open_index(&cli)) != 0 ||
        (ret = cli_key_of(&cli, &set, key, &canonical, &clen)) != 0)
        goto out;
    cli_prune_services(&cli);
    pt_error terr = { 0 };
    tests_ok = pt_mp_tests_parse(mp.tests, mp.n_tests, &tt, &terr) == 0;
    if (!tests_ok) {
        cli_input_err(&cli, o.readme, &terr);
        if (o.test) {
            ret = EXIT_BAD_INPUT;
            goto out;
        }
        cli_err(&cli, "warning: the README's tests cannot run (`pactown test` will say so)");
    }
    pt_service old;
    if (pt_index_service_get(cli.idx, o.service_id, &old) == 0 && old.pid > 0 &&
        pt_holder_alive(old.pid, old.pid_start)) {
        cli_err(&cli, "service %s is already running (pid %d, port %d); stop it first: pactown stop %s",
                o.service_id, (int)old.pid, old.port, o.service_id);
        ret = EXIT_RUNNING;
        goto out;
    }
    if (pt_index_register(cli.idx, key, canonical, clen, NULL) != 0) {
        cli_err(&cli, "cannot register the requirement set %s in the index", key);
        ret = EXIT_ERROR;
        goto out;
    }
    pt_entry e = { 0 };
    bool hit = pt_index_entry(cli.idx, key, &e) == 0 && e.state == PT_STATE_READY;
    if (o.refresh && (hit || e.state == PT_STATE_FAILED)) {
        bool cleared;
        if ((ret = cli_evict(&cli, key, false, CLI_QUIET_NONE | CLI_QUIET_BUSY, &cleared)) != 0 && ret != EXIT_NOT_FOUND) {
            if (ret == EXIT_RUNNING)
                cli_err(&cli, "--refresh: the venv %.12s is in use (leased) or being built; stop its services, or"
                              " `pactown cache rebuild %.12s --force`", key, key);
            goto out;
        }
        if (ret == 0)
            fprintf(stderr, "pactown: --refresh: %s %.12s\n", cleared ? "forgot the failed build of" : "evicted", key);
        ret = 0;
        hit = false;
        e.state = PT_STATE_NONE;
    }
    char summary[256] = "";
    for (size_t i = 0, k = 0; i < set.n && k + 2 < sizeof summary; i++)
        k += (size_t)snprintf(summary + k, sizeof summary - k, "%s%s", i ? ", " : "", set.lines[i]);
    if ((ret = cli_check_env_example(&cli, o.readme, &mp, o.envs, o.n_envs)) != 0 ||
        (ret = cli_fill_templates(&cli, o.readme, &mp, o.envs, o.n_envs)) != 0 ||
        (ret = write_sandbox(&cli, &o, &mp, key, &dirfd)) != 0)
        goto out;
    snprintf(sandbox, sizeof sandbox, "%s/%s", cli.cfg.sandbox_root, o.service_id);
    cli_tests_save(&cli, dirfd, &mp, o.readme, o.host);
    if (hit) {
        fprintf(stderr, "pactown: cache hit %.12s (%s)\n", key, set.n ? summary : "no dependencies");
    } else if (e.state == PT_STATE_FAILED && cli.cfg.failure_ttl > 0 &&
               pt_wall_s() - e.failed_at < cli.cfg.failure_ttl) {
        /* the daemon answers from the remembered failure: say so, not "building" */
        fprintf(stderr,
                "pactown: the build of %.12s (%s) failed %lld s ago and is remembered for %ld s (failure_ttl);"
                " `pactown cache rm %.12s` forgets it; log %s/logs/%s.log\n",
                key, set.n ? summary : "no dependencies", (long long)(pt_wall_s() - e.failed_at),
                cli.cfg.failure_ttl, key, cli.cfg.mountpoint, key);
    } else {
        fprintf(stderr, "pactown: cache miss %.12s (%s): building; log %s/logs/%s.log\n", key,
                set.n ? summary : "no dependencies", cli.cfg.mountpoint, key);
    }
    /* lease the venv for this process while it is resolved and the service
     * starts, so that an eviction cannot remove it in between */
    pt_lease lease = { .since = pt_wall_s() };
    snprintf(lease.holder, sizeof lease.holder, "%s", o.service_id);
    pt_proc_start_time(getpid(), &lease.pid_start);
    int lrc = pt_index_lease_add(cli.idx, key, getpid(), &lease);
    if (lrc) {
        cli_err(&cli, "cannot lease the venv %s in the index: %s (without a lease it could be evicted under the"
                      " service)", key, strerror(-lrc));
        ret = EXIT_ERROR;
        goto out;
    }
    leased_by_me = true;
    uint64_t tb = pt_mono_ns();
    if ((ret = cli_resolve_venv(&cli, key, !hit, venv, sizeof venv)) != 0)
        goto out;
    if (!hit)
        fprintf(stderr, "pactown: built %.12s in %.1f s\n", key, ms_since(tb) / 1000.0);
    fprintf(stderr, "pactown: sandbox ready in %.1f ms (%s)\n", ms_since(t0), sandbox);
    if (hit)
        cli_note_use(&cli, key);
    if (o.prepare) {
        printf("%s\n", venv);
        ret = EXIT_OK;
        goto out;
    }

    /* start the run command: /bin/sh -c, as markpact defines it */
    bool chose_port = !o.port;
    if (!o.port)
        o.port = free_port(8001);
    if (!o.once) {
        int fr = pt_port_free(o.host, o.port);
        if (fr == -EADDRINUSE) {
            cli_err(&cli, "port %d on %s is taken: not starting %s on it%s", o.port, o.host, o.service_id,
                    chose_port ? "" : " (choose another with --port, or stop what holds it)");
            cli_say_port_holders(&cli, o.port, 0);
            ret = EXIT_PORT_TAKEN;
            goto out;
        }
        if (fr == -EINVAL) {
            cli_err(&cli, "--host %s: expected a numeric IPv4 or IPv6 address, or localhost", o.host);
            ret = EXIT_USAGE;
            goto out;
        }
    }
    env = cli_service_env(o.port, o.host, venv, sandbox, o.envs, o.n_envs);
    if (!env) {
        cli_err(&cli, "out of memory");
        ret = EXIT_ERROR;
        goto out;
    }
    if ((ret = cli_write_dotenv(&cli, dirfd, &mp, o.port, o.envs, o.n_envs)) != 0 ||
        (ret = cli_build_step(&cli, &mp, dirfd, sandbox, env)) != 0)
        goto out;
    int logfd = o.detach ? cli_dotdir_open(dirfd, "service.log", O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
    if (o.detach && logfd < 0) {
        cli_err(&cli, "%s/.pactown/service.log: %s", sandbox, strerror(errno));
        ret = EXIT_ERROR;
        goto out;
    }
    /* a job may read its input: stdin is passed on, unless it is a terminal
     * (the job runs in its own session, where a terminal read would fail) */
    int in_fd = o.once && !isatty(STDIN_FILENO) ? STDIN_FILENO : -1;
    const char *argv_sh[] = { "/bin/sh", "-c", mp.run->body, NULL };
    pt_spawn_opts so = { .argv = argv_sh, .envp = (const char *const *)env, .cwd = sandbox, .stdin_fd = in_fd,
                         .stdout_fd = logfd >= 0 ? logfd : o.json ? STDERR_FILENO : -1, .stderr_fd = logfd,
                         .new_session = true }; /* --json: stdout is the report's alone */
    pid_t pid;
    uint64_t ts = pt_mono_ns();
    int rc = pt_spawn(&so, &pid);
    if (logfd >= 0)
        close(logfd);
    if (rc) {
        cli_err(&cli, "cannot start /bin/sh: %s", strerror(-rc));
        ret = EXIT_ERROR;
        goto out;
    }
    forward_pgid = pid;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pt_service svc = { .pid = pid, .port = o.once ? 0 : o.port, .started = pt_wall_s() };
    pt_proc_start_time(pid, &svc.pid_start);
    snprintf(svc.key, sizeof svc.key, "%s", key);
    snprintf(svc.id, sizeof svc.id, "%s", o.service_id);
    /* the service holds the lease from now on; it ends with the service */
    lease.pid_start = svc.pid_start;
    if ((lrc = pt_index_service_put(cli.idx, &svc)) != 0 || (lrc = pt_index_lease_add(cli.idx, key, pid, &lease)) != 0) {
        cli_err(&cli, "cannot record the service %s in the index: %s; stopping it (it would run unseen by"
                      " `pactown ps` and unleased)", o.service_id, strerror(-lrc));
        pt_child_group_stop(pid, 10000, NULL);
        pt_index_lease_del(cli.idx, key, pid);
        ret = EXIT_ERROR;
        goto out;
    }
    struct test_target tg = { .id = o.service_id, .host = o.host, .port = o.once ? 0 : o.port, .sandbox = sandbox,
                              .sandbox_fd = dirfd, .env = env };

    if (o.once) {
        fprintf(stderr, "pactown: job %s started (pid %d)\n", o.service_id, (int)pid);
        int status;
        pt_wait(pid, &status);
        double job_ms = ms_since(ts);
        pt_pgrp_stop(pid, 10000); /* what the job left running in its group */
        pt_index_lease_del(cli.idx, key, pid);
        svc.pid = 0;
        note_service(&cli, &svc);
        char how[96];
        pt_describe_status(status, how, sizeof how);
        fprintf(stderr, "pactown: job %s %s after %.1f ms (%.1f ms in all)\n", o.service_id, how, job_ms,
                ms_since(t0));
        ret = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : EXIT_ERROR;
        if (o.test && !got_signal) {
            int tr = tests_ok ? (tt.n ? cli_run_tests(&cli, &tt, &tg, o.json) : EXIT_OK) : EXIT_BAD_INPUT;
            if (!tt.n && tests_ok)
                no_tests(&cli, o.readme, o.json, o.service_id);
            if (ret == 0)
                ret = tr;
        }
        goto out;
    }
    fprintf(stderr, "pactown: started %s (pid %d, port %d)\n", o.service_id, (int)pid, o.port);

    if (!o.skip_health) {
        pt_health_opts ho = { .pid = pid, .pgid = pid, .host = o.host, .port = o.port, .path = o.health_path,
                              .auto_path = !o.health_path, .timeout_ms = o.timeout_s * 1000, .poll_ms = 10 };
        pt_health_result hr;
        if (pt_health_wait(&ho, &hr) != 0) {
            cli_err(&cli, "health check: %s", strerror(errno));
            ret = EXIT_ERROR;
            goto out;
        }
        if (hr.status == PT_HEALTH_EXITED) {
            char how[96];
            pt_describe_status(hr.wait_status, how, sizeof how);
            cli_err(&cli, "the service %s before it answered on port %d", how, o.port);
            if (WIFEXITED(hr.wait_status) && WEXITSTATUS(hr.wait_status) == 0)
                cli_err(&cli, "it looks like a job (a command that ends by itself, such as a CLI tool): run it"
                              " with `pactown run --once %s`", o.readme);
            if (hr.foreign)
                cli_say_port_holders(&cli, o.port, pid);
            if (o.detach) {
                char lp[PATH_MAX + 32];
                snprintf(lp, sizeof lp, "%s/.pactown/service.log", sandbox);
                cli_print_tail(lp, 15, "", true);
            }
            pt_pgrp_stop(pid, 10000); /* what it left running in its group */
            pt_index_lease_del(cli.idx, key, pid);
            svc.pid = 0;
            note_service(&cli, &svc);
            ret = EXIT_EXITED;
            goto out;
        }
        if (hr.status == PT_HEALTH_TIMEOUT) {
            char last[400] = "";
            if (hr.foreign)
                snprintf(last, sizeof last, "; port %d answers, but another program holds it", o.port);
            else if (hr.http_status)
                snprintf(last, sizeof last, "; last answer: %s -> %ld for %ld s", hr.path, hr.http_status,
                         (hr.status_since_ms + 500) / 1000);
            else if (hr.port && hr.probe_error == -EIO)
                snprintf(last, sizeof last, "; port %d accepts connections but does not answer HTTP", hr.port);
            else if (hr.port)
                snprintf(last, sizeof last, "; port %d accepts connections, HTTP: %s", hr.port,
                         strerror(-hr.probe_error));
            cli_err(&cli, "the service was not healthy on %s:%d within %d s%s; stopping it", o.host, o.port,
                    o.timeout_s, last);
            if (hr.foreign)
                cli_say_port_holders(&cli, o.port, pid);
            pt_child_group_stop(pid, 10000, NULL);
            pt_index_lease_del(cli.idx, key, pid);
            svc.pid = 0;
            note_service(&cli, &svc);
            ret = EXIT_TIMEOUT;
            goto out;
        }
        if (hr.port != o.port) {
            fprintf(stderr, "pactown: note: the service listens on port %d, not on PORT=%d (its run command ignores $PORT)\n",
                    hr.port, o.port);
            svc.port = hr.port;
            tg.port = hr.port;
            note_service(&cli, &svc);
        }
        bool v6 = strchr(o.host, ':') != NULL;
        fprintf(stderr, "pactown: running in %.1f ms (pid %d, http://%s%s%s:%d%s -> %ld)\n", ms_since(t0), (int)pid,
                v6 ? "[" : "", o.host, v6 ? "]" : "", hr.port, hr.path ? hr.path : "", hr.http_status);
    } else {
        fprintf(stderr, "pactown: running in %.1f ms (pid %d, health check skipped)\n", ms_since(t0), (int)pid);
    }
    if (o.test) {
        int tr = EXIT_BAD_INPUT;
        if (tests_ok && tt.n)
            tr = cli_run_tests(&cli, &tt, &tg, o.json);
        else if (tests_ok)
            tr = no_tests(&cli, o.readme, o.json, o.service_id);
        if (!o.detach) {
            /* --test in the foreground: the service was started to be tested */
            pt_child_group_stop(pid, 10000, NULL);
            pt_index_lease_del(cli.idx, key, pid);
            svc.pid = 0;
            note_service(&cli, &svc);
            fprintf(stderr, "pactown: stopped %s after its tests\n", o.service_id);
        }
        ret = tr;
        if (o.detach)
            fprintf(stderr, "pactown: detached; stop it with: pactown stop %s\n", o.service_id);
        goto out;
    }
    if (o.detach) {
        fprintf(stderr, "pactown: detached; output in %s/.pactown/service.log; stop it with: pactown stop %s\n", sandbox,
                o.service_id);
        ret = EXIT_OK;
        goto out;
    }
    /* foreground: wait for the service; Ctrl-C ends its whole process group */
    int status;
    pt_wait(pid, &status);
    pt_pgrp_stop(pid, 10000); /* the rest of its group (uvicorn's reloader and workers) */
    /* its lease goes only now that the whole group is gone */
    pt_index_lease_del(cli.idx, key, pid);
    svc.pid = 0;
    note_service(&cli, &svc);
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
    if (leased_by_me)
        pt_index_lease_del(cli.idx, key, getpid());
    if (dirfd >= 0)
        close(dirfd);
    pt_env_free(env);
    free(canonical);
    pt_mp_tests_free(&tt);
    pt_reqset_free(&set);
    pt_markpact_free(&mp);
    cli_free(&cli);
    return ret;
}
