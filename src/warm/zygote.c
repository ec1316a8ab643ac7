/* zygote.c — the warm process: started, found, stopped; the hand-off of a
 * start to it and the wait for the child's end (pactown/warm.h). */
#include "pactown/warm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>

#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/proc.h"
#include "pactown/spawn.h"
#include "sock.h"
#include "zygote_py.h"

/* the zygote's source at <warm>/zygote-<hash>.py (written once, 0644, root's) */
static int zygote_file(int dirfd, char *name, size_t n)
{
    snprintf(name, n, "zygote-%016llx.py", (unsigned long long)XXH64(zygote_py, sizeof zygote_py - 1, 0));
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid())
        return 0;
    char tmp[64];
    snprintf(tmp, sizeof tmp, ".zygote.%d", (int)getpid());
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t len = sizeof zygote_py - 1;
    int rc = write(fd, zygote_py, len) == (ssize_t)len && fchmod(fd, 0644) == 0 ? 0 : -errno;
    close(fd);
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
        rc = -errno;
    if (rc)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

static bool id_ok(const char *id)
{
    if (!*id || strlen(id) > 96)
        return false;
    for (const char *s = id; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || *s == '-'))
            return false;
    return true;
}

/* the uid in an id "<key>-<uid>-<sig>" */
static uid_t id_uid(const char *id)
{
    const char *d = strchr(id, '-');
    return d ? (uid_t)strtoul(d + 1, NULL, 10) : (uid_t)-1;
}

/* uid and state of a process from /proc/<pid>/status; false if gone */
static bool proc_uid(pid_t pid, uid_t *uid, pid_t *ppid, bool *zombie)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *u = strstr(buf, "\nUid:"), *s = strstr(buf, "\nState:"), *p = strstr(buf, "\nPPid:");
    if (!u || !s || !p)
        return false;
    *uid = (uid_t)strtoul(u + 5, NULL, 10);
    *ppid = (pid_t)strtol(p + 6, NULL, 10);
    *zombie = strchr(s + 7, 'Z') && strchr(s + 7, 'Z') < strchr(s + 7, '\n');
    return true;
}

