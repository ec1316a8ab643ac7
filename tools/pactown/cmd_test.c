/* pactown test ID — run the README's own tests (markpact:test) against a
 * service that `pactown run` started and that is still running. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pactown/proc.h"
#include "pactown/sandbox.h"
#include "pactown/spawn.h"
#include "testrun.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pactown test ID [--json] [--env K=V]... [options]\n"
            "\n"
            "Runs the markpact:test tests of the README that service ID was started from\n"
            "(kept in its sandbox by `pactown run`) against the running service: http lines as\n"
            "requests to its port (redirects not followed), shell lines with /bin/sh -c in its\n"
            "sandbox with the venv's bin first on PATH. One PASS/FAIL line per test, then\n"
            "\"N passed, N failed\".\n"
            "\n"
            "  --json        the report as one JSON object {service, passed, failed, skipped, tests}\n"
            "  --env K=V     a variable for the shell tests (repeatable; as given to `pactown run`)\n"
            "\n" CLI_COMMON_HELP
            "\n"
            "exit codes: 0 every test passed (or there are none), 10 a test failed, 8 no such\n"
            "            service, 5 the service is not running, 3 a bad test line, 2 usage, 1 error\n");
}

int cmd_test(int argc, char **argv)
{
    struct cli cli = { .prog = "pactown test" };
    enum { O_ENV = 1 };
    static const struct option opts[] = { { "json", no_argument, NULL, OPT_JSON },
                                          { "env", required_argument, NULL, O_ENV }, CLI_COMMON_LONGOPTS, { 0 } };
    bool json = false;
    char *envs[64];
    int n_envs = 0, c, ret = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_JSON) {
            json = true;
        } else if (c == O_ENV) {
            if (cli_env_opt(&cli, optarg, envs, &n_envs, 64) != 0)
                return EXIT_USAGE;
        } else if ((ret = cli_other_opt(&cli, c, optarg, usage)) >= 0) {
            return ret;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        cli_free(&cli);
        return EXIT_USAGE;
    }
    const char *id = argv[optind];
    pt_mp_tests tt = { 0 };
    char *host = NULL, *readme = NULL, **env = NULL;
    char sandbox[PATH_MAX], venv[PATH_MAX];
    int dirfd = -1;
    pt_service s;
    if ((ret = cli_setup(&cli)) != 0 || (ret = cli_open_index(&cli)) != 0)
        goto out;
    if (!pt_service_id_valid(id) || pt_index_service_get(cli.idx, id, &s) != 0) {
        cli_err(&cli, "no service '%s' (see `pactown ps --all`)", id);
        ret = EXIT_NOT_FOUND;
        goto out;
    }
    if (s.pid <= 0 || !pt_holder_alive(s.pid, s.pid_start)) {
        cli_err(&cli, "service %s is not running: start it with `pactown run`, or `pactown run --test` to start"
                      " and test it", id);
        ret = EXIT_EXITED;
        goto out;
    }
    snprintf(sandbox, sizeof sandbox, "%s/%s", cli.cfg.sandbox_root, id);
    pt_error err = { 0 };
    if (pt_sandbox_open(cli.cfg.sandbox_root, id, &dirfd, &err) != 0) {
        cli_err(&cli, "sandbox %s: %s", sandbox, err.msg);
        ret = EXIT_ERROR;
        goto out;
    }
    if ((ret = cli_tests_load(&cli, dirfd, sandbox, &tt, &host, &readme)) != 0)
        goto out;
    if (tt.n == 0) {
        if (json)
            printf("{\"service\": \"%s\", \"passed\": 0, \"failed\": 0, \"skipped\": 0, \"tests\": [],"
                   " \"note\": \"no markpact:test block\"}\n", id);
        fprintf(stderr, "pactown test: %s (the README of %s) has no markpact:test block: nothing to test\n",
                readme, id);
        ret = EXIT_OK;
        goto out;
    }
    if ((ret = cli_check_mount(&cli)) != 0 || (ret = cli_resolve_venv(&cli, s.key, false, venv, sizeof venv)) != 0)
        goto out;
    if (!(env = cli_service_env(s.port, host, venv, sandbox, envs, n_envs))) {
        cli_err(&cli, "out of memory");
        ret = EXIT_ERROR;
        goto out;
    }
    struct test_target tg = { .id = id, .host = host, .port = s.port, .sandbox = sandbox, .sandbox_fd = dirfd,
                              .env = env };
    ret = cli_run_tests(&cli, &tt, &tg, json, NULL);
out:
    if (dirfd >= 0)
        close(dirfd);
    pt_env_free(env);
    free(host);
    free(readme);
    pt_mp_tests_free(&tt);
    cli_free(&cli);
    return ret;
}
