/* test_sandbox.c — sandbox writer: ids, nested writes, hostile paths,
 * planted symlinks, .venv link. Each test runs in its own mkdtemp directory. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/sandbox.h"
#include "testutil.h"

static char tmpdir[PATH_MAX];
static char root[PATH_MAX];    /* tmpdir/a/b/sandboxes (created by pt_sandbox_open) */
static char sbdir[PATH_MAX];   /* root/svc */
static char outside[PATH_MAX]; /* tmpdir/outside, must stay untouched */
static int sfd = -1;

static void setup(void)
{
    umask(022);
    tu_tmpdir(tmpdir, "sandbox");
    FMT(root, "%s/a/b/sandboxes", tmpdir);
    FMT(sbdir, "%s/svc", root);
    FMT(outside, "%s/outside", tmpdir);
    cr_assert_eq(mkdir(outside, 0755), 0);
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_sandbox_open(root, "svc", &sfd, &err);
    cr_assert_eq(rc, 0, "pt_sandbox_open: %d %s", rc, err.msg);
    cr_assert_geq(sfd, 0);
}

static void teardown(void)
{
    if (sfd >= 0)
        close(sfd);
    sfd = -1;
    tu_rmtree(tmpdir);
}

TestSuite(sandbox, .init = setup, .fini = teardown);

/* Read a whole file (not following a final symlink) into buf; returns length or -1. */
static ssize_t slurp(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r = read(fd, buf, n - 1);
    close(fd);
    if (r >= 0)
        buf[r] = '\0';
    return r;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void path_in(char *out, const char *rel)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", sbdir, rel);
    cr_assert(n > 0 && n < PATH_MAX);
}

Test(sandbox, service_ids)
{
    cr_assert(pt_service_id_valid("a"));
    cr_assert(pt_service_id_valid("my-svc.1"));
    cr_assert(pt_service_id_valid("A_b-9"));
    char id64[65], id65[66];
    memset(id64, 'x', 64);
    id64[64] = '\0';
    memset(id65, 'x', 65);
    id65[65] = '\0';
    cr_assert(pt_service_id_valid(id64));
    cr_assert_not(pt_service_id_valid(id65));
    cr_assert_not(pt_service_id_valid(""));
    cr_assert_not(pt_service_id_valid(NULL));
    cr_assert_not(pt_service_id_valid("."));
    cr_assert_not(pt_service_id_valid(".."));
    cr_assert_not(pt_service_id_valid("a/b"));
    cr_assert_not(pt_service_id_valid(".hidden"));
    cr_assert_not(pt_service_id_valid("-x"));
    cr_assert_not(pt_service_id_valid("a b"));
    cr_assert_not(pt_service_id_valid("a\nb"));
}

Test(sandbox, open_creates_and_reopens)
{
    struct stat st;
    cr_assert_eq(stat(sbdir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0755);
    int fl = fcntl(sfd, F_GETFD);
    cr_assert(fl & FD_CLOEXEC);

    int fd2 = -1;
    pt_error err;
    cr_assert_eq(pt_sandbox_open(root, "svc", &fd2, &err), 0, "%s", err.msg);
    close(fd2);

    fd2 = -7;
    cr_assert_eq(pt_sandbox_open(root, "../x", &fd2, &err), -EINVAL);
    cr_assert_eq(err.code, -EINVAL);
    cr_assert_eq(fd2, -7);
    cr_assert_eq(pt_sandbox_open(root, "", &fd2, &err), -EINVAL);
}

Test(sandbox, open_root_via_symlink_ok_but_not_service_symlink)
{
    char link[PATH_MAX], target[PATH_MAX];
    FMT(link, "%s/rootlink", tmpdir);
    cr_assert_eq(symlink(root, link), 0);
    int fd = -1;
    pt_error err;
    cr_assert_eq(pt_sandbox_open(link, "other", &fd, &err), 0, "%s", err.msg);
    close(fd);
    struct stat st;
    FMT(target, "%s/other", root);
    cr_assert_eq(lstat(target, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));

    /* root/evil -> outside: never opened */
    FMT(link, "%s/evil", root);
    cr_assert_eq(symlink(outside, link), 0);
    fd = -7;
    cr_assert_eq(pt_sandbox_open(root, "evil", &fd, &err), -ELOOP);
    cr_assert_eq(err.code, -ELOOP);
    cr_assert_not_null(strstr(err.msg, "evil"), "%s", err.msg);
    cr_assert_eq(fd, -7);
}

Test(sandbox, nested_files_content_and_mode)
{
    pt_error err;
    static const char main_py[] = "print('hello')\n";
    static const char util_py[] = "X = 1\n";
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/main.py", main_py, strlen(main_py), 0644, &err), 0, "%s", err.msg);
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/lib/deep/util.py", util_py, strlen(util_py), 0644, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(pt_sandbox_write_file(sfd, "top.txt", "", 0, 0600, &err), 0, "%s", err.msg);
    cr_assert_eq(pt_sandbox_write_file(sfd, "./x//y.txt", "y", 1, 0644, &err), 0, "%s", err.msg);

    char p[PATH_MAX], buf[256];
    struct stat st;
    path_in(p, "app/main.py");
    cr_assert_eq(slurp(p, buf, sizeof buf), (ssize_t)strlen(main_py));
    cr_assert_str_eq(buf, main_py);
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0644);

    path_in(p, "app/lib/deep/util.py");
    cr_assert_eq(slurp(p, buf, sizeof buf), (ssize_t)strlen(util_py));
    cr_assert_str_eq(buf, util_py);
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0644);

    path_in(p, "app/lib");
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0755);

    path_in(p, "top.txt");
    cr_assert_eq(slurp(p, buf, sizeof buf), 0);
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600);

    path_in(p, "x/y.txt");
    cr_assert_eq(slurp(p, buf, sizeof buf), 1);
    cr_assert_str_eq(buf, "y");

    /* no temp files left behind */
    path_in(p, "app");
    cr_assert_eq(count_entries(p), 2); /* main.py, lib */
    cr_assert_eq(count_entries(sbdir), 3); /* app, top.txt, x */
}

