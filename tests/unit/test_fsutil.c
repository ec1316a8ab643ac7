/* test_fsutil.c — mkdir -p, rm -rf, du, make_readonly, read/write, which,
 * is_elf. Each test runs in its own mkdtemp directory. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/fsutil.h"
#include "pactown/usage.h"
#include "testutil.h"

static char tmpdir[PATH_MAX];
static pid_t kid;

static void setup(void)
{
    umask(022);
    kid = 0;
    tu_tmpdir(tmpdir, "fsutil");
}

static void teardown(void)
{
    if (kid > 0)
        tu_kill_reap(kid);
    tu_rmtree(tmpdir);
}

TestSuite(fsutil, .init = setup, .fini = teardown);

static void write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    cr_assert_eq(close(fd), 0);
}

static void write_size(const char *path, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    char block[1024];
    memset(block, 'x', sizeof block);
    while (n > 0) {
        size_t k = n < sizeof block ? n : sizeof block;
        cr_assert_eq(write(fd, block, k), (ssize_t)k);
        n -= k;
    }
    cr_assert_eq(close(fd), 0);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

Test(fsutil, mkdir_p_nested_and_existing)
{
    char p[PATH_MAX];
    FMT(p, "%s/a/b/c/d", tmpdir);
    cr_assert_eq(pt_mkdir_p(p, 0750), 0);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0750);
    cr_assert_eq(pt_mkdir_p(p, 0750), 0, "an existing dir is fine");
    FMT(p, "%s/a/b/", tmpdir);
    cr_assert_eq(pt_mkdir_p(p, 0755), 0, "trailing slash");
    FMT(p, "%s/a/file", tmpdir);
    write_text(p, "x");
    cr_assert_eq(pt_mkdir_p(p, 0755), -ENOTDIR, "a file in the way");
    FMT(p, "%s/a/file/sub", tmpdir);
    cr_assert_eq(pt_mkdir_p(p, 0755), -ENOTDIR);
    cr_assert_eq(pt_mkdir_p("", 0755), -ENAMETOOLONG);
}

/* Build tree/{f, ro/{g, deep/h}, link-dir -> outside, link-file -> outside/keep}
 * with ro mode 0555; outside/ and outside/keep must survive pt_rm_rf. Returns
 * 0 or a step number, so it can run in an unprivileged child. */
static int rm_rf_scenario(const char *tree, const char *outside)
{
    char p[PATH_MAX + 32];
    if (mkdir(tree, 0755) != 0)
        return 1;
    snprintf(p, sizeof p, "%s/f", tree);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
        return 2;
    close(fd);
    snprintf(p, sizeof p, "%s/ro", tree);
    if (mkdir(p, 0755) != 0)
        return 3;
    snprintf(p, sizeof p, "%s/ro/deep", tree);
    if (mkdir(p, 0755) != 0)
        return 4;
    snprintf(p, sizeof p, "%s/ro/deep/h", tree);
    if ((fd = open(p, O_WRONLY | O_CREAT, 0444)) < 0)
        return 5;
    close(fd);
    snprintf(p, sizeof p, "%s/ro/g", tree);
    if ((fd = open(p, O_WRONLY | O_CREAT, 0444)) < 0)
        return 6;
    close(fd);
    snprintf(p, sizeof p, "%s/ro/deep", tree);
    if (chmod(p, 0555) != 0)
        return 7;
    snprintf(p, sizeof p, "%s/ro", tree);
    if (chmod(p, 0555) != 0)
        return 8;
    snprintf(p, sizeof p, "%s/link-dir", tree);
    if (symlink(outside, p) != 0)
        return 9;
    char keep[PATH_MAX + 8];
    snprintf(keep, sizeof keep, "%s/keep", outside);
    snprintf(p, sizeof p, "%s/ro-link", tree);
    if (symlink(keep, p) != 0)
        return 10;
    if (pt_rm_rf(tree) != 0)
        return 11;
    struct stat st;
    if (lstat(tree, &st) == 0 || errno != ENOENT)
        return 12;
    return 0;
}

static void make_outside(char *outside, size_t n, char *keep, size_t kn)
{
    cr_assert_lt((size_t)snprintf(outside, n, "%s/outside", tmpdir), n);
    cr_assert_lt((size_t)snprintf(keep, kn, "%s/keep", outside), kn);
    cr_assert_eq(mkdir(outside, 0755), 0);
    write_text(keep, "precious");
    cr_assert_eq(chmod(outside, 0555), 0); /* a read-only dir outside: must not be unlocked */
}

