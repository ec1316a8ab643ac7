/* cgroup.c — a cgroup per service and its limits (pactown/cgroup.h). */
#include "pactown/cgroup.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/fsutil.h"
#include "pactown/sandbox.h"

static const char *const ctrl_name[PT_CG_N] = { "memory", "cpu", "pids" };

/* This process's cgroup in the hierarchy whose /proc/self/cgroup entry
 * names controller (v1), or the v2 entry ("0::/path") when controller is
 * NULL. "" if not found. */
static void own_path(const char *controller, char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        bool match = false;
        if (!controller) {
            match = strcmp(line, "0") == 0 && *ctrls == '\0';
        } else {
            char list[256];
            snprintf(list, sizeof list, "%s", ctrls);
            for (char *save = NULL, *t = strtok_r(list, ",", &save); t && !match; t = strtok_r(NULL, ",", &save))
                match = strcmp(t, controller) == 0;
        }
        if (match) {
            snprintf(out, n, "%s", strcmp(path, "/") == 0 ? "" : path);
            break;
        }
    }
    fclose(f);
}

/* true if the space-separated list holds word */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ' || p[-1] == ',') && (p[n] == '\0' || p[n] == ' ' || p[n] == ',' || p[n] == '\n'))
            return true;
    return false;
}

void pt_cgroup_detect(pt_cg_host *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return;
    char line[8192], v1[PT_CG_N][PATH_MAX] = { { 0 } }, v2[PATH_MAX] = "";
    while (fgets(line, sizeof line, f)) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPEROPTS (proc(5)) */
        char root[PATH_MAX], mnt[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2)
            continue;
        const char *dash = strstr(line, " - ");
        if (!dash || strcmp(root, "/") != 0)
            continue; /* a bind of part of a hierarchy: its paths are not ours to compute */
        char fstype[32], source[256], opts[1024] = "";
        if (sscanf(dash + 3, "%31s %255s %1023s", fstype, source, opts) < 2)
            continue;
        if (strcmp(fstype, "cgroup2") == 0 && !v2[0]) {
            char path[PATH_MAX + 32], *ctl = NULL;
            size_t len;
            snprintf(path, sizeof path, "%s/cgroup.controllers", mnt);
            if (pt_read_file(path, 4096, &ctl, &len) == 0 && has_word(ctl, "memory") && has_word(ctl, "pids"))
                snprintf(v2, sizeof v2, "%s", mnt);
            free(ctl);
        } else if (strcmp(fstype, "cgroup") == 0) {
            for (int c = 0; c < PT_CG_N; c++)
                if (!v1[c][0] && has_word(opts, ctrl_name[c]))
                    snprintf(v1[c], sizeof v1[c], "%s", mnt);
        }
    }
    fclose(f);
    char own[PATH_MAX];
    if (v2[0]) {
        own_path(NULL, own, sizeof own);
        out->kind = PT_CG_V2;
        for (int c = 0; c < PT_CG_N; c++)
            if (snprintf(out->base[c], sizeof out->base[c], "%s%s/pactown", v2, own) >= (int)sizeof out->base[c])
                out->base[c][0] = '\0';
        return;
    }
    for (int c = 0; c < PT_CG_N; c++) {
        if (!v1[c][0])
            continue;
        own_path(ctrl_name[c], own, sizeof own);
        if (snprintf(out->base[c], sizeof out->base[c], "%s%s/pactown", v1[c], own) >= (int)sizeof out->base[c])
            out->base[c][0] = '\0';
        else
            out->kind = PT_CG_V1;
    }
}

const char *pt_cgroup_describe(const pt_cg_host *h, char *buf, size_t n)
{
    if (h->kind == PT_CG_NONE) {
        snprintf(buf, n, "no cgroups");
        return buf;
    }
    size_t k = (size_t)snprintf(buf, n, "cgroup %s (", h->kind == PT_CG_V2 ? "v2" : "v1");
    bool first = true;
    for (int c = 0; c < PT_CG_N && k < n; c++)
        if (h->base[c][0]) {
            k += (size_t)snprintf(buf + k, n - k, "%s%s", first ? "" : ", ", ctrl_name[c]);
            first = false;
        }
    if (k < n)
        snprintf(buf + k, n - k, ")");
    return buf;
}