Test(sandbox, large_file_written_fully)
{
    size_t n = 3 * 1024 * 1024 + 17;
    unsigned char *data = malloc(n), *back = malloc(n + 1);
    cr_assert(data && back);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 31 + 7);
    pt_error err;
    cr_assert_eq(pt_sandbox_write_file(sfd, "big.bin", data, n, 0644, &err), 0, "%s", err.msg);
    char p[PATH_MAX];
    path_in(p, "big.bin");
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0);
    size_t got = 0;
    ssize_t r;
    while ((r = read(fd, back + got, n + 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    cr_assert_eq(got, n);
    cr_assert_eq(memcmp(data, back, n), 0);
    free(data);
    free(back);
}

Test(sandbox, rewrite_replaces_content)
{
    pt_error err;
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/x.py", "first version\n", 14, 0644, &err), 0, "%s", err.msg);
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/x.py", "v2", 2, 0644, &err), 0, "%s", err.msg);
    char p[PATH_MAX], buf[64];
    path_in(p, "app/x.py");
    cr_assert_eq(slurp(p, buf, sizeof buf), 2);
    cr_assert_str_eq(buf, "v2");
    path_in(p, "app");
    cr_assert_eq(count_entries(p), 1);
}

Test(sandbox, hostile_relpaths_rejected)
{
    static const char *bad[] = { "/etc/passwd", "../x", "a/../../x", "a\x01" "b", "", "..", "a/..",
                                 "a/", ".", "a\nb", "a/\x7f" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pt_error err;
        pt_error_clear(&err);
        int rc = pt_sandbox_write_file(sfd, bad[i], "x", 1, 0644, &err);
        cr_assert_eq(rc, -EINVAL, "path #%zu: rc %d", i, rc);
        cr_assert_eq(err.code, -EINVAL);
        cr_assert_neq(err.msg[0], '\0');
    }
    pt_error err;
    cr_assert_eq(pt_sandbox_write_file(sfd, NULL, "x", 1, 0644, &err), -EINVAL);
    /* reasons name the path; control bytes escaped */
    pt_sandbox_write_file(sfd, "../x", "x", 1, 0644, &err);
    cr_assert_not_null(strstr(err.msg, "'../x'"), "%s", err.msg);
    pt_sandbox_write_file(sfd, "/etc/passwd", "x", 1, 0644, &err);
    cr_assert_not_null(strstr(err.msg, "/etc/passwd"), "%s", err.msg);
    pt_sandbox_write_file(sfd, "a\x01" "b", "x", 1, 0644, &err);
    cr_assert_not_null(strstr(err.msg, "a\\x01b"), "%s", err.msg);

    /* nothing was created in the sandbox nor outside */
    cr_assert_eq(count_entries(sbdir), 0);
    cr_assert_eq(count_entries(outside), 0);
}

Test(sandbox, directory_symlink_not_followed)
{
    char p[PATH_MAX];
    path_in(p, "app");
    cr_assert_eq(symlink(outside, p), 0);
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_sandbox_write_file(sfd, "app/x.py", "pwned", 5, 0644, &err);
    cr_assert_eq(rc, -ELOOP, "rc %d %s", rc, err.msg);
    cr_assert_eq(err.code, -ELOOP);
    cr_assert_not_null(strstr(err.msg, "app"), "%s", err.msg);
    rc = pt_sandbox_write_file(sfd, "app/sub/x.py", "pwned", 5, 0644, &err);
    cr_assert_eq(rc, -ELOOP);
    cr_assert_eq(count_entries(outside), 0);

    /* deeper: real/ is a directory, real/sub -> outside; "deep" must not be created outside */
    cr_assert_eq(pt_sandbox_write_file(sfd, "real/ok.txt", "ok", 2, 0644, &err), 0, "%s", err.msg);
    path_in(p, "real/sub");
    cr_assert_eq(symlink(outside, p), 0);
    rc = pt_sandbox_write_file(sfd, "real/sub/deep/x.py", "pwned", 5, 0644, &err);
    cr_assert_eq(rc, -ELOOP);
    cr_assert_not_null(strstr(err.msg, "real/sub"), "%s", err.msg);
    cr_assert_eq(count_entries(outside), 0);

    /* dangling directory symlink: also refused, nothing created at its target */
    char dangling[PATH_MAX];
    FMT(dangling, "%s/newdir", outside);
    path_in(p, "dang");
    cr_assert_eq(symlink(dangling, p), 0);
    rc = pt_sandbox_write_file(sfd, "dang/x.py", "pwned", 5, 0644, &err);
    cr_assert_eq(rc, -ELOOP);
    cr_assert_eq(count_entries(outside), 0);

    /* a regular file used as a directory */
    rc = pt_sandbox_write_file(sfd, "real/ok.txt/x", "x", 1, 0644, &err);
    cr_assert_eq(rc, -ENOTDIR);
}

Test(sandbox, final_symlink_replaced_target_untouched)
{
    char target[PATH_MAX], p[PATH_MAX], buf[64];
    FMT(target, "%s/passwd", outside);
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "secret", 6), 6);
    close(fd);
    struct stat before, after;
    cr_assert_eq(stat(target, &before), 0);

    pt_error err;
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/.keep", "", 0, 0644, &err), 0, "%s", err.msg);
    path_in(p, "app/x.py");
    cr_assert_eq(symlink(target, p), 0);
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/x.py", "new", 3, 0644, &err), 0, "%s", err.msg);

    struct stat st;
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert(S_ISREG(st.st_mode), "x.py is still a symlink");
    cr_assert_eq(slurp(p, buf, sizeof buf), 3);
    cr_assert_str_eq(buf, "new");
    cr_assert_eq(slurp(target, buf, sizeof buf), 6);
    cr_assert_str_eq(buf, "secret");
    cr_assert_eq(stat(target, &after), 0);
    cr_assert_eq(after.st_ino, before.st_ino);
    cr_assert_eq(after.st_mode, before.st_mode);
    cr_assert_eq(count_entries(outside), 1);

    /* a symlink planted at the temp name is not followed either */
    char tmpname[PATH_MAX];
    FMT(tmpname, "%s/app/y.py.pactown-tmp.%ld", sbdir, (long)getpid());
    cr_assert_eq(symlink(target, tmpname), 0);
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/y.py", "yy", 2, 0644, &err), 0, "%s", err.msg);
    cr_assert_eq(slurp(target, buf, sizeof buf), 6);
    cr_assert_str_eq(buf, "secret");
    cr_assert_eq(lstat(tmpname, &st), -1);
    cr_assert_eq(errno, ENOENT);
    path_in(p, "app/y.py");
    cr_assert_eq(slurp(p, buf, sizeof buf), 2);
    cr_assert_str_eq(buf, "yy");
}

