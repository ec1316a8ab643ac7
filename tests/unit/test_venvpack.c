/* test_venvpack.c — a venv as layers and back (pactown/venvpack.h): one
 * layer per distribution, reproducible across copies made at other times,
 * bytecode valid after the unpack; hostile archives refused with nothing
 * written outside; and the registry setting's parser (pactown/ociref.h). */
#include "testutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <utime.h>

#include "pactown/ociref.h"
#include "pactown/venvpack.h"

#define INTERP "/usr/bin/python3"

static void put(const char *root, const char *rel, const char *text, mode_t mode)
{
    char p[PATH_MAX];
    FMT(p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s: %s", p, strerror(errno));
    fputs(text, f);
    fclose(f);
    chmod(p, mode);
}

/* a .pyc header (PEP 552, timestamp) for the source at rel */
static void put_pyc(const char *root, const char *src_rel, const char *pyc_rel)
{
    char p[PATH_MAX];
    FMT(p, "%s/%s", root, src_rel);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    unsigned char h[20] = { 0xa7, 0x0d, 0x0d, 0x0a };
    uint32_t mt = (uint32_t)st.st_mtime, sz = (uint32_t)st.st_size;
    for (int i = 0; i < 4; i++) {
        h[8 + i] = (unsigned char)(mt >> (8 * i));
        h[12 + i] = (unsigned char)(sz >> (8 * i));
    }
    memcpy(h + 16, "code", 4);
    FMT(p, "%s/%s", root, pyc_rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, h, sizeof h), (ssize_t)sizeof h);
    close(fd);
}

#define SP "lib/python3.11/site-packages"

/* a venv with one distribution (foo 1.0), its source's mtime at mtime */
static void make_venv(const char *root, time_t mtime)
{
    tu_mkdirs(root, SP "/foo/__pycache__");
    tu_mkdirs(root, SP "/foo-1.0.dist-info");
    tu_mkdirs(root, "bin");
    put(root, "pyvenv.cfg", "home = /usr/bin\n", 0444);
    put(root, ".pactown-key", "0123456789abcdef0123456789abcdef\n", 0444);
    put(root, "bin/foo", "#!/store/0123/bin/python\nimport foo\n", 0555);
    put(root, SP "/foo/__init__.py", "X = 1\n", 0444);
    put(root, SP "/_virtualenv.py", "# venv's own\n", 0444);
    put(root, SP "/foo-1.0.dist-info/METADATA", "Name: foo\nVersion: 1.0\n", 0444);
    put(root, SP "/foo-1.0.dist-info/REQUESTED", "", 0444);
    put(root, SP "/foo-1.0.dist-info/RECORD",
        "foo/__init__.py,sha256=x,6\n\"foo-1.0.dist-info/METADATA\",,\nfoo-1.0.dist-info/RECORD,,\n"
        "foo-1.0.dist-info/REQUESTED,,\n../../../bin/foo,,\n", 0444);
    char p[PATH_MAX];
    FMT(p, "%s/%s", root, SP "/foo/__init__.py");
    struct utimbuf ut = { mtime, mtime };
    utime(p, &ut);
    put_pyc(root, SP "/foo/__init__.py", SP "/foo/__pycache__/__init__.cpython-311.pyc");
    FMT(p, "%s/bin/python", root);
    cr_assert_eq(symlink(INTERP, p), 0);
    FMT(p, "%s/bin/python3", root);
    cr_assert_eq(symlink("python", p), 0);
}

/* the paths in a layer blob, in archive order, "\n"-joined into out */
static void layer_paths(int fd, char *out, size_t n)
{
    lseek(fd, 0, SEEK_SET);
    struct archive *a = archive_read_new();
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    cr_assert_eq(archive_read_open_fd(a, fd, 4096), ARCHIVE_OK);
    struct archive_entry *e;
    size_t k = 0;
    out[0] = '\0';
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        cr_assert_eq(archive_entry_mtime(e), PT_PACK_MTIME, "%s: mtime", archive_entry_pathname(e));
        cr_assert_eq(archive_entry_uid(e), 0);
        k += (size_t)snprintf(out + k, n - k, "%s\n", archive_entry_pathname(e));
    }
    archive_read_free(a);
}

