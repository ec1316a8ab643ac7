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
 * group is the holder's own). Zombies count as ended (pt_pgrp_live). */
bool pt_holder_alive(pid_t pid, uint64_t ticks);

/* pid's process group (proc(5) stat field 5) and whether it is a zombie
 * (state Z). Either out pointer may be NULL. 0 or -errno (-ENOENT: no such
 * process). */
int pt_proc_pgrp(pid_t pid, pid_t *pgrp, bool *zombie);

/* true if process group pgid has a member that is not a zombie (a scan of
 * /proc once kill(2) says the group exists; true when /proc is unreadable).
 * Costs about a millisecond: for the end of a stop, not for polling. */
bool pt_pgrp_live(pid_t pgid);

/* true if any process is in process group pgid (kill(2) with signal 0);
 * zombies not yet reaped count. */
bool pt_pgrp_alive(pid_t pgid);

/* End process group pgid: SIGTERM to the group, wait until no process is
 * left in it (the leader through a pidfd, pidfd_open(2); the rest by
 * kill(2) with signal 0), SIGKILL after timeout_ms, then wait up to 5 s more.
 * Returns true if the group ended within timeout_ms of the SIGTERM. */
bool pt_pgrp_stop(pid_t pgid, int timeout_ms);

/* End the process group of the caller's child pid, its leader:
 * SIGTERM to the group, reap the leader (waiting up to timeout_ms, then
 * SIGKILL to the group), then pt_pgrp_stop for the members left.  (An
 * unreaped leader is a zombie, which still counts as a group member: use
 * this, not pt_pgrp_stop, for a group whose leader is our child.)
 * status: the leader's waitpid status (may be NULL).  Returns true if all
 * ended within timeout_ms of their SIGTERM. */
bool pt_child_group_stop(pid_t pid, int timeout_ms, int *status);

#endif
