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

/* true while the holder of a lease or a service record lives: pid runs and
 * started at `ticks` (0 = any start time), or pid has exited but its process
 * group still has members (a service's workers outlive its leader; Linux
 * gives no process a pid that is still a live process group's id, so the
 * group is the holder's own). */
bool pt_holder_alive(pid_t pid, uint64_t ticks);

/* true if any process is in process group pgid (kill(2) with signal 0). */
bool pt_pgrp_alive(pid_t pgid);

/* End process group pgid: SIGTERM to the group, wait until no process is
 * left in it (the leader through a pidfd, pidfd_open(2); the rest by
 * kill(2) with signal 0), SIGKILL after timeout_ms, then wait up to 5 s more.
 * Returns true if the group ended within timeout_ms of the SIGTERM. */
bool pt_pgrp_stop(pid_t pgid, int timeout_ms);

#endif
