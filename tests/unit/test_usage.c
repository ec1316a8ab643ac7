/* test_usage.c — what a venv and the store really take when venvs share
 * files with the uv cache (pactown/usage.h), and the bytecode a venv's
 * site-packages lacks (pactown/pycache.h). Each test builds its own store
 * of hard links in a mkdtemp directory. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/pycache.h"
#include "pactown/usage.h"
#include "testutil.h"

static char tmp[PATH_MAX];

static void setup(void)
{
    tu_tmpdir(tmp, "usage");
}

static void teardown(void)
{
    tu_rmtree(tmp);
}

TestSuite(usage, .init = setup, .fini = teardown);
TestSuite(pycache, .init = setup, .fini = teardown);

static void mkdirs(const char *rel)
{
    tu_mkdirs(tmp, rel);
}

/* a file of n bytes of 'x' (written, so its blocks are allocated) */
static void file(const char *rel, size_t n)
{
    char p[PATH_MAX];
    FMT(p, "%s/%s", tmp, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    for (size_t left = n; left > 0;) {
        size_t k = left < sizeof buf ? left : sizeof buf;
        cr_assert_eq(write(fd, buf, k), (ssize_t)k);
        left -= k;
    }
    fsync(fd); /* st_blocks counts what is allocated */
    close(fd);
}

static void hardlink(const char *from, const char *to)
{
    char a[PATH_MAX], b[PATH_MAX];
    FMT(a, "%s/%s", tmp, from);
    FMT(b, "%s/%s", tmp, to);
    cr_assert_eq(link(a, b), 0, "link %s %s: %s", a, b, strerror(errno));
}

static uint64_t disk_of(const char *rel)
{
    char p[PATH_MAX];
    FMT(p, "%s/%s", tmp, rel);
    struct stat st;
    cr_assert_eq(lstat(p, &st), 0, "%s", p);
    return (uint64_t)st.st_blocks * 512;
}

/* <tmp>/store: a 64 KiB wheel file in the uv cache, linked into venvs k1
 * and k2; k1 also has a 16 KiB file of its own and a file only it links
 * from the cache (8 KiB) */
static void make_store(void)
{
    mkdirs("store/.uv/archive-v0/A/pkg");
    mkdirs("store/k1/pkg");
    mkdirs("store/k2/pkg");
    file("store/.uv/archive-v0/A/pkg/shared.py", 65536);
    file("store/.uv/archive-v0/A/pkg/k1only.py", 8192);
    file("store/.uv/CACHEDIR.TAG", 43);
    hardlink("store/.uv/archive-v0/A/pkg/shared.py", "store/k1/pkg/shared.py");
    hardlink("store/.uv/archive-v0/A/pkg/shared.py", "store/k2/pkg/shared.py");
    hardlink("store/.uv/archive-v0/A/pkg/k1only.py", "store/k1/pkg/k1only.py");
    file("store/k1/own.cfg", 16384);
}

struct seen {
    char name[8][64];
    pt_venv_usage u[8];
    int n;
};

static void each(const char *name, const pt_venv_usage *u, void *arg)
{
    struct seen *s = arg;
    cr_assert_lt(s->n, 8);
    snprintf(s->name[s->n], sizeof s->name[0], "%s", name);
    s->u[s->n++] = *u;
}

Test(usage, a_venv_holds_alone_what_no_other_venv_links)
{
    make_store();
    char k1[PATH_MAX];
    FMT(k1, "%s/store/k1", tmp);
    pt_venv_usage u;
    cr_assert_eq(pt_venv_usage_of(k1, &u), 0);
    cr_assert_eq(u.files, 3);
    cr_assert_eq(u.apparent_bytes, 65536 + 8192 + 16384);
    cr_assert_eq(u.shared_files, 1, "shared.py: the cache's link and two venvs'");
    uint64_t dirs = disk_of("store/k1") + disk_of("store/k1/pkg");
    cr_assert_eq(u.alone_bytes, dirs + disk_of("store/k1/own.cfg") + disk_of("store/k1/pkg/k1only.py"),
                 "its directories, its own file and the cache file only it links: %llu",
                 (unsigned long long)u.alone_bytes);
}

Test(usage, the_store_counts_each_inode_once)
{
    make_store();
    char store[PATH_MAX];
    FMT(store, "%s/store", tmp);
    pt_store_usage su;
    struct seen s = { 0 };
    cr_assert_eq(pt_store_usage_of(store, &su, each, &s), 0);
    const char *dirs[] = { "store", "store/.uv", "store/.uv/archive-v0", "store/.uv/archive-v0/A",
                           "store/.uv/archive-v0/A/pkg", "store/k1", "store/k1/pkg", "store/k2", "store/k2/pkg" };
    uint64_t want = disk_of("store/.uv/archive-v0/A/pkg/shared.py") + disk_of("store/.uv/archive-v0/A/pkg/k1only.py") +
                    disk_of("store/.uv/CACHEDIR.TAG") + disk_of("store/k1/own.cfg");
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        want += disk_of(dirs[i]);
    cr_assert_eq(su.disk_bytes, want, "the store: %llu, each inode once: %llu", (unsigned long long)su.disk_bytes,
                 (unsigned long long)want);
    uint64_t cache_own = disk_of("store/.uv") + disk_of("store/.uv/archive-v0") + disk_of("store/.uv/archive-v0/A") +
                         disk_of("store/.uv/archive-v0/A/pkg") + disk_of("store/.uv/CACHEDIR.TAG");
    cr_assert_eq(su.cache_bytes, cache_own, "the cache's own: its directories and the files no venv links");
    cr_assert_eq(su.shared_files, 2, "shared.py and k1only.py, counted at the cache's link");
    cr_assert_eq(s.n, 2, "the venvs, not the hidden cache");
    int i1 = strcmp(s.name[0], "k1") == 0 ? 0 : 1;
    cr_assert_str_eq(s.name[i1], "k1");
    cr_assert_str_eq(s.name[1 - i1], "k2");
    pt_venv_usage alone;
    char k1[PATH_MAX];
    FMT(k1, "%s/store/k1", tmp);
    cr_assert_eq(pt_venv_usage_of(k1, &alone), 0);
    cr_assert_eq(s.u[i1].alone_bytes, alone.alone_bytes, "the one walk gives each venv what its own walk gives");
    cr_assert_eq(s.u[1 - i1].files, 1);
}

/* levels directories named name beneath tmp/rel, made by descriptor (their
 * path may pass PATH_MAX); returns the deepest, open */
static int deep_dirs(const char *rel, int levels, const char *name)
{
    mkdirs(rel);
    char p[PATH_MAX];
    FMT(p, "%s/%s", tmp, rel);
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0);
    for (int i = 0; i < levels; i++) {
        cr_assert_eq(mkdirat(fd, name, 0755), 0, "level %d: %s", i, strerror(errno));
        int sub = openat(fd, name, O_RDONLY | O_DIRECTORY);
        cr_assert_geq(sub, 0);
        close(fd);
        fd = sub;
    }
    return fd;
}