Test(sandbox, final_name_is_directory)
{
    pt_error err;
    cr_assert_eq(pt_sandbox_write_file(sfd, "d/inner", "x", 1, 0644, &err), 0, "%s", err.msg);
    int rc = pt_sandbox_write_file(sfd, "d", "x", 1, 0644, &err);
    cr_assert_eq(rc, -EISDIR, "rc %d %s", rc, err.msg);
    cr_assert_eq(count_entries(sbdir), 1); /* temp file cleaned up */
}

Test(sandbox, venv_link_created_and_replaced)
{
    pt_error err;
    char p[PATH_MAX], buf[PATH_MAX];
    path_in(p, ".venv");
    cr_assert_eq(pt_sandbox_link_venv(sfd, "/mnt/pactown/by-deps/0123456789abcdef0123456789abcdef", &err), 0,
                 "%s", err.msg);
    ssize_t l = readlink(p, buf, sizeof buf - 1);
    cr_assert_gt(l, 0);
    buf[l] = '\0';
    cr_assert_str_eq(buf, "/mnt/pactown/by-deps/0123456789abcdef0123456789abcdef");

    cr_assert_eq(pt_sandbox_link_venv(sfd, "/mnt/pactown/by-deps/ffffffffffffffffffffffffffffffff", &err), 0,
                 "%s", err.msg);
    l = readlink(p, buf, sizeof buf - 1);
    cr_assert_gt(l, 0);
    buf[l] = '\0';
    cr_assert_str_eq(buf, "/mnt/pactown/by-deps/ffffffffffffffffffffffffffffffff");
    cr_assert_eq(count_entries(sbdir), 1); /* no temp link left */

    cr_assert_eq(pt_sandbox_link_venv(sfd, "relative/path", &err), -EINVAL);
    cr_assert_eq(pt_sandbox_link_venv(sfd, NULL, &err), -EINVAL);
    cr_assert_eq(pt_sandbox_link_venv(sfd, "/a\nb", &err), -EINVAL);
    l = readlink(p, buf, sizeof buf - 1);
    buf[l] = '\0';
    cr_assert_str_eq(buf, "/mnt/pactown/by-deps/ffffffffffffffffffffffffffffffff");
}