pid_t pt_warm_pid(const char *cache_dir, const char *id)
{
    if (!id_ok(id))
        return 0;
    char path[PATH_MAX], buf[32] = "";
    snprintf(path, sizeof path, "%s/" WARM_DIR "/%s/pid", cache_dir, id);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    pid_t pid = (pid_t)strtol(buf, NULL, 10);
    uid_t uid;
    pid_t ppid;
    bool zombie;
    /* the file is the uid's to write: its pid counts only when it is a live process of that uid
     * running the zygote (not a process that reused the pid since) */
    if (pid <= 1 || !proc_uid(pid, &uid, &ppid, &zombie) || zombie || uid != id_uid(id))
        return 0;
    char cmd[512];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? read(fd, cmd, sizeof cmd - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    cmd[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (cmd[i] == '\0')
            cmd[i] = ' ';
    return strstr(cmd, "/" WARM_DIR "/zygote-") && strstr(cmd, id) ? pid : 0;
}

void pt_warm_stop(const char *cache_dir, const char *id)
{
    if (!id_ok(id))
        return;
    pid_t pid = pt_warm_pid(cache_dir, id);
    if (pid > 0)
        kill(pid, SIGKILL); /* its children are services, in sessions of their own: they run on */
    int dfd = pt_warm_dirfd(cache_dir, false);
    if (dfd < 0)
        return;
    char name[128], path[PATH_MAX];
    snprintf(name, sizeof name, "%s.sock", id);
    unlinkat(dfd, name, 0);
    close(dfd);
    snprintf(path, sizeof path, "%s/" WARM_DIR "/%s", cache_dir, id);
    pt_rm_rf(path);
}

static int write_at(int dirfd, const char *name, const char *text, uid_t uid, gid_t gid, bool chown_it)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t)len ? 0 : -EIO;
    if (rc == 0 && chown_it && fchown(fd, uid, gid) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

int pt_warm_spawn(const pt_warm_spawn_opts *o, pid_t *pid_out)
{
    if (!id_ok(o->id))
        return -EINVAL;
    int wfd = pt_warm_dirfd(o->cache_dir, true);
    if (wfd < 0)
        return wfd;
    /* one spawn of an id at a time (two runs of `pactown serve` on one key): flock(2) on <id>.lock,
     * held until the new process has written its pid */
    char lname[128];
    snprintf(lname, sizeof lname, "%s.lock", o->id);
    int lfd = openat(wfd, lname, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) != 0 || pt_warm_pid(o->cache_dir, o->id) > 0) {
        int e = lfd < 0 ? -errno : -EEXIST;
        if (lfd >= 0)
            close(lfd);
        close(wfd);
        return e;
    }
    char script[64], dir[PATH_MAX], spath[PATH_MAX], py[PATH_MAX], idle[32];
    int rc = zygote_file(wfd, script, sizeof script);
    snprintf(dir, sizeof dir, "%s/" WARM_DIR "/%s", o->cache_dir, o->id);
    snprintf(spath, sizeof spath, "%s/" WARM_DIR "/%s", o->cache_dir, script);
    snprintf(py, sizeof py, "%s/bin/python", o->venv);
    snprintf(idle, sizeof idle, "%ld", o->idle_seconds > 0 ? o->idle_seconds : 600);
    /* its directory: the uid's, 0700; what its children recorded (seen) and what it dropped are
     * kept from the last one, the rest is made again */
    if (rc == 0 && mkdirat(wfd, o->id, 0700) != 0 && errno != EEXIST)
        rc = -errno;
    int dfd = rc ? -1 : openat(wfd, o->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat dst;
    if (rc == 0 && (dfd < 0 || fstat(dfd, &dst) != 0))
        rc = -errno;
    if (rc == 0 && o->set_ids && dst.st_uid != o->uid && fchown(dfd, o->uid, o->gid) != 0)
        rc = -errno;
    if (rc == 0 && fchmod(dfd, 0700) != 0)
        rc = -errno;
    static const char *const fresh[] = { "preload", "zygote.log", "pid", "pid.tmp", "preloaded", NULL };
    for (size_t i = 0; rc == 0 && fresh[i]; i++)
        if (unlinkat(dfd, fresh[i], 0) != 0 && errno != ENOENT)
            rc = -errno;
    if (rc == 0) {
        size_t len = 1;
        for (size_t i = 0; o->preload && o->preload[i]; i++)
            len += strlen(o->preload[i]) + 1;
        char *list = malloc(len + 8);
        if (!list)
            rc = -ENOMEM;
        else {
            size_t k = 0;
            if (!o->preload)
                k += (size_t)sprintf(list, "@auto\n");
            for (size_t i = 0; o->preload && o->preload[i]; i++)
                k += (size_t)sprintf(list + k, "%s\n", o->preload[i]);
            list[k] = '\0';
            rc = write_at(dfd, "preload", list, o->uid, o->gid, false);
            free(list);
        }
    }
    int logfd = -1;
    if (rc == 0) {
        logfd = openat(dfd, "zygote.log", O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (logfd < 0 || (o->set_ids && fchown(logfd, o->uid, o->gid) != 0))
            rc = -errno;
    }
    /* the socket: bound here, listened on by the warm process once it is ready */
    int s = -1;
    struct sockaddr_un addr;
    if (rc == 0 && (rc = pt_warm_sock_addr(wfd, o->id, &addr)) == 0) {
        char name[128];
        snprintf(name, sizeof name, "%s.sock", o->id);
        unlinkat(wfd, name, 0);
        s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || fchmodat(wfd, name, 0600, 0) != 0)
            rc = -errno;
    }
    pid_t pid = 0;
    if (rc == 0) {
        const char *argv[] = { py, spath, dir, idle, NULL };
        pt_spawn_opts so = { .argv = argv, .envp = (const char *const *)o->env, .cwd = dir, .stdin_fd = s,
                             .stdout_fd = logfd, .stderr_fd = logfd, .new_session = true, .set_ids = o->set_ids,
                             .uid = o->uid, .gid = o->gid };
        rc = pt_spawn(&so, &pid);
    }
    /* it forks at once and its first process exits: the warm process is init's, not ours to reap */
    int st;
    if (rc == 0)
        pt_wait(pid, &st);
    if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        rc = -ECHILD;
    pid_t zpid = rc == 0 ? pt_warm_wait_pid(o->cache_dir, o->id, 2000) : 0;
    if (rc == 0 && zpid <= 0)
        rc = -ETIMEDOUT; /* it did not start: its log says why */
    close(lfd);
    if (s >= 0)
        close(s);
    if (logfd >= 0)
        close(logfd);
    if (dfd >= 0)
        close(dfd);
    close(wfd);
    if (rc == 0 && pid_out)
        *pid_out = zpid; /* the warm process, not the first process, which has exited */
    return rc;
}

/* ---- the hand-off ---- */

static json_t *str_array(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; a && v && v[i]; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

int pt_warm_start(const pt_warm_start_opts *o, pid_t *pid_out, int *exit_fd, char *why, size_t wn)
{
    *pid_out = 0;
    *exit_fd = -1;
    if (!id_ok(o->id))
        return pt_warm_why(why, wn, -EINVAL, "a warm process id of another shape");
    int s;
    struct ucred cr;
    int rc = pt_warm_connect(o->cache_dir, o->id, o->uid, &s, &cr, why, wn);
    if (rc)
        return rc;
    const pt_warm_plan *p = o->plan;
    static const char *const kinds[] = { "cold", "file", "module", "script" };
    json_t *req = json_pack("{s:i, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:o}", "v", 1, "kind", kinds[p->kind], "target",
                            p->target, "exe", p->exe, "argv", str_array(p->argv), "orig_argv",
                            str_array(p->orig_argv), "path0", p->path0, "cwd", o->cwd, "env", str_array(o->env));
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    int go[2] = { -1, -1 }, null_fd = -1;
    if (!text || pipe2(go, O_CLOEXEC) != 0) {
        free(text);
        close(s);
        return pt_warm_why(why, wn, -ENOMEM, "out of memory");
    }
    if (o->stdin_fd < 0)
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int fds[4] = { o->stdin_fd >= 0 ? o->stdin_fd : null_fd, o->stdout_fd >= 0 ? o->stdout_fd : STDOUT_FILENO,
                   o->stderr_fd >= 0 ? o->stderr_fd : STDERR_FILENO, go[0] };
    char cbuf[CMSG_SPACE(sizeof fds)];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = { .iov_base = text, .iov_len = strlen(text) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    ssize_t sent = fds[0] < 0 ? -1 : sendmsg(s, &mh, MSG_NOSIGNAL);
    int serr = errno;
    free(text);
    if (null_fd >= 0)
        close(null_fd);
    close(go[0]);
    if (sent < 0) {
        close(go[1]);
        close(s);
        return pt_warm_why(why, wn, -EAGAIN, "the warm process did not take the start: %s", strerror(serr));
    }
    char buf[4096];
    ssize_t n = pt_warm_recv(s, buf, sizeof buf, o->timeout_ms > 0 ? o->timeout_ms : 2000);
    json_t *ans = n > 0 ? json_loads(buf, 0, NULL) : NULL;
    json_int_t child = ans ? json_integer_value(json_object_get(ans, "pid")) : 0;
    const char *err = ans ? json_string_value(json_object_get(ans, "error")) : NULL;
    char errcopy[256] = "";
    if (err)
        snprintf(errcopy, sizeof errcopy, "%s", err);
    json_decref(ans);
    uid_t cuid;
    pid_t cppid;
    bool zombie;
    if (child <= 1 || !proc_uid((pid_t)child, &cuid, &cppid, &zombie) || cppid != cr.pid || cuid != o->uid) {
        close(go[1]); /* the child, if any, reads EOF and exits without running anything */
        close(s);
        if (*errcopy)
            return pt_warm_why(why, wn, -EAGAIN, "the warm process refused the start: %s", errcopy);
        pt_warm_stop(o->cache_dir, o->id);
        return pt_warm_why(why, wn, -EPROTO, "the warm process %s: ended it",
                    n == -ETIMEDOUT ? "did not answer within its time" : n <= 0 ? "closed the connection"
                    : "answered with a pid that is not its child of this uid");
    }
    /* the child waits on go: into the service's cgroups first, then it runs */
    char num[32];
    int nl = snprintf(num, sizeof num, "%lld", (long long)child);
    for (int i = 0; i < o->n_cgroup_procs; i++)
        if (pwrite(o->cgroup_procs[i], num, (size_t)nl, 0) != nl) {
            int e = errno;
            close(go[1]);
            close(s);
            kill((pid_t)child, SIGKILL);
            return pt_warm_why(why, wn, -e, "moving the warm child into its cgroup: %s", strerror(e));
        }
    if (write(go[1], "g", 1) != 1) {
        int e = errno;
        close(go[1]);
        close(s);
        kill((pid_t)child, SIGKILL);
        return pt_warm_why(why, wn, -e, "the warm child went away: %s", strerror(e));
    }
    close(go[1]);
    /* its last use, for max_warm's least recently used (pt_warm_make_room) */
    int tfd = pt_warm_dirfd(o->cache_dir, false);
    if (tfd >= 0) {
        char name[128];
        snprintf(name, sizeof name, "%s.sock", o->id);
        utimensat(tfd, name, NULL, AT_SYMLINK_NOFOLLOW);
        close(tfd);
    }
    *pid_out = (pid_t)child;
    *exit_fd = s;
    return 0;
}

int pt_warm_wait(int exit_fd, int timeout_ms, int *status)
{
    char buf[256];
    ssize_t n = pt_warm_recv(exit_fd, buf, sizeof buf, timeout_ms);
    if (n == -ETIMEDOUT)
        return 0;
    if (n < 0)
        return (int)n;
    if (n == 0)
        return -EPIPE;
    json_t *m = json_loads(buf, 0, NULL);
    json_t *e = m ? json_object_get(m, "exit") : NULL;
    int ok = json_is_integer(e);
    if (ok)
        *status = (int)json_integer_value(e);
    json_decref(m);
    return ok ? 1 : -EPROTO;
}

char **pt_warm_env(char *const *env)
{
    size_t n = 0;
    while (env && env[n])
        n++;
    const char **keep = calloc(n + 1, sizeof *keep);
    if (!keep)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], "PYTHON", 6) == 0 || strncmp(env[i], "LANG=", 5) == 0 || strncmp(env[i], "LC_", 3) == 0 ||
            strncmp(env[i], "TZ=", 3) == 0 || strncmp(env[i], "PATH=", 5) == 0)
            keep[k++] = env[i];
    static const char *const all[] = { "", NULL };
    char **out = pt_env_new(NULL, all, NULL, keep);
    free(keep);
    return out;
}

int pt_started_wait(pid_t pid, int exit_fd, int *status)
{
    if (exit_fd < 0)
        return pt_wait(pid, status);
    int rc = pt_warm_wait(exit_fd, -1, status);
    if (rc == 1)
        return 0;
    /* the warm process is gone (or spoke nonsense): the service may run on, init's child now */
    while (pt_pgrp_live(pid)) {
        struct pollfd none;
        poll(&none, 0, 50);
    }
    *status = 255 << 8;
    return 0;
}

bool pt_started_stop(pid_t pid, int exit_fd, int timeout_ms, int *status)
{
    if (exit_fd < 0)
        return pt_child_group_stop(pid, timeout_ms, status);
    int st = 255 << 8;
    if (pid <= 0)
        return true;
    kill(-pid, SIGTERM);
    bool clean = pt_warm_wait(exit_fd, timeout_ms, &st) == 1;
    if (!clean) {
        kill(-pid, SIGKILL);
        pt_warm_wait(exit_fd, 5000, &st);
    }
    if (status)
        *status = st;
    return pt_pgrp_stop(pid, timeout_ms) && clean;
}

int pt_warm_each(const char *cache_dir, int (*fn)(const pt_warm_info *w, void *arg), void *arg)
{
    int wfd = pt_warm_dirfd(cache_dir, false);
    if (wfd < 0)
        return 0;
    DIR *d = fdopendir(wfd);
    if (!d) {
        close(wfd);
        return 0;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!id_ok(de->d_name) || strlen(de->d_name) < PT_KEY_HEX + 3)
            continue;
        pt_warm_info w = { 0 };
        snprintf(w.id, sizeof w.id, "%s", de->d_name);
        if ((w.pid = pt_warm_pid(cache_dir, w.id)) <= 0)
            continue;
        memcpy(w.key, w.id, PT_KEY_HEX);
        w.key[PT_KEY_HEX] = '\0';
        w.uid = id_uid(w.id);
        char path[64], buf[128] = "";
        snprintf(path, sizeof path, "/proc/%d/statm", (int)w.pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            buf[n > 0 ? n : 0] = '\0';
            close(fd);
            unsigned long size = 0, res = 0;
            if (sscanf(buf, "%lu %lu", &size, &res) == 2)
                w.rss_bytes = (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
        }
        char sock[160];
        snprintf(sock, sizeof sock, "%s.sock", w.id);
        struct stat st;
        if (fstatat(dirfd(d), sock, &st, AT_SYMLINK_NOFOLLOW) == 0)
            w.last_use = st.st_mtim.tv_sec;
        rc = fn(&w, arg);
    }
    closedir(d);
    return rc;
}

struct room {
    long n;
    pt_warm_info oldest;
};

static int count_oldest(const pt_warm_info *w, void *arg)
{
    struct room *r = arg;
    if (r->n++ == 0 || w->last_use < r->oldest.last_use)
        r->oldest = *w;
    return 0;
}

int pt_warm_make_room(const char *cache_dir, long max, char *ended, size_t n)
{
    int stopped = 0;
    while (max > 0) {
        struct room r = { 0 };
        pt_warm_each(cache_dir, count_oldest, &r);
        if (r.n < max || stopped > 64)
            break;
        pt_warm_stop(cache_dir, r.oldest.id);
        if (ended)
            snprintf(ended, n, "%s", r.oldest.id);
        stopped++;
    }
    return stopped;
}

pid_t pt_warm_wait_pid(const char *cache_dir, const char *id, int timeout_ms)
{
    uint64_t deadline = pt_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        pid_t pid = pt_warm_pid(cache_dir, id);
        if (pid > 0 || pt_mono_ns() >= deadline)
            return pid;
        struct pollfd none;
        poll(&none, 0, 2);
    }
}
