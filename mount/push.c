/* push.c — after a build, the venv pushed to the registry in the
 * background (pactown-registry push, pactown/registry.h): the build
 * thread waits for it after the venv is served, with no lock held. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pactown/spawn.h"
#include "pactownfs.h"

void pt_fs_push(struct pt_fs *fs, const char *key)
{
    if (!*fs->registry_helper)
        return;
    char logpath[PATH_MAX], timeout[24];
    snprintf(logpath, sizeof logpath, "%s/%.64s.log", fs->logs, key);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        fprintf(stderr, "pactownfs: %s: %s; %s not pushed\n", logpath, strerror(errno), key);
        return;
    }
    snprintf(timeout, sizeof timeout, "%ld", fs->cfg.registry_timeout);
    const char *argv[16];
    size_t n = 0;
    argv[n++] = fs->registry_helper;
    argv[n++] = "push";
    argv[n++] = "--cache-dir"; argv[n++] = fs->cache_dir;
    argv[n++] = "--key"; argv[n++] = key;
    argv[n++] = "--registry"; argv[n++] = fs->cfg.registry;
    if (*fs->cfg.registry_auth) { argv[n++] = "--registry-auth"; argv[n++] = fs->cfg.registry_auth; }
    argv[n++] = "--registry-timeout"; argv[n++] = timeout;
    argv[n] = NULL;
    /* the daemon's environment: a proxy and CA settings reach libcurl */
    pt_spawn_opts so = { .argv = argv, .envp = NULL, .stdin_fd = -1, .stdout_fd = logfd, .stderr_fd = logfd,
                         .new_pgrp = true, .death_signal = SIGTERM };
    pid_t pid;
    int rc = pt_spawn(&so, &pid);
    close(logfd);
    if (rc) {
        fprintf(stderr, "pactownfs: cannot start %s: %s; %s not pushed\n", fs->registry_helper, strerror(-rc), key);
        return;
    }
    if (!pt_claims_pusher_add(fs, pid))
        kill(-pid, SIGTERM); /* stopping (or 64 pushes at once): it ends now */
    int pfd = pidfd_open(pid, 0);
    if (pfd >= 0) {
        struct pollfd p = { .fd = pfd, .events = POLLIN };
        long ms = fs->cfg.build_timeout > 0 ? fs->cfg.build_timeout * 1000 : -1;
        int r;
        do
            r = poll(&p, 1, (int)ms);
        while (r < 0 && errno == EINTR);
        if (r == 0)
            kill(-pid, SIGKILL); /* over build_timeout: a registry that never answers */
        close(pfd);
    }
    pt_claims_pusher_del(fs, pid); /* before the reap: the stop never signals a reused pid */
    int status = 0;
    pt_wait(pid, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char how[96];
        pt_describe_status(status, how, sizeof how);
        if (!pt_claims_stopping(fs))
            fprintf(stderr, "pactownfs: pushing %s to the registry failed (%s): see logs/%s.log\n", key, how, key);
    }
}