Test(venvpack, one_layer_per_distribution_then_the_venv)
{
    char root[PATH_MAX], tmp[PATH_MAX];
    tu_tmpdir(root, "pack");
    tu_tmpdir(tmp, "packtmp");
    make_venv(root, 1700000000);
    pt_layer *l;
    size_t n;
    pt_error err = { 0 };
    cr_assert_eq(pt_venv_pack(root, tmp, &l, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(l[0].name, "foo-1.0");
    cr_assert_str_eq(l[1].name, "venv");
    char paths[4096];
    layer_paths(l[0].fd, paths, sizeof paths);
    /* (libarchive writes a directory's name with a trailing '/') */
    cr_assert_str_eq(paths, "lib/\nlib/python3.11/\n" SP "/\n" SP "/foo/\n" SP "/foo-1.0.dist-info/\n"
                            SP "/foo-1.0.dist-info/METADATA\n" SP "/foo-1.0.dist-info/RECORD\n" SP "/foo/__init__.py\n"
                            SP "/foo/__pycache__/\n" SP "/foo/__pycache__/__init__.cpython-311.pyc\n");
    cr_assert_eq(l[0].files, 4);
    layer_paths(l[1].fd, paths, sizeof paths);
    /* REQUESTED (this venv asked for foo by name), the script, the venv's own files */
    cr_assert(strstr(paths, SP "/foo-1.0.dist-info/REQUESTED\n"), "%s", paths);
    cr_assert(strstr(paths, "bin/foo\n") && strstr(paths, "bin/python\n") && strstr(paths, "pyvenv.cfg\n"), "%s", paths);
    cr_assert(strstr(paths, SP "/_virtualenv.py\n"), "%s", paths);
    cr_assert_null(strstr(paths, "__init__.py\n"), "the distribution's file is in the venv layer too: %s", paths);
    pt_layers_free(l, n);
    tu_rmtree(root);
    tu_rmtree(tmp);
}

Test(venvpack, reproducible_across_copies_made_at_other_times)
{
    char a[PATH_MAX], b[PATH_MAX], tmp[PATH_MAX];
    tu_tmpdir(a, "packa");
    tu_tmpdir(b, "packb");
    tu_tmpdir(tmp, "packtmp");
    make_venv(a, 1700000000);
    make_venv(b, 1800000000); /* another host unpacked the same wheel at another time */
    pt_layer *la, *lb;
    size_t na, nb;
    pt_error err = { 0 };
    cr_assert_eq(pt_venv_pack(a, tmp, &la, &na, &err), 0, "%s", err.msg);
    cr_assert_eq(pt_venv_pack(b, tmp, &lb, &nb, &err), 0, "%s", err.msg);
    cr_assert_eq(na, nb);
    cr_assert_str_eq(la[0].digest, lb[0].digest, "the distribution's layer differs between the copies");
    cr_assert_str_eq(la[1].digest, lb[1].digest, "the venv layer differs between identical venvs");
    pt_layers_free(la, na);
    pt_layers_free(lb, nb);
    tu_rmtree(a);
    tu_rmtree(b);
    tu_rmtree(tmp);
}

Test(venvpack, unpacked_the_same_with_valid_bytecode)
{
    char root[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX], p[PATH_MAX];
    tu_tmpdir(root, "pack");
    tu_tmpdir(tmp, "packtmp");
    tu_tmpdir(dst, "unpack");
    make_venv(root, 1700000000);
    pt_layer *l;
    size_t n;
    pt_error err = { 0 };
    cr_assert_eq(pt_venv_pack(root, tmp, &l, &n, &err), 0, "%s", err.msg);
    int rootfd = open(dst, O_RDONLY | O_DIRECTORY);
    pt_unpack u = { .interpreter = INTERP, .max_bytes = 1 << 20 };
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(pt_layer_unpack(l[i].fd, rootfd, &u, &err), 0, "%s: %s", l[i].name, err.msg);
    close(rootfd);
    cr_assert_eq(u.files, 9); /* pyvenv.cfg, .pactown-key, bin/foo, 2 sources, METADATA, REQUESTED, RECORD, the .pyc */
    char target[64] = "";
    FMT(p, "%s/bin/python", dst);
    cr_assert_gt(readlink(p, target, sizeof target - 1), 0);
    cr_assert_str_eq(target, INTERP);
    /* the source's mtime is PT_PACK_MTIME, and the .pyc's header says so */
    struct stat st;
    FMT(p, "%s/" SP "/foo/__init__.py", dst);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mtime, PT_PACK_MTIME);
    cr_assert_eq(st.st_mode & 07777, 0444);
    FMT(p, "%s/" SP "/foo/__pycache__/__init__.cpython-311.pyc", dst);
    unsigned char h[16];
    int fd = open(p, O_RDONLY);
    cr_assert_eq(read(fd, h, 16), 16);
    close(fd);
    uint32_t mt = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
    cr_assert_eq(mt, PT_PACK_MTIME);
    FMT(p, "%s/bin/foo", dst);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0555, "the script keeps its x bits");
    pt_layers_free(l, n);
    tu_rmtree(root);
    tu_rmtree(tmp);
    tu_rmtree(dst);
}

