/* proc.c — process identity from /proc/<pid>/stat (zombies count as ended). */
#include "pactown/proc.h"

#include "pactown/clock.h"
#include "pactown/spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <time.h>
#include <unistd.h>

int pt_proc_start_time(pid_t pid, uint64_t *ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    /* the command name (field 2) may hold spaces and parentheses: skip to the last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return -EIO;
    p++;
    if (p[0] == ' ' && p[1] == 'Z')
        return -ESRCH; /* a zombie has ended */
    /* fields 3.. follow; start time is field 22 */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -EIO;
    }
    *ticks = strtoull(p + 1, NULL, 10);
    return 0;
}

int pt_proc_pgrp(pid_t pid, pid_t *pgrp, bool *zombie)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* past the command name, which may hold ')' */
    char st;
    int ppid, pg;
    if (!p || sscanf(p + 1, " %c %d %d", &st, &ppid, &pg) != 3)
        return -EIO;
    if (pgrp)
        *pgrp = pg;
    if (zombie)
        *zombie = st == 'Z';
    return 0;
}

bool pt_pgrp_live(pid_t pgid)
{
    if (!pt_pgrp_alive(pgid))
        return false;
    DIR *d = opendir("/proc");
    if (!d)
        return true;
    bool live = false;
    struct dirent *de;
    while (!live && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        pid_t pg;
        bool z;
        live = pt_proc_pgrp((pid_t)strtol(de->d_name, NULL, 10), &pg, &z) == 0 && pg == pgid && !z;
    }
    closedir(d);
    return live;
}

bool pt_proc_alive(pid_t pid, uint64_t ticks)
{
    uint64_t now;
    if (pid <= 0 || pt_proc_start_time(pid, &now) != 0)
        return false;
    return ticks == 0 || now == ticks;
}

bool pt_pgrp_alive(pid_t pgid)
{
    return pgid > 0 && (kill(-pgid, 0) == 0 || errno == EPERM);
}

bool pt_holder_alive(pid_t pid, uint64_t ticks)
{
    uint64_t now;
    if (pid <= 0)
        return false;
    if (pt_proc_start_time(pid, &now) == 0)
        return ticks == 0 || now == ticks;
    return pt_pgrp_live(pid); /* zombies waiting for a slow reaper have ended */
}

/* Wait until no process is left in group pgid, up to timeout_ms. */
static bool wait_group_gone(pid_t pgid, int timeout_ms)
{
    uint64_t deadline = pt_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    int pfd = pidfd_open(pgid, 0);
    /* once the leader has ended, its zombie (and those of other members)
     * may wait for a slow reaper (init): only live members count then */
    while (pfd >= 0 ? pt_pgrp_alive(pgid) : pt_pgrp_live(pgid)) {
        uint64_t now = pt_mono_ns();
        if (now >= deadline) {
            if (pfd >= 0)
                close(pfd);
            return false;
        }
        int left = (int)((deadline - now) / 1000000ull);
        if (pfd >= 0) {
            struct pollfd p = { .fd = pfd, .events = POLLIN };
            if (poll(&p, 1, left < 50 ? left : 50) > 0) {
                close(pfd);
                pfd = -1;
            }
        } else {
            /* members other than the leader: no fd to wait on */
            struct timespec ts = { 0, 20 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    if (pfd >= 0)
        close(pfd);
    return true;
}

bool pt_pgrp_stop(pid_t pgid, int timeout_ms)
{
    if (pgid <= 0)
        return true;
    kill(-pgid, SIGTERM);
    if (wait_group_gone(pgid, timeout_ms))
        return true;
    kill(-pgid, SIGKILL);
    wait_group_gone(pgid, 5000);
    return false;
}

bool pt_child_group_stop(pid_t pid, int timeout_ms, int *status)
{
    int st = 0;
    if (pid <= 0)
        return true;
    kill(-pid, SIGTERM);
    bool clean = pt_wait_timeout(pid, timeout_ms, &st) == 0;
    if (!clean) {
        kill(-pid, SIGKILL);
        pt_wait(pid, &st);
    }
    if (status)
        *status = st;
    /* the leader is reaped: the group's other members are what is left */
    return pt_pgrp_stop(pid, timeout_ms) && clean;
}
