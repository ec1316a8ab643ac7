/* test_interp.c — resolving the configured interpreter (through a pyenv shim
 * when there is one), its tag, the probe cache in the index, and errors.
 * Each test runs in its own mkdtemp directory. */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/fsutil.h"
#include "pactown/interp.h"
#include "pactown/spawn.h"
#include "testutil.h"

static char tmpdir[PATH_MAX];
static pt_index *idx;

static void setup(void)
{
    idx = NULL;
    tu_tmpdir(tmpdir, "interp");
}

static void teardown(void)
{
    pt_index_close(idx);
    idx = NULL;
    tu_rmtree(tmpdir);
}

TestSuite(interp, .init = setup, .fini = teardown);

static void open_idx(void)
{
    char dir[PATH_MAX];
    FMT(dir, "%s/index", tmpdir);
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_index_open(dir, &idx, &err);
    cr_assert_eq(rc, 0, "pt_index_open: %d %s", rc, err.msg);
}

/* What `python3 -c 'import platform;print(platform.python_version())'` says. */
static void expected_version(char *out, size_t n)
{
    char exe[PATH_MAX];
    cr_assert_eq(pt_which("python3", exe, sizeof exe), 0, "python3 not in PATH=%s", getenv("PATH"));
    const char *argv[] = { exe, "-c", "import platform;print(platform.python_version())", NULL };
    char *text = NULL;
    int status;
    cr_assert_eq(pt_run_capture(argv, NULL, -1, &text, 256, &status), 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "python3 status 0x%x", status);
    size_t len = strlen(text);
    cr_assert(len > 1 && text[len - 1] == '\n', "odd answer '%s'", text);
    text[len - 1] = '\0';
    cr_assert_lt(len, n);
    memcpy(out, text, len);
    free(text);
}

static void check_interp(const pt_interp *in, const char *version)
{
    cr_assert_eq(in->path[0], '/', "not absolute: %s", in->path);
    char real[PATH_MAX];
    cr_assert_not_null(realpath(in->path, real));
    cr_assert_str_eq(in->path, real, "symlinks not resolved");
    cr_assert_eq(pt_is_elf(in->path), true, "%s is not a binary (a shim?)", in->path);
    cr_assert_str_eq(in->tag.impl, "cpython");
    cr_assert_str_eq(in->tag.version, version);
    cr_assert_gt(strlen(in->tag.platform), 0);
    cr_assert_null(strchr(in->tag.platform, ' '));
}

Test(interp, resolve_python3_without_index, .timeout = 60)
{
    char version[64];
    expected_version(version, sizeof version);
    pt_interp in;
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_interp_resolve("python3", NULL, false, &in, &err);
    cr_assert_eq(rc, 0, "resolve: %d %s", rc, err.msg);
    check_interp(&in, version);
}

Test(interp, resolve_by_path_of_the_binary, .timeout = 60)
{
    char version[64];
    expected_version(version, sizeof version);
    pt_interp first, again;
    pt_error err;
    pt_error_clear(&err);
    cr_assert_eq(pt_interp_resolve("python3", NULL, false, &first, &err), 0, "%s", err.msg);
    /* the resolved binary given as a path resolves to itself */
    int rc = pt_interp_resolve(first.path, NULL, false, &again, &err);
    cr_assert_eq(rc, 0, "resolve %s: %s", first.path, err.msg);
    check_interp(&again, version);
    cr_assert_str_eq(again.path, first.path);
}