/* ---- hostile archives ---- */

struct ent { const char *path; mode_t type; mode_t perm; const char *link; const char *hardlink; };

/* a tar+zstd (or plain tar: zstd false) of the entries into an unnamed file */
static int make_archive(const struct ent *ents, size_t n, bool zstd, size_t truncate_to)
{
    int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    cr_assert(fd >= 0);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (zstd)
        archive_write_add_filter_zstd(a);
    cr_assert_eq(archive_write_open_fd(a, fd), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ents[i].path);
        archive_entry_set_filetype(e, ents[i].type);
        archive_entry_set_perm(e, ents[i].perm);
        if (ents[i].type == AE_IFCHR)
            archive_entry_set_rdev(e, makedev(1, 3));
        if (ents[i].link)
            archive_entry_set_symlink(e, ents[i].link);
        if (ents[i].hardlink)
            archive_entry_set_hardlink(e, ents[i].hardlink);
        if (ents[i].type == AE_IFREG && !ents[i].hardlink)
            archive_entry_set_size(e, 6);
        archive_write_header(a, e);
        if (ents[i].type == AE_IFREG && !ents[i].hardlink)
            archive_write_data(a, "owned\n", 6);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    if (truncate_to)
        cr_assert_eq(ftruncate(fd, (off_t)truncate_to), 0);
    return fd;
}

/* unpack ents into a fresh directory inside a fresh directory: the return
 * code, and nothing may appear beside the venv */
static int unpack_hostile(const struct ent *ents, size_t n, bool zstd, size_t truncate_to, char *msg, size_t mn)
{
    char outer[PATH_MAX], venv[PATH_MAX];
    tu_tmpdir(outer, "hostile");
    FMT(venv, "%s/venv", outer);
    cr_assert_eq(mkdir(venv, 0755), 0);
    int fd = make_archive(ents, n, zstd, truncate_to);
    int rootfd = open(venv, O_RDONLY | O_DIRECTORY);
    pt_unpack u = { .interpreter = INTERP, .max_bytes = 1 << 20 };
    pt_error err = { 0 };
    int rc = pt_layer_unpack(fd, rootfd, &u, &err);
    snprintf(msg, mn, "%s", err.msg);
    close(rootfd);
    close(fd);
    /* nothing outside the venv: the outer directory holds the venv alone */
    char cmd[PATH_MAX + 64];
    FMT(cmd, "test \"$(ls -A '%s')\" = venv", outer);
    cr_assert_eq(system(cmd), 0, "an entry was written beside the venv (%s)", msg);
    cr_assert_eq(access("/tmp/owned", F_OK), -1);
    tu_rmtree(outer);
    return rc;
}

