/* testrun.c — a README's own tests (markpact:test, pactown/mptest.h) against
 * a service: http lines as requests to its port, shell lines run in its
 * sandbox; one PASS/FAIL line each and the total, or a JSON report.  The
 * test blocks are kept in <sandbox>/.pactown/tests.json, so that
 * `pactown test ID` can run them again against the running service. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/health.h"
#include "pactown/proc.h"
#include "pactown/spawn.h"
#include "testrun.h"
#include "pactown/sandbox.h"
#include "pactown/cgroup.h"
#include "pactown/proc.h"

#define HTTP_TEST_TIMEOUT_MS 10000
#define SHELL_TEST_TIMEOUT_MS 30000
#define TESTS_FILE "tests.json"
#define TESTS_FILE_MAX ((size_t)64 << 20)

/* A JSON string of s for the report: s itself when it is UTF-8, else a copy
 * with each byte that is not as '?' (jansson takes UTF-8 only). NULL stays
 * NULL (json null). */
static json_t *text(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *c = strdup(s);
    if (!c)
        return NULL;
    for (unsigned char *p = (unsigned char *)c; *p; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(c);
    free(c);
    return j;
}

static double ms_since(uint64_t t0)
{
    return (double)(pt_mono_ns() - t0) / 1e6;
}

/* What an http test line says, for messages: "POST /items". */
static void http_name(const pt_mp_test *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s %s", t->method, t->path);
}

static json_t *run_http(const pt_mp_test *t, const struct test_target *tg, bool json, bool *passed)
{
    char name[300], expect[32];
    http_name(t, name, sizeof name);
    if (t->expect)
        snprintf(expect, sizeof expect, "%d", t->expect);
    else
        snprintf(expect, sizeof expect, "200..399");
    uint64_t t0 = pt_mono_ns();
    pt_http_req rq = { .host = tg->host, .port = tg->port, .method = t->method, .path = t->path, .body = t->body,
                       .body_len = t->body ? strlen(t->body) : 0, .timeout_ms = HTTP_TEST_TIMEOUT_MS };
    long status = 0;
    int rc = pt_http_request(&rq, &status);
    double ms = ms_since(t0);
    *passed = rc == 0 && pt_mp_test_http_passed(t, status);
    if (!json) {
        printf("%s ", *passed ? "PASS" : "FAIL");
        cli_print_clean(stdout, name, strlen(name));
        if (rc)
            printf(" -> no answer (%s), expected %s\n", pt_http_strerror(rc), expect);
        else if (*passed)
            printf(" -> %ld\n", status);
        else
            printf(" -> %ld, expected %s\n", status, expect);
        return NULL;
    }
    return json_pack("{s:s, s:i, s:s, s:o, s:s, s:i, s:b, s:f, s:s?}", "kind", "http", "line", (int)t->line,
                     "method", t->method, "path", text(t->path), "expect", expect, "status", (int)status, "passed",
                     *passed, "ms", ms, "error", rc ? pt_http_strerror(rc) : NULL);
}

static json_t *run_shell(const pt_mp_test *t, const struct test_target *tg, bool json, bool *passed)
{
    *passed = false;
    char how[96] = "";
    uint64_t t0 = pt_mono_ns();
    int out = cli_dotdir_open(tg->sandbox_fd, "test-output.log", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int status = 0, rc = -errno;
    if (out >= 0) {
        const char *argv[] = { "/bin/sh", "-c", t->command, NULL };
        pt_spawn_opts so = { .argv = argv, .envp = (const char *const *)tg->env, .cwd = tg->sandbox,
                             .stdin_fd = -1, .stdout_fd = out, .stderr_fd = out, .new_session = true,
                             .set_ids = tg->run_as, .uid = tg->uid, .gid = tg->uid,
                             .cgroup_procs = tg->cg_procs, .n_cgroup_procs = tg->n_cg_procs };
        pid_t pid;
        rc = pt_spawn(&so, &pid);
        close(out);
        if (rc == 0) {
            rc = pt_wait_timeout(pid, SHELL_TEST_TIMEOUT_MS, &status);
            if (rc == -ETIMEDOUT) {
                snprintf(how, sizeof how, "did not end within %d s", SHELL_TEST_TIMEOUT_MS / 1000);
                pt_child_group_stop(pid, 2000, &status);
            } else {
                pt_pgrp_stop(pid, 2000); /* what it left behind */
            }
        }
    }
    double ms = ms_since(t0);
    if (rc == 0) {
        pt_describe_status(status, how, sizeof how);
        *passed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    } else if (!how[0]) {
        snprintf(how, sizeof how, "could not start: %s", strerror(-rc));
    }
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/.pactown/test-output.log", tg->sandbox);
    if (!json) {
        printf("%s shell: ", *passed ? "PASS" : "FAIL");
        cli_print_clean(stdout, t->command, strlen(t->command));
        if (*passed) {
            printf("\n");
        } else {
            printf(" -> %s\n", how);
            fflush(stdout);
            cli_print_tail(log, 10, "    ", false);
        }
        return NULL;
    }
    char *output = NULL;
    size_t olen = 0;
    if (!*passed && pt_read_file(log, 64 << 10, &output, &olen) != 0) {
        output = NULL; /* more than 64 KiB: said, not copied */
        if (asprintf(&output, "(more than 64 KiB: see %s)", log) < 0)
            output = NULL;
    }
    json_t *o = json_pack("{s:s, s:i, s:o, s:s, s:i, s:b, s:f, s:o}", "kind", "shell", "line", (int)t->line,
                          "command", text(t->command), "result", how,
                          "exit_code", rc == 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1, "passed", *passed,
                          "ms", ms, "output", text(output));
    free(output);
    return o;
}

int cli_run_tests(struct cli *cli, const pt_mp_tests *tt, const struct test_target *tg, bool json, json_t **report)
{
    (void)cli;
    json = json || report;
    json_t *list = json ? json_array() : NULL;
    int passed = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < tt->n; i++) {
        const pt_mp_test *t = &tt->v[i];
        bool ok = false;
        json_t *o = NULL;
        if (t->kind == PT_TEST_HTTP && tg->port <= 0) {
            char name[300];
            http_name(t, name, sizeof name);
            skipped++;
            if (json) {
                o = json_pack("{s:s, s:i, s:s, s:o, s:b, s:s}", "kind", "http", "line", (int)t->line, "method",
                              t->method, "path", text(t->path), "skipped", 1, "reason", "a job serves no requests");
            } else {
                printf("SKIP ");
                cli_print_clean(stdout, name, strlen(name));
                printf(" (line %u): a job serves no requests\n", t->line);
            }
            if (o)
                json_array_append_new(list, o);
            continue;
        }
        o = t->kind == PT_TEST_HTTP ? run_http(t, tg, json, &ok) : run_shell(t, tg, json, &ok);
        if (o)
            json_array_append_new(list, o);
        if (ok)
            passed++;
        else
            failed++;
        fflush(stdout);
    }
    if (json) {
        json_t *r = json_pack("{s:s, s:i, s:i, s:i, s:o}", "service", tg->id, "passed", passed, "failed", failed,
                              "skipped", skipped, "tests", list);
        if (report) {
            *report = r;
            return failed ? EXIT_TESTS_FAILED : EXIT_OK;
        }
        char *s = r ? json_dumps(r, JSON_INDENT(2)) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(r);
    } else if (skipped) {
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    } else {
        printf("%d passed, %d failed\n", passed, failed);
    }
    fflush(stdout);
    return failed ? EXIT_TESTS_FAILED : EXIT_OK;
}

int cli_tests_save(struct cli *cli, int dirfd, const pt_markpact *mp, const char *readme, const char *host)
{
    json_t *blocks = json_array();
    for (size_t i = 0; blocks && i < mp->n_tests; i++) {
        json_t *b = json_pack("{s:s, s:s, s:i}", "info", mp->tests[i].info, "body", mp->tests[i].body, "line",
                              (int)mp->tests[i].line);
        if (!b)
            cli_err(cli, "warning: %s:%u: the markpact:test block is not UTF-8 text: `pactown test` will not"
                         " have it", readme, mp->tests[i].fence_line);
        json_array_append_new(blocks, b);
    }
    json_t *doc = json_pack("{s:o, s:s, s:o}", "readme", text(readme), "host", host, "blocks", blocks);
    char *text = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
    json_decref(doc);
    int fd = -1, rc = -ENOMEM;
    if (text) {
        /* the same tests as last time (the sandbox prepared again): nothing
         * to write (a truncation costs ext4 a flush of the old data) */
        int old = cli_dotdir_open(dirfd, TESTS_FILE, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
        bool same = old >= 0 && pt_sandbox_file_holds(old, text, strlen(text));
        if (old >= 0)
            close(old);
        if (same) {
            free(text);
            return 0;
        }
        fd = cli_dotdir_open(dirfd, TESTS_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        rc = fd >= 0 ? pt_write_all(fd, text, strlen(text)) : -errno;
    }
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    free(text);
    if (rc)
        cli_err(cli, "cannot keep the tests in .pactown/%s: %s (`pactown test` will not find them)", TESTS_FILE,
                strerror(-rc));
    return rc;
}

int cli_tests_load(struct cli *cli, int dirfd, const char *sandbox, pt_mp_tests *tt, char **host, char **readme)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.pactown/%s", sandbox, TESTS_FILE);
    /* a regular file of a sane size, not followed through a symlink: the
     * sandbox is the service's, and the service may have changed it */
    int fd = cli_dotdir_open(dirfd, TESTS_FILE, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > TESTS_FILE_MAX) {
        cli_err(cli, "%s: %s", path,
                fd < 0 ? strerror(errno) : !S_ISREG(st.st_mode) ? "not a regular file" : "larger than 64 MiB");
        if (fd >= 0)
            close(fd);
        return EXIT_ERROR;
    }
    char *text = NULL;
    size_t tlen = 0;
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    int rrc = pt_read_file(fdpath, TESTS_FILE_MAX, &text, &tlen);
    close(fd);
    if (rrc) {
        cli_err(cli, "%s: %s", path, strerror(-rrc));
        return EXIT_ERROR;
    }
    json_error_t je;
    json_t *doc = json_loadb(text, tlen, JSON_REJECT_DUPLICATES, &je);
    free(text);
    json_t *blocks = doc ? json_object_get(doc, "blocks") : NULL;
    const char *h = doc ? json_string_value(json_object_get(doc, "host")) : NULL;
    const char *r = doc ? json_string_value(json_object_get(doc, "readme")) : NULL;
    if (!json_is_array(blocks) || !h || !r) {
        cli_err(cli, "%s: %s", path, doc ? "not a tests file of pactown run" : je.text);
        json_decref(doc);
        return EXIT_ERROR;
    }
    size_t n = json_array_size(blocks);
    pt_mp_block *b = calloc(n + 1, sizeof *b);
    int ret = b ? 0 : EXIT_ERROR;
    for (size_t i = 0; ret == 0 && i < n; i++) {
        json_t *o = json_array_get(blocks, i);
        const char *info = json_string_value(json_object_get(o, "info"));
        const char *body = json_string_value(json_object_get(o, "body"));
        json_int_t line = json_integer_value(json_object_get(o, "line"));
        if (!info || !body || line <= 1 || line >= UINT_MAX) {
            cli_err(cli, "%s: block %zu is not a test block", path, i);
            ret = EXIT_ERROR;
            break;
        }
        b[i] = (pt_mp_block){ .info = (char *)info, .body = (char *)body, .len = strlen(body),
                              .line = (unsigned)line, .fence_line = (unsigned)line - 1 };
    }
    pt_error err = { 0 };
    if (ret == 0 && pt_mp_tests_parse(b, n, tt, &err) != 0) {
        cli_input_err(cli, r, &err);
        ret = EXIT_BAD_INPUT;
    }
    if (ret == 0 && (!(*host = strdup(h)) || !(*readme = strdup(r)))) {
        pt_mp_tests_free(tt);
        ret = EXIT_ERROR;
    }
    free(b);
    json_decref(doc);
    return ret;
}

int cli_test_service(struct cli *cli, const char *id, char **envs, int n_envs, bool json, json_t **report)
{
    int ret = 0;
    pt_mp_tests tt = { 0 };
    char *host = NULL, *readme = NULL, **env = NULL;
    char sandbox[PATH_MAX], venv[PATH_MAX];
    int dirfd = -1;
    pt_service s;
    if (!pt_service_id_valid(id) || pt_index_service_get(cli->idx, id, &s) != 0) {
        cli_err(cli, "no service '%s'%s", id, cli->api ? "" : " (see `pactown ps --all`)");
        ret = EXIT_NOT_FOUND;
        goto out;
    }
    if (s.pid <= 0 || !pt_holder_alive(s.pid, s.pid_start)) {
        cli_err(cli, "service %s is not running%s", id,
                cli->api ? "" : ": start it with `pactown run`, or `pactown run --test` to start and test it");
        ret = EXIT_EXITED;
        goto out;
    }
    char parent[PATH_MAX];
    cli_sandbox_path(&cli->cfg, cli->idx, id, sandbox, sizeof sandbox, NULL);
    cli_sandbox_parent(&cli->cfg, s.user_id, parent, sizeof parent);
    pt_error err = { 0 };
    if (pt_sandbox_open(parent, id, &dirfd, &err) != 0) {
        cli_err(cli, "sandbox %s: %s", sandbox, err.msg);
        ret = EXIT_ERROR;
        goto out;
    }
    if ((ret = cli_tests_load(cli, dirfd, sandbox, &tt, &host, &readme)) != 0)
        goto out;
    if (tt.n == 0) {
        if (report)
            *report = json_pack("{s:s, s:i, s:i, s:i, s:[], s:s}", "service", id, "passed", 0, "failed", 0,
                                "skipped", 0, "tests", "note", "no markpact:test block");
        else if (json)
            printf("{\"service\": \"%s\", \"passed\": 0, \"failed\": 0, \"skipped\": 0, \"tests\": [],"
                   " \"note\": \"no markpact:test block\"}\n", id);
        cli_note(cli, "%s (the README of %s) has no markpact:test block: nothing to test", readme, id);
        ret = EXIT_OK;
        goto out;
    }
    if ((ret = cli_check_mount(cli)) != 0 || (ret = cli_resolve_venv(cli, s.key, false, venv, sizeof venv)) != 0)
        goto out;
    if (!(env = cli_service_env(s.port, host, venv, sandbox, envs, n_envs, s.user_id[0] != 0))) {
        cli_err(cli, "out of memory");
        ret = EXIT_ERROR;
        goto out;
    }
    pt_user u = { 0 };
    bool as_user = s.user_id[0] && pt_index_user_get(cli->idx, s.user_id, &u) == 0; /* the tests run as the service */
    int cg_fds[PT_CG_N], n_cg = 0;
    pt_cg_host cg;
    cli_cgroups(cli, &cg);
    if (as_user)
        pt_cgroup_open(&cg, id, cg_fds, &n_cg);
    struct test_target tg = { .id = id, .host = host, .port = s.port, .sandbox = sandbox, .sandbox_fd = dirfd,
                              .env = env, .run_as = as_user, .uid = u.uid, .cg_procs = cg_fds, .n_cg_procs = n_cg };
    ret = cli_run_tests(cli, &tt, &tg, json, report);
    for (int i = 0; i < n_cg; i++)
        close(cg_fds[i]);
out:
    if (dirfd >= 0)
        close(dirfd);
    pt_env_free(env);
    free(host);
    free(readme);
    pt_mp_tests_free(&tt);
    return ret;
}
