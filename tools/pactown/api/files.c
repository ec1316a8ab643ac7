/* files.c — the sandbox file routes: GET /sandbox/{id}/files and
 * GET/PUT/DELETE /sandbox/{id}/file?path= (api.h). Every path is checked as
 * a markpact:file path (relative, no "..", .venv and .pactown reserved) and
 * opened beneath the sandbox with openat2(2) RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, the sandbox writer's rules (pactown/sandbox.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "pactown/fsutil.h"
#include "pactown/markpact.h"
#include "pactown/sandbox.h"

#define FILE_TEXT_MAX 200000  /* GET .../file answers the first 200,000 bytes, as pactown */
#define LIST_MAX 10000        /* entries listed at most */
#define BENEATH (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

int api_open_sandbox(struct api *api, const char *id)
{
    if (!pt_service_id_valid(id))
        return -ENOENT;
    char path[PATH_MAX], user[PT_SERVICE_ID_MAX + 1], parent[PATH_MAX];
    cli_sandbox_path(&api->cli.cfg, api->cli.idx, id, path, sizeof path, user);
    if (cli_sandbox_parent(&api->cli.cfg, user, parent, sizeof parent) != 0)
        return -ENAMETOOLONG;
    int root = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return -errno;
    int fd = pt_openat2(root, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, BENEATH);
    close(root);
    return fd;
}

static void walk(int dirfd, const char *prefix, json_t *list, int depth)
{
    DIR *d = pt_opendir_fd(dirfd);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && json_array_size(list) < LIST_MAX) {
        const char *n = de->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || (!*prefix && (!strcmp(n, ".venv") || !strcmp(n, ".pactown"))))
            continue;
        struct stat st;
        if (fstatat(dirfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "/" : "", n) >= (int)sizeof path)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 32) {
            int sub = openat(dirfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                walk(sub, path, list, depth + 1);
                close(sub);
            }
        } else if (S_ISREG(st.st_mode)) {
            json_t *o = json_pack("{s:o, s:I, s:I}", "path", api_text(path, strlen(path)), "size",
                                  (json_int_t)st.st_size, "mtime", (json_int_t)st.st_mtime);
            if (o)
                json_array_append_new(list, o);
        }
    }
    closedir(d);
}

int api_open_file(int sandbox, const char *path, int flags)
{
    return pt_openat2(sandbox, path, flags | O_CLOEXEC, 0, BENEATH);
}

json_t *api_sandbox_files(struct api *api, const char *id)
{
    int fd = api_open_sandbox(api, id);
    json_t *list = json_array();
    if (fd >= 0 && list)
        walk(fd, "", list, 0);
    if (fd >= 0)
        close(fd);
    return list;
}

void api_route_files(struct api_call *c, struct api_answer *ans, const char *id)
{
    int fd = api_open_sandbox(c->api, id);
    if (fd < 0) {
        api_fail(ans, fd == -ENOENT ? 404 : 500, NULL, "no sandbox for service '%s'%s", pt_service_id_valid(id) ? id : "",
                 fd == -ENOENT ? "" : strerror(-fd));
        return;
    }
    close(fd);
    ans->status = 200;
    ans->body = json_pack("{s:o}", "files", api_sandbox_files(c->api, id));
}

