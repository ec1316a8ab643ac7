/* pactown-build — builds one venv into the store; started by pactownfs for
 * each build (one process per build, so a crash or kill of a build never
 * takes the daemon with it and vice versa).
 *
 * usage: pactown-build --store DIR --key KEY --python PY --requirements FILE
 *          [--installer uv|pip] [--uv UV] [--uv-cache-dir D] [--no-index] [--offline]
 *          [--registry URL [--registry-auth FILE] [--registry-timeout S] [--registry-deadline S]]
 *        with --registry, the venv is first looked for in the registry
 *        (pactown/registry.h, by pactown-registry fetch) and built only when
 *        it is not there or the pull fails (the reason is in the log)
 *        with the index URL and find-links, which may carry credentials, in
 *        the environment (PACTOWN_BUILD_INDEX_URL, PACTOWN_BUILD_FIND_LINKS),
 *        never in the argument vector
 *        pactown-build --remove --store DIR --key KEY [--staging-pid PID]
 *                      (eviction; and what a killed build PID left)
 *        pactown-build --prune --store DIR --uv UV [--ttl SECONDS]
 *                      (the store's uv cache: wheels no venv links, pactown/uvcache.h)
 * Exit: 0 built; 1 the build failed (reason on stderr, i.e. in the log); 2 usage;
 *       3 the disk is full (ENOSPC, EDQUOT): a failure of the environment;
 *       10 pulled from the registry; 11 built after a pull that failed;
 *       75 (--prune) a build holds the uv cache: try later.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>

#include "pactown/build.h"
#include "pactown/fsutil.h"
#include "pactown/spawn.h"
#include "pactown/clock.h"
#include "pactown/key.h"
#include "pactown/store.h"
#include "pactown/uvcache.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pactown-build --store DIR --key KEY --python PY --requirements FILE\n"
            "         [--installer uv|pip] [--uv UV] [--uv-cache-dir D] [--no-index] [--offline]\n"
            "         [--registry URL [--registry-auth FILE] [--registry-timeout SECONDS] [--registry-deadline SECONDS]]\n"
            "       pactown-build --remove --store DIR --key KEY [--staging-pid PID]\n"
            "       pactown-build --prune --store DIR --uv UV [--ttl SECONDS]\n"
            "Builds one venv into DIR/KEY. Started by pactownfs; not meant to be run by hand.\n"
            "Environment: PACTOWN_BUILD_INDEX_URL, PACTOWN_BUILD_FIND_LINKS (they may carry credentials).\n");
}

/* An integer option's value in min..max into *out, or false with the reason said. */
static bool int_arg(const char *name, const char *arg, long long min, long long max, const char *what, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || *out < min || *out > max) {
        fprintf(stderr, "pactown-build: %s %s: expected %s\n", name, arg, what);
        return false;
    }
    return true;
}

/* The venv from the registry into <store>/<key>, sealed, by `pactown-registry
 * fetch` (a program of its own: a build without a registry maps neither
 * libcurl nor libarchive), run in this process's writable view of the
 * store and its process group, its lines in the log: 0 pulled; -ENOENT not
 * there; another -errno: the pull failed (it said why and removed what it
 * unpacked) and the venv is built here. */
