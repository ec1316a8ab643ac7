/* pactown cache push|pull|ls --remote — the cache and the OCI registry
 * (docs/REGISTRY.md). The registry side is pactown-registry's (a program of
 * its own: pactown links neither libcurl nor libarchive); a pull is a build
 * through the daemon, whose builder looks in the registry first. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cli.h"
#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/key.h"
#include "pactown/req.h"
#include "pactown/spawn.h"

/* argv (room for 24) for pactown-registry CMD with the registry settings, then the
 * NULL-terminated extra arguments; 0 or an exit code */
static int helper_argv(struct cli *cli, const char *cmd, char *path, size_t n, const char **argv, char *timeout,
                       const char *const *extra)
{
    if (!*cli->cfg.registry) {
        cli_err(cli, "no registry is set (setting registry = https://HOST/REPOSITORY: see docs/REGISTRY.md)");
        return EXIT_USAGE;
    }
    if (pt_find_helper("pactown-registry", pt_helper_dirs, path, n) != 0) {
        cli_err(cli, "pactown-registry is not installed (not beside pactown, nor in %s)", pt_helper_dirs[1]);
        return EXIT_ERROR;
    }
    size_t k = 0;
    argv[k++] = path;
    argv[k++] = cmd;
    argv[k++] = "--registry";
    argv[k++] = cli->cfg.registry;
    if (*cli->cfg.registry_auth) {
        argv[k++] = "--registry-auth";
        argv[k++] = cli->cfg.registry_auth;
    }
    snprintf(timeout, 24, "%ld", cli->cfg.registry_timeout);
    argv[k++] = "--registry-timeout";
    argv[k++] = timeout;
    for (; extra && *extra && k < 23; extra++)
        argv[k++] = *extra;
    argv[k] = NULL;
    return 0;
}

