/* test_proc.c — process identity from /proc: start times, liveness, zombies,
 * process groups. Every child started is killed and reaped in teardown. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/proc.h"
#include "testutil.h"

static char tmpdir[PATH_MAX];
static pid_t kid;
static int hold = -1; /* write end of the pipe the child blocks on */

static void setup(void)
{
    kid = 0;
    hold = -1;
    tu_tmpdir(tmpdir, "proc");
}

static void teardown(void)
{
    if (kid > 0)
        tu_kill_reap(kid);
    if (hold >= 0)
        close(hold);
    tu_rmtree(tmpdir);
}

TestSuite(proc, .init = setup, .fini = teardown);

/* Fork a child that (optionally) makes its own process group, renames itself,
 * reports ready, then blocks reading a pipe until killed or the pipe closes. */
static pid_t start_child(bool own_pgrp, const char *name)
{
    int blk[2], ready[2];
    cr_assert_eq(pipe2(blk, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(blk[1]);
        close(ready[0]);
        if (own_pgrp && setpgid(0, 0) != 0)
            _exit(1);
        if (name)
            prctl(PR_SET_NAME, name);
        char c = 'r';
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        ssize_t r;
        do
            r = read(blk[0], &c, 1);
        while (r < 0 && errno == EINTR);
        _exit(0);
    }
    kid = pid;
    close(blk[0]);
    close(ready[1]);
    hold = blk[1];
    char c;
    ssize_t r;
    do
        r = read(ready[0], &c, 1);
    while (r < 0 && errno == EINTR);
    close(ready[0]);
    cr_assert_eq(r, 1, "child did not start");
    return pid;
}

/* Wait until pid has ended, without reaping it (pidfd + poll + WNOWAIT). */
static void wait_ended_unreaped(pid_t pid, int timeout_ms)
{
    int r = tu_pidfd_wait(pid, timeout_ms);
    cr_assert_geq(r, 0, "pidfd_open: %s", strerror(-r));
    cr_assert_eq(r, 1, "process %d did not end within %d ms", (int)pid, timeout_ms);
    siginfo_t si = { 0 };
    cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    cr_assert_eq(si.si_pid, pid);
}

static void reap(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    kid = 0;
}

Test(proc, start_time_of_self_is_stable)
{
    uint64_t a = 0, b = 0;
    cr_assert_eq(pt_proc_start_time(getpid(), &a), 0);
    cr_assert_gt(a, 0);
    cr_assert_eq(pt_proc_start_time(getpid(), &b), 0);
    cr_assert_eq(a, b);
    cr_assert_eq(pt_proc_alive(getpid(), a), true);
    cr_assert_eq(pt_proc_alive(getpid(), 0), true);
    cr_assert_eq(pt_proc_alive(getpid(), a + 1), false, "another start time is another process");
    /* our parent started no later than we did */
    uint64_t pp;
    cr_assert_eq(pt_proc_start_time(getppid(), &pp), 0);
    cr_assert_leq(pp, a);
}

Test(proc, missing_process)
{
    uint64_t t = 7;
    cr_assert_eq(pt_proc_start_time(INT_MAX, &t), -ENOENT);
    cr_assert_eq(t, 7);
    cr_assert_eq(pt_proc_alive(INT_MAX, 0), false);
    cr_assert_eq(pt_proc_alive(0, 0), false);
    cr_assert_eq(pt_proc_alive(-1, 0), false);
}

Test(proc, child_alive_then_dead)
{
    pid_t pid = start_child(false, NULL);
    uint64_t self, t;
    cr_assert_eq(pt_proc_start_time(getpid(), &self), 0);
    cr_assert_eq(pt_proc_start_time(pid, &t), 0);
    cr_assert_geq(t, self);
    cr_assert_eq(pt_proc_alive(pid, t), true);
    cr_assert_eq(pt_proc_alive(pid, 0), true);
    cr_assert_eq(pt_proc_alive(pid, t + 1), false);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    wait_ended_unreaped(pid, 10000);
    reap(pid);
    cr_assert_eq(pt_proc_alive(pid, t), false);
    cr_assert_eq(pt_proc_alive(pid, 0), false);
    cr_assert_eq(pt_proc_start_time(pid, &t), -ENOENT);
}

Test(proc, zombie_is_not_alive)
{
    pid_t pid = start_child(false, NULL);
    uint64_t t;
    cr_assert_eq(pt_proc_start_time(pid, &t), 0);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    wait_ended_unreaped(pid, 10000);
    /* still a zombie: /proc/<pid> exists, but the process has ended */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    cr_assert_eq(access(path, F_OK), 0, "zombie already gone?");
    cr_assert_eq(pt_proc_alive(pid, t), false);
    cr_assert_eq(pt_proc_alive(pid, 0), false);
    uint64_t z;
    cr_assert_eq(pt_proc_start_time(pid, &z), -ESRCH);
    reap(pid);
}

Test(proc, command_name_with_spaces_and_parens)
{
    pid_t pid = start_child(false, "a) b (c) Z 1");
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_assert_str_eq(buf, "a) b (c) Z 1\n", "rename did not take");
    uint64_t t;
    cr_assert_eq(pt_proc_start_time(pid, &t), 0, "a name with ') Z' is not a zombie");
    /* compare with field 22 read independently from the end of the name */
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    char stat[1024];
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    char *p = strrchr(stat, ')');
    cr_assert_not_null(p);
    unsigned long long want = 0;
    /* fields 3..21 skipped, field 22 read */
    int got = sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                     &want);
    cr_assert_eq(got, 1);
    cr_assert_eq(t, (uint64_t)want);
    cr_assert_eq(pt_proc_alive(pid, t), true);
}

