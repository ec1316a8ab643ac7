/* build.c — the builder's steps: create the venv, install, compile, seal. */
#include "pactown/build.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/spawn.h"
#include "pactown/store.h"

extern char **environ;

static volatile sig_atomic_t step_pgid;

static void on_term(int sig)
{
    pid_t pg = step_pgid;
    if (pg > 0)
        kill(-pg, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* environ without variables that would redirect the installer into another
 * environment, plus the ones we set; malloc'd array of borrowed/allocated strings */
static char **build_env(const pt_build_opts *o)
{
    static const char *const drop[] = { "VIRTUAL_ENV=", "PYTHONHOME=", "PYTHONPATH=", "CONDA_PREFIX=",
                                        "UV_CACHE_DIR=", "PYTHONDONTWRITEBYTECODE=", NULL };
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 8, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool skip = false;
        for (const char *const *d = drop; *d && !skip; d++)
            skip = strncmp(environ[i], *d, strlen(*d)) == 0;
        if (!skip)
            env[k++] = environ[i];
    }
    if (o->uv_cache_dir && *o->uv_cache_dir) {
        size_t len = strlen(o->uv_cache_dir) + sizeof "UV_CACHE_DIR=";
        char *v = malloc(len);
        if (v) {
            snprintf(v, len, "UV_CACHE_DIR=%s", o->uv_cache_dir);
            env[k++] = v;
        }
    }
    env[k++] = "PIP_DISABLE_PIP_VERSION_CHECK=1";
    env[k++] = "PYTHONNOUSERSITE=1";
    env[k++] = "UV_NO_PROGRESS=1";
    env[k] = NULL;
    return env;
}

static void log_argv(const char *const *argv)
{
    printf("$");
    for (const char *const *a = argv; *a; a++)
        printf(" %s", *a);
    printf("\n");
    fflush(stdout);
}

static int run_step(const char *what, const char *const *argv, char **env, pt_error *err)
{
    log_argv(argv);
    uint64_t t0 = pt_mono_ns();
    pt_spawn_opts so = { .argv = argv, .envp = (const char *const *)env, .stdin_fd = -1,
                         .stdout_fd = -1, .stderr_fd = -1, .new_pgrp = true, .death_signal = SIGKILL };
    pid_t pid;
    int rc = pt_spawn(&so, &pid);
    if (rc)
        return pt_error_set(err, rc, 0, "%s: cannot start %s: %s", what, argv[0], strerror(-rc));
    step_pgid = pid;
    int status;
    rc = pt_wait(pid, &status);
    step_pgid = 0;
    if (rc)
        return pt_error_set(err, rc, 0, "%s: waitpid: %s", what, strerror(-rc));
    printf("pactown-build: %s took %.1f s\n", what, (double)(pt_mono_ns() - t0) / 1e9);
    fflush(stdout);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char how[96];
        pt_describe_status(status, how, sizeof how);
        return pt_error_set(err, -ECHILD, 0, "%s failed: %s %s", what, argv[0], how);
    }
    return 0;
}

/* Append the installer's source options to argv at *n. */
static void add_source_args(const pt_build_opts *o, const char **argv, size_t *n, bool uv)
{
    if (o->index_url && *o->index_url) {
        argv[(*n)++] = "--index-url";
        argv[(*n)++] = o->index_url;
    }
    if (o->find_links && *o->find_links) {
        argv[(*n)++] = "--find-links";
        argv[(*n)++] = o->find_links;
    }
    if (o->no_index)
        argv[(*n)++] = "--no-index";
    if (o->offline && uv)
        argv[(*n)++] = "--offline";
}

int pt_build_venv(const pt_build_opts *o, pt_error *err)
{
    char dir[PATH_MAX], vpy[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", o->store, o->key) >= (int)sizeof dir ||
        snprintf(vpy, sizeof vpy, "%s/bin/python", dir) >= (int)sizeof vpy)
        return pt_error_set(err, -ENAMETOOLONG, 0, "store path too long");
    struct sigaction sa = { .sa_handler = on_term };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int rc = pt_store_remove(o->store, o->key); /* leftovers of an interrupted build */
    if (rc)
        return pt_error_set(err, rc, 0, "%s: cannot remove the leftover directory: %s", dir, strerror(-rc));
    char **env = build_env(o);
    if (!env)
        return pt_error_set(err, -ENOMEM, 0, "out of memory");
    const char *argv[24];
    size_t n = 0;
    bool uv = strcmp(o->installer, "uv") == 0;
    if (uv) {
        const char *a[] = { o->uv, "venv", "--no-config", "--no-python-downloads", "--python", o->python, dir, NULL };
        rc = run_step("create venv (uv)", a, env, err);
    } else {
        const char *a[] = { o->python, "-m", "venv", dir, NULL };
        rc = run_step("create venv (python -m venv)", a, env, err);
    }
    if (rc == 0) {
        if (uv) {
            const char *head[] = { o->uv, "pip", "install", "--no-config", "--python", vpy,
                                   "--compile-bytecode", "--link-mode", "copy", "-r", o->requirements };
            for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
                argv[n++] = head[i];
        } else {
            const char *head[] = { vpy, "-m", "pip", "install", "--no-input", "--compile", "-r", o->requirements };
            for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
                argv[n++] = head[i];
        }
        add_source_args(o, argv, &n, uv);
        argv[n] = NULL;
        rc = run_step(uv ? "install (uv pip)" : "install (pip)", argv, env, err);
    }
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], "UV_CACHE_DIR=", 13) == 0)
            free(env[i]);
    free(env);
    if (rc == 0) {
        char marker[PATH_MAX + 16];
        snprintf(marker, sizeof marker, "%s/.pactown-key", dir);
        char text[64];
        int len = snprintf(text, sizeof text, "%s\n", o->key);
        if ((rc = pt_write_file_atomic(marker, text, (size_t)len, 0444)) != 0)
            pt_error_set(err, rc, 0, "%s: %s", marker, strerror(-rc));
    }
    if (rc == 0 && (rc = pt_make_readonly(dir)) != 0)
        pt_error_set(err, rc, 0, "%s: cannot make the venv read-only: %s", dir, strerror(-rc));
    if (rc == 0) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || syncfs(fd) != 0)
            rc = pt_error_set(err, -errno, 0, "%s: syncfs: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (rc) {
        int r2 = pt_store_remove(o->store, o->key);
        printf("pactown-build: removed the incomplete venv%s\n", r2 ? " (failed)" : "");
        fflush(stdout);
    }
    return rc;
}
