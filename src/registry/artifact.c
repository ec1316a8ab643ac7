/* artifact.c — a venv's OCI artifact: push after a build, fetch before one,
 * describe for listings (pactown/registry.h). */
#include "pactown/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/key.h"
#include "pactown/venvpack.h"

#define MAX_LAYERS 4096
#define MAX_LAYER_BYTES ((uint64_t)16 << 30)
#define MAX_VENV_BYTES ((uint64_t)64 << 30)
#define TITLE "org.opencontainers.image.title"

static json_t *descriptor(const char *media_type, const char *digest, uint64_t size, const char *title)
{
    json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", digest, "size", (json_int_t)size);
    if (d && title)
        json_object_set_new(d, "annotations", json_pack("{s:s}", TITLE, title));
    return d;
}

static char *config_text(const pt_venv_meta *m, const pt_layer *layers, size_t n)
{
    pt_python_tag py = { 0 };
    pt_canonical_parse(m->canonical, strlen(m->canonical), &py, NULL, NULL);
    json_t *names = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(names, json_pack("{s:s, s:I, s:I}", "name", layers[i].name, "files",
                                               (json_int_t)layers[i].files, "bytes", (json_int_t)layers[i].bytes));
    json_t *c = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s, s:{s:I, s:I, s:I, s:I}, s:o}",
                          "pactown", 1, "key", m->key, "canonical", m->canonical, "interpreter", "path",
                          m->interpreter, "implementation", py.impl, "version", py.version, "platform", py.platform,
                          "store", m->store, "build", "ms",
                          (json_int_t)m->build_ms, "bytes", (json_int_t)m->bytes, "files", (json_int_t)m->files,
                          "built_at", (json_int_t)m->built_at, "layers", names);
    char *s = c ? json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(c);
    return s;
}

static int push_blob(pt_oci *c, const char *digest, int fd, const char *data, uint64_t size, pt_push_result *r,
                     pt_error *err)
{
    int have = pt_oci_blob_exists(c, digest, err);
    if (have < 0)
        return have;
    r->layers++;
    r->bytes_total += size;
    if (have)
        return 0;
    int rc = fd >= 0 ? pt_oci_blob_put(c, digest, fd, size, err) : pt_oci_blob_put_mem(c, digest, data, size, err);
    if (rc == 0) {
        r->uploaded++;
        r->bytes_uploaded += size;
    }
    return rc;
}