static int pull(const pt_build_opts *o, const char *url, const char *auth, const char *timeout, long long deadline)
{
    char helper[4096];
    if (pt_find_helper("pactown-registry", pt_helper_dirs, helper, sizeof helper) != 0) {
        printf("pactown-build: registry: pull FAILED: pactown-registry is not installed (not beside pactown-build, "
               "nor in %s); building it here\n", pt_helper_dirs[1]);
        fflush(stdout);
        return -ENOEXEC;
    }
    const char *argv[20];
    size_t n = 0;
    argv[n++] = helper;
    argv[n++] = "fetch";
    argv[n++] = "--store"; argv[n++] = o->store;
    argv[n++] = "--key"; argv[n++] = o->key;
    argv[n++] = "--python"; argv[n++] = o->python;
    argv[n++] = "--registry"; argv[n++] = url;
    if (auth) { argv[n++] = "--registry-auth"; argv[n++] = auth; }
    argv[n++] = "--registry-timeout"; argv[n++] = timeout;
    argv[n] = NULL;
    fflush(stdout);
    /* this process group, so that the daemon's kill(-pgid) of a build ends the fetch too */
    pt_spawn_opts so = { .argv = argv, .stdin_fd = -1, .stdout_fd = 1, .stderr_fd = 2, .death_signal = SIGKILL };
    pid_t pid;
    int status = 0, rc = pt_spawn(&so, &pid);
    /* a registry that trickles a blob just above the 1 KiB/s floor is never
     * "silent": the fetch as a whole has a deadline (the daemon gives half of
     * build_timeout), after which the venv is built here, not timed out */
    bool late = false;
    if (rc == 0 && deadline > 0) {
        rc = pt_wait_timeout(pid, deadline > INT_MAX / 1000 ? INT_MAX : (int)(deadline * 1000), &status);
        if (rc == -ETIMEDOUT) {
            late = true;
            kill(pid, SIGKILL);
            rc = pt_wait(pid, &status);
        }
    } else if (rc == 0) {
        rc = pt_wait(pid, &status);
    }
    if (rc == 0 && late) {
        printf("pactown-build: registry: pull FAILED: the fetch took more than %lld s (--registry-deadline, half of "
               "build_timeout); building it here\n", deadline);
        if (pt_store_remove(o->store, o->key) != 0)
            printf("pactown-build: warning: %s/%s: removing what the pull unpacked failed\n", o->store, o->key);
        fflush(stdout);
        return -ETIMEDOUT;
    }
    if (rc) {
        printf("pactown-build: registry: pull FAILED: cannot run %s: %s; building it here\n", helper, strerror(-rc));
        fflush(stdout);
        return rc;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 8)
        return -ENOENT;
    if (!WIFEXITED(status)) {
        char how[96];
        pt_describe_status(status, how, sizeof how);
        printf("pactown-build: registry: pull FAILED: pactown-registry fetch %s; building it here\n", how);
        fflush(stdout);
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 3 ? -ENOSPC : -EIO;
}

int main(int argc, char **argv)
{
    pt_build_opts o = { .installer = "uv", .uv = "uv" };
    enum { O_STORE = 256, O_KEY, O_PY, O_REQ, O_INST, O_UV, O_UVC, O_NOINDEX, O_OFFLINE, O_HELP, O_REMOVE, O_PRUNE, O_TTL, O_STAGING,
           O_REG, O_REG_AUTH, O_REG_TIMEOUT, O_REG_DEADLINE };
    const char *registry = NULL, *registry_auth = NULL, *registry_timeout = "10";
    long long registry_deadline = 0;
    bool remove = false, prune = false;
    long long ttl = 0, staging_pid = 0;
    static const struct option opts[] = {
        { "store", required_argument, NULL, O_STORE }, { "key", required_argument, NULL, O_KEY },
        { "python", required_argument, NULL, O_PY }, { "requirements", required_argument, NULL, O_REQ },
        { "installer", required_argument, NULL, O_INST }, { "uv", required_argument, NULL, O_UV },
        { "uv-cache-dir", required_argument, NULL, O_UVC }, { "no-index", no_argument, NULL, O_NOINDEX },
        { "offline", no_argument, NULL, O_OFFLINE }, { "help", no_argument, NULL, O_HELP },
        { "remove", no_argument, NULL, O_REMOVE }, { "prune", no_argument, NULL, O_PRUNE },
        { "ttl", required_argument, NULL, O_TTL }, { "staging-pid", required_argument, NULL, O_STAGING },
        { "registry", required_argument, NULL, O_REG }, { "registry-auth", required_argument, NULL, O_REG_AUTH },
        { "registry-timeout", required_argument, NULL, O_REG_TIMEOUT },
        { "registry-deadline", required_argument, NULL, O_REG_DEADLINE }, { 0 } };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_STORE: o.store = optarg; break;
        case O_KEY: o.key = optarg; break;
        case O_PY: o.python = optarg; break;
        case O_REQ: o.requirements = optarg; break;
        case O_INST: o.installer = optarg; break;
        case O_UV: o.uv = optarg; break;
        case O_UVC: o.uv_cache_dir = optarg; break;
        case O_NOINDEX: o.no_index = true; break;
        case O_OFFLINE: o.offline = true; break;
        case O_HELP: usage(stdout); return 0;
        case O_REMOVE: remove = true; break;
        case O_PRUNE: prune = true; break;
        case O_TTL:
            if (!int_arg("--ttl", optarg, 0, LLONG_MAX, "seconds (an integer >= 0)", &ttl))
                return 2;
            break;
        case O_STAGING:
            if (!int_arg("--staging-pid", optarg, 1, 4194304, "a pid", &staging_pid))
                return 2;
            break;
        case O_REG: registry = optarg; break;
        case O_REG_AUTH: registry_auth = optarg; break;
        case O_REG_TIMEOUT: {
            long long t;
            if (!int_arg("--registry-timeout", optarg, 1, 86400, "seconds (an integer >= 1)", &t))
                return 2;
            registry_timeout = optarg;
            break;
        }
        case O_REG_DEADLINE:
            if (!int_arg("--registry-deadline", optarg, 0, LLONG_MAX / 1000, "seconds (an integer >= 0; 0: none)",
                         &registry_deadline))
                return 2;
            break;
        default: usage(stderr); return 2;
        }
    }
    if (prune) {
        /* the store's uv cache: wheels no venv links any more (pactown/uvcache.h) */
        if (!o.store || remove || optind != argc) {
            usage(stderr);
            return 2;
        }
        char cache[4096];
        if (snprintf(cache, sizeof cache, "%s/" PT_UV_CACHE_NAME, o.store) >= (int)sizeof cache) {
            fprintf(stderr, "pactown-build: prune: store path too long\n");
            return 1;
        }
        pt_error err = { 0 };
        pt_prune_result r;
        int rc = pt_store_enter_writable(o.store, &err);
        if (rc == 0)
            rc = pt_uv_cache_prune(cache, o.uv, ttl, pt_wall_s(), &r, &err);
        if (rc == -EWOULDBLOCK) {
            printf("pactown-build: prune: a build is linking from the uv cache; pruned later\n");
            return 75; /* EX_TEMPFAIL */
        }
        if (rc) {
            fprintf(stderr, "pactown-build: prune failed: %s\n", err.msg);
            return 1;
        }
        if (r.removed)
            printf("pactown-build: pruned the uv cache: %u unpacked wheel(s) of %u distribution(s) no venv links "
                   "(for %lld s or more), %llu bytes freed; %u of %u wheel(s) unused\n",
                   r.removed, r.names, ttl, (unsigned long long)r.freed_bytes, r.unused, r.archives);
        return 0;
    }
    if (remove) {
        /* eviction: rename <store>/<key> aside and delete it, in the writable view */
        if (!o.store || !o.key || !pt_key_is_valid(o.key) || optind != argc) {
            usage(stderr);
            return 2;
        }
        pt_error err = { 0 };
        int rc = pt_store_enter_writable(o.store, &err);
        if (rc == 0 && (rc = pt_store_remove(o.store, o.key)) != 0)
            pt_error_set(&err, rc, 0, "%s/%s: %s", o.store, o.key, strerror(-rc));
        char staging[64];
        snprintf(staging, sizeof staging, PT_PYC_STAGING "%lld", staging_pid);
        if (rc == 0 && staging_pid > 0 && (rc = pt_store_remove(o.store, staging)) != 0)
            pt_error_set(&err, rc, 0, "%s/%s: %s", o.store, staging, strerror(-rc));
        if (rc)
            fprintf(stderr, "pactown-build: remove failed: %s\n", err.msg);
        return rc ? 1 : 0;
    }
    if (!o.store || !o.key || !o.python || !o.requirements || optind != argc || !pt_key_is_valid(o.key) ||
        (strcmp(o.installer, "uv") != 0 && strcmp(o.installer, "pip") != 0)) {
        usage(stderr);
        return 2;
    }
    o.index_url = getenv("PACTOWN_BUILD_INDEX_URL");
    o.find_links = getenv("PACTOWN_BUILD_FIND_LINKS");
    pt_error err = { 0 };
    uint64_t t0 = pt_mono_ns();
    int rc = pt_store_enter_writable(o.store, &err);
    bool pull_failed = false;
    if (rc == 0 && registry) {
        int pulled = pull(&o, registry, registry_auth, registry_timeout, registry_deadline);
        if (pulled == 0)
            return 10;
        pull_failed = pulled != -ENOENT;
    }
    printf("pactown-build: building %s with %s (python %s)\n", o.key, o.installer, o.python);
    fflush(stdout);
    if (rc == 0)
        rc = pt_build_venv(&o, &err);
    if (rc) {
        printf("pactown-build: build FAILED: %s\n", err.msg);
        fflush(stdout);
        return rc == -ENOSPC || rc == -EDQUOT ? 3 : 1;
    }
    printf("pactown-build: built %s in %.1f s\n", o.key, (double)(pt_mono_ns() - t0) / 1e9);
    return pull_failed ? 11 : 0;
}
