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
    int rc = pt_interp_resolve("python3", NULL, 0, &in, &err);
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
    cr_assert_eq(pt_interp_resolve("python3", NULL, 0, &first, &err), 0, "%s", err.msg);
    /* the resolved binary given as a path resolves to itself */
    int rc = pt_interp_resolve(first.path, NULL, 0, &again, &err);
    cr_assert_eq(rc, 0, "resolve %s: %s", first.path, err.msg);
    check_interp(&again, version);
    cr_assert_str_eq(again.path, first.path);
}

Test(interp, daemon_record_used_by_clients_whatever_their_path, .timeout = 60)
{
    char version[64];
    expected_version(version, sizeof version);
    open_idx();
    pt_interp a, b;
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_interp_resolve("python3", idx, PT_INTERP_DAEMON | PT_INTERP_FRESH, &a, &err);
    cr_assert_eq(rc, 0, "resolve: %d %s", rc, err.msg);
    check_interp(&a, version);
    cr_assert(a.probed);

    /* the daemon's record names what it found and where that led */
    char *rec = NULL;
    cr_assert_eq(pt_index_meta_get(idx, "interp:daemon", &rec, NULL), 0);
    cr_assert_not_null(strstr(rec, "configured python3\n"), "record: %s", rec);
    cr_assert_not_null(strstr(rec, a.path), "record: %s", rec);
    free(rec);

    /* a client whose PATH has no python3 at all gets the daemon's resolution, without running Python */
    char empty[PATH_MAX];
    FMT(empty, "%s/empty-bin", tmpdir);
    cr_assert_eq(mkdir(empty, 0755), 0);
    cr_assert_eq(setenv("PATH", empty, 1), 0);
    pt_error_clear(&err);
    rc = pt_interp_resolve("python3", idx, 0, &b, &err);
    cr_assert_eq(rc, 0, "client resolve: %d %s", rc, err.msg);
    cr_assert_str_eq(b.path, a.path);
    cr_assert_str_eq(b.found, a.found);
    cr_assert_str_eq(b.tag.version, a.tag.version);
    cr_assert(!b.probed, "the record was valid: no probe expected");

    /* the daemon itself looks python3 up in its own PATH */
    pt_error_clear(&err);
    rc = pt_interp_resolve("python3", idx, PT_INTERP_DAEMON, &b, &err);
    cr_assert_eq(rc, -ENOENT, "daemon resolve with an empty PATH: %d %s", rc, err.msg);
    cr_assert_not_null(strstr(err.msg, "python3"), "msg: %s", err.msg);
}

/* two interpreters of different versions: this machine's pyenv one and Debian's */
static bool two_pythons(char a[PATH_MAX], char b[PATH_MAX])
{
    pt_interp x;
    pt_error err;
    pt_error_clear(&err);
    if (pt_interp_resolve("python3", NULL, 0, &x, &err) != 0)
        return false;
    snprintf(a, PATH_MAX, "%s", x.path);
    const char *other = "/usr/bin/python3.11";
    pt_interp y;
    pt_error_clear(&err);
    if (access(other, X_OK) != 0 || pt_interp_resolve(other, NULL, 0, &y, &err) != 0 ||
        strcmp(x.tag.version, y.tag.version) == 0)
        return false;
    snprintf(b, PATH_MAX, "%s", y.path);
    return true;
}

/* uv#12000: python=/path/link re-pointed to another interpreter gives the new one's tag */
Test(interp, relinked_interpreter_is_probed_again, .timeout = 60)
{
    char a[PATH_MAX], b[PATH_MAX], link[PATH_MAX];
    if (!two_pythons(a, b))
        cr_skip_test("needs two interpreters of different versions");
    open_idx();
    FMT(link, "%s/python-link", tmpdir);
    cr_assert_eq(symlink(a, link), 0);
    pt_interp first, second;
    pt_error err;
    pt_error_clear(&err);
    cr_assert_eq(pt_interp_resolve(link, idx, PT_INTERP_DAEMON, &first, &err), 0, "%s", err.msg);
    cr_assert_str_eq(first.path, a);
    cr_assert_eq(unlink(link), 0);
    cr_assert_eq(symlink(b, link), 0);
    pt_error_clear(&err);
    cr_assert_eq(pt_interp_resolve(link, idx, 0, &second, &err), 0, "%s", err.msg);
    cr_assert_str_eq(second.path, b);
    cr_assert(second.probed);
    cr_assert_str_neq(second.tag.version, first.tag.version);
}