#define REFUSED(want_rc, want_msg, ...)                                                                      \
    do {                                                                                                     \
        const struct ent e_[] = { __VA_ARGS__ };                                                             \
        char m_[512];                                                                                        \
        int rc_ = unpack_hostile(e_, sizeof e_ / sizeof e_[0], true, 0, m_, sizeof m_);                     \
        cr_assert_eq(rc_, want_rc, "%s: rc %d (%s)", e_[sizeof e_ / sizeof e_[0] - 1].path, rc_, m_);      \
        cr_assert(strstr(m_, want_msg), "message '%s' lacks '%s'", m_, want_msg);                           \
    } while (0)

Test(venvpack, hostile_paths_refused)
{
    REFUSED(-EPERM, "a '..'", { "../owned", AE_IFREG, 0644, NULL, NULL });
    REFUSED(-EPERM, "an absolute path", { "/tmp/owned", AE_IFREG, 0644, NULL, NULL });
    REFUSED(-EPERM, "a '..'", { "a/../../owned", AE_IFREG, 0644, NULL, NULL });
    REFUSED(-EPERM, "control byte", { "a\nb", AE_IFREG, 0644, NULL, NULL });
}

Test(venvpack, hostile_symlinks_refused)
{
    REFUSED(-EPERM, "absolute path \"/etc\"", { "lib64", AE_IFLNK, 0777, "/etc", NULL });
    REFUSED(-EPERM, "only bin/python may point at the interpreter", { "bin/python", AE_IFLNK, 0777, "/bin/sh", NULL });
    REFUSED(-EPERM, "outside the venv", { "lib/up", AE_IFLNK, 0777, "../../x", NULL });
    /* a control byte in a target: refused, and quoted in the message (it could forge a log line) */
    REFUSED(-EPERM, "\"a\\x0aready (pulled)\", with a control byte", { "l", AE_IFLNK, 0777, "a\nready (pulled)", NULL });
    /* a file through a symlink the archive made: never followed */
    REFUSED(-EPERM, "its directory is a symlink", { "d", AE_IFLNK, 0777, "sub", NULL }, { "sub", AE_IFDIR, 0755, NULL, NULL },
            { "d/f", AE_IFREG, 0644, NULL, NULL });
    REFUSED(-EPERM, "a second entry", { "f", AE_IFREG, 0644, NULL, NULL }, { "f", AE_IFLNK, 0777, "g", NULL });
    /* a chain: each link stays lexically, but x resolves through u (the venv's root) and climbs out */
    REFUSED(-EPERM, "outside the venv", { "a/b/u", AE_IFLNK, 0777, "../..", NULL },
            { "x", AE_IFLNK, 0777, "a/b/u/../../../../../../../../etc/hostname", NULL });
    REFUSED(-EPERM, "outside the venv", { "lib/a", AE_IFLNK, 0777, "b/../../x", NULL });
}

Test(venvpack, every_entry_counts_against_max_entries)
{
    /* directories and symlinks are inodes too: a layer of empty directories is not free */
    char outer[PATH_MAX];
    tu_tmpdir(outer, "entries");
    const struct ent e[] = { { "d1", AE_IFDIR, 0755, NULL, NULL }, { "d2", AE_IFDIR, 0755, NULL, NULL },
                             { "l1", AE_IFLNK, 0777, "d1", NULL }, { "d3", AE_IFDIR, 0755, NULL, NULL } };
    int fd = make_archive(e, 4, true, 0);
    int rootfd = open(outer, O_RDONLY | O_DIRECTORY);
    pt_unpack u = { .interpreter = INTERP, .max_bytes = 1 << 20, .max_entries = 3 };
    pt_error err = { 0 };
    cr_assert_eq(pt_layer_unpack(fd, rootfd, &u, &err), -EPERM, "%s", err.msg);
    cr_assert(strstr(err.msg, "more than 3 entries"), "%s", err.msg);
    close(rootfd);
    close(fd);
    tu_rmtree(outer);
}

