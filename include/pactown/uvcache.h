/* pactown/uvcache.h — the builder's uv cache, inside the store.
 *
 * <store>/.uv is uv's cache (UV_CACHE_DIR) for every uv build, on the same
 * mount as the venvs, so `uv pip install --link-mode hardlink` links each
 * file of an unpacked wheel (uv's archive bucket, archive-v0/<id>/) into
 * every venv that installs it: one inode, however many venvs hold it. Only
 * pactown-build writes it (in its writable view of the store, as root);
 * services see it read-only with the rest of the store, and it is 0700.
 *
 * Locking (flock(2) on the directory): a build holds it shared from its
 * install to the end of its bytecode step; a prune takes it exclusive
 * without waiting (a build in flight puts the prune off), so no wheel is
 * removed while a build links from it. Builds never exclude each other:
 * bytecode is published in an archive whole (src/pyc_share.py), so a uv
 * install walking the archive meanwhile never sees a .pyc being written.
 *
 * Pruning: an unpacked wheel that no venv links any more (every regular
 * file in its archive directory has st_nlink 1) has been unused since the
 * newest ctime among its files (unlink(2) of a link updates the inode's
 * ctime). A distribution whose every archive is unused for at least ttl
 * seconds is removed with `uv cache clean NAME…`, uv's own command, which
 * also drops uv's pointers to those archives (a pointer left behind makes
 * uv fail: "failed to read directory archive-v0/<id>").
 */
#ifndef PACTOWN_UVCACHE_H
#define PACTOWN_UVCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "pactown/error.h"

#define PT_UV_CACHE_NAME ".uv" /* <store>/.uv: hidden from listings and recovery */
#define PT_PYC_STAGING ".pyc-staging-" /* <store>/.pyc-staging-<pid>: a build's bytecode before it is published
                                        * (a killed build's is removed by the daemon's recovery) */

/* Create (0700) and open the cache directory path, and flock(2) it: shared,
 * waiting for a prune to end; or exclusive, without waiting (-EWOULDBLOCK
 * while a build holds it). Returns the directory's descriptor (the lock goes
 * with its close) or -errno, err saying why. */
int pt_uv_cache_open(const char *path, bool exclusive, pt_error *err);

typedef struct pt_prune_result {
    unsigned archives;        /* unpacked wheels looked at */
    unsigned unused;          /* of those, linked by no venv */
    unsigned removed;         /* removed (their distributions were unused for ttl) */
    unsigned names;           /* distributions given to `uv cache clean` */
    uint64_t freed_bytes;     /* disk the removed archives took (st_blocks * 512) */
} pt_prune_result;

/* Prune the cache at path (see above): takes the exclusive lock (or returns
 * -EWOULDBLOCK at once while a build holds the cache: prune later), finds the
 * distributions whose archives are all unused for ttl_seconds or more
 * (0: at once), and runs `UV cache clean --no-config NAME…` (argument
 * vector, never a shell; names are the PEP 503 normalized Name of the
 * METADATA in each archive's *.dist-info directory, the field uv checks
 * against the name it installs a wheel as, and are [a-z0-9-]). An archive
 * that cannot be read whole is kept; its depth is no limit. Call in the
 * store's writable view. now: epoch seconds. Returns 0 or -errno; err says
 * why. A missing cache is nothing to prune (0). */
int pt_uv_cache_prune(const char *path, const char *uv, int64_t ttl_seconds, int64_t now, pt_prune_result *out,
                      pt_error *err);

#endif
