/* pactown-registry — venvs and an OCI registry (docs/REGISTRY.md): the push
 * that pactownfs starts after each build, and what `pactown cache push`,
 * `pull` and `ls --remote` ask of the registry. A program of its own so
 * that libcurl, libarchive and libcrypto are mapped by it (and by
 * pactown-build) alone.
 *
 * usage: pactown-registry fetch --store DIR --key KEY --python PY REGISTRY-OPTIONS
 *          (run by pactown-build in its writable view of the store)
 *        pactown-registry push --cache-dir DIR --key KEY REGISTRY-OPTIONS
 *        pactown-registry ls [--json] REGISTRY-OPTIONS
 *        pactown-registry show KEY REGISTRY-OPTIONS   (the config, as JSON)
 * REGISTRY-OPTIONS: --registry URL [--registry-auth FILE] [--registry-timeout S]
 * Exit: 0 done; 1 failed (the reason on stderr, and for fetch on stdout:
 * the build log); 2 usage; 3 (fetch) the disk is full; 8 no such key (not
 * built here, or not in the registry).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pactown/build.h"
#include "pactown/clock.h"
#include "pactown/store.h"
#include "pactown/index.h"
#include "pactown/key.h"
#include "pactown/oci.h"
#include "pactown/proc.h"
#include "pactown/registry.h"

enum { X_OK_ = 0, X_FAIL = 1, X_USAGE = 2, X_NONE = 8 };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pactown-registry fetch --store DIR --key KEY --python PY REGISTRY-OPTIONS\n"
            "       pactown-registry push --cache-dir DIR --key KEY REGISTRY-OPTIONS\n"
            "       pactown-registry ls [--json] REGISTRY-OPTIONS\n"
            "       pactown-registry show KEY REGISTRY-OPTIONS\n"
            "REGISTRY-OPTIONS: --registry URL [--registry-auth FILE] [--registry-timeout SECONDS]\n"
            "Fetches a venv (as pactown-build's first step), pushes one built here, lists the venvs of a\n"
            "registry, or prints one's config (JSON).\n"
            "Started by pactownfs and pactown cache; see docs/REGISTRY.md.\n"
            "Exit: 0 done, 1 failed, 2 usage, 3 disk full (fetch), 8 no such key.\n");
}

struct args {
    const char *cache_dir, *key, *registry, *auth, *store, *python;
    long timeout;
    bool json;
};

static int mark_pushed(pt_entry *e, void *arg)
{
    int64_t now = pt_wall_s();
    if (*(int *)arg == 0)
        e->pushed_at = now;
    else
        e->push_failed_at = now;
    return 0;
}

static int do_push(pt_oci *c, const struct args *a)
{
    if (!a->cache_dir || !a->key || !pt_key_is_valid(a->key)) {
        usage(stderr);
        return X_USAGE;
    }
    char dir[4300], store[4200], tmp[4200], idxdir[4200];
    snprintf(store, sizeof store, "%.4000s/store", a->cache_dir);
    snprintf(dir, sizeof dir, "%s/%s", store, a->key);
    snprintf(tmp, sizeof tmp, "%s/tmp", a->cache_dir);
    snprintf(idxdir, sizeof idxdir, "%s/index", a->cache_dir);
    pt_error err = { 0 };
    pt_index *idx = NULL;
    if (pt_index_open(idxdir, &idx, &err) != 0) {
        fprintf(stderr, "pactown-registry: %s\n", err.msg);
        return X_FAIL;
    }
    char *spec = NULL;
    size_t len = 0;
    pt_entry e;
    if (pt_index_entry(idx, a->key, &e) != 0 || e.state != PT_STATE_READY || pt_index_spec(idx, a->key, &spec, &len) != 0) {
        fprintf(stderr, "pactown-registry: push: %s is not built here\n", a->key);
        pt_index_close(idx);
        return X_NONE;
    }
    /* a lease while the venv is read: never evicted under the pack */
    pid_t me = getpid();
    pt_lease lease = { .since = pt_wall_s() };
    snprintf(lease.holder, sizeof lease.holder, "push");
    pt_proc_start_time(me, &lease.pid_start);
    int rc = pt_index_lease_add(idx, a->key, me, &lease);
    if (rc == 0 && (pt_index_entry(idx, a->key, &e) != 0 || e.state != PT_STATE_READY))
        rc = -ENOENT; /* evicted before the lease */
    char interp[4200] = "", link[4400];
    snprintf(link, sizeof link, "%s/bin/python", dir);
    ssize_t n = rc ? -1 : readlink(link, interp, sizeof interp - 1);
    if (rc == 0 && n <= 0)
        rc = pt_error_set(&err, -ENOENT, 0, "%s: not a symlink to the interpreter", link);
    if (rc == 0)
        interp[n] = '\0';
    pt_venv_meta m = { .key = a->key, .canonical = spec, .interpreter = interp, .store = store,
                       .build_ms = e.build_ms, .bytes = e.bytes, .files = e.files, .built_at = e.built_at };
    pt_push_result r = { 0 };
    uint64_t t0 = pt_mono_ns();
    if (rc == 0) {
        printf("pactown-registry: pushing %s to %s\n", a->key, pt_oci_name(c));
        fflush(stdout);
        rc = pt_registry_push(c, dir, tmp, &m, &r, &err);
    } else if (!err.msg[0]) {
        pt_error_set(&err, rc, 0, "%s: not built here (evicted?)", a->key);
    }
    const char *counter[] = { rc ? "push_failures" : "pushed", NULL };
    pt_index_update(idx, a->key, mark_pushed, &rc, counter);
    pt_index_lease_del(idx, a->key, me);
    pt_index_close(idx);
    free(spec);
    if (rc) {
        printf("pactown-registry: push of %s FAILED: %s\n", a->key, err.msg);
        fprintf(stderr, "pactown-registry: push of %s failed: %s\n", a->key, err.msg);
        return X_FAIL;
    }
    printf("pactown-registry: pushed %s to %s in %.3f s: %u blobs, %u sent (%llu bytes), %u already there; "
           "%llu bytes in all\n", a->key, pt_oci_name(c), (double)(pt_mono_ns() - t0) / 1e9, r.layers, r.uploaded,
           (unsigned long long)r.bytes_uploaded, r.layers - r.uploaded, (unsigned long long)r.bytes_total);
    return X_OK_;
}