/* removes what deep_dirs made beneath tmp/rel, by descriptor (the
 * teardown's nftw cannot: paths past PATH_MAX) */
static void rm_deep_dirs(const char *rel, int levels, const char *name)
{
    char p[PATH_MAX];
    FMT(p, "%s/%s", tmp, rel);
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0);
    for (int i = 0; i < levels; i++) {
        int sub = openat(fd, name, O_RDONLY | O_DIRECTORY);
        cr_assert_geq(sub, 0);
        close(fd);
        fd = sub;
    }
    unlinkat(fd, "x.py", 0);
    for (int i = 0; i < levels; i++) {
        int up = openat(fd, "..", O_RDONLY | O_DIRECTORY);
        close(fd);
        cr_assert_geq(up, 0);
        cr_assert_eq(unlinkat(up, name, AT_REMOVEDIR), 0, "%s", strerror(errno));
        fd = up;
    }
    close(fd);
}

/* du -s -B1 of tmp/rel: each inode once, as the store's figure must be */
static uint64_t du_of(const char *rel)
{
    char cmd[PATH_MAX + 32];
    FMT(cmd, "du -s -B1 '%s/%s'", tmp, rel);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    unsigned long long n = 0;
    cr_assert_eq(fscanf(f, "%llu", &n), 1);
    pclose(f);
    return n;
}