static void get_file(struct api_answer *ans, int sb, const char *path)
{
    int fd = pt_openat2(sb, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0, BENEATH);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? -fd : EISDIR;
        if (fd >= 0)
            close(fd);
        api_fail(ans, e == ENOENT ? 404 : e == EXDEV || e == ELOOP || e == EISDIR ? 400 : 500, "path",
                 "%s: %s", path, e == EXDEV || e == ELOOP ? "leads out of the sandbox (a symlink)"
                                  : e == EISDIR ? "not a regular file" : strerror(e));
        return;
    }
    char *buf = malloc(FILE_TEXT_MAX + 1);
    ssize_t n = 0, r;
    while (buf && n < FILE_TEXT_MAX && (r = read(fd, buf + n, (size_t)(FILE_TEXT_MAX - n))) > 0)
        n += r;
    close(fd);
    if (!buf) {
        api_fail(ans, 500, NULL, "out of memory");
        return;
    }
    size_t len = (size_t)n;
    if (st.st_size > FILE_TEXT_MAX)
        while (len > 0 && ((unsigned char)buf[len - 1] & 0xC0) == 0x80)
            len--; /* not in the middle of a UTF-8 sequence */
    if (len && st.st_size > FILE_TEXT_MAX && (unsigned char)buf[len - 1] >= 0xC0)
        len--;
    ans->status = 200;
    ans->body = json_pack("{s:s, s:o, s:I, s:b}", "path", path, "content", api_text(buf, len), "size",
                          (json_int_t)st.st_size, "truncated", st.st_size > FILE_TEXT_MAX);
    free(buf);
}

static void put_file(struct api_call *c, struct api_answer *ans, int sb, const char *path)
{
    json_t *o = api_body_object(c, ans);
    const char *content = NULL;
    if (!o || api_field_str(o, "content", true, (size_t)c->api->cli.cfg.api_max_body, &content, ans)) {
        json_decref(o);
        return;
    }
    pt_error err = { 0 };
    int rc = pt_sandbox_write_file(sb, path, content, json_string_length(json_object_get(o, "content")), 0644, &err);
    json_decref(o);
    if (rc) {
        api_fail(ans, rc == -EINVAL || rc == -ELOOP || rc == -ENOTDIR || rc == -EISDIR ? 400 : 500, "path", "%s",
                 err.msg);
        return;
    }
    ans->status = 200;
    ans->body = json_pack("{s:b, s:s}", "ok", 1, "path", path);
}

static void delete_file(struct api_answer *ans, int sb, const char *path)
{
    const char *slash = strrchr(path, '/');
    int dir = sb;
    if (slash) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
        dir = pt_openat2(sb, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, BENEATH);
    }
    int rc = dir < 0 ? dir : unlinkat(dir, slash ? slash + 1 : path, 0) == 0 ? 0 : -errno;
    if (dir >= 0 && dir != sb)
        close(dir);
    if (rc) {
        api_fail(ans, rc == -ENOENT ? 404 : rc == -EISDIR || rc == -EXDEV || rc == -ELOOP || rc == -ENOTDIR ? 400 : 500,
                 "path", "%s: %s", path, rc == -EISDIR ? "a directory (only files are removed)"
                                         : rc == -EXDEV || rc == -ELOOP ? "leads out of the sandbox (a symlink)"
                                                                       : strerror(-rc));
        return;
    }
    ans->status = 200;
    ans->body = json_pack("{s:b, s:s}", "ok", 1, "path", path);
}

void api_route_file(struct api_call *c, struct api_answer *ans, const char *id)
{
    const char *path = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "path");
    pt_error err = { 0 };
    if (!path) {
        api_fail(ans, 400, "path", "query parameter 'path' is required");
        return;
    }
    if (pt_markpact_check_path(path, 0, &err) != 0) {
        api_fail(ans, 400, "path", "path: %s", err.msg);
        return;
    }
    bool write = strcmp(c->method, "GET") != 0 && strcmp(c->method, "HEAD") != 0;
    if (!pt_service_id_valid(id)) {
        api_fail(ans, 404, NULL, "no such sandbox");
        return;
    }
    if (write && !api_busy_take(c->api, id)) {
        api_fail(ans, 409, NULL, "service %s: a run on it is in flight", id);
        return;
    }
    int sb = api_open_sandbox(c->api, id);
    if (sb < 0)
        api_fail(ans, sb == -ENOENT ? 404 : 500, NULL, "no sandbox for service '%s'", pt_service_id_valid(id) ? id : "");
    else if (!write)
        get_file(ans, sb, path);
    else if (strcmp(c->method, "PUT") == 0)
        put_file(c, ans, sb, path);
    else
        delete_file(ans, sb, path);
    if (sb >= 0)
        close(sb);
    if (write)
        api_busy_drop(c->api, id);
}
