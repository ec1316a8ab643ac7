/* pactown/interp.h — the Python interpreter that venvs are built with.
 *
 * The configured `python` setting (a name looked up in PATH, or a path) is
 * found (PATH search, no symlink resolved) and probed by running it once:
 * the real executable (sys.executable, then realpath(3): a pyenv shim
 * becomes the binary it starts) and the tag that goes into the cache key:
 * implementation, X.Y.Z version, platform (sys.implementation.name,
 * platform.python_version(), sysconfig.get_platform()).
 *
 * The probe is recorded in the index (meta "interp:daemon") with the
 * identity of what it saw: the found path, where its symlink chain ends and
 * that file's identity (device, inode, size, mtime and ctime in ns), and the
 * real executable's identity. Every use checks those again, which costs a
 * few stat(2) calls and no Python: a re-pointed link or a binary upgraded in
 * place (uv#12000) is probed afresh, so a key always names the interpreter
 * that will really run.
 *
 * One resolution for every client: the daemon resolves `python` through its
 * own PATH and records it; the CLI, for the same `python` setting, uses the
 * daemon's found path instead of its own PATH, so root and another user get
 * the same key for the same dependencies. Without a daemon record the CLI
 * resolves through its own PATH.
 */
#ifndef PACTOWN_INTERP_H
#define PACTOWN_INTERP_H

#include <limits.h>
#include <stdbool.h>

#include "pactown/error.h"
#include "pactown/index.h"
#include "pactown/key.h"

typedef struct pt_interp {
    char path[PATH_MAX];   /* real executable (absolute, symlinks resolved): what venvs are built with */
    char found[PATH_MAX];  /* the setting as found (absolute, symlinks kept): what each use checks */
    pt_python_tag tag;     /* e.g. cpython 3.11.7 linux-x86_64 */
    bool probed;           /* this call ran the interpreter (the record was missing or stale) */
} pt_interp;

enum {
    PT_INTERP_DAEMON = 1,  /* resolve through this process's PATH and record it for every client */
    PT_INTERP_FRESH = 2,   /* probe even if the record is still valid */
};

/* Resolve python to a real interpreter, as above. idx may be NULL (then no
 * record is read or written). flags: PT_INTERP_*. Returns 0, -ENOENT if the
 * interpreter is not found, -EINVAL if its answer is malformed, -errno of
 * running it; err says which. */
int pt_interp_resolve(const char *python, pt_index *idx, int flags, pt_interp *out, pt_error *err);

/* Whether every user may run path: it and each directory above it carry the
 * "others" execute bit (stat(2) modes; ACLs are not read). Returns true, or
 * false with why ("/root is mode 0700") in why (n bytes). */
bool pt_others_can_exec(const char *path, char *why, size_t n);

#endif
