/* pactown — the command-line tool of pactown-fs: run services from markpact
 * READMEs on cached venvs, and look at the cache. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pactown COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  run README.md     start the service a markpact README describes, on a cached venv\n"
            "  ps                list running services started with `pactown run` (--all: stopped too)\n"
            "  stop ID           stop a service (its whole process group)\n"
            "  rm ID             remove a stopped service: sandbox, record, by-service entry\n"
            "  test ID           run the README's markpact:test tests against a running service\n"
            "  hash              print the canonical requirement set and its cache key\n"
            "  cache …           look at and manage the cache (ls, show, stats, gc, rm, prewarm)\n"
            "  lease …           keep a venv from eviction while a process uses it\n"
            "  config            print the settings in effect\n"
            "  serve             the runner API: pactown's REST routes on a Unix socket (and TCP)\n"
            "\n"
            "`pactown COMMAND --help` describes each command.\n"
            "\n"
            "exit codes: 0 ok, 1 error, 2 usage, 3 bad README or requirement, 4 build failed,\n"
            "            5 service exited, 6 health timeout, 7 pactownfs not mounted, 8 no such service,\n"
            "            9 service already running, 10 a test failed, 11 port held by another program,\n"
            "            12 refused (a user's limit, limits this host cannot hold, another user's service);\n"
            "            run --once: the job's own exit code (128+N: killed by signal N)\n"
            "options follow the command: pactown run --set key=value README.md\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("pactown 0.1.0\n");
        return EXIT_OK;
    }
    static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        { "run", cmd_run }, { "ps", cmd_ps }, { "stop", cmd_stop }, { "hash", cmd_hash }, { "config", cmd_config },
        { "cache", cmd_cache }, { "lease", cmd_lease }, { "test", cmd_test }, { "rm", cmd_rm },
    };
    if (!strcmp(cmd, "serve"))
        return serve_exec(argc, argv); /* pactown-serve, in this process */
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "pactown: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