Test(sandbox, venv_refuses_real_directory)
{
    char p[PATH_MAX], q[PATH_MAX];
    path_in(p, ".venv");
    cr_assert_eq(mkdir(p, 0755), 0);
    path_in(q, ".venv/pyvenv.cfg");
    int fd = open(q, O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    pt_error err;
    pt_error_clear(&err);
    cr_assert_eq(pt_sandbox_link_venv(sfd, "/mnt/pactown/by-deps/abc", &err), -EEXIST);
    cr_assert_eq(err.code, -EEXIST);
    cr_assert_not_null(strstr(err.msg, ".venv"), "%s", err.msg);
    struct stat st;
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(access(q, F_OK), 0);
    cr_assert_eq(count_entries(sbdir), 1);

    /* an empty directory is refused too */
    cr_assert_eq(unlink(q), 0);
    cr_assert_eq(pt_sandbox_link_venv(sfd, "/mnt/pactown/by-deps/abc", &err), -EEXIST);
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
}

/* a sandbox prepared again: a file that holds the same bytes, mode and owner
 * already is left as it is (no temp file, no rename: the same inode); any
 * difference, or a second link, and it is replaced */
Test(sandbox, unchanged_file_left_as_it_is)
{
    pt_error err;
    char p[PATH_MAX], other[PATH_MAX], buf[64];
    struct stat a, b;
    path_in(p, "app/x.py");
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/x.py", "same\n", 5, 0644, &err), 0, "%s", err.msg);
    cr_assert_eq(stat(p, &a), 0);
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/x.py", "same\n", 5, 0644, &err), 0, "%s", err.msg);
    cr_assert_eq(stat(p, &b), 0);
    cr_assert_eq(b.st_ino, a.st_ino, "an unchanged file was written again");
    /* another mode: written (the mode is exact) */
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/x.py", "same\n", 5, 0600, &err), 0, "%s", err.msg);
    cr_assert_eq(stat(p, &b), 0);
    cr_assert_neq(b.st_ino, a.st_ino);
    cr_assert_eq(b.st_mode & 07777, 0600);
    /* the same size, another byte */
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/x.py", "samE\n", 5, 0600, &err), 0, "%s", err.msg);
    cr_assert_eq(slurp(p, buf, sizeof buf), 5);
    cr_assert_str_eq(buf, "samE\n");
    /* a second link (someone else's file too): replaced, the other link keeps its inode */
    FMT(other, "%s/elsewhere", outside);
    cr_assert_eq(link(p, other), 0);
    cr_assert_eq(stat(p, &a), 0);
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/x.py", "samE\n", 5, 0600, &err), 0, "%s", err.msg);
    cr_assert_eq(stat(p, &b), 0);
    cr_assert_neq(b.st_ino, a.st_ino, "a file with two links was left in place");
    cr_assert_eq(b.st_nlink, 1);
    cr_assert_eq(stat(other, &b), 0);
    cr_assert_eq(b.st_ino, a.st_ino);
    /* an empty file, twice */
    path_in(p, "empty");
    cr_assert_eq(pt_sandbox_write_file(sfd, "empty", NULL, 0, 0644, &err), 0, "%s", err.msg);
    cr_assert_eq(stat(p, &a), 0);
    cr_assert_eq(pt_sandbox_write_file(sfd, "empty", NULL, 0, 0644, &err), 0, "%s", err.msg);
    cr_assert_eq(stat(p, &b), 0);
    cr_assert_eq(b.st_ino, a.st_ino);
    /* a symlink to a file with the same bytes is still replaced, its target untouched */
    char target[PATH_MAX];
    FMT(target, "%s/same", outside);
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "same\n", 5), 5);
    close(fd);
    path_in(p, "app/l.py");
    cr_assert_eq(symlink(target, p), 0);
    cr_assert_eq(pt_sandbox_write_file(sfd, "app/l.py", "same\n", 5, 0644, &err), 0, "%s", err.msg);
    cr_assert_eq(lstat(p, &b), 0);
    cr_assert(S_ISREG(b.st_mode), "l.py is still a symlink");
    path_in(p, "app");
    cr_assert_eq(count_entries(p), 2, "a temp file was left");
}

