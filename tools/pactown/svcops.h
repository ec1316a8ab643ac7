/* svcops.h — stopping and removing a service (internal to tools/pactown):
 * what `pactown stop`/`pactown rm` and the API's /stop and
 * DELETE /services/{id} do. Messages through cli_err/cli_note. */
#ifndef PACTOWN_SVCOPS_H
#define PACTOWN_SVCOPS_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "pactown/sandbox.h"

/* Stop service id: SIGTERM to its whole process group, SIGKILL after
 * timeout_s, wait until the group is gone; its record says it ended and its
 * lease goes. *s: the record (pid: the one it had); *was_running: it ran.
 * Returns EXIT_OK (stopped, or was not running) or EXIT_NOT_FOUND. */
int cli_service_stop(struct cli *cli, const char *id, int timeout_s, pt_service *s, bool *was_running);

/* Remove a stopped service: its sandbox and its record (or a sandbox
 * without a record, *had_record false). Returns EXIT_OK, EXIT_NOT_FOUND,
 * EXIT_RUNNING (refused) or EXIT_ERROR. */
int cli_service_rm(struct cli *cli, const char *id, bool *had_record);

/* Remove each of ids[0..n) (sandbox and record); *pruned: how many went. */
void cli_prune_services_ids(struct cli *cli, char (*ids)[PT_SERVICE_ID_MAX + 1], size_t n, size_t *pruned);

#endif
