/* pactown/interp.h — the Python interpreter that venvs are built with.
 *
 * The configured `python` setting (a name looked up in PATH, or a path) is
 * resolved to a real executable by running it once: a shell shim such as
 * pyenv's (/root/.pyenv/shims/python3) is replaced by the binary it starts
 * (sys.executable, then realpath(3)). The probe also gives the tag that goes
 * into the cache key: implementation, X.Y.Z version, platform
 * (sys.implementation.name, platform.python_version(), sysconfig.get_platform()).
 */
#ifndef PACTOWN_INTERP_H
#define PACTOWN_INTERP_H

#include <limits.h>
#include <stdbool.h>

#include "pactown/error.h"
#include "pactown/index.h"
#include "pactown/key.h"

typedef struct pt_interp {
    char path[PATH_MAX];   /* real executable (absolute, symlinks resolved) */
    pt_python_tag tag;     /* e.g. cpython 3.11.7 linux-x86_64 */
} pt_interp;

/* Resolve python to a real interpreter. If idx is non-NULL and fresh is
 * false, a probe stored in the index's meta for the same configured string is
 * reused while the real executable's inode, size and mtime are unchanged (so
 * a cache hit runs no Python). A fresh probe (fresh = true, or none stored)
 * runs the interpreter once and stores the result. Returns 0, -ENOENT if the
 * interpreter is not found, -EINVAL if its answer is malformed; err says which. */
int pt_interp_resolve(const char *python, pt_index *idx, bool fresh, pt_interp *out, pt_error *err);

#endif