Test(usage, a_deep_tree_is_measured)
{
    /* a wheel's module 300 levels down (a path of 5,400 bytes from the
     * venv), in the cache and linked into a venv (uv's layout) */
    int a = deep_dirs("store/.uv/archive-v0/A/pkg", 300, "dddddddddddddddd");
    int v = deep_dirs("store/k1/lib/site-packages/pkg", 300, "dddddddddddddddd");
    int fd = openat(a, "x.py", O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    char buf[8192];
    memset(buf, 'x', sizeof buf);
    cr_assert_eq(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    fsync(fd);
    close(fd);
    cr_assert_eq(linkat(a, "x.py", v, "x.py", 0), 0, "%s", strerror(errno));
    close(a);
    close(v);
    char store[PATH_MAX], k1[PATH_MAX];
    FMT(store, "%s/store", tmp);
    FMT(k1, "%s/store/k1", tmp);
    pt_store_usage su;
    struct seen s = { 0 };
    cr_assert_eq(pt_store_usage_of(store, &su, each, &s), 0, "the store 300 levels deep");
    cr_assert_eq(su.disk_bytes, du_of("store"), "disk %llu, du %llu", (unsigned long long)su.disk_bytes,
                 (unsigned long long)du_of("store"));
    cr_assert_eq(su.shared_files, 1);
    pt_venv_usage u;
    cr_assert_eq(pt_venv_usage_of(k1, &u), 0);
    cr_assert_eq(u.files, 1);
    cr_assert_eq(u.apparent_bytes, sizeof buf);
    cr_assert_eq(u.alone_bytes, du_of("store/k1"), "its directories and x.py (nlink 2: the cache's and its own)");
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.u[0].alone_bytes, u.alone_bytes);
    rm_deep_dirs("store/.uv/archive-v0/A/pkg", 300, "dddddddddddddddd");
    rm_deep_dirs("store/k1/lib/site-packages/pkg", 300, "dddddddddddddddd");
}

Test(usage, a_missing_store_is_an_error)
{
    char p[PATH_MAX];
    FMT(p, "%s/nowhere", tmp);
    pt_store_usage su;
    cr_assert_eq(pt_store_usage_of(p, &su, NULL, NULL), -ENOENT);
}

Test(pycache, site_packages_and_the_cache_tag)
{
    mkdirs("v/lib/python3.11/site-packages");
    char v[PATH_MAX], sp[PATH_MAX], tag[32], want[PATH_MAX];
    FMT(v, "%s/v", tmp);
    FMT(want, "%s/v/lib/python3.11/site-packages", tmp);
    cr_assert_eq(pt_site_packages(v, sp, sizeof sp, tag, sizeof tag), 0);
    cr_assert_str_eq(sp, want);
    cr_assert_str_eq(tag, "cpython-311", "PEP 3147: sys.implementation.cache_tag of CPython 3.11");
    mkdirs("w/lib/pypy3.10/site-packages");
    FMT(v, "%s/w", tmp);
    cr_assert_eq(pt_site_packages(v, sp, sizeof sp, tag, sizeof tag), 0);
    cr_assert_str_eq(tag, "", "PyPy's tag is not derived from the directory name");
    mkdirs("w/lib/python3.12/site-packages");
    cr_assert_eq(pt_site_packages(v, sp, sizeof sp, tag, sizeof tag), -EMLINK, "two interpreters' lib directories");
    FMT(v, "%s/none", tmp);
    cr_assert_eq(pt_site_packages(v, sp, sizeof sp, tag, sizeof tag), -ENOENT);
}

/* a .pyc at pyc_rel for the source at src_rel: a 16-byte header (PEP 552)
 * with flags, and the source's mtime and size, or those given when stale */
static void pyc(const char *src_rel, const char *pyc_rel, uint32_t flags, bool stale)
{
    char p[PATH_MAX];
    struct stat st;
    FMT(p, "%s/%s", tmp, src_rel);
    cr_assert_eq(stat(p, &st), 0, "%s", p);
    uint32_t w[4] = { 0x0a0d0da7, flags, (uint32_t)st.st_mtime - (stale ? 100 : 0), (uint32_t)st.st_size };
    FMT(p, "%s/%s", tmp, pyc_rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
    cr_assert_eq(write(fd, w, sizeof w), (ssize_t)sizeof w); /* little-endian, as the header is */
    close(fd);
}

Test(pycache, modules_without_their_pyc_are_counted)
{
    mkdirs("sp/pkg/__pycache__");
    mkdirs("sp/pkg/sub");
    file("sp/pkg/__init__.py", 10);
    pyc("sp/pkg/__init__.py", "sp/pkg/__pycache__/__init__.cpython-311.pyc", 0, false);
    file("sp/pkg/mod.py", 10);
    pyc("sp/pkg/mod.py", "sp/pkg/__pycache__/mod.cpython-312.pyc", 0, false); /* another interpreter's */
    file("sp/pkg/sub/deep.py", 10);
    file("sp/pkg/data.txt", 10);
    file("sp/pkg/__pycache__/stray.py", 10); /* not a module: inside __pycache__ */
    char sp[PATH_MAX];
    FMT(sp, "%s/sp", tmp);
    cr_assert_eq(pt_pycache_missing(sp, "cpython-311", 0), 2, "mod.py and sub/deep.py");
    cr_assert_eq(pt_pycache_missing(sp, "cpython-311", 1), 1, "first_only stops at the first");
    pyc("sp/pkg/mod.py", "sp/pkg/__pycache__/mod.cpython-311.pyc", 0, false);
    mkdirs("sp/pkg/sub/__pycache__");
    pyc("sp/pkg/sub/deep.py", "sp/pkg/sub/__pycache__/deep.cpython-311.pyc", 0, false);
    cr_assert_eq(pt_pycache_missing(sp, "cpython-311", 0), 0);
    /* a wheel's own .pyc: stale for the source uv unpacked (another mtime), or cut short */
    pyc("sp/pkg/mod.py", "sp/pkg/__pycache__/mod.cpython-311.pyc", 0, true);
    file("sp/pkg/sub/__pycache__/deep.cpython-311.pyc", 10);
    cr_assert_eq(pt_pycache_missing(sp, "cpython-311", 0), 2, "a stale .pyc and a short one");
    /* hash-based (PEP 552 flags bit 0): valid whatever the mtime */
    pyc("sp/pkg/mod.py", "sp/pkg/__pycache__/mod.cpython-311.pyc", 1, true);
    pyc("sp/pkg/sub/deep.py", "sp/pkg/sub/__pycache__/deep.cpython-311.pyc", 3, true);
    cr_assert_eq(pt_pycache_missing(sp, "cpython-311", 0), 0);
    FMT(sp, "%s/none", tmp);
    cr_assert_eq(pt_pycache_missing(sp, "cpython-311", 0), -ENOENT);
}
