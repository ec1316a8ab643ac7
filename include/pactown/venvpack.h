/* pactown/venvpack.h — a built venv as OCI layers, and back (libarchive:
 * POSIX tar, pax where a name needs it, compressed with zstd).
 *
 * Layers. One per installed distribution: the files its
 * `<name>-<version>.dist-info/RECORD` lists under site-packages (PEP 376,
 * PEP 627), their bytecode (`__pycache__/<stem>.<tag>[.opt-N].pyc`) and the
 * directories above them, without `REQUESTED` (which says only whether
 * this venv asked for it by name). Those files are the same bytes in every
 * venv that installs the same wheel, so venvs that share a distribution
 * share its blob in the registry and on the wire. Then one layer `venv`
 * with everything else (pyvenv.cfg, bin/ with its absolute shebangs, the
 * scripts a RECORD lists outside site-packages, files no RECORD lists).
 *
 * Reproducible: entries sorted by path (bytes), every mtime
 * PT_PACK_MTIME, owner 0:0 with no names, permission bits r/x only (the
 * store is read-only), no setuid, setgid or sticky bit; regular files,
 * directories and symlinks only. A timestamp `.pyc` (PEP 552 flags 0) whose
 * header matches its source's real mtime and size is written with the
 * header's mtime set to PT_PACK_MTIME, so it stays valid for the source as
 * unpacked.
 *
 * Conventions: 0 or -errno, err naming the path and the reason.
 */
#ifndef PACTOWN_VENVPACK_H
#define PACTOWN_VENVPACK_H

#include <stdint.h>
#include <stddef.h>

#include "pactown/error.h"
#include "pactown/oci.h"

/* 1980-01-01T00:00:00Z, the earliest time a zip (a wheel) can hold */
#define PT_PACK_MTIME 315532800

#define PT_LAYER_MEDIA_TYPE "application/vnd.oci.image.layer.v1.tar+zstd"

typedef struct pt_layer {
    char name[160];                 /* "fastapi-0.110.0" (the dist-info's stem) or "venv" */
    char digest[PT_DIGEST_LEN + 1]; /* of the compressed blob */
    uint64_t size;                  /* compressed bytes */
    uint64_t files;                 /* regular files in it */
    uint64_t bytes;                 /* their bytes, uncompressed */
    int fd;                         /* the blob (an unnamed O_TMPFILE), -1 once closed */
} pt_layer;

/* Pack the venv at dir (absolute) into layers, each blob an unnamed file in
 * tmpdir (O_TMPFILE: nothing is left behind by a kill). *layers: malloc'd,
 * *n of them, the distributions' in name order and `venv` last; free with
 * pt_layers_free. Errors: -errno of reading the venv or writing tmpdir,
 * -ENOENT no site-packages, -EPROTO libarchive's. */
int pt_venv_pack(const char *dir, const char *tmpdir, pt_layer **layers, size_t *n, pt_error *err);
void pt_layers_free(pt_layer *layers, size_t n);

/* What pt_layer_unpack accepts; updated across the layers of one venv,
 * which may be unpacked by several threads at once (the counts are atomic). */
typedef struct pt_unpack {
    const char *interpreter; /* the one absolute symlink target allowed, at bin/python* */
    uint64_t max_bytes;      /* regular files' bytes in all, at most */
    uint64_t max_entries;    /* entries of every kind (an inode each), at most; 0: PT_UNPACK_MAX_ENTRIES */
    _Atomic uint64_t files, bytes, entries; /* so far */
} pt_unpack;

/* 4 million regular files, and as many directories and symlinks */
#define PT_UNPACK_MAX_ENTRIES 8000000u

/* Unpack the tar+zstd blob in fd (from offset 0) beneath the directory
 * rootfd. Refused with -EPERM, err naming the entry, and nothing more
 * written: a path that is absolute, has a ".." or empty component, a
 * control byte, or passes through a symlink (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, as the sandbox writer, pactown/sandbox.h); an entry
 * that is not a regular file, directory or symlink (hard links and devices
 * included); a setuid, setgid or sticky bit; a symlink whose target is
 * absolute (but the interpreter's at bin/python*) or leaves the root; a
 * second entry at a file's or symlink's path; more than max_bytes, or more
 * than max_entries entries of any kind (directories and symlinks are inodes too).
 * -EBADMSG: the archive is truncated or not tar+zstd. What was written is
 * the caller's to remove. Files are created with the archive's r/x bits
 * (and u+r) less the umask (pt_registry_fetch sets it to 0), and its mtime.
 * Thread-safe for distinct fds: layers of one venv may be unpacked at once
 * (their directories are created by whichever comes first). */
int pt_layer_unpack(int fd, int rootfd, pt_unpack *u, pt_error *err);

#endif