static int write_text(const char *dir, const char *file, const char *text, pt_error *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return pt_error_set(err, -errno, 0, "%s: %s", path, strerror(errno));
    ssize_t w = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    if (w != (ssize_t)strlen(text))
        return pt_error_set(err, -(w < 0 ? e : EIO), 0, "%s: %s", path, strerror(w < 0 ? e : EIO));
    return 0;
}

/* <base>/<id>, or -EINVAL */
static int dir_of(const pt_cg_host *h, int c, const char *id, char *out, size_t n)
{
    if (!pt_service_id_valid(id) || !h->base[c][0])
        return -EINVAL;
    return snprintf(out, n, "%s/%s", h->base[c], id) >= (int)n ? -ENAMETOOLONG : 0;
}

int pt_cgroup_create(const pt_cg_host *h, const char *id, const pt_limits *lim, int fds[PT_CG_N], int *n,
                     pt_error *err)
{
    *n = 0;
    long want[PT_CG_N] = { lim->max_memory_mb, lim->max_cpu_percent, lim->max_processes };
    static const char *const field[PT_CG_N] = { "max_memory_mb", "max_cpu_percent", "max_processes" };
    for (int c = 0; c < PT_CG_N; c++)
        if (want[c] > 0 && !h->base[c][0])
            return pt_error_set(err, -EOPNOTSUPP, 0, "%s: this host has no usable cgroup %s controller (%s)",
                                field[c], ctrl_name[c], h->kind == PT_CG_NONE ? "no cgroups are mounted" : "not mounted");
    if (h->kind == PT_CG_V2) {
        /* the controllers are given to pactown/'s children by pactown/ */
        int rc = pt_mkdir_p(h->base[0], 0755);
        if (rc)
            return pt_error_set(err, rc, 0, "%s: %s", h->base[0], strerror(-rc));
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", h->base[0]);
        *strrchr(parent, '/') = '\0';
        write_text(parent, "cgroup.subtree_control", "+memory +cpu +pids", NULL);
        if ((rc = write_text(h->base[0], "cgroup.subtree_control", "+memory +cpu +pids", err)) != 0)
            return rc;
    }
    int last = h->kind == PT_CG_V2 ? 1 : PT_CG_N; /* v2: one directory holds all three */
    for (int c = 0; c < last; c++) {
        if (!h->base[c][0])
            continue;
        char dir[PATH_MAX];
        int rc = dir_of(h, c, id, dir, sizeof dir);
        if (rc == 0 && (rc = pt_mkdir_p(h->base[c], 0755)) == 0 && mkdir(dir, 0755) != 0 && errno != EEXIST)
            rc = -errno;
        if (rc) {
            while (*n)
                close(fds[--*n]);
            return pt_error_set(err, rc, 0, "cgroup %s: %s", dir, strerror(-rc));
        }
        char text[64];
        if (h->kind == PT_CG_V1) {
            if (c == PT_CG_MEMORY) {
                snprintf(text, sizeof text, "%lld", want[c] > 0 ? (long long)want[c] << 20 : -1LL);
                rc = write_text(dir, "memory.limit_in_bytes", text, err);
            } else if (c == PT_CG_CPU) {
                snprintf(text, sizeof text, "%ld", want[c] > 0 ? want[c] * 1000 : -1L); /* of a 100 ms period */
                rc = write_text(dir, "cpu.cfs_period_us", "100000", err);
                if (rc == 0)
                    rc = write_text(dir, "cpu.cfs_quota_us", text, err);
            } else {
                snprintf(text, sizeof text, want[c] > 0 ? "%ld" : "max", want[c]);
                rc = write_text(dir, "pids.max", text, err);
            }
        } else {
            snprintf(text, sizeof text, want[0] > 0 ? "%lld" : "max", (long long)want[0] << 20);
            rc = write_text(dir, "memory.max", text, err);
            if (rc == 0) {
                if (want[1] > 0)
                    snprintf(text, sizeof text, "%ld 100000", want[1] * 1000);
                else
                    snprintf(text, sizeof text, "max 100000");
                rc = write_text(dir, "cpu.max", text, err);
            }
            if (rc == 0) {
                snprintf(text, sizeof text, want[2] > 0 ? "%ld" : "max", want[2]);
                rc = write_text(dir, "pids.max", text, err);
            }
        }
        char procs[PATH_MAX + 16];
        snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
        int fd = rc ? -1 : open(procs, O_WRONLY | O_CLOEXEC);
        if (rc == 0 && fd < 0)
            rc = pt_error_set(err, -errno, 0, "%s: %s", procs, strerror(errno));
        if (rc) {
            while (*n)
                close(fds[--*n]);
            return rc;
        }
        fds[(*n)++] = fd;
    }
    return 0;
}

