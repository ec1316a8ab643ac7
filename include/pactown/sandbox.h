/* pactown/sandbox.h — per-service sandbox directories, written without ever
 * following a symlink planted inside them.
 *
 * A sandbox is <sandbox_root>/<service_id>/ holding the files of one README
 * (markpact:file blocks) and a `.venv` symlink into the mounted store.  The
 * files come from untrusted Markdown, so every path is resolved one component
 * at a time beneath the sandbox directory fd with openat2(2)
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS.
 *
 * Conventions: 0 on success, -errno on failure (errno(3)); when err is
 * non-NULL it receives the same code and a reason naming the offending path
 * (err->line stays 0).  Man pages: openat2(2), mkdirat(2), renameat(2),
 * symlinkat(2), unlinkat(2), write(2), fchmod(2).
 */
#ifndef PACTOWN_SANDBOX_H
#define PACTOWN_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pactown/error.h"

/* Longest service id, in bytes (no NUL). */
#define PT_SERVICE_ID_MAX 64

/* True when id matches [A-Za-z0-9][A-Za-z0-9._-]{0,63}: 1..64 bytes, starts
 * with a letter or digit (so never "", ".", ".." or a hidden name), no "/".
 * id may be NULL (false).  Pure function, no errno. */
bool pt_service_id_valid(const char *id);

/* Create root with all missing parents (mkdir -p, mode 0755 before umask),
 * then root/service_id if missing (0755 before umask), and open root/service_id.
 *
 * root: NUL-terminated path, absolute or relative to the cwd; it may contain
 *       symlinks (an administrator chose it).
 * service_id: must satisfy pt_service_id_valid(), else -EINVAL.
 * dirfd: out; on success an O_RDONLY|O_DIRECTORY|O_CLOEXEC fd of the sandbox,
 *        owned by the caller (close(2) it).  Untouched on failure.
 * Errors: -EINVAL (bad id / empty root), -ELOOP (root/service_id is a symlink:
 *   it is opened with openat2 RESOLVE_NO_SYMLINKS and never followed),
 *   -ENOTDIR (a path component is not a directory), -ENOSYS (kernel without
 *   openat2, < 5.6), or any -errno of mkdir(2)/open(2)/openat2(2).
 * Man: mkdir(2), open(2), openat2(2). */
int pt_sandbox_open(const char *root, const char *service_id, int *dirfd, pt_error *err);

/* Write len bytes of data to dirfd/relpath atomically: the content goes to
 * "<name>.pactown-tmp.<pid>" in the same directory (name shortened if the
 * temp name would exceed NAME_MAX), which is then renameat(2)'d over <name>.
 * Missing parent directories are created one component at a time with
 * mkdirat(2) (0755 before umask) and opened with openat2(2)
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS.
 *
 * dirfd: a sandbox directory fd (pt_sandbox_open); not closed.
 * relpath: relative path, '/'-separated.  Rejected with -EINVAL (reason names
 *   the path, control bytes shown as \xNN): NULL or empty, absolute, any ".."
 *   component, any byte < 0x20 or 0x7f, a final component that is empty or
 *   "." (e.g. "a/"), a component longer than NAME_MAX.  Empty and "."
 *   components in the middle ("a//b", "./a") are skipped.
 * data/len: content, written fully (short writes and EINTR are retried);
 *   data may be NULL when len is 0.  Not retained.
 * mode: permission bits of the new file (e.g. 0644); only mode & 0777 is
 *   used and it is applied exactly with fchmod(2), so the umask does not
 *   reduce it.
 * Symlinks: a symlink at any directory component (even dangling) is never
 *   followed -> -ELOOP naming the path prefix; a symlink (or any non-directory)
 *   at the final name is replaced by the rename, its target is not touched.
 *   A pre-existing entry at the temp name is unlinked first (not followed).
 * Errors: -EINVAL, -ELOOP, -ENOTDIR (a component is a regular file),
 *   -EISDIR (the final name is a directory), -ENOSYS (no openat2), or any
 *   -errno of the calls above (-ENOSPC, -EACCES, ...).  On failure the temp
 *   file is removed and the old content (if any) is unchanged; directories
 *   created on the way are left in place.
 * Unchanged: a regular file already at the final name that holds exactly
 *   data (pt_sandbox_file_holds), with mode & 0777, one link and this
 *   process's euid as its owner, is left as it is (nothing is written: a
 *   sandbox prepared again; a rename over a file costs ext4 a flush).
 * Man: openat2(2), mkdirat(2), unlinkat(2), write(2), fchmod(2), renameat(2). */
int pt_sandbox_write_file(int dirfd, const char *relpath, const void *data, size_t len,
                          mode_t mode, pt_error *err);

/* Point dirfd/.venv at target atomically: symlinkat(2) to
 * ".venv.pactown-tmp.<pid>", then renameat(2) over ".venv".  An existing
 * .venv symlink (or other non-directory) is replaced; a running service that
 * resolves .venv sees either the old or the new target, never nothing. A
 * .venv symlink whose text is target already is left as it is.
 *
 * dirfd: a sandbox directory fd; not closed.
 * target: absolute path (starts with '/'), < PATH_MAX bytes, no control
 *   bytes; stored verbatim as the link text, not resolved or checked to exist.
 * Errors: -EINVAL (target NULL/relative/too long/control bytes), -EEXIST
 *   (.venv is a real directory — an old local venv; it is left untouched and
 *   the message says to remove it), or any -errno of symlinkat(2)/renameat(2).
 * Man: symlinkat(2), renameat(2), unlinkat(2), fstatat(2). */
int pt_sandbox_link_venv(int dirfd, const char *target, pt_error *err);

/* Give the sandbox dirfd and everything beneath it but ".pactown" (the
 * runner's own: logs, tests) to uid:gid, never following a symlink, and
 * never a non-directory with more than one link (a hard link is someone
 * else's file too)
 * (fchownat(2) AT_SYMLINK_NOFOLLOW, directories opened O_NOFOLLOW), and make
 * it mode 0700: its user's alone. Errors: -errno of fchownat(2), fchmod(2),
 * -ELOOP (deeper than 64 levels). Man: fchownat(2), openat(2). */
int pt_sandbox_give(int dirfd, uid_t uid, gid_t gid, pt_error *err);

/* Whether the open file fd is a regular file of exactly len bytes that
 * holds data (read with pread(2) from offset 0, in 64 KiB pieces; the file
 * offset is not moved). False on any read error. Man: pread(2), fstat(2). */
bool pt_sandbox_file_holds(int fd, const void *data, size_t len);

#endif