static void fetch_progress(void *ctx, const char *title, uint64_t bytes, unsigned done, unsigned total)
{
    (void)ctx;
    printf("pactown-build: layer %u/%u %s (%.1f MB)\n", done, total, title, (double)bytes / 1e6);
    fflush(stdout);
}

/* The venv tagged key into <store>/<key> (which the builder's writable view
 * lets us write), sealed; its lines are the build log's. */
static int do_fetch(pt_oci *c, const struct args *a)
{
    if (!a->store || !a->key || !pt_key_is_valid(a->key) || !a->python) {
        usage(stderr);
        return X_USAGE;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%.4000s/%s", a->store, a->key);
    uint64_t t0 = pt_mono_ns();
    pt_error err = { 0 };
    pt_fetch_result r;
    printf("pactown-build: looking for %s in the registry %s\n", a->key, pt_oci_name(c));
    fflush(stdout);
    int rc = pt_store_remove(a->store, a->key); /* leftovers of an interrupted build or pull */
    if (rc)
        pt_error_set(&err, rc, 0, "%s: cannot remove the leftover directory: %s", dir, strerror(-rc));
    if (rc == 0)
        rc = pt_registry_fetch(c, a->key, a->python, a->store, dir, a->store, fetch_progress, NULL, &r, &err);
    if (rc == 0)
        rc = pt_build_seal(dir, &err);
    if (rc == 0) {
        printf("pactown-build: pulled %s from %s in %.3f s (%u layers, %llu bytes, %llu files; download %.3f s, "
               "unpack %.3f s, each summed over the threads)\n", a->key, pt_oci_name(c),
               (double)(pt_mono_ns() - t0) / 1e9, r.layers, (unsigned long long)r.bytes, (unsigned long long)r.files,
               (double)r.download_ms / 1e3, (double)r.unpack_ms / 1e3);
        return X_OK_;
    }
    if (rc == -ENOENT && strstr(err.msg, ": HTTP 404")) { /* no such tag: not a failure */
        printf("pactown-build: registry: %s is not in %s; building it here\n", a->key, pt_oci_name(c));
        return X_NONE;
    }
    printf("pactown-build: registry: pull FAILED: %s; building it here\n", err.msg);
    if (pt_store_remove(a->store, a->key) != 0)
        printf("pactown-build: warning: %s: removing what the pull unpacked failed\n", dir);
    return rc == -ENOSPC || rc == -EDQUOT ? 3 : X_FAIL;
}

static uint64_t layers_bytes(json_t *man)
{
    uint64_t b = 0;
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(man, "layers"), i, l)
        b += (uint64_t)json_integer_value(json_object_get(l, "size"));
    return b;
}

