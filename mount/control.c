/* control.c — the daemon's control socket, <cache_dir>/control.sock: `pactown
 * cache gc` and `pactown cache rm` ask the daemon to evict, because only the
 * daemon can tell the kernel to drop what it caches of the mount. Address,
 * modes and protocol: pactown/control.h.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "pactown/clock.h"
#include "pactown/control.h"
#include "pactown/key.h"
#include "pactown/venv.h"
#include "pactownfs.h"

static json_t *error_reply(int err, const char *msg)
{
    return json_pack("{s:b, s:s, s:i}", "ok", 0, "error", msg, "errno", err);
}

static json_t *handle(struct pt_fs *fs, json_t *req)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    if (!op)
        return error_reply(EINVAL, "request without \"op\"");
    if (strcmp(op, "gc") == 0) {
        pt_limits lim;
        pt_limits_from_config(&fs->cfg, &lim);
        json_t *now = json_object_get(req, "now");
        int64_t now_ms = json_is_integer(now) ? (int64_t)json_integer_value(now) * 1000 : pt_wall_ms();
        bool dry = json_is_true(json_object_get(req, "dry_run"));
        json_t *victims = json_array();
        int rc = pt_fs_evict_run(fs, &lim, now_ms, dry, true, victims);
        if (rc) {
            json_decref(victims);
            return error_reply(-rc, strerror(-rc));
        }
        return json_pack("{s:b, s:b, s:o, s:{s:i, s:i, s:I, s:i}}", "ok", 1, "dry_run", dry, "victims", victims,
                         "limits", "max_entries", (int)lim.max_entries, "max_age_hours", (int)lim.max_age_hours,
                         "max_bytes", (json_int_t)lim.max_bytes, "min_idle_seconds", (int)lim.min_idle_seconds);
    }
    if (strcmp(op, "rm") == 0) {
        const char *key = json_string_value(json_object_get(req, "key"));
        if (!key || !pt_key_is_valid(key))
            return error_reply(EINVAL, "\"key\" must be 32 lowercase hex digits");
        int rc = pt_fs_evict_key(fs, key, json_is_true(json_object_get(req, "force")), 0, "pactown cache rm");
        if (rc == 0)
            pt_fs_evict_soon(fs); /* the uv cache's wheels it alone linked: pruned by the eviction thread */
        if (rc == PT_EVICT_CLEARED)
            return json_pack("{s:b, s:b}", "ok", 1, "cleared", 1);
        if (rc == -EBUSY)
            return error_reply(EBUSY, "the venv is leased by a running process, or being built (--force evicts a leased venv)");
        if (rc == -ENOENT)
            return error_reply(ENOENT, "the venv is not built (nothing to remove)");
        if (rc)
            return error_reply(-rc, strerror(-rc));
        return json_pack("{s:b}", "ok", 1);
    }
    if (strcmp(op, "flush") == 0) {
        pt_fs_uses_drain(fs); /* every use its sender sent before asking */
        pt_fs_flush_atimes(fs);
        return json_pack("{s:b}", "ok", 1);
    }
    if (strcmp(op, "stale") == 0) {
        /* a client found the venv unusable: the daemon checks for itself */
        const char *key = json_string_value(json_object_get(req, "key"));
        json_t *pid = json_object_get(req, "pid");
        if (!key || !pt_key_is_valid(key) || (pid && !json_is_integer(pid)))
            return error_reply(EINVAL, "\"key\" must be 32 lowercase hex digits, \"pid\" an integer");
        char dir[PATH_MAX], why[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", fs->store, key);
        if (pt_venv_check(dir, why, sizeof why) != -ESTALE)
            return json_pack("{s:b, s:b}", "ok", 1, "stale", 0);
        fprintf(stderr, "pactownfs: %s: %s; it is evicted and built again on its next use\n", key, why);
        int rc = pt_fs_evict_key(fs, key, false, pid ? (pid_t)json_integer_value(pid) : 0, why);
        if (rc == -EBUSY)
            return error_reply(EBUSY, "the venv is broken but leased by a running process: stop it first");
        if (rc && rc != PT_EVICT_CLEARED)
            return error_reply(-rc, strerror(-rc));
        return json_pack("{s:b, s:b}", "ok", 1, "stale", 1);
    }
    return error_reply(EINVAL, "unknown op");
}

static void serve(struct pt_fs *fs, int c)
{
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char *buf = malloc(PT_CONTROL_REQUEST_MAX);
    size_t n = 0;
    if (!buf)
        return;
    while (n < PT_CONTROL_REQUEST_MAX && !memchr(buf, '\n', n)) {
        ssize_t r = read(c, buf + n, PT_CONTROL_REQUEST_MAX - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    json_error_t jerr;
    json_t *req = json_loadb(buf, n, JSON_DISABLE_EOF_CHECK, &jerr);
    free(buf);
    json_t *resp = req ? handle(fs, req) : error_reply(EINVAL, "the request is not JSON");
    json_decref(req);
    char *text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    json_decref(resp);
    if (text) {
        size_t len = strlen(text), off = 0;
        while (off < len) {
            ssize_t w = write(c, text + off, len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        ssize_t w = write(c, "\n", 1);
        (void)w;
        free(text);
    }
}

static void *control_main(void *arg)
{
    struct pt_fs *fs = arg;
    for (;;) {
        int c = accept4(fs->control_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shut down */
        }
        serve(fs, c);
        close(c);
    }
    return NULL;
}

int pt_fs_control_start(struct pt_fs *fs)
{
    int dirfd = open(fs->cache_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        int e = errno;
        fprintf(stderr, "pactownfs: control socket: %s: %s\n", fs->cache_dir, strerror(e));
        return -e;
    }
    struct sockaddr_un a;
    socklen_t alen = pt_control_addr(dirfd, &a);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        close(dirfd);
        return -errno;
    }
    unlinkat(dirfd, PT_CONTROL_SOCKET, 0); /* a socket left by a killed daemon: we hold daemon.lock */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&a, alen);
    umask(old);
    if (rc != 0 || listen(fd, 8) != 0) {
        rc = -errno;
        close(fd);
        close(dirfd);
        fprintf(stderr, "pactownfs: control socket %s/%s: %s\n", fs->cache_dir, PT_CONTROL_SOCKET, strerror(-rc));
        return rc;
    }
    close(dirfd);
    fs->control_fd = fd;
    if ((rc = pthread_create(&fs->control_thread, NULL, control_main, fs)) != 0) {
        close(fd);
        fs->control_fd = -1;
        return -rc;
    }
    fs->control_running = true;
    return 0;
}

void pt_fs_socket_stop(struct pt_fs *fs, pthread_t thread, int *fd, bool *running, const char *name)
{
    if (!*running)
        return;
    shutdown(*fd, SHUT_RDWR); /* accept(2) fails, recv(2) returns 0: the thread ends */
    pthread_join(thread, NULL);
    close(*fd);
    *fd = -1;
    *running = false;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", fs->cache_dir, name);
    unlink(path);
}

void pt_fs_control_stop(struct pt_fs *fs)
{
    pt_fs_socket_stop(fs, fs->control_thread, &fs->control_fd, &fs->control_running, PT_CONTROL_SOCKET);
}