Test(interp, cached_probe_reused_without_path, .timeout = 60)
{
    char version[64];
    expected_version(version, sizeof version);
    open_idx();
    pt_interp a, b;
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_interp_resolve("python3", idx, false, &a, &err);
    cr_assert_eq(rc, 0, "resolve: %d %s", rc, err.msg);
    check_interp(&a, version);

    /* the probe is stored under the configured string */
    char *rec = NULL;
    cr_assert_eq(pt_index_meta_get(idx, "interp:python3", &rec, NULL), 0);
    cr_assert_not_null(strstr(rec, a.path), "record: %s", rec);
    free(rec);

    /* no python3 anywhere in PATH now: only the cache can answer */
    char empty[PATH_MAX];
    FMT(empty, "%s/empty-bin", tmpdir);
    cr_assert_eq(mkdir(empty, 0755), 0);
    cr_assert_eq(setenv("PATH", empty, 1), 0);
    pt_error_clear(&err);
    rc = pt_interp_resolve("python3", idx, false, &b, &err);
    cr_assert_eq(rc, 0, "cached resolve: %d %s", rc, err.msg);
    cr_assert_str_eq(b.path, a.path);
    cr_assert_str_eq(b.tag.impl, a.tag.impl);
    cr_assert_str_eq(b.tag.version, a.tag.version);
    cr_assert_str_eq(b.tag.platform, a.tag.platform);

    /* fresh = true ignores the cache and must look python3 up again */
    pt_error_clear(&err);
    rc = pt_interp_resolve("python3", idx, true, &b, &err);
    cr_assert_eq(rc, -ENOENT, "fresh resolve with empty PATH: %d %s", rc, err.msg);
    cr_assert_not_null(strstr(err.msg, "python3"), "msg: %s", err.msg);
}

Test(interp, stale_cache_record_is_not_used, .timeout = 60)
{
    open_idx();
    /* a record whose binary stamp does not match the file on disk */
    char fake[PATH_MAX], rec[PATH_MAX + 128];
    FMT(fake, "%s/python-fake", tmpdir);
    FILE *f = fopen(fake, "w");
    cr_assert_not_null(f);
    fputs("not python", f);
    fclose(f);
    int n = snprintf(rec, sizeof rec, "%s\ncpython\n9.9.9\nfake-plat\n1 2 3 4\n", fake);
    cr_assert_eq(pt_index_meta_put(idx, "interp:python3", rec, (size_t)n), 0);
    char version[64];
    expected_version(version, sizeof version);
    pt_interp in;
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_interp_resolve("python3", idx, false, &in, &err);
    cr_assert_eq(rc, 0, "resolve: %d %s", rc, err.msg);
    check_interp(&in, version); /* re-probed, not 9.9.9 */
}

Test(interp, missing_interpreter)
{
    pt_interp in;
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_interp_resolve("pactown-no-such-python", NULL, false, &in, &err);
    cr_assert_eq(rc, -ENOENT);
    cr_assert_eq(err.code, -ENOENT);
    cr_assert_not_null(strstr(err.msg, "pactown-no-such-python"), "msg: %s", err.msg);

    char missing[PATH_MAX];
    FMT(missing, "%s/bin/python3", tmpdir);
    open_idx();
    pt_error_clear(&err);
    rc = pt_interp_resolve(missing, idx, false, &in, &err);
    cr_assert_eq(rc, -ENOENT);
    cr_assert_not_null(strstr(err.msg, missing), "msg: %s", err.msg);
    char *rec = NULL;
    char name[PATH_MAX + 16];
    FMT(name, "interp:%s", missing);
    cr_assert_eq(pt_index_meta_get(idx, name, &rec, NULL), -ENOENT, "a failed probe was cached");
}

Test(interp, non_python_program_is_einval, .timeout = 60)
{
    /* /bin/true runs fine but does not answer the probe */
    pt_interp in;
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_interp_resolve("/bin/true", NULL, false, &in, &err);
    cr_assert_eq(rc, -EINVAL, "rc %d: %s", rc, err.msg);
    cr_assert_not_null(strstr(err.msg, "/bin/true"), "msg: %s", err.msg);
    pt_error_clear(&err);
    rc = pt_interp_resolve("/bin/false", NULL, false, &in, &err);
    cr_assert_eq(rc, -EINVAL, "rc %d: %s", rc, err.msg);
    cr_assert_not_null(strstr(err.msg, "exited with 1"), "msg: %s", err.msg);
}
