/* pactown/store.h — the store of built venvs, <cache_dir>/store/<key>.
 *
 * The store is shared read-only. When run as root the daemon bind-mounts the
 * store read-only over itself (mount(2) MS_BIND, then MS_REMOUNT|MS_RDONLY),
 * and every writer (builder, removal) runs in a private mount namespace
 * (unshare(2) CLONE_NEWNS) where that bind mount is remounted writable — the
 * way Nix treats /nix/store — so a venv's paths are the same for the builder
 * and for every reader. Without the privilege for that, venvs are protected by
 * file modes only (chmod a-w), and the daemon says so at start-up.
 */
#ifndef PACTOWN_STORE_H
#define PACTOWN_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "pactown/error.h"

/* true if path is a mount point in this process's namespace (proc(5) mountinfo). */
bool pt_is_mountpoint(const char *path);

/* The source field of the topmost mount of type fstype at path (proc(5)
 * mountinfo, escapes undone) into out (n bytes). Returns 0, -ENOENT (none
 * there) or -errno. pactownfs's source is "pactownfs@<cache_dir>". */
int pt_mount_source(const char *path, const char *fstype, char *out, size_t n);

/* Detach every mount stacked on path (umount2(MNT_DETACH)), e.g. a read-only
 * bind left by a daemon that was killed. Returns the number detached, or -errno. */
int pt_unmount_all(const char *path);

/* Detach (umount2(MNT_DETACH)) every mount of type fstype ("fuse.pactown":
 * a FUSE mount with subtype pactown) in this process's mount namespace, as
 * listed in /proc/self/mountinfo (proc(5)). Returns the number detached, or
 * -errno. */
int pt_detach_fstype(const char *fstype);

/* Bind-mount path read-only over itself. Returns 0 or -errno (-EPERM when not
 * privileged); err says which step failed. */
int pt_store_bind_readonly(const char *path, pt_error *err);

/* In the calling (single-threaded) process: enter a private mount namespace
 * and, if path is a read-only bind mount, remount it writable there, and
 * detach the namespace's copies of pactownfs mounts (pt_detach_fstype). Other
 * processes keep seeing the store read-only. Returns 0 or -errno. */
int pt_store_enter_writable(const char *path, pt_error *err);

/* Remove <store>/<key>: rename it aside to <store>/.trash-<key>-<pid>, then
 * delete it, so no reader ever sees a half-removed venv under the key's path.
 * Call from a writable view (pt_store_enter_writable) of a read-only store.
 * A missing directory is success. */
int pt_store_remove(const char *store, const char *name);

#endif