Test(sandbox, file_holds)
{
    pt_error err;
    cr_assert_eq(pt_sandbox_write_file(sfd, "f", "abcdef", 6, 0644, &err), 0, "%s", err.msg);
    char p[PATH_MAX];
    path_in(p, "f");
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert(pt_sandbox_file_holds(fd, "abcdef", 6));
    cr_assert(!pt_sandbox_file_holds(fd, "abcdeg", 6));
    cr_assert(!pt_sandbox_file_holds(fd, "abcde", 5));
    cr_assert(!pt_sandbox_file_holds(fd, "abcdefg", 7));
    cr_assert(!pt_sandbox_file_holds(fd, "", 0));
    cr_assert_eq(lseek(fd, 0, SEEK_CUR), 0, "the offset moved");
    close(fd);
    /* more than one 64 KiB piece, differing in the last */
    size_t n = 200000;
    char *big = malloc(n);
    cr_assert_not_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    cr_assert_eq(pt_sandbox_write_file(sfd, "big", big, n, 0644, &err), 0, "%s", err.msg);
    path_in(p, "big");
    fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert(pt_sandbox_file_holds(fd, big, n));
    big[n - 1] ^= 1;
    cr_assert(!pt_sandbox_file_holds(fd, big, n));
    close(fd);
    free(big);
    fd = open(sbdir, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0);
    cr_assert(!pt_sandbox_file_holds(fd, "", 0), "a directory holds nothing");
    close(fd);
}

Test(sandbox, venv_link_to_the_same_target_left_as_it_is)
{
    pt_error err;
    char p[PATH_MAX], buf[PATH_MAX];
    struct stat a, b;
    path_in(p, ".venv");
    cr_assert_eq(pt_sandbox_link_venv(sfd, "/mnt/pactown/by-deps/k1", &err), 0, "%s", err.msg);
    cr_assert_eq(lstat(p, &a), 0);
    cr_assert_eq(pt_sandbox_link_venv(sfd, "/mnt/pactown/by-deps/k1", &err), 0, "%s", err.msg);
    cr_assert_eq(lstat(p, &b), 0);
    cr_assert_eq(b.st_ino, a.st_ino, "the same link was made again");
    /* a target that the current one starts with, and another: replaced */
    cr_assert_eq(pt_sandbox_link_venv(sfd, "/mnt/pactown/by-deps/k", &err), 0, "%s", err.msg);
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    cr_assert_geq(n, 0);
    buf[n] = '\0';
    cr_assert_str_eq(buf, "/mnt/pactown/by-deps/k");
    cr_assert_eq(pt_sandbox_link_venv(sfd, "/mnt/pactown/by-deps/k2", &err), 0, "%s", err.msg);
    n = readlink(p, buf, sizeof buf - 1);
    cr_assert_geq(n, 0);
    buf[n] = '\0';
    cr_assert_str_eq(buf, "/mnt/pactown/by-deps/k2");
}
