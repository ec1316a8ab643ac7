/* test_cgroup.c — what pt_cgroup_create refuses without touching the host
 * (pactown/cgroup.h): a limit no usable controller can hold, a bad id. The
 * kernel's side (limits held) is tests/integration/users.sh. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "pactown/cgroup.h"

Test(cgroup, a_limit_without_its_controller_is_refused)
{
    pt_cg_host none = { .kind = PT_CG_NONE };
    pt_limits lim = { .max_memory_mb = 64 };
    int fds[PT_CG_N], n = 7;
    pt_error err = { 0 };
    cr_assert_eq(pt_cgroup_create(&none, "svc", &lim, fds, &n, &err), -EOPNOTSUPP);
    cr_expect_eq(n, 0);
    cr_expect(strstr(err.msg, "max_memory_mb: this host has no usable cgroup memory controller") != NULL, "%s",
              err.msg);
    /* v1 with memory but no pids: a process limit is refused, by name */
    pt_cg_host v1 = { .kind = PT_CG_V1 };
    strcpy(v1.base[PT_CG_MEMORY], "/nonexistent/memory/pactown-x");
    pt_limits procs = { .max_processes = 20 };
    cr_assert_eq(pt_cgroup_create(&v1, "svc", &procs, fds, &n, &err), -EOPNOTSUPP);
    cr_expect(strstr(err.msg, "max_processes") != NULL && strstr(err.msg, "pids") != NULL, "%s", err.msg);
}

Test(cgroup, ids_are_checked_and_nothing_is_a_cgroup_of_none)
{
    pt_cg_host none = { .kind = PT_CG_NONE };
    uint64_t v;
    cr_expect_eq(pt_cgroup_memory(&none, "svc", &v), -ENOENT);
    cr_expect_eq(pt_cgroup_remove(&none, "svc"), 0);
    pt_cg_host v1 = { .kind = PT_CG_V1 };
    strcpy(v1.base[PT_CG_MEMORY], "/nonexistent/memory/pactown-x");
    pt_limits lim = { 0 };
    int fds[PT_CG_N], n;
    pt_error err = { 0 };
    cr_expect_eq(pt_cgroup_create(&v1, "../x", &lim, fds, &n, &err), -EINVAL);
    char buf[96];
    cr_expect_str_eq(pt_cgroup_describe(&v1, buf, sizeof buf), "cgroup v1 (memory)");
    cr_expect_str_eq(pt_cgroup_describe(&none, buf, sizeof buf), "no cgroups");
}