Test(proc, pgrp_alive)
{
    cr_assert_eq(pt_pgrp_alive(getpgrp()), true);
    cr_assert_eq(pt_pgrp_alive(0), false);
    cr_assert_eq(pt_pgrp_alive(-1), false);
    cr_assert_eq(pt_pgrp_alive(INT_MAX), false);

    pid_t pid = start_child(true, NULL);
    cr_assert_eq(getpgid(pid), pid);
    cr_assert_eq(pt_pgrp_alive(pid), true);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    wait_ended_unreaped(pid, 10000);
    reap(pid);
    cr_assert_eq(pt_pgrp_alive(pid), false);
}

/* A lease lasts while its holder's process group does: a service's workers
 * outlive its leader. */
Test(proc, holder_alive_while_its_group_lives, .timeout = 30)
{
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* the orphaned worker comes back to us */
    int blk[2], ready[2];
    cr_assert_eq(pipe2(blk, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
    pid_t leader = fork();
    cr_assert_geq(leader, 0);
    if (leader == 0) {
        if (setpgid(0, 0) != 0)
            _exit(1);
        pid_t worker = fork();
        if (worker == 0) {
            char c = 'w';
            close(blk[1]);
            if (write(ready[1], &c, 1) != 1)
                _exit(2);
            while (read(blk[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(0);
        }
        _exit(worker > 0 ? 0 : 3); /* the leader goes; its worker stays */
    }
    close(blk[0]);
    close(ready[1]);
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1, "the worker did not start");
    close(ready[0]);
    uint64_t start;
    int st;
    cr_assert_eq(waitpid(leader, &st, 0), leader);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_neq(pt_proc_start_time(leader, &start), 0, "the leader is gone");
    cr_assert(pt_holder_alive(leader, 12345), "the leader's group still has its worker");
    close(blk[1]); /* the worker ends */
    pid_t w = wait(&st);
    cr_assert_gt(w, 0);
    cr_assert(!pt_holder_alive(leader, 12345), "the whole group is gone");
    cr_assert(!pt_holder_alive(0, 0));
}

Test(proc, zombie_group_has_ended_for_holders_but_exists_for_kill)
{
    pid_t pid = start_child(true, "pt-zombie");
    uint64_t ticks;
    cr_assert_eq(pt_proc_start_time(pid, &ticks), 0);
    pid_t pg = 0;
    bool z = true;
    cr_assert_eq(pt_proc_pgrp(pid, &pg, &z), 0);
    cr_assert_eq(pg, pid);
    cr_assert_not(z);
    cr_assert(pt_pgrp_live(pid));
    close(hold); /* the child exits; not reaped: a zombie that still makes up its group */
    hold = -1;
    wait_ended_unreaped(pid, 5000);
    cr_assert_eq(pt_proc_pgrp(pid, &pg, &z), 0);
    cr_assert(z, "an ended, unreaped child is a zombie");
    cr_assert(pt_pgrp_alive(pid), "kill(2) still finds the zombie's group");
    cr_assert_not(pt_pgrp_live(pid), "but no live member is left");
    cr_assert_not(pt_holder_alive(pid, ticks), "a zombie holds no lease");
    cr_assert_not(pt_holder_alive(pid, 0));
}

Test(proc, child_group_stop_reaps_the_leader_and_ends_the_group)
{
    pid_t pid = start_child(true, "pt-leader");
    int status = -1;
    cr_assert(pt_child_group_stop(pid, 5000, &status));
    kid = 0; /* reaped */
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "status %#x", status);
    cr_assert_not(pt_pgrp_alive(pid));
    cr_assert_eq(waitpid(pid, NULL, WNOHANG), -1, "the leader is reaped");
}
