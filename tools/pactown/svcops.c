/* svcops.c — stopping and removing a service, for `pactown stop`/`rm` and
 * the API's /stop and DELETE /services/{id} (svcops.h). */
#include "svcops.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "pactown/cgroup.h"
#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/proc.h"
#include "pactown/sandbox.h"

int cli_service_stop(struct cli *cli, const char *id, int timeout_s, pt_service *s, bool *was_running)
{
    *was_running = false;
    if (!pt_service_id_valid(id) || pt_index_service_get(cli->idx, id, s) != 0) {
        cli_err(cli, "no service '%s'%s", id, cli->api ? "" : " (see `pactown ps`)");
        return EXIT_NOT_FOUND;
    }
    pid_t pid = s->pid;
    if (pid > 0 && pt_holder_alive(pid, s->pid_start)) {
        *was_running = true;
        if (s->user_id[0] && !cli->api)
            cli_note(cli, "note: %s is user %s's service: stopped as root", id, s->user_id);
        if (!pt_pgrp_stop(pid, timeout_s * 1000))
            cli_note(cli, "%s did not stop within %d s; killed it", id, timeout_s);
    }
    pt_cg_host cg;
    cli_cgroups(cli, &cg);
    pt_cgroup_remove(&cg, id); /* its cgroup, if it had one, goes with it */
    if (s->pid > 0 || !s->ended)
        s->ended = pt_wall_s();
    s->pid = 0;
    /* its lease ends with it (a restarted server's service too), in the
     * commit that records its end */
    int rc = pid > 0 && strlen(s->key) == PT_KEY_HEX ? pt_index_service_lease(cli->idx, s, 0, NULL, pid)
                                                     : pt_index_service_put(cli->idx, s);
    if (rc != 0)
        cli_err(cli, "warning: cannot update the record of %s in the index", id);
    s->pid = pid;
    return EXIT_OK;
}

/* The sandbox, then the record (so by-service/ID goes too). */
static int remove_service(struct cli *cli, const char *id)
{
    char sandbox[PATH_MAX];
    if (cli_sandbox_path(&cli->cfg, cli->idx, id, sandbox, sizeof sandbox, NULL) != 0)
        return -ENAMETOOLONG;
    int rc = pt_rm_rf(sandbox);
    if (rc) {
        cli_err(cli, "cannot remove the sandbox %s: %s", sandbox, strerror(-rc));
        return rc;
    }
    pt_cg_host cg;
    cli_cgroups(cli, &cg);
    pt_cgroup_remove(&cg, id); /* one its service left behind when it ended by itself */
    rc = pt_index_service_del(cli->idx, id);
    if (rc && rc != -ENOENT)
        cli_err(cli, "cannot remove the record of %s from the index: %s", id, strerror(-rc));
    return rc == -ENOENT ? 0 : rc;
}

int cli_service_rm(struct cli *cli, const char *id, bool *had_record)
{
    pt_service s;
    *had_record = false;
    if (!pt_service_id_valid(id)) {
        cli_err(cli, "no service '%s'%s", id, cli->api ? "" : " (see `pactown ps --all`)");
        return EXIT_NOT_FOUND;
    }
    if (pt_index_service_get(cli->idx, id, &s) != 0) {
        /* a sandbox without a record: `run --prepare`, or a run refused before it started */
        char sandbox[PATH_MAX];
        struct stat st;
        cli_sandbox_path(&cli->cfg, cli->idx, id, sandbox, sizeof sandbox, NULL);
        if (lstat(sandbox, &st) != 0) {
            cli_err(cli, "no service '%s'%s and no sandbox %s", id, cli->api ? "" : " (see `pactown ps --all`)",
                    sandbox);
            return EXIT_NOT_FOUND;
        }
        return remove_service(cli, id) == 0 ? EXIT_OK : EXIT_ERROR;
    }
    *had_record = true;
    if (s.pid > 0 && pt_holder_alive(s.pid, s.pid_start)) {
        cli_err(cli, "service %s is running (pid %d): stop it first%s%s%s", id, (int)s.pid,
                cli->api ? " (POST /stop)" : " with `pactown stop ", cli->api ? "" : id, cli->api ? "" : "`");
        return EXIT_RUNNING;
    }
    return remove_service(cli, id) == 0 ? EXIT_OK : EXIT_ERROR;
}

void cli_prune_services_ids(struct cli *cli, char (*ids)[PT_SERVICE_ID_MAX + 1], size_t n, size_t *pruned)
{
    *pruned = 0;
    for (size_t i = 0; i < n; i++)
        *pruned += pt_service_id_valid(ids[i]) && remove_service(cli, ids[i]) == 0;
}