/* SIGKILL every process of dir/cgroup.procs until none is left or the
 * deadline passes (a fork in between is read on the next pass). */
static void kill_all(const char *dir, int timeout_ms)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char *text = NULL;
        size_t len = 0;
        if (pt_read_file(path, 1 << 20, &text, &len) != 0 || len == 0) {
            free(text);
            return;
        }
        for (char *p = text; *p;) {
            long pid = strtol(p, &p, 10);
            if (pid > 1)
                kill((pid_t)pid, SIGKILL);
            while (*p == '\n')
                p++;
        }
        free(text);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
            return;
        struct timespec pause = { 0, 10 * 1000000L };
        nanosleep(&pause, NULL); /* the kernel empties the list as the killed exit */
    }
}

int pt_cgroup_remove(const pt_cg_host *h, const char *id)
{
    int ret = 0;
    /* what left the service's process group (setsid, a double fork) is still
     * in its cgroups: killed there, so nothing of it outlives the service */
    for (int c = 0; c < (h->kind == PT_CG_V2 ? 1 : PT_CG_N); c++) {
        char dir[PATH_MAX];
        if (!h->base[c][0] || dir_of(h, c, id, dir, sizeof dir) != 0)
            continue;
        if (h->kind == PT_CG_V2 && write_text(dir, "cgroup.kill", "1", NULL) == 0)
            continue;
        kill_all(dir, 2000);
    }
    for (int c = 0; c < (h->kind == PT_CG_V2 ? 1 : PT_CG_N); c++) {
        char dir[PATH_MAX];
        if (!h->base[c][0] || dir_of(h, c, id, dir, sizeof dir) != 0)
            continue;
        if (rmdir(dir) != 0 && errno != ENOENT)
            ret = -errno;
    }
    return ret;
}

/* the number after "name " in dir/file (a "key value" list), or a file of one number */
static int read_number(const char *dir, const char *file, const char *name, uint64_t *v)
{
    char path[PATH_MAX + 64], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = pt_read_file(path, 1 << 16, &text, &len);
    if (rc)
        return rc;
    const char *p = text;
    if (name) {
        size_t n = strlen(name);
        for (p = text; p && !(strncmp(p, name, n) == 0 && p[n] == ' '); p = strchr(p, '\n'), p = p ? p + 1 : NULL)
            ;
        if (p)
            p += strlen(name) + 1;
    }
    rc = p ? 0 : -ENOENT;
    if (p)
        *v = strtoull(p, NULL, 10);
    free(text);
    return rc;
}

int pt_cgroup_memory(const pt_cg_host *h, const char *id, uint64_t *bytes)
{
    char dir[PATH_MAX];
    if (dir_of(h, PT_CG_MEMORY, id, dir, sizeof dir) != 0)
        return -ENOENT;
    return read_number(dir, h->kind == PT_CG_V2 ? "memory.current" : "memory.usage_in_bytes", NULL, bytes);
}

int pt_cgroup_oom_kills(const pt_cg_host *h, const char *id, uint64_t *kills)
{
    char dir[PATH_MAX];
    if (dir_of(h, PT_CG_MEMORY, id, dir, sizeof dir) != 0)
        return -ENOENT;
    return read_number(dir, h->kind == PT_CG_V2 ? "memory.events" : "memory.oom_control", "oom_kill", kills);
}

int pt_cgroup_open(const pt_cg_host *h, const char *id, int fds[PT_CG_N], int *n)
{
    *n = 0;
    for (int c = 0; c < (h->kind == PT_CG_V2 ? 1 : PT_CG_N); c++) {
        char dir[PATH_MAX], procs[PATH_MAX + 16];
        if (!h->base[c][0] || dir_of(h, c, id, dir, sizeof dir) != 0)
            continue;
        snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = -errno;
            while (*n)
                close(fds[--*n]);
            return e;
        }
        fds[(*n)++] = fd;
    }
    return 0;
}