static void check_outside(const char *outside, const char *keep)
{
    struct stat st;
    cr_assert_eq(stat(keep, &st), 0, "the symlink target outside the tree was removed");
    cr_assert_eq(st.st_size, 8);
    cr_assert_eq(stat(outside, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0555, "rm_rf changed a directory outside the tree");
}

Test(fsutil, rm_rf_readonly_dirs_and_outside_symlink)
{
    char outside[PATH_MAX], keep[PATH_MAX], tree[PATH_MAX];
    make_outside(outside, sizeof outside, keep, sizeof keep);
    FMT(tree, "%s/tree", tmpdir);
    int step = rm_rf_scenario(tree, outside);
    cr_assert_eq(step, 0, "scenario failed at step %d: %s", step, strerror(errno));
    check_outside(outside, keep);
}

/* As root, permissions do not stop unlink(2): run the same scenario as an
 * unprivileged user so that the read-only directories really get in the way. */
Test(fsutil, rm_rf_readonly_dirs_unprivileged)
{
    if (geteuid() != 0)
        cr_skip_test("already unprivileged: covered by rm_rf_readonly_dirs_and_outside_symlink");
    char outside[PATH_MAX], keep[PATH_MAX], tree[PATH_MAX], home[PATH_MAX];
    make_outside(outside, sizeof outside, keep, sizeof keep);
    FMT(home, "%s/home", tmpdir);
    cr_assert_eq(mkdir(home, 0755), 0);
    cr_assert_eq(chown(home, 65534, 65534), 0);
    cr_assert_eq(chmod(tmpdir, 0755), 0);
    FMT(tree, "%s/tree", home);
    kid = fork();
    cr_assert_geq(kid, 0);
    if (kid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        _exit(rm_rf_scenario(tree, outside));
    }
    int st = 0;
    cr_assert_eq(waitpid(kid, &st, 0), kid);
    kid = 0;
    cr_assert(WIFEXITED(st), "status 0x%x", st);
    cr_assert_eq(WEXITSTATUS(st), 0, "scenario failed at step %d", WEXITSTATUS(st));
    check_outside(outside, keep);
}

/* A tree deeper than one descriptor a level allows (a wheel 300
 * directories down; here 700, and 300 whose path passes PATH_MAX, with
 * read-only directories and a file at each of a few levels): rm_rf removes
 * it whole. */
Test(fsutil, rm_rf_a_deep_tree)
{
    static const struct { int levels; const char *name; } trees[] = { { 700, "d" }, { 300, "dddddddddddddddd" } };
    for (size_t t = 0; t < sizeof trees / sizeof trees[0]; t++) {
        char tree[PATH_MAX];
        FMT(tree, "%s/tree%zu", tmpdir, t);
        cr_assert_eq(mkdir(tree, 0755), 0);
        int fd = open(tree, O_RDONLY | O_DIRECTORY);
        cr_assert_geq(fd, 0);
        for (int i = 0; i < trees[t].levels; i++) {
            cr_assert_eq(mkdirat(fd, trees[t].name, 0755), 0, "level %d: %s", i, strerror(errno));
            if (i % 97 == 0) {
                int f = openat(fd, "f", O_WRONLY | O_CREAT, 0644);
                cr_assert_geq(f, 0);
                close(f);
            }
            int sub = openat(fd, trees[t].name, O_RDONLY | O_DIRECTORY);
            cr_assert_geq(sub, 0);
            if (i % 50 == 0)
                fchmod(fd, 0555);
            close(fd);
            fd = sub;
        }
        close(fd);
        cr_assert_eq(pt_rm_rf(tree), 0, "%d levels of %s: %s", trees[t].levels, trees[t].name, strerror(errno));
        cr_assert_not(exists(tree));
    }
    DIR *d = opendir(tmpdir);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        cr_assert(de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")), "left: %s", de->d_name);
    closedir(d);
}

Test(fsutil, rm_rf_missing_and_single_file)
{
    char p[PATH_MAX];
    FMT(p, "%s/missing", tmpdir);
    cr_assert_eq(pt_rm_rf(p), 0);
    FMT(p, "%s/file", tmpdir);
    write_text(p, "x");
    cr_assert_eq(pt_rm_rf(p), 0);
    cr_assert_not(exists(p));
    /* a symlink given directly is removed, its target kept */
    char target[PATH_MAX], link[PATH_MAX];
    FMT(target, "%s/targetdir", tmpdir);
    FMT(link, "%s/link", tmpdir);
    cr_assert_eq(mkdir(target, 0755), 0);
    FMT(p, "%s/targetdir/in", tmpdir);
    write_text(p, "x");
    cr_assert_eq(symlink(target, link), 0);
    cr_assert_eq(pt_rm_rf(link), 0);
    cr_assert_not(exists(link));
    cr_assert(exists(p));
}

/* the apparent size of a venv (pactown/usage.h): each name of a hard-linked
 * file counts, symlinks are not followed */
Test(fsutil, du_counts_bytes_and_files)
{
    char p[PATH_MAX], q[PATH_MAX], big[PATH_MAX];
    FMT(p, "%s/t/sub/empty", tmpdir);
    cr_assert_eq(pt_mkdir_p(p, 0755), 0);
    FMT(p, "%s/t/a", tmpdir);
    write_size(p, 5);
    FMT(q, "%s/t/sub/b", tmpdir);
    write_size(q, 3000);
    FMT(q, "%s/t/sub/a-hardlink", tmpdir);
    cr_assert_eq(link(p, q), 0);
    FMT(big, "%s/big", tmpdir);
    write_size(big, 100000);
    FMT(q, "%s/t/big-link", tmpdir);
    cr_assert_eq(symlink(big, q), 0);
    FMT(q, "%s/t/dir-link", tmpdir);
    cr_assert_eq(symlink(tmpdir, q), 0);
    pt_venv_usage u;
    FMT(p, "%s/t", tmpdir);
    cr_assert_eq(pt_venv_usage_of(p, &u), 0);
    cr_assert_eq(u.apparent_bytes, 5 + 3000 + 5, "bytes %llu", (unsigned long long)u.apparent_bytes);
    cr_assert_eq(u.files, 3, "files %llu", (unsigned long long)u.files);
    FMT(p, "%s/t/sub/empty", tmpdir);
    cr_assert_eq(pt_venv_usage_of(p, &u), 0);
    cr_assert_eq(u.apparent_bytes, 0);
    cr_assert_eq(u.files, 0);
    FMT(p, "%s/nope", tmpdir);
    cr_assert_eq(pt_venv_usage_of(p, &u), -ENOENT);
}

Test(fsutil, make_readonly_removes_write_bits)
{
    char p[PATH_MAX], outside[PATH_MAX];
    FMT(p, "%s/t/d", tmpdir);
    cr_assert_eq(pt_mkdir_p(p, 0777), 0);
    cr_assert_eq(chmod(p, 0777), 0);
    FMT(p, "%s/t/d/f", tmpdir);
    write_text(p, "x");
    cr_assert_eq(chmod(p, 0766), 0);
    FMT(p, "%s/t/x", tmpdir);
    write_text(p, "#!/bin/sh\n");
    cr_assert_eq(chmod(p, 0755), 0);
    FMT(outside, "%s/outside", tmpdir);
    write_text(outside, "o");
    cr_assert_eq(chmod(outside, 0644), 0);
    FMT(p, "%s/t/d/link", tmpdir);
    cr_assert_eq(symlink(outside, p), 0);

    FMT(p, "%s/t", tmpdir);
    cr_assert_eq(pt_make_readonly(p), 0);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0555);
    FMT(p, "%s/t/d", tmpdir);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0555);
    FMT(p, "%s/t/d/f", tmpdir);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0544);
    FMT(p, "%s/t/x", tmpdir);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0555, "execute bits are kept");
    cr_assert_eq(stat(outside, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0644, "a symlink's target outside was changed");
}

