/* pactown/cgroup.h — a cgroup per service, with the limits the kernel holds
 * it to (cgroups(7)): memory, CPU and a number of processes.
 *
 * cgroup v2 (a unified hierarchy at /sys/fs/cgroup, Documentation/admin-guide/
 * cgroup-v2.rst) when the host has it, else v1's memory, cpu and pids
 * hierarchies (Documentation/admin-guide/cgroup-v1/). A service's cgroup is
 * <controller's mount><this process's own cgroup>/pactown/<service id>: under
 * the cgroup that holds pactown itself, so that the host's own limits on it
 * still count.
 *
 * Conventions: 0 or -errno; err (may be NULL) gets a reason naming the file.
 */
#ifndef PACTOWN_CGROUP_H
#define PACTOWN_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "pactown/error.h"

typedef enum pt_cg_kind { PT_CG_NONE = 0, PT_CG_V1 = 1, PT_CG_V2 = 2 } pt_cg_kind;

enum { PT_CG_MEMORY, PT_CG_CPU, PT_CG_PIDS, PT_CG_N };

/* What this host offers: kind, and for each controller the directory under
 * which services' cgroups go ("" when that controller is not usable). */
typedef struct pt_cg_host {
    pt_cg_kind kind;
    char base[PT_CG_N][PATH_MAX];   /* e.g. /sys/fs/cgroup/memory/process_api/x/pactown (v1), or one
                                       directory three times (v2) */
} pt_cg_host;

/* A service's limits; 0 = none. */
typedef struct pt_limits {
    long max_memory_mb;     /* memory (RSS and page cache) in MiB: the kernel's OOM killer acts inside */
    long max_cpu_percent;   /* CPU time in percent of one CPU (200 = two CPUs), as a CFS quota */
    long max_processes;     /* processes and threads at most (the pids controller): a fork loop stops */
} pt_limits;

/* Find the cgroup hierarchies of this host from /proc/self/mountinfo and
 * /proc/self/cgroup. Never fails: out->kind is PT_CG_NONE when no
 * controller is there. */
void pt_cgroup_detect(pt_cg_host *out);

/* "cgroup v1 (memory, cpu, pids)", "cgroup v2 (memory, cpu, pids)", "no cgroups" … */
const char *pt_cgroup_describe(const pt_cg_host *h, char *buf, size_t n);

/* Make (or empty and reuse) the cgroups of service id with limits lim, and
 * open their cgroup.procs for a child to join (pt_spawn_opts.cgroup_procs):
 * fds[0..*n) (at most PT_CG_N, close them after the spawn). A limit asked of
 * a controller the host lacks is -EOPNOTSUPP with err naming it, never
 * ignored. Errors: -EOPNOTSUPP, -EINVAL (bad id), -errno of mkdir(2) and
 * write(2) of the control files (-EACCES: not root). */
int pt_cgroup_create(const pt_cg_host *h, const char *id, const pt_limits *lim, int fds[PT_CG_N], int *n,
                     pt_error *err);

/* Open the cgroup.procs of service id's existing cgroups, for another
 * process to join them (the README's shell tests of a running service):
 * fds[0..*n). -ENOENT (and none open) when one is missing. */
int pt_cgroup_open(const pt_cg_host *h, const char *id, int fds[PT_CG_N], int *n);

/* End the cgroups of service id: every process still in them (one that left
 * the service's process group) is killed (v2 cgroup.kill; v1 SIGKILL to each
 * of cgroup.procs until it is empty, at most 2 s), then each is removed
 * (rmdir(2); -EBUSY when one could not be emptied). 0 also when there were
 * none. */
int pt_cgroup_remove(const pt_cg_host *h, const char *id);

/* Memory in use by service id's cgroup, bytes (memory.usage_in_bytes, v1;
 * memory.current, v2); -ENOENT when it has none. */
int pt_cgroup_memory(const pt_cg_host *h, const char *id, uint64_t *bytes);

/* How many times the kernel's OOM killer acted in service id's cgroup
 * (memory.oom_control oom_kill, v1; memory.events oom_kill, v2). */
int pt_cgroup_oom_kills(const pt_cg_host *h, const char *id, uint64_t *kills);

#endif