static int do_ls(pt_oci *c, const struct args *a)
{
    pt_error err = { 0 };
    char **tags = NULL;
    size_t n = 0;
    if (pt_oci_tags(c, &tags, &n, &err) != 0) {
        fprintf(stderr, "pactown-registry: ls: %s\n", err.msg);
        return X_FAIL;
    }
    json_t *out = json_array();
    if (!a->json)
        printf("%-32s  %10s  %6s  %-8s  %s\n", "KEY", "SIZE", "LAYERS", "PYTHON", "REQUIREMENTS");
    int rc = X_OK_;
    for (size_t i = 0; i < n; i++) {
        if (!pt_key_is_valid(tags[i]))
            continue; /* not a venv's tag */
        json_t *man, *cfg;
        pt_error e2 = { 0 };
        if (pt_registry_describe(c, tags[i], &man, &cfg, &e2) != 0) {
            fprintf(stderr, "pactown-registry: %s: %s\n", tags[i], e2.msg);
            rc = X_FAIL;
            continue;
        }
        const char *canon = json_string_value(json_object_get(cfg, "canonical"));
        const char *ver = json_string_value(json_object_get(json_object_get(cfg, "interpreter"), "version"));
        const char *reqs = NULL;
        pt_canonical_parse(canon ? canon : "", canon ? strlen(canon) : 0, NULL, &reqs, NULL);
        char summary[200] = "";
        size_t k = 0;
        for (const char *p = reqs; p && *p && k + 2 < sizeof summary; p++)
            summary[k++] = *p == '\n' ? (p[1] ? ' ' : '\0') : *p;
        summary[k] = '\0';
        uint64_t bytes = layers_bytes(man);
        size_t nl = json_array_size(json_object_get(man, "layers"));
        if (a->json) {
            json_array_append_new(out, json_pack("{s:s, s:I, s:I, s:s, s:s, s:O}", "key", tags[i], "bytes",
                                                 (json_int_t)bytes, "layers", (json_int_t)nl, "python", ver ? ver : "",
                                                 "canonical", canon ? canon : "", "build", json_object_get(cfg, "build")));
        } else {
            printf("%-32s  %10llu  %6zu  %-8s  %s\n", tags[i], (unsigned long long)bytes, nl, ver ? ver : "?", summary);
        }
        json_decref(man);
        json_decref(cfg);
    }
    if (a->json) {
        char *s = json_dumps(out, JSON_INDENT(2));
        if (s)
            puts(s);
        free(s);
    }
    json_decref(out);
    pt_oci_tags_free(tags, n);
    return rc;
}

static int do_show(pt_oci *c, const struct args *a)
{
    if (!a->key || !pt_key_is_valid(a->key)) {
        usage(stderr);
        return X_USAGE;
    }
    pt_error err = { 0 };
    json_t *man, *cfg;
    int rc = pt_registry_describe(c, a->key, &man, &cfg, &err);
    if (rc) {
        fprintf(stderr, "pactown-registry: %s: %s\n", a->key, rc == -ENOENT ? "not in the registry" : err.msg);
        return rc == -ENOENT ? X_NONE : X_FAIL;
    }
    json_object_set_new(cfg, "registry_bytes", json_integer((json_int_t)layers_bytes(man)));
    char *s = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s)
        puts(s);
    free(s);
    json_decref(man);
    json_decref(cfg);
    return X_OK_;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? X_USAGE : X_OK_;
    }
    const char *cmd = argv[1];
    struct args a = { .timeout = 10 };
    enum { O_CACHE = 256, O_KEY, O_REG, O_AUTH, O_TIMEOUT, O_JSON, O_HELP, O_STORE, O_PY };
    static const struct option opts[] = {
        { "store", required_argument, NULL, O_STORE }, { "python", required_argument, NULL, O_PY },
        { "cache-dir", required_argument, NULL, O_CACHE }, { "key", required_argument, NULL, O_KEY },
        { "registry", required_argument, NULL, O_REG }, { "registry-auth", required_argument, NULL, O_AUTH },
        { "registry-timeout", required_argument, NULL, O_TIMEOUT }, { "json", no_argument, NULL, O_JSON },
        { "help", no_argument, NULL, O_HELP }, { 0 } };
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_CACHE: a.cache_dir = optarg; break;
        case O_KEY: a.key = optarg; break;
        case O_REG: a.registry = optarg; break;
        case O_AUTH: a.auth = optarg; break;
        case O_TIMEOUT: {
            char *end;
            a.timeout = strtol(optarg, &end, 10);
            if (*end || a.timeout < 1) {
                fprintf(stderr, "pactown-registry: --registry-timeout %s: expected seconds (>= 1)\n", optarg);
                return X_USAGE;
            }
            break;
        }
        case O_JSON: a.json = true; break;
        case O_STORE: a.store = optarg; break;
        case O_PY: a.python = optarg; break;
        case O_HELP: usage(stdout); return X_OK_;
        default: usage(stderr); return X_USAGE;
        }
    }
    if (strcmp(cmd, "show") == 0 && optind < argc && !a.key)
        a.key = argv[optind++];
    if (optind != argc || !a.registry || !*a.registry) {
        usage(stderr);
        return X_USAGE;
    }
    pt_error err = { 0 };
    pt_oci *c = NULL;
    if (pt_oci_open(a.registry, a.auth, a.timeout, &c, &err) != 0) {
        if (strcmp(cmd, "fetch") == 0) /* the build log's line */
            printf("pactown-build: registry: pull FAILED: %s; building it here\n", err.msg);
        else
            fprintf(stderr, "pactown-registry: %s\n", err.msg);
        return X_FAIL;
    }
    int rc;
    if (strcmp(cmd, "fetch") == 0)
        rc = do_fetch(c, &a);
    else if (strcmp(cmd, "push") == 0)
        rc = do_push(c, &a);
    else if (strcmp(cmd, "ls") == 0)
        rc = do_ls(c, &a);
    else if (strcmp(cmd, "show") == 0)
        rc = do_show(c, &a);
    else {
        usage(stderr);
        rc = X_USAGE;
    }
    pt_oci_close(c);
    return rc;
}
