/* fuzz_unpack.c — libFuzzer target: a layer from a registry (pactown/venvpack.h).
 *
 * The input is the tar stream of a layer; it is compressed with zstd (the
 * fuzzer mutates the archive, not the compression) and unpacked into a fresh
 * directory inside a fresh directory with pt_layer_unpack. Invariants,
 * whatever the archive says:
 *   - nothing appears beside the venv (the outer directory holds "venv" alone);
 *   - nothing in the venv is a device, fifo, socket or hard link, or has a
 *     setuid, setgid or sticky bit;
 *   - every symlink in it is relative and stays inside, or is bin/python* to
 *     the interpreter;
 *   - a refusal is -EPERM or -EBADMSG (or a filesystem's own -errno), with a
 *     reason.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "fuzz_util.h"
#include "pactown/venvpack.h"

#define INTERP "/usr/bin/python3"

static size_t venv_len;

static int check_entry(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)type;
    (void)f;
    FUZZ_CHECK(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode) || S_ISLNK(st->st_mode), "%s: mode %o", path,
               (unsigned)st->st_mode);
    FUZZ_CHECK(!(st->st_mode & (S_ISUID | S_ISGID | S_ISVTX)), "%s: mode %o", path, (unsigned)st->st_mode);
    FUZZ_CHECK(S_ISDIR(st->st_mode) || st->st_nlink == 1, "%s: %lu links", path, (unsigned long)st->st_nlink);
    if (S_ISLNK(st->st_mode)) {
        char t[PATH_MAX];
        ssize_t n = readlink(path, t, sizeof t - 1);
        FUZZ_CHECK(n > 0, "%s: readlink", path);
        t[n] = '\0';
        const char *rel = path + venv_len + 1;
        if (t[0] == '/') {
            FUZZ_CHECK(strcmp(t, INTERP) == 0 && strncmp(rel, "bin/python", 10) == 0, "%s -> %s", rel, t);
        } else {
            int depth = 0;
            for (const char *s = rel; (s = strchr(s, '/')) != NULL; s++)
                depth++;
            for (const char *p = t; *p;) {
                size_t l = strcspn(p, "/");
                if (l == 2 && p[0] == '.' && p[1] == '.')
                    depth--;
                else if (l && !(l == 1 && p[0] == '.'))
                    depth++;
                FUZZ_CHECK(depth >= 0, "%s -> %s leaves the venv", rel, t);
                p += l;
                if (*p)
                    p++;
            }
        }
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)f;
    if (type == FTW_D || type == FTW_DP)
        chmod(path, 0700);
    return remove(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = ZSTD_compressBound(size);
    void *z = malloc(cap);
    size_t zn = ZSTD_compress(z, cap, data, size, 1);
    FUZZ_CHECK(!ZSTD_isError(zn), "ZSTD_compress: %s", ZSTD_getErrorName(zn));
    int fd = memfd_create("layer", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0 && write(fd, z, zn) == (ssize_t)zn, "memfd");
    free(z);
    char outer[] = "/tmp/pt-fuzz-unpack-XXXXXX", venv[64];
    FUZZ_CHECK(mkdtemp(outer) != NULL, "mkdtemp");
    snprintf(venv, sizeof venv, "%s/venv", outer);
    FUZZ_CHECK(mkdir(venv, 0755) == 0, "mkdir");
    int rootfd = open(venv, O_RDONLY | O_DIRECTORY);
    pt_unpack u = { .interpreter = INTERP, .max_bytes = 1 << 24 };
    pt_error err = { 0 };
    mode_t mask = umask(0);
    int rc = pt_layer_unpack(fd, rootfd, &u, &err);
    umask(mask);
    close(rootfd);
    close(fd);
    FUZZ_CHECK(rc == 0 || err.msg[0], "rc %d without a reason", rc);
    FUZZ_CHECK(rc <= 0, "rc %d", rc);
    /* nothing beside the venv */
    DIR *d = opendir(outer);
    FUZZ_CHECK(d != NULL, "opendir %s", outer);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        FUZZ_CHECK(!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, "venv"),
                   "beside the venv: %s", de->d_name);
    closedir(d);
    struct stat st;
    FUZZ_CHECK(lstat(venv, &st) == 0 && S_ISDIR(st.st_mode), "the venv is gone");
    venv_len = strlen(venv);
    nftw(venv, check_entry, 16, FTW_PHYS);
    nftw(outer, rm_entry, 16, FTW_PHYS | FTW_DEPTH);
    return 0;
}
