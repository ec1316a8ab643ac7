/* pactown/registry.h — venvs shared through an OCI registry: the artifact,
 * its push after a build and its fetch before one (docs/REGISTRY.md).
 *
 * The artifact of a venv is an OCI image manifest (OCI image-spec
 * manifest.md, with the 1.1 `artifactType`) tagged with the venv's key:
 *   artifactType  PT_ARTIFACT_TYPE
 *   config        PT_CONFIG_MEDIA_TYPE: JSON with the set's canonical text,
 *                 the interpreter (path, implementation, version, platform),
 *                 the store path and the build's figures
 *   layers        PT_LAYER_MEDIA_TYPE, one per distribution, then `venv`
 *                 (pactown/venvpack.h), each with its name as the
 *                 annotation org.opencontainers.image.title
 * A venv's files hold absolute paths (shebangs, pyvenv.cfg, bin/python), so
 * a host uses an artifact only when its interpreter path and store path are
 * the ones in the config.
 */
#ifndef PACTOWN_REGISTRY_H
#define PACTOWN_REGISTRY_H

#include <jansson.h>
#include <stdint.h>

#include "pactown/error.h"
#include "pactown/oci.h"

#define PT_ARTIFACT_TYPE "application/vnd.pactown.venv.v1"
#define PT_CONFIG_MEDIA_TYPE "application/vnd.pactown.venv.config.v1+json"

/* What the config says of a venv, and what a host checks. */
typedef struct pt_venv_meta {
    const char *key;          /* 32 hex digits */
    const char *canonical;    /* the set's canonical text (pactown/key.h) */
    const char *interpreter;  /* the real path of the venv's base interpreter */
    const char *store;        /* the store the venv was built in, absolute */
    uint64_t build_ms, bytes, files;
    int64_t built_at;         /* epoch seconds */
} pt_venv_meta;

typedef struct pt_push_result {
    unsigned layers;          /* blobs of the artifact, the config included */
    unsigned uploaded;        /* of them sent; the others were in the registry already */
    uint64_t bytes_uploaded;  /* of the blobs sent */
    uint64_t bytes_total;     /* of every blob */
    uint64_t ms;
} pt_push_result;

/* Pack the sealed venv at dir (pt_venv_pack, blobs in tmpdir) and push it
 * tagged m->key: blobs the registry has already are not sent (HEAD first),
 * the manifest last, so the tag never names a blob that is not there.
 * r: may be NULL. 0 or -errno (pactown/oci.h, pactown/venvpack.h). */
int pt_registry_push(pt_oci *c, const char *dir, const char *tmpdir, const pt_venv_meta *m, pt_push_result *r,
                     pt_error *err);

/* Progress of a fetch: called (from the worker threads, one call at a
 * time) after each layer is unpacked, with its title, its compressed
 * bytes, how many layers are done and how many there are. */
typedef void (*pt_fetch_progress_fn)(void *ctx, const char *title, uint64_t bytes, unsigned done, unsigned total);

typedef struct pt_fetch_result {
    unsigned layers;
    uint64_t bytes;           /* downloaded */
    uint64_t files;           /* unpacked */
    uint64_t ms;
    uint64_t download_ms, unpack_ms; /* of ms */
} pt_fetch_result;

/* Fetch the artifact tagged key into dir (which must not exist; created
 * 0755), with every blob's digest and size checked before it is unpacked
 * (pt_layer_unpack's rules) and the config checked against this host:
 * its key, that the canonical text hashes to it, interpreter and store.
 * Blobs are downloaded into unnamed files: in memory (memfd) up to 64 MiB,
 * larger ones in tmpdir (O_TMPFILE). What was unpacked is
 * left for the caller to remove on failure. Errors: -ENOENT no such tag;
 * -ESTALE an artifact for another host (err names the difference);
 * -EBADMSG a digest, size or archive that does not match; -EPERM a hostile
 * entry; -EPROTO a manifest or config of another shape; the transport's
 * (pactown/oci.h). progress (may be NULL) is told of each layer done, with ctx. */
int pt_registry_fetch(pt_oci *c, const char *key, const char *interpreter, const char *store, const char *dir,
                      const char *tmpdir, pt_fetch_progress_fn progress, void *ctx, pt_fetch_result *r,
                      pt_error *err);


/* The manifest and config tagged tag, both checked for their shape and
 * digests (not against a host): *manifest and *config owned by the caller
 * (json_decref). For `pactown cache ls --remote` and `pull`. */
int pt_registry_describe(pt_oci *c, const char *tag, json_t **manifest, json_t **config, pt_error *err);

#endif
