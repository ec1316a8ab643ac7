/* proc.c — process identity from /proc/<pid>/stat (zombies count as ended). */
#include "pactown/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
