/* pactown/proc.h — process identity from proc(5). */
#ifndef PACTOWN_PROC_H
#define PACTOWN_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Start time of pid in clock ticks since boot (proc(5) /proc/pid/stat field
 * 22). Together with the pid it names one process: a reused pid has another
 * start time. Returns 0 or -errno (-ENOENT: no such process). */
int pt_proc_start_time(pid_t pid, uint64_t *ticks);

/* true if pid runs and started at `ticks` (0 = do not check the start time). */
bool pt_proc_alive(pid_t pid, uint64_t ticks);

/* true if any process is in process group pgid (kill(2) with signal 0). */
bool pt_pgrp_alive(pid_t pgid);

#endif
