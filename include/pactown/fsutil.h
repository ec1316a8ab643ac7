/* pactown/fsutil.h — small filesystem helpers over the C library (nftw(3),
 * mkdir(2), open(2)). All return 0 or -errno. */
#ifndef PACTOWN_FSUTIL_H
#define PACTOWN_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* mkdir -p: create path and missing parents with mode; existing dirs are fine. */
int pt_mkdir_p(const char *path, mode_t mode);

/* A directory stream of a copy of the open directory dirfd (which the
 * caller keeps): fdopendir(3) of dup(2). NULL with errno on failure. */
#include <dirent.h>
DIR *pt_opendir_fd(int dirfd);

/* rm -rf: remove path and everything below it, by descriptor (openat(2)
 * O_NOFOLLOW of each directory beneath its parent, unlinkat(2)): a symlink
 * is never followed, even one swapped in for a directory while the removal
 * runs; other filesystems mounted below are not entered (-EXDEV). A missing
 * path is success. Directories without write permission are made writable
 * first. Returns 0 or the first -errno. */
int pt_rm_rf(const char *path);

/* Remove write permission for everyone from every file and dir below path. */
int pt_make_readonly(const char *path);

/* Read a whole file (at most max bytes, else -EFBIG) into a malloc'd
 * NUL-terminated buffer; *len excludes the NUL. Caller frees *out. */
int pt_read_file(const char *path, size_t max, char **out, size_t *len);

/* write(2) all len bytes to fd, retrying short writes and EINTR. Returns 0,
 * -errno, or -EIO if write returns 0. */
int pt_write_all(int fd, const void *data, size_t len);

/* Write data to path atomically (temp file in the same dir + rename(2)). */
int pt_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Find an executable: a name with '/' is taken as is, else searched in $PATH.
 * Writes the path found into out (size n). -ENOENT if none. */
int pt_which(const char *name, char *out, size_t n);

/* A helper program of pactown (pactown-serve, pactown-registry) into out
 * (size n): looked for in each of dirs (NULL-terminated; "" = the directory
 * of this executable, /proc/self/exe; a relative one is relative to that
 * directory), the first executable one wins. Returns 0, -ENOENT (out then
 * names the directory of this executable, for the message), or -errno of
 * readlink(2). */
int pt_find_helper(const char *name, const char *const *dirs, char *out, size_t n);

/* The helper directories of an install, in order: beside the executable,
 * then <libexecdir>/pactown (PACTOWN_HELPER_DIR, set by meson), then
 * ../tools/pactown (the build tree, for the daemon in build/mount). */
extern const char *const pt_helper_dirs[];

/* Mark the directory dir as the top of directory hierarchies for ext4's
 * Orlov allocator (FS_TOPDIR_FL, chattr(1) 'T'; ioctl_iflags(2)): each new
 * directory in it goes to a block group with more free inodes than
 * average, not to dir's own. Measured on this project's machines (ext4
 * without a journal, which skips inodes freed in the last 5-35 s when it
 * allocates, fs/ext4/ialloc.c recently_deleted()): a pulled venv's 879
 * files took 262 ms to create beside a venv removed a moment before, 91 ms
 * with the flag. 0, or -errno; filesystems without the flag (ENOTTY,
 * EOPNOTSUPP, EINVAL) are not an error. */
int pt_dir_spread_subdirs(const char *dir);

/* true if the file starts with the ELF magic (a real binary, not a script). */
bool pt_is_elf(const char *path);

/* openat2(2): open path beneath dirfd with open(2) flags, mode (used with
 * O_CREAT) and RESOLVE_* flags (e.g. RESOLVE_BENEATH: no ".." or symlink
 * out of dirfd, no absolute path).  Retried on EINTR and, up to 16 times, on
 * EAGAIN (a concurrent rename).  Returns the fd or -errno (-EXDEV: the path
 * would leave dirfd; -ENOSYS: kernel < 5.6).  Man: openat2(2). */
int pt_openat2(int dirfd, const char *path, int flags, mode_t mode, unsigned long long resolve);

#endif