/* an interpreter upgraded in place (same path, new binary) gives the new version */
Test(interp, binary_replaced_in_place_is_probed_again, .timeout = 60)
{
    char a[PATH_MAX], b[PATH_MAX], bin[PATH_MAX], cmd[3 * PATH_MAX];
    if (!two_pythons(a, b))
        cr_skip_test("needs two interpreters of different versions");
    open_idx();
    FMT(bin, "%s/python3.11", tmpdir);
    FMT(cmd, "cp '%s' '%s'", b, bin);
    cr_assert_eq(system(cmd), 0);
    pt_interp first, second;
    pt_error err;
    pt_error_clear(&err);
    cr_assert_eq(pt_interp_resolve(bin, idx, PT_INTERP_DAEMON, &first, &err), 0, "%s", err.msg);
    FMT(cmd, "cp '%s' '%s'", a, bin); /* cp writes into the same inode */
    cr_assert_eq(system(cmd), 0);
    pt_error_clear(&err);
    cr_assert_eq(pt_interp_resolve(bin, idx, 0, &second, &err), 0, "%s", err.msg);
    cr_assert(second.probed, "the binary changed: a new probe expected");
    cr_assert_str_neq(second.tag.version, first.tag.version);
    cr_assert_str_eq(second.path, bin);
}

Test(interp, malformed_record_is_not_used, .timeout = 60)
{
    open_idx();
    const char *rec = "pactown-interp/2\nconfigured python3\nfound /nonexistent/python3\ntag cpython 9.9.9 x\n";
    cr_assert_eq(pt_index_meta_put(idx, "interp:daemon", rec, strlen(rec)), 0);
    char version[64];
    expected_version(version, sizeof version);
    pt_interp in;
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_interp_resolve("python3", idx, 0, &in, &err);
    cr_assert_eq(rc, 0, "resolve: %d %s", rc, err.msg);
    check_interp(&in, version); /* probed through this PATH, not 9.9.9 */
}

Test(interp, others_can_exec)
{
    char why[PATH_MAX + 64], dir[PATH_MAX], file[PATH_MAX];
    cr_assert(pt_others_can_exec("/bin/sh", why, sizeof why), "%s", why);
    FMT(dir, "%s/private", tmpdir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    FMT(file, "%s/python", dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(chmod(file, 0755), 0);
    cr_assert_eq(chmod(tmpdir, 0755), 0);
    cr_assert(!pt_others_can_exec(file, why, sizeof why));
    char want[PATH_MAX + 32];
    FMT(want, "%s is mode 0700", dir);
    cr_assert_str_eq(why, want);
}

Test(interp, missing_interpreter)
{
    pt_interp in;
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_interp_resolve("pactown-no-such-python", NULL, 0, &in, &err);
    cr_assert_eq(rc, -ENOENT);
    cr_assert_eq(err.code, -ENOENT);
    cr_assert_not_null(strstr(err.msg, "pactown-no-such-python"), "msg: %s", err.msg);

    char missing[PATH_MAX];
    FMT(missing, "%s/bin/python3", tmpdir);
    open_idx();
    pt_error_clear(&err);
    rc = pt_interp_resolve(missing, idx, PT_INTERP_DAEMON, &in, &err);
    cr_assert_eq(rc, -ENOENT);
    cr_assert_not_null(strstr(err.msg, missing), "msg: %s", err.msg);
    char *rec = NULL;
    cr_assert_eq(pt_index_meta_get(idx, "interp:daemon", &rec, NULL), -ENOENT, "a failed probe was recorded");
}

Test(interp, non_python_program_is_einval, .timeout = 60)
{
    /* /bin/true runs fine but does not answer the probe */
    pt_interp in;
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_interp_resolve("/bin/true", NULL, 0, &in, &err);
    cr_assert_eq(rc, -EINVAL, "rc %d: %s", rc, err.msg);
    cr_assert_not_null(strstr(err.msg, "/bin/true"), "msg: %s", err.msg);
    pt_error_clear(&err);
    rc = pt_interp_resolve("/bin/false", NULL, 0, &in, &err);
    cr_assert_eq(rc, -EINVAL, "rc %d: %s", rc, err.msg);
    cr_assert_not_null(strstr(err.msg, "exited with 1"), "msg: %s", err.msg);
}
