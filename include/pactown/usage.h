/* pactown/usage.h — the disk a venv and the store really take.
 *
 * Venvs built with the store's uv cache (pactown/uvcache.h) share files:
 * one inode, linked once from the cache and once from each venv that holds
 * it. So a venv has two sizes: its apparent size (st_size of its files, as
 * `du --apparent-size` counts it) and the disk it holds alone, which
 * evicting it frees (with the prune that follows: pt_uv_cache_prune): the
 * st_blocks of its directories and of its files that no other venv links
 * (st_nlink 1, or 2 when the other link is the cache's). And the store's
 * total is each inode counted once, as du(1) counts hard links.
 * Disk figures are st_blocks * 512 bytes (stat(2)).
 */
#ifndef PACTOWN_USAGE_H
#define PACTOWN_USAGE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct pt_venv_usage {
    uint64_t apparent_bytes; /* st_size of its regular files */
    uint64_t files;          /* regular files */
    uint64_t alone_bytes;    /* disk of its directories and of the files no other venv links */
    uint64_t shared_files;   /* regular files another venv links too */
} pt_venv_usage;

/* Walk the venv at dir (symlinks not followed, one filesystem). Returns 0
 * or -errno. */
int pt_venv_usage_of(const char *dir, pt_venv_usage *out);

typedef struct pt_store_usage {
    uint64_t disk_bytes;     /* the whole store, each inode once */
    uint64_t cache_bytes;    /* of which the uv cache's own: its directories and files no venv links */
    uint64_t shared_files;   /* files of the uv cache that venvs link too */
} pt_store_usage;

/* Walk the store at dir, its uv cache <dir>/.uv included, in one pass;
 * each_venv (may be NULL) gets each top-level directory not starting with
 * '.' (the venvs, by key) with its own figures, as pt_venv_usage_of gives
 * them. Returns 0 or -errno. */
int pt_store_usage_of(const char *dir, pt_store_usage *out,
                      void (*each_venv)(const char *name, const pt_venv_usage *u, void *arg), void *arg);

#endif
