/* test_uvcache.c — the prune of the store's uv cache (pactown/uvcache.h):
 * which distributions it hands to `uv cache clean`. Each test builds a
 * cache of uv's layout (archive-v0/<id>/) in a mkdtemp directory, with
 * files hard-linked from a "venv" where a venv holds them, and a uv that
 * only writes down its arguments. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pactown/uvcache.h"
#include "testutil.h"

static char tmp[PATH_MAX];

static void setup(void)
{
    tu_tmpdir(tmp, "uvcache");
}

static void teardown(void)
{
    tu_rmtree(tmp);
}

TestSuite(uvcache, .init = setup, .fini = teardown);

static void mkdirs(const char *rel)
{
    tu_mkdirs(tmp, rel);
}

static void put(const char *rel, const char *text, mode_t mode)
{
    char p[PATH_MAX];
    FMT(p, "%s/%s", tmp, rel);
    const char *slash = strrchr(rel, '/');
    if (slash) {
        char dir[PATH_MAX];
        FMT(dir, "%.*s", (int)(slash - rel), rel);
        mkdirs(dir);
    }
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s: %s", p, strerror(errno));
    fputs(text, f);
    fclose(f);
    chmod(p, mode);
}

/* the venv's link of an archive's file: the archive is in use */
static void linked(const char *rel)
{
    static int n;
    char a[PATH_MAX], b[PATH_MAX];
    mkdirs("venv");
    FMT(a, "%s/%s", tmp, rel);
    FMT(b, "%s/venv/f%d", tmp, n++);
    cr_assert_eq(link(a, b), 0, "link %s: %s", a, strerror(errno));
}

/* an unpacked wheel of dist (its METADATA's Name), its dist-info directory named dir */
static void archive(const char *id, const char *dir, const char *dist)
{
    char rel[PATH_MAX], meta[256];
    FMT(rel, "cache/archive-v0/%s/%s/METADATA", id, dir);
    FMT(meta, "Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n\nName: not-this-one\n", dist);
    put(rel, meta, 0644);
    FMT(rel, "cache/archive-v0/%s/%s/WHEEL", id, dir);
    put(rel, "Wheel-Version: 1.0\n", 0644);
}

/* prune with ttl 0; the names uv was given, each followed by ' ' */
static void prune(pt_prune_result *r, char *names, size_t n)
{
    char cache[PATH_MAX], uv[PATH_MAX], out[PATH_MAX], script[PATH_MAX * 2];
    FMT(cache, "%s/cache", tmp);
    FMT(out, "%s/uv-args", tmp);
    FMT(script, "#!/bin/sh\n[ \"$1 $2 $3\" = 'cache clean --no-config' ] || exit 9\nshift 3\n"
                "for a; do printf '%%s ' \"$a\"; done > '%s'\n", out);
    put("uv", script, 0755);
    FMT(uv, "%s/uv", tmp);
    pt_error err = { 0 };
    int rc = pt_uv_cache_prune(cache, uv, 0, (int64_t)time(NULL) + 10, r, &err);
    cr_assert_eq(rc, 0, "prune: %d %s", rc, err.msg);
    names[0] = '\0';
    FILE *f = fopen(out, "r");
    if (f) {
        size_t len = fread(names, 1, n - 1, f);
        names[len] = '\0';
        fclose(f);
    }
}

/* names ("a b c ") holds the word name */
static bool has(const char *names, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = names; (p = strstr(p, name)) != NULL; p++)
        if ((p == names || p[-1] == ' ') && p[n] == ' ')
            return true;
    return false;
}

Test(uvcache, a_wheel_is_named_by_its_metadata)
{
    archive("A", "ptdemo_core-2.0.dist-info", "ptdemo-core"); /* unused */
    /* in use, with top-level files named like ptdemo-core's dist-info (uv installs them as files) */
    archive("B", "ptx_decoy-1.0.dist-info", "ptx-decoy");
    for (int i = 0; i < 20; i++) {
        char rel[PATH_MAX];
        FMT(rel, "cache/archive-v0/B/ptdemo_core-%d.dist-info", i);
        put(rel, "x\n", 0644);
    }
    linked("cache/archive-v0/B/ptx_decoy-1.0.dist-info/METADATA");
    /* unused; uv takes a dist-info directory that only starts with the wheel's name */
    archive("C", "hxp_victim-1.0.dist-info", "HXP.Name");
    pt_prune_result r;
    char names[4096];
    prune(&r, names, sizeof names);
    cr_assert(has(names, "ptdemo-core"), "ptdemo-core, linked by no venv, is pruned: uv got '%s'", names);
    cr_assert(has(names, "hxp-name"), "C is named by its METADATA: uv got '%s'", names);
    cr_assert(!has(names, "ptx-decoy") && !has(names, "hxp-victim"), "uv got '%s'", names);
    cr_assert_eq(r.archives, 3);
    cr_assert_eq(r.unused, 2);
    cr_assert_eq(r.names, 2);
    cr_assert_eq(r.removed, 2);
}

Test(uvcache, a_deep_wheel_stops_no_prune)
{
    char deep[PATH_MAX] = "", rel[PATH_MAX];
    for (int i = 0; i < 80; i++)
        strcat(deep, "d/");
    archive("D", "ptx_deep-1.0.dist-info", "ptx-deep"); /* in use, by its deepest file only */
    FMT(rel, "cache/archive-v0/D/ptx_deep/%sx.py", deep);
    put(rel, "X = 1\n", 0644);
    linked(rel);
    archive("E", "ptx_deeper-1.0.dist-info", "ptx-deeper"); /* unused */
    FMT(rel, "cache/archive-v0/E/ptx_deeper/%sx.py", deep);
    put(rel, "X = 1\n", 0644);
    archive("F", "ptdemo_core-1.0.dist-info", "ptdemo-core"); /* unused */
    pt_prune_result r;
    char names[4096];
    prune(&r, names, sizeof names);
    cr_assert(has(names, "ptdemo-core") && has(names, "ptx-deeper"), "uv got '%s'", names);
    cr_assert(!has(names, "ptx-deep"), "ptx-deep's deepest file is linked: uv got '%s'", names);
    cr_assert_eq(r.archives, 3);
    cr_assert_eq(r.unused, 2);
}