Test(venvpack, devices_setuid_and_hard_links_refused)
{
    REFUSED(-EPERM, "a device", { "null", AE_IFCHR, 0666, NULL, NULL });
    REFUSED(-EPERM, "setuid", { "bin/su", AE_IFREG, 04755, NULL, NULL });
    REFUSED(-EPERM, "a hard link", { "a", AE_IFREG, 0644, NULL, NULL }, { "b", AE_IFREG, 0644, NULL, "a" });
    REFUSED(-EPERM, "a second entry", { "a", AE_IFREG, 0644, NULL, NULL }, { "a", AE_IFREG, 0644, NULL, NULL });
}

Test(venvpack, truncated_or_not_zstd_refused)
{
    const struct ent e[] = { { "a", AE_IFREG, 0644, NULL, NULL }, { "b", AE_IFREG, 0644, NULL, NULL } };
    char m[512];
    cr_assert_eq(unpack_hostile(e, 2, false, 0, m, sizeof m), -EBADMSG, "plain tar: %s", m);
    cr_assert_eq(unpack_hostile(e, 2, true, 40, m, sizeof m), -EBADMSG, "truncated: %s", m);
}

Test(venvpack, the_interpreter_link_is_allowed)
{
    const struct ent e[] = { { "bin", AE_IFDIR, 0755, NULL, NULL }, { "bin/python", AE_IFLNK, 0777, INTERP, NULL },
                             { "bin/python3", AE_IFLNK, 0777, "python", NULL }, { "lib64", AE_IFLNK, 0777, "lib", NULL } };
    char m[512];
    cr_assert_eq(unpack_hostile(e, 4, true, 0, m, sizeof m), 0, "%s", m);
}

/* the directories of one path stay open for the next (unpack.c's parent
 * cache): switching between siblings, going up and down, and paths deeper
 * than the cache's slots must each land in the right directory */
