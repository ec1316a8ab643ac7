/* testrun.h — the README's own tests, run by `pactown run --test` and
 * `pactown test ID` (internal to tools/pactown). */
#ifndef PACTOWN_TESTRUN_H
#define PACTOWN_TESTRUN_H

#include <stdbool.h>

#include "cli.h"
#include "pactown/markpact.h"
#include "pactown/mptest.h"

struct test_target {
    const char *id;        /* service id, for the JSON report */
    const char *host;      /* where the service listens */
    int port;              /* its port; 0 = no server (a job): http tests are skipped */
    const char *sandbox;   /* path of its sandbox: the cwd of shell tests */
    int sandbox_fd;        /* the sandbox, open (O_DIRECTORY) */
    char *const *env;      /* environment of shell tests (cli_service_env) */
    bool run_as;           /* shell tests run as uid (the service's user) */
    uid_t uid;
    const int *cg_procs;   /* and in the service's cgroups */
    int n_cg_procs;
};

/* Run every test of tt in order: http tests as requests to host:port (10 s
 * each, redirects not followed), shell tests with /bin/sh -c in the sandbox
 * (30 s each; output in .pactown/test-output.log, its last lines shown on a
 * failure).  Prints "PASS GET /health -> 200", "FAIL POST /items -> 422,
 * expected 201", "FAIL shell: CMD -> exited with 1" lines and "N passed, N
 * failed" to stdout, or with json one JSON object {service, passed, failed,
 * skipped, tests: [...]}; with report non-NULL that object is stored in
 * *report (caller decrefs; NULL on out-of-memory) and nothing is printed.
 * Returns EXIT_OK or EXIT_TESTS_FAILED. */
int cli_run_tests(struct cli *cli, const pt_mp_tests *tt, const struct test_target *tg, bool json, json_t **report);

/* Keep mp's test blocks (and the README's name and the host) in
 * <sandbox>/.pactown/tests.json (dirfd: the sandbox). 0 or -errno (said). */
int cli_tests_save(struct cli *cli, int dirfd, const pt_markpact *mp, const char *readme, const char *host);

/* Read them back from the sandbox (dirfd, at path sandbox: a regular file
 * of at most 64 MiB, never through a symlink) into *tt (caller frees
 * with pt_mp_tests_free), *host and *readme (malloc'd). Prints the error;
 * returns 0, EXIT_BAD_INPUT or EXIT_ERROR. */
int cli_tests_load(struct cli *cli, int dirfd, const char *sandbox, pt_mp_tests *tt, char **host, char **readme);

/* The tests of running service id (kept in its sandbox), as `pactown test
 * ID` runs them: envs[0..n_envs) added to its environment; printed, or the
 * report in *report when report is non-NULL (see cli_run_tests). Returns
 * EXIT_OK, EXIT_TESTS_FAILED, EXIT_NOT_FOUND, EXIT_EXITED (not running),
 * EXIT_BAD_INPUT or EXIT_ERROR (said). */
int cli_test_service(struct cli *cli, const char *id, char **envs, int n_envs, bool json, json_t **report);

#endif
