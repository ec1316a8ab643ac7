/* build.c — the builder's steps: create the venv, install, bytecode, seal. */
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
#include "pactown/pycache.h"
#include "pactown/spawn.h"
#include "pactown/redact.h"
#include "pactown/scripts.h"
#include "pactown/store.h"
#include "pactown/url.h"
#include "pactown/uvcache.h"

#include "pyc_share.h" /* pyc_share_py: src/pyc_share.py, embedded at build time */

static volatile sig_atomic_t step_pgid;

static void on_term(int sig)
{
    pid_t pg = step_pgid;
    if (pg > 0)
        kill(-pg, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The daemon's environment must not change what a build installs: every
 * installer variable goes (tox-uv#325: an ambient UV_FIND_LINKS or
 * PIP_FIND_LINKS changed a venv without changing its key), as do variables
 * that would point the interpreter elsewhere; transport settings that cannot
 * change what is installed (certificates, time-outs, retries, proxy) stay. */
static const char *const build_drop[] = { "UV_", "PIP_", "PACTOWN_", "VIRTUAL_ENV=", "PYTHONHOME=", "PYTHONPATH=",
                                          "PYTHONUSERBASE=", "CONDA_PREFIX=", "PYTHONDONTWRITEBYTECODE=", NULL };
static const char *const build_keep[] = { "PIP_CERT=", "PIP_CLIENT_CERT=", "PIP_DEFAULT_TIMEOUT=", "PIP_TIMEOUT=",
                                          "PIP_RETRIES=", "PIP_PROXY=", "UV_NATIVE_TLS=", "UV_HTTP_TIMEOUT=",
                                          "UV_HTTP_RETRIES=", "UV_REQUEST_TIMEOUT=", NULL };

/* The environment of a step. With sources, the installer also gets the
 * key's index URL and find-links through it (never through its argument
 * vector: they may carry credentials). Config files are off: uv
 * --no-config/UV_NO_CONFIG, pip PIP_CONFIG_FILE=/dev/null (pip loads no
 * config file at all then, "Configuration" in pip's user guide). */
static char *var(const char *name, const char *value)
{
    char *s;
    return asprintf(&s, "%s=%s", name, value) < 0 ? NULL : s;
}

static char **build_env(const pt_build_opts *o, const char *uv_cache, bool sources)
{
    bool uv = uv_cache != NULL;
    char *add[8];
    size_t n = 0;
    add[n++] = var("PYTHONNOUSERSITE", "1");
    add[n++] = uv ? var("UV_NO_CONFIG", "1") : var("PIP_CONFIG_FILE", "/dev/null");
    add[n++] = uv ? var("UV_NO_PROGRESS", "1") : var("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    if (uv && *uv_cache)
        add[n++] = var("UV_CACHE_DIR", uv_cache);
    if (sources && o->index_url && *o->index_url)
        add[n++] = var(uv ? "UV_INDEX_URL" : "PIP_INDEX_URL", o->index_url);
    if (sources && o->find_links && *o->find_links)
        add[n++] = var(uv ? "UV_FIND_LINKS" : "PIP_FIND_LINKS", o->find_links);
    add[n] = NULL;
    bool bad = false;
    for (size_t i = 0; i < n; i++)
        bad |= add[i] == NULL;
    char **env = bad ? NULL : pt_env_new(NULL, build_drop, build_keep, (const char *const *)add);
    for (size_t i = 0; i < n; i++)
        free(add[i]);
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

/* Run one step. With secrets, its output goes through a pipe and every
 * secret is written as "***" (pactown/redact.h) on its way to the log. */
static int run_step(const char *what, const char *const *argv, const char *const *shown, char **env,
                    const char *const *secrets, pt_error *err)
{
    log_argv(shown ? shown : argv);
    uint64_t t0 = pt_mono_ns();
    int pipefd[2] = { -1, -1 };
    if (secrets && secrets[0] && pipe2(pipefd, O_CLOEXEC) != 0)
        return pt_error_set(err, -errno, 0, "%s: pipe: %s", what, strerror(errno));
    pt_spawn_opts so = { .argv = argv, .envp = (const char *const *)env, .stdin_fd = -1,
                         .stdout_fd = pipefd[1], .stderr_fd = pipefd[1], .new_pgrp = true, .death_signal = SIGKILL };
    pid_t pid;
    int rc = pt_spawn(&so, &pid);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (rc) {
        if (pipefd[0] >= 0)
            close(pipefd[0]);
        return pt_error_set(err, rc, 0, "%s: cannot start %s: %s", what, argv[0], strerror(-rc));
    }
    step_pgid = pid;
    if (pipefd[0] >= 0) {
        fflush(stdout);
        int crc = pt_redact_copy(pipefd[0], STDOUT_FILENO, secrets);
        if (crc)
            fprintf(stderr, "pactown-build: %s: copying its output: %s\n", what, strerror(-crc));
        close(pipefd[0]);
    }
    int status;
    rc = pt_wait(pid, &status);
    step_pgid = 0;
    if (rc)
        return pt_error_set(err, rc, 0, "%s: waitpid: %s", what, strerror(-rc));
    printf("pactown-build: %s took %.3f s\n", what, (double)(pt_mono_ns() - t0) / 1e9);
    fflush(stdout);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char how[96];
        pt_describe_status(status, how, sizeof how);
        return pt_error_set(err, -ECHILD, 0, "%s failed: %s %s", what, argv[0], how);
    }
    return 0;
}

/* Append the installer's source flags to argv at *n: only those without a
 * value; the index URL and find-links go through the environment. */
static void add_source_args(const pt_build_opts *o, const char **argv, size_t *n, bool uv)
{
    if (o->no_index)
        argv[(*n)++] = "--no-index";
    if (o->offline && uv)
        argv[(*n)++] = "--offline";
}

/* Bytecode for a venv whose files came hard-linked from the store's uv
 * cache: src/pyc_share.py compiles each wheel once, in the cache (staged in
 * <store>/.pyc-staging-<pid>, then published whole), and links the .pyc
 * files in. Skipped (no interpreter started) when every module already has
 * its .pyc, which is the case whenever each wheel had been compiled for an
 * earlier venv. With cache "", every module is compiled in the venv.
 *
 * It runs the venv's base interpreter (o->python, the one the venv was
 * made from: the same magic number and cache tag), never <venv>/bin/python:
 * that one reads <venv>/pyvenv.cfg, which a wheel may replace (uv installs
 * a wheel's .data/data/pyvenv.cfg over it), and whose "home" then chooses
 * the standard library it imports at start-up, as root here. */
static int share_bytecode(const pt_build_opts *o, const char *dir, const char *cache, char **env, pt_error *err)
{
    char sp[PATH_MAX], tag[32], staging[PATH_MAX];
    int rc = pt_site_packages(dir, sp, sizeof sp, tag, sizeof tag);
    if (rc)
        return pt_error_set(err, rc, 0, "%s: no site-packages: %s", dir, strerror(-rc));
    if (*tag && pt_pycache_missing(sp, tag, 1) == 0) {
        printf("pactown-build: bytecode: every module's .pyc came linked from the uv cache\n");
        fflush(stdout);
        return 0;
    }
    if (snprintf(staging, sizeof staging, "%s/" PT_PYC_STAGING "%ld", o->store, (long)getpid()) >= (int)sizeof staging)
        return pt_error_set(err, -ENAMETOOLONG, 0, "%s: path too long", dir);
    pt_rm_rf(staging); /* a killed build's, of a pid now reused */
    const char *argv[] = { o->python, "-I", "-S", "-B", "-c", pyc_share_py, cache, sp, staging, NULL };
    const char *shown[] = { o->python, "-I", "-S", "-B", "-c", "<src/pyc_share.py>", cache, sp, staging, NULL };
    rc = run_step("bytecode (compiled once per wheel, linked)", argv, shown, env, NULL, err);
    pt_rm_rf(staging);
    return rc;
}

/* What decides which interpreter and standard library a venv runs: its
 * pyvenv.cfg (`home`, PEP 405) and bin/python. A wheel's .data/data/ files
 * are installed at the venv's root, so one can replace pyvenv.cfg, and
 * every later start of the venv's python (the services', with their own
 * uids) would take its standard library from wherever the wheel says. */
struct venv_identity {
    char *cfg;
    size_t cfg_len;
    char python[PATH_MAX];
};

static int venv_identity_read(const char *dir, struct venv_identity *v)
{
    char path[PATH_MAX + 16];
    memset(v, 0, sizeof *v);
    snprintf(path, sizeof path, "%s/pyvenv.cfg", dir);
    int rc = pt_read_file(path, 1 << 16, &v->cfg, &v->cfg_len);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/bin/python", dir);
    ssize_t n = readlink(path, v->python, sizeof v->python - 1);
    v->python[n > 0 ? n : 0] = '\0';
    return 0;
}

/* 0 when the install left the venv's identity as it was, else -EPERM with
 * err naming what changed. */
static int venv_identity_check(const char *dir, const struct venv_identity *before, pt_error *err)
{
    struct venv_identity now;
    int rc = venv_identity_read(dir, &now);
    const char *what = rc ? "removed pyvenv.cfg"
                       : now.cfg_len != before->cfg_len || memcmp(now.cfg, before->cfg, now.cfg_len) != 0
                           ? "replaced pyvenv.cfg"
                       : strcmp(now.python, before->python) != 0 ? "replaced bin/python" : NULL;
    free(now.cfg);
    if (!what)
        return 0;
    return pt_error_set(err, -EPERM, 0,
                        "%s: a distribution of the set %s (a wheel's .data/data/ files go to the venv's root): "
                        "it would decide which interpreter and standard library the venv runs; refused",
                        dir, what);
}

int pt_build_seal(const char *dir, pt_error *err)
{
    uint64_t t_seal = pt_mono_ns();
    int rc = pt_make_readonly(dir);
    if (rc)
        return pt_error_set(err, rc, 0, "%s: cannot make the venv read-only: %s", dir, strerror(-rc));
    printf("pactown-build: sealed (read-only) in %.3f s\n", (double)(pt_mono_ns() - t_seal) / 1e9);
    fflush(stdout);
    return 0;
}

int pt_build_venv(const pt_build_opts *o, pt_error *err)
{
    char dir[PATH_MAX], vpy[PATH_MAX], cache[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", o->store, o->key) >= (int)sizeof dir ||
        snprintf(vpy, sizeof vpy, "%s/bin/python", dir) >= (int)sizeof vpy ||
        snprintf(cache, sizeof cache, "%s/" PT_UV_CACHE_NAME, o->store) >= (int)sizeof cache)
        return pt_error_set(err, -ENAMETOOLONG, 0, "store path too long");
    struct sigaction sa = { .sa_handler = on_term };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int rc = pt_store_remove(o->store, o->key); /* leftovers of an interrupted build */
    if (rc)
        return pt_error_set(err, rc, 0, "%s: cannot remove the leftover directory: %s", dir, strerror(-rc));
    bool uv = strcmp(o->installer, "uv") == 0;
    /* shared: uv's cache in the store, files hard-linked, bytecode shared */
    bool shared = uv && !(o->uv_cache_dir && *o->uv_cache_dir);
    int cache_fd = -1;
    if (shared && (cache_fd = pt_uv_cache_open(cache, false, err)) < 0)
        return cache_fd;
    const char *uv_cache = !uv ? NULL : shared ? cache : o->uv_cache_dir ? o->uv_cache_dir : "";
    char *secrets[8] = { 0 };
    size_t n_secrets = 0;
    char **env = build_env(o, uv_cache, false), **install_env = build_env(o, uv_cache, true);
    if (!env || !install_env || pt_url_secrets(o->index_url, secrets, 7, &n_secrets) != 0 ||
        pt_url_secrets(o->find_links, secrets, 7, &n_secrets) != 0) {
        pt_env_free(env);
        pt_env_free(install_env);
        for (size_t i = 0; i < n_secrets; i++)
            free(secrets[i]);
        if (cache_fd >= 0)
            close(cache_fd);
        return pt_error_set(err, -ENOMEM, 0, "out of memory");
    }
    const char *argv[24];
    size_t n = 0;
    if (uv) {
        const char *a[] = { o->uv, "venv", "--no-config", "--no-python-downloads", "--python", o->python, dir, NULL };
        rc = run_step("create venv (uv)", a, NULL, env, NULL, err);
    } else {
        const char *a[] = { o->python, "-m", "venv", dir, NULL };
        rc = run_step("create venv (python -m venv)", a, NULL, env, NULL, err);
    }
    struct venv_identity identity = { 0 };
    if (rc == 0 && (rc = venv_identity_read(dir, &identity)) != 0)
        pt_error_set(err, rc, 0, "%s/pyvenv.cfg: %s", dir, strerror(-rc));
    if (rc == 0) {
        if (shared) {
            const char *head[] = { o->uv, "pip", "install", "--no-config", "--python", vpy,
                                   "--link-mode", "hardlink", "-r", o->requirements };
            for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
                argv[n++] = head[i];
        } else if (uv) {
            /* no --compile-bytecode: uv would compile with <venv>/bin/python (see share_bytecode) */
            const char *head[] = { o->uv, "pip", "install", "--no-config", "--python", vpy,
                                   "--link-mode", "copy", "-r", o->requirements };
            for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
                argv[n++] = head[i];
        } else {
            const char *head[] = { vpy, "-m", "pip", "install", "--no-input", "--compile", "-r", o->requirements };
            for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
                argv[n++] = head[i];
        }
        add_source_args(o, argv, &n, uv);
        argv[n] = NULL;
        rc = run_step(uv ? "install (uv pip)" : "install (pip)", argv, NULL, install_env,
                      (const char *const *)secrets, err);
    }
    if (rc == 0)
        rc = venv_identity_check(dir, &identity, err);
    free(identity.cfg);
    if (rc == 0 && uv)
        rc = share_bytecode(o, dir, shared ? cache : "", env, err);
    if (cache_fd >= 0)
        close(cache_fd); /* the lock goes with it */
    pt_env_free(env);
    pt_env_free(install_env);
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    if (rc == 0) {
        /* long store paths: launchers back to plain shebangs (pactown/scripts.h) */
        int fixed = pt_venv_fix_launchers(dir);
        if (fixed < 0)
            rc = pt_error_set(err, fixed, 0, "%s/bin: rewriting the script launchers: %s", dir, strerror(-fixed));
        else if (fixed > 0)
            printf("pactown-build: %d script(s) given a plain shebang line (the store path is over 127 bytes)\n", fixed);
        fflush(stdout);
    }
    if (rc == 0) {
        char marker[PATH_MAX + 16];
        snprintf(marker, sizeof marker, "%s/.pactown-key", dir);
        char text[64];
        int len = snprintf(text, sizeof text, "%s\n", o->key);
        if ((rc = pt_write_file_atomic(marker, text, (size_t)len, 0444)) != 0)
            pt_error_set(err, rc, 0, "%s: %s", marker, strerror(-rc));
    }
    if (rc == 0)
        rc = pt_build_seal(dir, err);
    if (rc) {
        int r2 = pt_store_remove(o->store, o->key);
        printf("pactown-build: removed the incomplete venv%s\n", r2 ? " (failed)" : "");
        fflush(stdout);
    }
    return rc;
}
