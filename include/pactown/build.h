/* pactown/build.h — build one venv into the store (runs in the builder
 * process, `pactown-build`, which the daemon starts for each build).
 *
 * Steps, each an argument vector run with execve(2), never a shell:
 *   uv (the default, uv_cache_dir unset): uv's cache is the store's own,
 *        <store>/.uv (pactown/uvcache.h), locked shared for the build;
 *        uv venv --python PY DIR; uv pip install --python DIR/bin/python
 *        --link-mode hardlink -r REQS [--no-index] [--offline]: every file of
 *        an unpacked wheel is one inode, in the cache and in each venv that
 *        holds it; then the bytecode step: src/pyc_share.py, run by the
 *        venv's base interpreter PY (never DIR/bin/python, which reads a
 *        pyvenv.cfg a wheel may have replaced), compiles each wheel once, in
 *        the cache, and hard-links its .pyc files into the venv (skipped when
 *        every module already has its .pyc: pactown/pycache.h)
 *   uv with uv_cache_dir set (a cache outside the store, another mount):
 *        uv pip install ... --link-mode copy (the venv shares no inode with
 *        a cache the builder does not own), then the same bytecode step,
 *        which compiles every module in the venv (uv's --compile-bytecode
 *        would run DIR/bin/python)
 *   pip: PY -m venv DIR; DIR/bin/python -m pip install -r REQS [...] (pip
 *        compiles bytecode by default)
 * The index URL and find-links go through the environment. Then the script
 * launchers are fixed (pactown/scripts.h), .pactown-key is written, the venv
 * is made read-only (chmod a-w) and synced (syncfs(2)). Output goes to the
 * builder's stdout/stderr, which the daemon points at
 * <cache_dir>/logs/<key>.log. On failure the half-built directory is removed;
 * the files it had linked keep their other links.
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
    const char *uv_cache_dir; /* NULL/"" = the store's own (<store>/.uv: hard links, shared bytecode) */
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

/* Seal a venv complete at dir: read-only (chmod a-w, pt_make_readonly), with
 * the time it took printed. The last step of a build, and of a venv fetched
 * from a registry. Not synced: the daemon commits the venv ready but
 * "unsynced", answers, and then syncs the store (syncfs(2)) and clears the
 * flag (pactown/index.h, pt_entry.unsynced). 0 or -errno (err says which). */
int pt_build_seal(const char *dir, pt_error *err);

#endif