/* run argv with our stdout and stderr; its exit status mapped: 0, 8 -> EXIT_NOT_FOUND, else EXIT_ERROR */
static int run_helper(struct cli *cli, const char *const *argv)
{
    pt_spawn_opts so = { .argv = argv, .stdin_fd = -1, .stdout_fd = 1, .stderr_fd = 2 };
    pid_t pid;
    int rc = pt_spawn(&so, &pid), status = 0;
    if (rc == 0)
        rc = pt_wait(pid, &status);
    if (rc) {
        cli_err(cli, "%s: %s", argv[0], strerror(-rc));
        return EXIT_ERROR;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return EXIT_OK;
    return WIFEXITED(status) && WEXITSTATUS(status) == 8 ? EXIT_NOT_FOUND : EXIT_ERROR;
}

int cache_ls_remote(struct cli *cli, bool json)
{
    char path[PATH_MAX], timeout[24];
    const char *argv[24];
    const char *const extra[] = { json ? "--json" : NULL, NULL };
    int ret = helper_argv(cli, "ls", path, sizeof path, argv, timeout, extra);
    return ret ? ret : run_helper(cli, argv);
}

int cache_push(struct cli *cli, const char *key)
{
    pt_entry e;
    if (pt_index_entry(cli->idx, key, &e) != 0 || e.state != PT_STATE_READY) {
        cli_err(cli, "%s is not built here: nothing to push", key);
        return EXIT_NOT_FOUND;
    }
    char path[PATH_MAX], timeout[24];
    const char *argv[24];
    const char *const extra[] = { "--cache-dir", cli->cfg.cache_dir, "--key", key, NULL };
    int ret = helper_argv(cli, "push", path, sizeof path, argv, timeout, extra);
    return ret ? ret : run_helper(cli, argv);
}

/* A set known only to the registry: its canonical text (from the config)
 * registered here, if this host gives it the same key. */
static int register_remote(struct cli *cli, const char *key)
{
    char path[PATH_MAX], timeout[24];
    const char *argv[24];
    const char *const extra[] = { key, NULL };
    int ret = helper_argv(cli, "show", path, sizeof path, argv, timeout, extra);
    if (ret)
        return ret;
    char *out = NULL;
    int status = 0;
    int rc = pt_run_capture(argv, NULL, 2, &out, 1 << 22, &status);
    if (rc || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(out);
        if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 8)
            return EXIT_NOT_FOUND; /* pactown-registry said so */
        if (rc)
            cli_err(cli, "%s: %s", path, strerror(-rc));
        return EXIT_ERROR;
    }
    json_t *cfg = json_loads(out, 0, NULL);
    free(out);
    const char *canon = json_string_value(json_object_get(cfg, "canonical"));
    const char *reqs = NULL;
    pt_error err = { 0 };
    if (!canon || pt_canonical_parse(canon, strlen(canon), NULL, &reqs, &err) != 0) {
        cli_err(cli, "%s: the registry's config has no valid canonical text%s%s", key, err.msg[0] ? ": " : "", err.msg);
        json_decref(cfg);
        return EXIT_ERROR;
    }
    /* its requirement lines, keyed on this host: the same key, or another interpreter or installer */
    char *lines = strdup(reqs), *args[4096];
    int n = 0;
    for (char *save = NULL, *l = strtok_r(lines, "\n", &save); l && n < 4096; l = strtok_r(NULL, "\n", &save))
        args[n++] = l;
    pt_reqset set;
    pt_reqset_init(&set);
    char here[PT_KEY_HEX + 1];
    char *canonical = NULL;
    size_t len = 0;
    ret = cli_read_reqs(cli, NULL, args, n, &set);
    if (ret == 0)
        ret = cli_key_of(cli, &set, here, &canonical, &len);
    if (ret == 0 && strcmp(here, key) != 0) {
        cli_err(cli, "%s: this host keys its requirement set as %s: another interpreter or installer settings "
                     "(the registry's: %.*s)", key, here, (int)strcspn(canon + strcspn(canon, "\n") + 1, "\n"),
                canon + strcspn(canon, "\n") + 1);
        ret = EXIT_ERROR;
    }
    if (ret == 0 && pt_index_register(cli->idx, key, canonical, len, NULL) != 0) {
        cli_err(cli, "cannot register %s", key);
        ret = EXIT_ERROR;
    }
    free(canonical);
    pt_reqset_free(&set);
    free(lines);
    json_decref(cfg);
    return ret;
}

int cache_pull(struct cli *cli, const char *key)
{
    if (!pt_key_is_valid(key)) {
        cli_err(cli, "'%s' is not a key (32 hex digits: `pactown cache ls --remote` lists them)", key);
        return EXIT_USAGE;
    }
    pt_entry e;
    if (pt_index_entry(cli->idx, key, &e) == 0 && e.state == PT_STATE_READY) {
        printf("%s is built here already (%s)\n", key, e.origin == PT_ORIGIN_PULLED ? "pulled" : "built");
        return EXIT_OK;
    }
    char *spec = NULL;
    size_t len = 0;
    int ret = cli_check_mount(cli);
    if (ret)
        return ret;
    if (pt_index_spec(cli->idx, key, &spec, &len) == -ENOENT && (ret = register_remote(cli, key)) != 0) {
        if (ret == EXIT_NOT_FOUND)
            cli_err(cli, "%s is not in the registry %s", key, cli->cfg.registry);
        return ret;
    }
    free(spec);
    char venv[PATH_MAX];
    uint64_t t0 = pt_mono_ns();
    if ((ret = cli_resolve_venv(cli, key, true, venv, sizeof venv)) != 0)
        return ret;
    if (pt_index_entry(cli->idx, key, &e) == 0 && e.origin == PT_ORIGIN_PULLED) {
        printf("%s pulled in %.1f ms\n", key, (double)(pt_mono_ns() - t0) / 1e6);
        return EXIT_OK;
    }
    cli_err(cli, "%s was built here, not pulled: %s (see %s/logs/%s.log)", key,
            e.pull_failed ? "the pull failed" : "the daemon found it in no registry", cli->cfg.cache_dir, key);
    return EXIT_ERROR;
}
