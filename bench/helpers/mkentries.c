/* mkentries — put N ready entries into a pactown cache, for tools/bench
 * (figures 4 and 6: lookups and listing with 10,000 entries).
 *
 *   mkentries CACHE_DIR N [AGE_S] [TAG]
 *
 * For each i < N: a canonical requirement set "bench-entry-TAG-i" (for the
 * interpreter pactown would write), registered in <CACHE_DIR>/index; its
 * entry set READY through pt_index_update (which keeps the atime order in
 * step) with last_access AGE_S seconds ago (default 3600: built earlier, as
 * a venv that a lookup finds after the kernel forgot it); and the store
 * directory <CACHE_DIR>/store/<key>/ with what pactownfs requires of a ready
 * venv (include/pactown/venv.h): its .pactown-key, a pyvenv.cfg whose home
 * is the directory of this machine's python3, and bin/python linked to it.
 * Prints the keys, one a line. Run it while no daemon uses CACHE_DIR (the
 * daemon makes the store read-only while mounted). Run again on the same
 * CACHE_DIR, it resets the entries (state, access time) and keeps the
 * existing store directories: tools/bench keeps them between runs, since
 * making and removing 10,000 directories takes a minute on a busy disk.
 *
 * A bulk load: fsync/fdatasync are no-ops in this process (they are
 * interposed below, so LMDB's commit does not wait for the disk 2N times)
 * and one syncfs at the end makes it durable. Linked against
 * build/libpactown.a with the public headers only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pactown/fsutil.h"
#include "pactown/index.h"
#include "pactown/key.h"

int fsync(int fd) { (void)fd; return 0; }
int fdatasync(int fd) { (void)fd; return 0; }

struct ready { int64_t now_s, access_ms; };

static int make_ready(pt_entry *e, void *arg)
{
    const struct ready *r = arg;
    e->state = PT_STATE_READY;
    e->bytes = 4096;
    e->files = 1;
    if (!e->created)
        e->created = r->now_s;
    e->built_at = r->now_s;
    e->last_access_ms = r->access_ms;
    e->build_ms = 1;
    e->builds = 1;
    e->builder_pid = 0;
    return 0;
}

/* pyvenv.cfg and bin/python of a fake venv at dir (kept when there) */
static int venv_files(const char *dir, const char *python)
{
    char path[PATH_MAX], home[PATH_MAX];
    snprintf(home, sizeof home, "%s", python);
    *strrchr(home, '/') = '\0';
    snprintf(path, sizeof path, "%s/pyvenv.cfg", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd >= 0) {
        char text[PATH_MAX + 16];
        int tl = snprintf(text, sizeof text, "home = %s\n", home);
        if (write(fd, text, (size_t)tl) != tl) { perror(path); return -1; }
        close(fd);
    } else if (errno != EEXIST) {
        perror(path);
        return -1;
    }
    snprintf(path, sizeof path, "%s/bin", dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) { perror(path); return -1; }
    snprintf(path, sizeof path, "%s/bin/python", dir);
    if (symlink(python, path) != 0 && errno != EEXIST) { perror(path); return -1; }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mkentries CACHE_DIR N [AGE_S] [TAG]\n");
        return 2;
    }
    const char *cache = argv[1];
    long n = strtol(argv[2], NULL, 10);
    long age = argc > 3 ? strtol(argv[3], NULL, 10) : 3600;
    const char *tag = argc > 4 ? argv[4] : "x";
    char path[PATH_MAX], found[PATH_MAX], python[PATH_MAX];
    if (pt_which("python3", found, sizeof found) != 0 || !realpath(found, python)) {
        fprintf(stderr, "mkentries: no python3 in PATH (the fake venvs link to it)\n");
        return 1;
    }
    snprintf(path, sizeof path, "%s/store", cache);
    if (mkdir(cache, 0755) != 0 && errno != EEXIST) { perror(cache); return 1; }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) { perror(path); return 1; }
    snprintf(path, sizeof path, "%s/index", cache);
    pt_index *idx;
    pt_error err = { 0 };
    if (pt_index_open(path, &idx, &err) != 0) {
        fprintf(stderr, "mkentries: %s\n", err.msg);
        return 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct ready r = { .now_s = ts.tv_sec, .access_ms = (int64_t)ts.tv_sec * 1000 - age * 1000 };
    for (long i = 0; i < n; i++) {
        char canonical[512], key[PT_KEY_HEX + 1];
        int len = snprintf(canonical, sizeof canonical,
                           "pactown-venv/1\npython cpython 3.11.7 linux-x86_64\n"
                           "installer index-url=default find-links=none no-index=no\nbench-entry-%s-%ld\n", tag, i);
        pt_key_hex(canonical, (size_t)len, key);
        int rc = pt_index_register(idx, key, canonical, (size_t)len, NULL);
        if (rc == 0)
            rc = pt_index_update(idx, key, make_ready, &r, NULL);
        if (rc) {
            fprintf(stderr, "mkentries: index: %s\n", strerror(-rc));
            return 1;
        }
        snprintf(path, sizeof path, "%s/store/%s", cache, key);
        if (mkdir(path, 0755) != 0 && errno != EEXIST) { perror(path); return 1; }
        if (venv_files(path, python) != 0)
            return 1;
        snprintf(path, sizeof path, "%s/store/%s/.pactown-key", cache, key);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (fd < 0 && errno == EEXIST) { /* made by an earlier run: only its index entry is reset */
            printf("%s\n", key);
            continue;
        }
        if (fd < 0) { perror(path); return 1; }
        char text[64];
        int tl = snprintf(text, sizeof text, "%s\n", key);
        if (write(fd, text, (size_t)tl) != tl) { perror(path); return 1; }
        close(fd);
        printf("%s\n", key);
    }
    pt_index_close(idx);
    int d = open(cache, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
        syncfs(d);
        close(d);
    }
    return 0;
}
