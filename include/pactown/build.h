/* pactown/build.h — build one venv into the store (runs in the builder
 * process, `pactown-build`, which the daemon starts for each build).
 *
 * Steps, each an argument vector run with execve(2), never a shell:
 *   uv:  uv venv --python PY DIR; uv pip install --python DIR/bin/python
 *        --compile-bytecode --link-mode copy -r REQS [--index-url U] [--find-links F]
 *        [--no-index] [--offline]
 *        (copies, not hard links: a venv in the store must share no inode with
 *        the writable uv cache, and the store's read-only bind mount is another
 *        mount, across which links fail anyway)
 *   pip: PY -m venv DIR; DIR/bin/python -m pip install -r REQS [...] (pip
 *        compiles bytecode by default)
 * then the venv is made read-only (chmod a-w) and synced (syncfs(2)).
 * Output goes to the builder's stdout/stderr, which the daemon points at
 * <cache_dir>/logs/<key>.log. On failure the half-built directory is removed.
 */
#ifndef PACTOWN_BUILD_H
#define PACTOWN_BUILD_H

#include <stdbool.h>

#include "pactown/error.h"

typedef struct pt_build_opts {
    const char *store;        /* <cache_dir>/store (absolute) */
    const char *key;          /* 32 hex digits: the venv goes to <store>/<key> */
    const char *python;       /* real interpreter (pt_interp.path) */
    const char *installer;    /* "uv" or "pip" */
    const char *uv;           /* uv executable, when installer is "uv" */
    const char *uv_cache_dir; /* NULL/"" = uv's default */
    const char *requirements; /* requirements file: one canonical requirement per line */
    const char *index_url;    /* NULL/"" = installer default */
    const char *find_links;   /* NULL/"" = none */
    bool no_index;
    bool offline;
} pt_build_opts;

/* Build the venv. Returns 0, or -errno / -ECHILD (an installer step failed)
 * with err saying which step and how it ended. Installs a SIGTERM handler that
 * kills the running step's process group. Single-threaded callers only. */
int pt_build_venv(const pt_build_opts *o, pt_error *err);

#endif