Test(fsutil, read_file_and_max)
{
    char p[PATH_MAX];
    char *out = NULL;
    size_t len = 0;
    FMT(p, "%s/small", tmpdir);
    write_text(p, "hello world");
    cr_assert_eq(pt_read_file(p, 1 << 20, &out, &len), 0);
    cr_assert_eq(len, 11);
    cr_assert_str_eq(out, "hello world");
    free(out);
    out = NULL;
    cr_assert_eq(pt_read_file(p, 11, &out, &len), 0, "exactly max bytes is allowed");
    cr_assert_str_eq(out, "hello world");
    free(out);
    out = NULL;
    cr_assert_eq(pt_read_file(p, 5, &out, &len), -EFBIG);
    cr_assert_null(out);
    cr_assert_eq(pt_read_file(p, 10, &out, &len), -EFBIG);

    FMT(p, "%s/big", tmpdir);
    write_size(p, 8192);
    cr_assert_eq(pt_read_file(p, 8192, &out, &len), 0, "exactly max bytes is allowed");
    cr_assert_eq(len, 8192);
    cr_assert_eq(out[0], 'x');
    cr_assert_eq(out[8191], 'x');
    cr_assert_eq(out[8192], '\0');
    free(out);
    out = NULL;
    cr_assert_eq(pt_read_file(p, 8191, &out, &len), -EFBIG);
    cr_assert_eq(pt_read_file(p, 4096, &out, &len), -EFBIG);
    cr_assert_eq(pt_read_file(p, 100000, &out, &len), 0);
    cr_assert_eq(len, 8192);
    free(out);
    out = NULL;

    FMT(p, "%s/empty", tmpdir);
    write_text(p, "");
    cr_assert_eq(pt_read_file(p, 0, &out, &len), 0);
    cr_assert_eq(len, 0);
    cr_assert_str_eq(out, "");
    free(out);
    out = NULL;

    FMT(p, "%s/missing", tmpdir);
    cr_assert_eq(pt_read_file(p, 100, &out, &len), -ENOENT);
}

