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
    if ((ret = cli_setup(&cli)) == 0 && (ret = cli_open_index(&cli)) == 0)
        ret = cli_test_service(&cli, argv[optind], envs, n_envs, json, NULL);
    cli_free(&cli);
    return ret;
}