Test(venvpack, parents_across_siblings_and_deep_paths)
{
    /* 100 directories deep (the cache keeps 64): d0/d1/.../d99/f, then d0/.../d99/e after a path above */
    static char deep[2][1024];
    size_t k = 0;
    for (int i = 0; i < 100; i++)
        k += (size_t)snprintf(deep[0] + k, sizeof deep[0] - k, "d%d/", i);
    memcpy(deep[1], deep[0], k);
    deep[0][k] = 'e';
    deep[1][k] = 'f';
    const struct ent e[] = { { "lib/p/__init__.py", AE_IFREG, 0644, NULL, NULL },
                             { "lib/p/__pycache__/x.pyc", AE_IFREG, 0644, NULL, NULL },
                             { "lib/p/a.py", AE_IFREG, 0644, NULL, NULL },
                             { "lib/q/b.py", AE_IFREG, 0644, NULL, NULL },
                             { "lib/p/__pycache__/y.pyc", AE_IFREG, 0644, NULL, NULL },
                             { deep[1], AE_IFREG, 0644, NULL, NULL },
                             { "top", AE_IFREG, 0644, NULL, NULL },
                             { deep[0], AE_IFREG, 0644, NULL, NULL },
                             { "lib/r", AE_IFLNK, 0777, "q", NULL } };
    char outer[PATH_MAX], venv[PATH_MAX], p[PATH_MAX * 2];
    tu_tmpdir(outer, "parents");
    FMT(venv, "%s/venv", outer);
    cr_assert_eq(mkdir(venv, 0755), 0);
    int fd = make_archive(e, sizeof e / sizeof e[0], true, 0);
    int rootfd = open(venv, O_RDONLY | O_DIRECTORY);
    pt_unpack u = { .interpreter = INTERP, .max_bytes = 1 << 20 };
    pt_error err = { 0 };
    cr_assert_eq(pt_layer_unpack(fd, rootfd, &u, &err), 0, "%s", err.msg);
    close(rootfd);
    close(fd);
    for (size_t i = 0; i < 8; i++) {
        FMT(p, "%s/%s", venv, e[i].path);
        char buf[16] = "";
        FILE *f = fopen(p, "r");
        cr_assert(f, "%s is missing", e[i].path);
        cr_assert(fgets(buf, sizeof buf, f));
        fclose(f);
        cr_assert_str_eq(buf, "owned\n", "%s", e[i].path);
    }
    FMT(p, "%s/lib/p", venv);
    DIR *d = opendir(p);
    cr_assert(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += de->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(n, 3, "lib/p holds __init__.py, __pycache__ and a.py, nothing else");
    tu_rmtree(outer);
    /* a directory of the open ones made a symlink's sibling: a path through the symlink is still refused */
    REFUSED(-EPERM, "its directory is a symlink", { "a/b/f1", AE_IFREG, 0644, NULL, NULL },
            { "a/c", AE_IFLNK, 0777, "b", NULL }, { "a/c/f2", AE_IFREG, 0644, NULL, NULL });
}

/* ---- the registry setting ---- */

Test(ociref, parses_and_refuses)
{
    pt_ociref r;
    pt_error err = { 0 };
    cr_assert_eq(pt_ociref_parse("https://ghcr.io/acme/venvs", &r, &err), 0, "%s", err.msg);
    cr_assert(r.https);
    cr_assert_str_eq(r.host, "ghcr.io");
    cr_assert_str_eq(r.repository, "acme/venvs");
    cr_assert_eq(pt_ociref_parse("http://127.0.0.1:5000/pt/venvs/", &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.host, "127.0.0.1:5000");
    cr_assert_str_eq(r.repository, "pt/venvs");
    cr_assert_eq(pt_ociref_parse("http://[::1]:5000/a", &r, &err), 0, "%s", err.msg);
    cr_assert_eq(pt_ociref_parse("http://localhost/a__b.c-d", &r, &err), 0, "%s", err.msg);
    cr_assert_eq(pt_ociref_parse("http://registry.example.com/a", &r, &err), -EINVAL);
    cr_assert(strstr(err.msg, "plain http only to a loopback host"), "%s", err.msg);
    cr_assert_eq(pt_ociref_parse("https://user:pw@ghcr.io/a", &r, &err), -EINVAL);
    cr_assert(strstr(err.msg, "no credentials in the URL"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "pw@"), "the password is in the message: %s", err.msg);
    cr_assert_eq(pt_ociref_parse("https://ghcr.io/", &r, &err), -EINVAL);
    cr_assert_eq(pt_ociref_parse("https://ghcr.io/Acme", &r, &err), -EINVAL);
    cr_assert_eq(pt_ociref_parse("https://ghcr.io/a..b", &r, &err), -EINVAL);
    cr_assert_eq(pt_ociref_parse("https://ghcr.io/a?x=1", &r, &err), -EINVAL);
    cr_assert_eq(pt_ociref_parse("ftp://ghcr.io/a", &r, &err), -EINVAL);
    cr_assert_eq(pt_ociref_parse("http://127.0.0.1.evil.com/a", &r, &err), -EINVAL, "not loopback");
    /* where plain http may go (a token realm named by a loopback registry, too) */
    cr_assert(pt_ociref_http_loopback("http://127.0.0.1:5001/auth?x=1"));
    cr_assert(pt_ociref_http_loopback("http://[::1]/token"));
    cr_assert(!pt_ociref_http_loopback("http://auth.example.com/token"), "a realm on another host, in clear text");
    cr_assert(!pt_ociref_http_loopback("http://127.0.0.1@evil.example.com/token"));
    cr_assert(!pt_ociref_http_loopback("http://127.0.0.1.evil.com/token"));
    cr_assert(!pt_ociref_http_loopback("https://127.0.0.1/token"));
    cr_assert(pt_ociref_repository_valid("a/b-c/d---e"));
    cr_assert(!pt_ociref_repository_valid("a/-b"));
    cr_assert(!pt_ociref_repository_valid("a___b"));
}