Test(fsutil, write_file_atomic)
{
    char p[PATH_MAX];
    FMT(p, "%s/out.txt", tmpdir);
    cr_assert_eq(pt_write_file_atomic(p, "first version\n", 14, 0640), 0);
    char *out = NULL;
    size_t len;
    cr_assert_eq(pt_read_file(p, 1000, &out, &len), 0);
    cr_assert_str_eq(out, "first version\n");
    free(out);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0640);
    ino_t first = st.st_ino;

    cr_assert_eq(pt_write_file_atomic(p, "v2", 2, 0640), 0);
    cr_assert_eq(pt_read_file(p, 1000, &out, &len), 0);
    cr_assert_eq(len, 2);
    cr_assert_str_eq(out, "v2");
    free(out);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_neq(st.st_ino, first, "not replaced by rename: a reader could see a half-written file");

    /* nothing else left in the directory (no temp files) */
    int count = 0;
    DIR *d = opendir(tmpdir);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            count++;
    closedir(d);
    cr_assert_eq(count, 1, "temp files left behind");

    FMT(p, "%s/nodir/out.txt", tmpdir);
    cr_assert_eq(pt_write_file_atomic(p, "x", 1, 0644), -ENOENT);
}

Test(fsutil, which_in_path)
{
    char out[PATH_MAX];
    cr_assert_eq(pt_which("sh", out, sizeof out), 0, "sh not found in PATH=%s", getenv("PATH"));
    size_t n = strlen(out);
    cr_assert_geq(n, 3);
    cr_assert_str_eq(out + n - 3, "/sh");
    cr_assert_eq(access(out, X_OK), 0);
    cr_assert_eq(pt_which("pactown-surely-not-a-program", out, sizeof out), -ENOENT);
    cr_assert_eq(pt_which("", out, sizeof out), -ENOENT);

    /* a controlled PATH: empty dir first, a non-executable file is skipped */
    char empty[PATH_MAX], bin[PATH_MAX], bin2[PATH_MAX], p[PATH_MAX], path[3 * PATH_MAX];
    FMT(empty, "%s/empty", tmpdir);
    FMT(bin, "%s/bin", tmpdir);
    FMT(bin2, "%s/bin2", tmpdir);
    cr_assert_eq(mkdir(empty, 0755), 0);
    cr_assert_eq(mkdir(bin, 0755), 0);
    cr_assert_eq(mkdir(bin2, 0755), 0);
    FMT(p, "%s/tool", bin);
    write_text(p, "data");
    cr_assert_eq(chmod(p, 0644), 0);
    FMT(p, "%s/tool", bin2);
    write_text(p, "#!/bin/sh\n");
    cr_assert_eq(chmod(p, 0755), 0);
    FMT(p, "%s/subdir", bin);
    cr_assert_eq(mkdir(p, 0755), 0); /* a directory is not a program */
    FMT(path, "%s::%s:%s", empty, bin, bin2);
    cr_assert_eq(setenv("PATH", path, 1), 0);
    cr_assert_eq(pt_which("tool", out, sizeof out), 0);
    FMT(p, "%s/tool", bin2);
    cr_assert_str_eq(out, p);
    cr_assert_eq(pt_which("subdir", out, sizeof out), -ENOENT);
    cr_assert_eq(pt_which("sh", out, sizeof out), -ENOENT);
    /* a name with a slash is taken as is, no PATH search */
    cr_assert_eq(pt_which(p, out, sizeof out), 0);
    cr_assert_str_eq(out, p);
    FMT(p, "%s/nope", bin2);
    cr_assert_eq(pt_which(p, out, sizeof out), -ENOENT);
}

Test(fsutil, is_elf)
{
    char real[PATH_MAX];
    cr_assert_not_null(realpath("/bin/sh", real));
    cr_assert_eq(pt_is_elf(real), true, "%s is not ELF?", real);
    char p[PATH_MAX];
    FMT(p, "%s/script", tmpdir);
    write_text(p, "#!/bin/sh\necho hi\n");
    cr_assert_eq(chmod(p, 0755), 0);
    cr_assert_eq(pt_is_elf(p), false);
    FMT(p, "%s/short", tmpdir);
    write_text(p, "\177EL");
    cr_assert_eq(pt_is_elf(p), false);
    FMT(p, "%s/missing", tmpdir);
    cr_assert_eq(pt_is_elf(p), false);
}