int pt_registry_push(pt_oci *c, const char *dir, const char *tmpdir, const pt_venv_meta *m, pt_push_result *res,
                     pt_error *err)
{
    pt_push_result local = { 0 };
    pt_push_result *r = res ? res : &local;
    memset(r, 0, sizeof *r);
    uint64_t t0 = pt_mono_ns();
    pt_layer *layers = NULL;
    size_t n = 0;
    int rc = pt_venv_pack(dir, tmpdir, &layers, &n, err);
    char *config = rc ? NULL : config_text(m, layers, n);
    if (rc == 0 && !config)
        rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
    char cdigest[PT_DIGEST_LEN + 1];
    if (rc == 0) {
        pt_sha256_digest(config, strlen(config), cdigest);
        rc = push_blob(c, cdigest, -1, config, strlen(config), r, err);
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = push_blob(c, layers[i].digest, layers[i].fd, NULL, layers[i].size, r, err);
    if (rc == 0) {
        json_t *ls = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(ls, descriptor(PT_LAYER_MEDIA_TYPE, layers[i].digest, layers[i].size, layers[i].name));
        char created[32];
        time_t t = (time_t)m->built_at;
        struct tm tm;
        strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        json_t *man = json_pack("{s:i, s:s, s:s, s:o, s:o, s:{s:s, s:s}}", "schemaVersion", 2, "mediaType",
                                "application/vnd.oci.image.manifest.v1+json", "artifactType", PT_ARTIFACT_TYPE,
                                "config", descriptor(PT_CONFIG_MEDIA_TYPE, cdigest, strlen(config), NULL), "layers", ls,
                                "annotations", "org.opencontainers.image.created", created, "dev.pactown.key", m->key);
        char *body = man ? json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(man);
        rc = body ? pt_oci_manifest_put(c, m->key, body, strlen(body), err) : pt_error_set(err, -ENOMEM, 0, "out of memory");
        free(body);
    }
    free(config);
    pt_layers_free(layers, n);
    r->ms = (pt_mono_ns() - t0) / 1000000;
    return rc;
}

/* ---- reading an artifact ---- */

static int check_descriptor(pt_oci *c, json_t *d, const char *want_type, uint64_t max, const char **digest,
                            uint64_t *size, pt_error *err)
{
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    *digest = json_string_value(json_object_get(d, "digest"));
    json_t *sz = json_object_get(d, "size");
    char q[PT_QUOTE_CAP];
    if (!json_is_object(d) || !mt || strcmp(mt, want_type) != 0)
        return pt_error_set(err, -EPROTO, 0, "%s: a descriptor of type %s, expected %s", pt_oci_name(c),
                            mt ? pt_quote(q, sizeof q, mt, strlen(mt)) : "(none)", want_type);
    if (!pt_digest_valid(*digest))
        return pt_error_set(err, -EPROTO, 0, "%s: a descriptor without a sha256 digest", pt_oci_name(c));
    if (!json_is_integer(sz) || json_integer_value(sz) < 0 || (uint64_t)json_integer_value(sz) > max)
        return pt_error_set(err, -EPROTO, 0, "%s: blob %s: a size that is not 0..%llu", pt_oci_name(c), *digest,
                            (unsigned long long)max);
    *size = (uint64_t)json_integer_value(sz);
    return 0;
}

int pt_registry_describe(pt_oci *c, const char *tag, json_t **manifest, json_t **config, pt_error *err)
{
    *manifest = *config = NULL;
    char *body = NULL;
    size_t len = 0;
    int rc = pt_oci_manifest_get(c, tag, &body, &len, NULL, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *m = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    free(body);
    if (!m)
        return pt_error_set(err, -EPROTO, 0, "%s: manifest %s is not JSON: %s", pt_oci_name(c), tag, je.text);
    const char *at = json_string_value(json_object_get(m, "artifactType"));
    char q[PT_QUOTE_CAP];
    json_t *layers = json_object_get(m, "layers");
    if (json_integer_value(json_object_get(m, "schemaVersion")) != 2 || !at || strcmp(at, PT_ARTIFACT_TYPE) != 0)
        rc = pt_error_set(err, -EPROTO, 0, "%s: %s is not a pactown venv (artifactType %s)", pt_oci_name(c), tag,
                          at ? pt_quote(q, sizeof q, at, strlen(at)) : "none");
    else if (!json_is_array(layers) || json_array_size(layers) == 0 || json_array_size(layers) > MAX_LAYERS)
        rc = pt_error_set(err, -EPROTO, 0, "%s: %s: no layers, or more than %d", pt_oci_name(c), tag, MAX_LAYERS);
    const char *digest;
    uint64_t size;
    size_t i;
    json_t *l;
    json_array_foreach(rc ? NULL : layers, i, l) {
        if ((rc = check_descriptor(c, l, PT_LAYER_MEDIA_TYPE, MAX_LAYER_BYTES, &digest, &size, err)) != 0)
            break;
    }
    char *text = NULL;
    if (rc == 0)
        rc = check_descriptor(c, json_object_get(m, "config"), PT_CONFIG_MEDIA_TYPE, 1u << 22, &digest, &size, err);
    if (rc == 0 && (rc = pt_oci_blob_get_mem(c, digest, size, &text, err)) == -ENOENT)
        rc = -EBADMSG; /* the tag is there, its config is not: not "no such tag" */
    json_t *cfg = rc == 0 ? json_loads(text, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (rc == 0 && !json_is_object(cfg))
        rc = pt_error_set(err, -EPROTO, 0, "%s: the config of %s is not a JSON object", pt_oci_name(c), tag);
    free(text);
    if (rc) {
        json_decref(m);
        json_decref(cfg);
        return rc;
    }
    *manifest = m;
    *config = cfg;
    return 0;
}

/* The config is for key and this host, or -ESTALE / -EPROTO naming why not. */
static int check_config(pt_oci *c, json_t *cfg, const char *key, const char *interpreter, const char *store,
                        pt_error *err)
{
    const char *k = json_string_value(json_object_get(cfg, "key"));
    const char *canon = json_string_value(json_object_get(cfg, "canonical"));
    json_t *in = json_object_get(cfg, "interpreter");
    const char *ipath = json_string_value(json_object_get(in, "path"));
    const char *iver = json_string_value(json_object_get(in, "version"));
    const char *st = json_string_value(json_object_get(cfg, "store"));
    if (json_integer_value(json_object_get(cfg, "pactown")) != 1 || !k || !canon || !ipath || !iver || !st)
        return pt_error_set(err, -EPROTO, 0, "%s: the config of %s lacks pactown 1, key, canonical, interpreter or store",
                            pt_oci_name(c), key);
    char hex[PT_KEY_HEX + 1];
    pt_key_hex(canon, strlen(canon), hex);
    if (strcmp(k, key) != 0 || strcmp(hex, key) != 0)
        return pt_error_set(err, -EBADMSG, 0, "%s: the artifact tagged %s is of another set (its canonical text hashes to %s)",
                            pt_oci_name(c), key, hex);
    pt_python_tag py;
    /* the registry's text is quoted (pt_quote): it can neither break a log line nor pass for another */
    char q[PT_QUOTE_CAP];
    if (pt_canonical_parse(canon, strlen(canon), &py, NULL, NULL) != 0 || strcmp(py.version, iver) != 0)
        return pt_error_set(err, -EPROTO, 0, "%s: the config of %s names python %s, its set another", pt_oci_name(c), key,
                            pt_quote(q, sizeof q, iver, strlen(iver)));
    if (strcmp(ipath, interpreter) != 0)
        return pt_error_set(err, -ESTALE, 0, "%s: %s was built for the interpreter %s, this host's is %s", pt_oci_name(c),
                            key, pt_quote(q, sizeof q, ipath, strlen(ipath)), interpreter);
    if (strcmp(st, store) != 0)
        return pt_error_set(err, -ESTALE, 0, "%s: %s was built in the store %s, this host's is %s", pt_oci_name(c), key,
                            pt_quote(q, sizeof q, st, strlen(st)), store);
    return 0;
}

/* After the layers: the venv says it is key's, for this interpreter. */
static int check_venv(const char *dir, const char *key, const char *interpreter, pt_error *err)
{
    char path[4200], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/.pactown-key", dir);
    /* a regular file of the venv, never followed: this runs as root, and a
     * symlink could name a fifo or a device anywhere on the host */
    struct stat kst;
    int rc = lstat(path, &kst) != 0 ? -errno : !S_ISREG(kst.st_mode) ? -EPERM : pt_read_file(path, 256, &text, &len);
    bool ok = rc == 0 && len >= 32 && strncmp(text, key, 32) == 0;
    free(text);
    if (!ok)
        return pt_error_set(err, -EBADMSG, 0, "%s: no .pactown-key naming %s: not a venv of this set", dir, key);
    snprintf(path, sizeof path, "%s/bin/python", dir);
    char target[4096];
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    if (n <= 0 || strcmp(target, interpreter) != 0)
        return pt_error_set(err, -EBADMSG, 0, "%s: bin/python is not a symlink to %s", dir, interpreter);
    snprintf(path, sizeof path, "%s/pyvenv.cfg", dir);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return pt_error_set(err, -EBADMSG, 0, "%s: no pyvenv.cfg", dir);
    return 0;
}

/* The layers, each downloaded and then unpacked by one of a few workers
 * (a download waits on the network; an unpack is mostly new inodes, whose
 * allocation is CPU time in the kernel: both overlap). */
struct unpacking {
    pthread_mutex_t mu;
    pthread_cond_t slot_free;
    size_t *order;          /* the layers, largest first (the longest download and unpack start first) */
    pt_fetch_progress_fn progress;
    void *progress_ctx;
    size_t slots, unpacking; /* unpacks allowed at once (the CPUs), running */
    pt_oci *c;
    json_t *layers;
    size_t n, next;         /* the next layer to take */
    bool failed;            /* a layer failed: the others stop */
    int rc;
    pt_error err;           /* the first failure's */
    int rootfd;
    pt_unpack *u;
    const char *tmpdir;
    unsigned layers_done;
    uint64_t bytes;
    _Atomic uint64_t download_ns, unpack_ns;
};

/* Where a layer's blob waits between its download and its unpack: in
 * memory (memfd_create(2)) up to MEMFD_MAX bytes, as most are, else an
 * unnamed file in tmpdir. Measured: the O_TMPFILE on the store's ext4 cost
 * its block allocation and page cache writes. */
#define MEMFD_MAX (64u << 20)

static int blob_file(const char *tmpdir, uint64_t size)
{
    if (size <= MEMFD_MAX) {
        int fd = memfd_create("pactown-layer", MFD_CLOEXEC);
        if (fd >= 0)
            return fd;
    }
    return open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

static void unpacking_fail(struct unpacking *w, int rc, const pt_error *e)
{
    pthread_mutex_lock(&w->mu);
    if (!w->failed) {
        w->failed = true;
        w->rc = rc;
        w->err = *e;
    }
    pthread_mutex_unlock(&w->mu);
}

static void *unpack_worker(void *arg)
{
    struct unpacking *w = arg;
    pt_oci *c = pt_oci_dup(w->c);
    if (!c) {
        pt_error e = { 0 };
        pt_error_set(&e, -ENOMEM, 0, "out of memory");
        unpacking_fail(w, -ENOMEM, &e);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&w->mu);
        size_t i = w->next < w->n ? w->order[w->next] : 0;
        bool stop = w->failed || w->next >= w->n;
        if (!stop)
            w->next++;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        json_t *l = json_array_get(w->layers, i);
        const char *digest = json_string_value(json_object_get(l, "digest"));
        const char *title = json_string_value(json_object_get(json_object_get(l, "annotations"), TITLE));
        uint64_t size = (uint64_t)json_integer_value(json_object_get(l, "size"));
        pt_error e = { 0 };
        int fd = blob_file(w->tmpdir, size);
        int rc = fd < 0 ? pt_error_set(&e, -errno, 0, "%s: a temporary file: %s", w->tmpdir, strerror(errno)) : 0;
        uint64_t t0 = pt_mono_ns();
        if (rc == 0 && (rc = pt_oci_blob_get(c, digest, size, fd, &e)) == -ENOENT)
            rc = -EBADMSG; /* a manifest naming a blob the registry does not have */
        uint64_t t1 = pt_mono_ns();
        atomic_fetch_add(&w->download_ns, t1 - t0);
        if (rc == 0) {
            /* at most one unpack per CPU at a time (slots): the kernel's inode allocation contends */
            pthread_mutex_lock(&w->mu);
            while (w->unpacking >= w->slots)
                pthread_cond_wait(&w->slot_free, &w->mu);
            w->unpacking++;
            pthread_mutex_unlock(&w->mu);
            uint64_t t2 = pt_mono_ns();
            pt_error ue = { 0 };
            if ((rc = pt_layer_unpack(fd, w->rootfd, w->u, &ue)) != 0)
                pt_error_set(&e, rc, 0, "%s: layer %s (%s): %s", pt_oci_name(c), title ? title : "?", digest, ue.msg);
            atomic_fetch_add(&w->unpack_ns, pt_mono_ns() - t2);
            pthread_mutex_lock(&w->mu);
            w->unpacking--;
            pthread_cond_signal(&w->slot_free);
            pthread_mutex_unlock(&w->mu);
        }
        if (fd >= 0)
            close(fd);
        if (rc) {
            unpacking_fail(w, rc, &e);
            break;
        }
        pthread_mutex_lock(&w->mu);
        w->layers_done++;
        w->bytes += size;
        if (w->progress)
            w->progress(w->progress_ctx, title ? title : "?", size, w->layers_done, (unsigned)w->n);
        pthread_mutex_unlock(&w->mu);
    }
    pt_oci_close(c);
    return NULL;
}

static int by_size_desc(const void *a, const void *b, void *layers)
{
    json_int_t x = json_integer_value(json_object_get(json_array_get(layers, *(const size_t *)a), "size"));
    json_int_t y = json_integer_value(json_object_get(json_array_get(layers, *(const size_t *)b), "size"));
    return x < y ? 1 : x > y ? -1 : (*(const size_t *)a > *(const size_t *)b) - (*(const size_t *)a < *(const size_t *)b);
}

static int fetch_layers(pt_oci *c, json_t *layers, int rootfd, pt_unpack *u, const char *tmpdir,
                        pt_fetch_progress_fn progress, void *ctx, pt_fetch_result *r, pt_error *err)
{
    size_t n = json_array_size(layers);
    size_t *order = calloc(n ? n : 1, sizeof *order);
    if (!order)
        return pt_error_set(err, -ENOMEM, 0, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, by_size_desc, layers);
    struct unpacking w = { .mu = PTHREAD_MUTEX_INITIALIZER, .slot_free = PTHREAD_COND_INITIALIZER, .order = order, .progress = progress,
                           .progress_ctx = ctx, .c = c, .layers = layers, .n = n, .rootfd = rootfd,
                           .u = u, .tmpdir = tmpdir };
    /* downloads: 8 at a time (a download waits on the network); unpacks: one per CPU, 4 at most
     * (more contend in the kernel's inode allocation: measured, 4 unpacking on 2 CPUs took 1.1-1.3 s of
     * unpacking where 2 took 0.45 s, and the pull 1.7x as long) */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    w.slots = cpus < 1 ? 1 : cpus > 4 ? 4 : (size_t)cpus;
    size_t nt = 8;
    pthread_t t[8];
    size_t started = 0;
    while (started < nt && started < n && pthread_create(&t[started], NULL, unpack_worker, &w) == 0)
        started++;
    for (size_t i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(order);
    r->layers = w.layers_done;
    r->bytes = w.bytes;
    r->download_ms = atomic_load(&w.download_ns) / 1000000;
    r->unpack_ms = atomic_load(&w.unpack_ns) / 1000000;
    if (n > 0 && started == 0)
        return pt_error_set(err, -EAGAIN, 0, "cannot start a thread to fetch with");
    if (w.failed)
        return pt_error_set(err, w.rc, 0, "%s", w.err.msg);
    return 0;
}

int pt_registry_fetch(pt_oci *c, const char *key, const char *interpreter, const char *store, const char *dir,
                      const char *tmpdir, pt_fetch_progress_fn progress, void *ctx, pt_fetch_result *res,
                      pt_error *err)
{
    pt_fetch_result local = { 0 };
    pt_fetch_result *r = res ? res : &local;
    memset(r, 0, sizeof *r);
    uint64_t t0 = pt_mono_ns();
    json_t *man, *cfg;
    int rc = pt_registry_describe(c, key, &man, &cfg, err);
    if (rc)
        return rc;
    rc = check_config(c, cfg, key, interpreter, store, err);
    int rootfd = -1;
    if (rc == 0 && mkdir(dir, 0755) != 0)
        rc = pt_error_set(err, -errno, 0, "%s: %s", dir, strerror(errno));
    if (rc == 0 && (rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        rc = pt_error_set(err, -errno, 0, "%s: %s", dir, strerror(errno));
    pt_unpack u = { .interpreter = interpreter, .max_bytes = MAX_VENV_BYTES };
    if (rc == 0) {
        mode_t mask = umask(0); /* the files get the archive's modes (process-wide: the threads are joined after) */
        rc = fetch_layers(c, json_object_get(man, "layers"), rootfd, &u, tmpdir, progress, ctx, r, err);
        umask(mask);
    }
    if (rootfd >= 0)
        close(rootfd);
    if (rc == 0)
        rc = check_venv(dir, key, interpreter, err);
    r->files = atomic_load(&u.files);
    r->ms = (pt_mono_ns() - t0) / 1000000;
    json_decref(man);
    json_decref(cfg);
    return rc;
}
