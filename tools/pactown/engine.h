/* engine.h — one run of a markpact README: what `pactown run` and the API's
 * /run do (internal to tools/pactown). Parse, register the requirement set,
 * write the sandbox, resolve the venv through the mount (building on a miss),
 * start the run command in its own session and process group, wait for
 * health, run the README's tests when asked. Messages go through cli_say and
 * cli_err, so the CLI prints them and the API collects them. */
#ifndef PACTOWN_ENGINE_H
#define PACTOWN_ENGINE_H

#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"
#include "pactown/cgroup.h"
#include "pactown/key.h"
#include "pactown/profile.h"

struct run_req {
    const char *readme;        /* the README's path; with content: its name in messages */
    const char *content;       /* README text posted to the API (NULL: read readme) */
    size_t content_len;
    const char *service_id;    /* valid (pt_service_id_valid) */
    int port;                  /* 1..65535, or 0: the first free from 8001 */
    const char *host;          /* HOST for the service and the health check */
    const char *health_path;   /* NULL = /health, then / */
    int timeout_s;             /* health wait, seconds */
    bool skip_health, detach, prepare, refresh, once, test, json;
    char **envs;               /* "KEY=VALUE" (not copied), last wins */
    int n_envs;
    uint64_t t0;               /* pt_mono_ns() when the request began (timings count from it) */
    /* Called once the service's process runs (its pid: leader of its own
     * session and process group), before the health wait; may be NULL. */
    void (*on_start)(void *ctx, pid_t pid);
    void *on_start_ctx;
    const volatile sig_atomic_t *stopped; /* non-zero once the user stopped the run (Ctrl-C); may be NULL */
    const char *user_id;       /* the API's user_id, project_id and service_name, kept in the */
    int64_t project_id;        /* service's record (NULL / 0 from the CLI) */
    const char *service_name;
    const char *user;          /* run as this user's own uid (`--user`, the API's user_id); NULL = as now */
    pt_profile profile;        /* the user's profile (engine_profile, then the request's fields): its
                                  kernel limits (a cgroup of its own) and admission; zeros = none */
    const char *warm;          /* warm start (pactown/warm.h): "no", "yes", "auto"; NULL: the setting warm */
};

#define ENGINE_ENVS 320        /* envs at most (the API's 256, the CLI's 64) */

struct run_out {
    int exit;                  /* an exit code of cli.h; --once: the job's (128+N: signal N) */
    bool running;              /* a service is still running (its record and lease in the index) */
    bool hit;                  /* the venv was built already */
    bool healthy;              /* the health check passed */
    pid_t pid;                 /* the service's (or job's) pid, 0 if none started */
    int port;                  /* where it listens (may differ from the request's, said) */
    char key[PT_KEY_HEX + 1];  /* the requirement set's key, "" before it is known */
    char sandbox[PATH_MAX];    /* <sandbox_root>/<id>, "" before it is known */
    char venv[PATH_MAX];       /* the store path of the venv, "" before it is resolved */
    char command[512];         /* the run command's first line (shortened), for messages */
    double sandbox_ms;         /* from t0 until the sandbox and venv were ready */
    double total_ms;           /* from t0 until healthy (or started, or the job ended) */
    int job_status;            /* once: the waitpid status */
    bool job_done;             /* once: the job ran to its end (job_status is its) */
    json_t *tests;             /* the test report when the tests ran for the API, else NULL (caller decrefs) */
    bool too_many;             /* EXIT_REFUSED by a count (concurrent, hourly, per minute): HTTP 429, not 403 */
    bool warm;                 /* started by a warm process (pactown/warm.h), not /bin/sh */
    int exit_fd;               /* warm and still running: where its exit status arrives (pt_started_wait);
                                  the caller closes it; -1 otherwise */
};

/* Run req. Returns out->exit (also when a service is left running: the CLI
 * then waits for out->pid, its child, or on out->exit_fd for a warm start:
 * pt_started_wait). Never exits the process. */
int engine_run(struct cli *cli, const struct run_req *req, struct run_out *out);

/* The profile of user from the user_profiles file ([user], else [*]) into
 * *p (zeroed first). Prints the error; returns 0 or EXIT_USAGE. */
int engine_profile(struct cli *cli, const char *user, pt_profile *p);

/* The warm process of warm_id (pactown/warm.h) started in the background
 * for the next start of key, after the least recently used one is ended
 * when max_warm run: as the uid of u (NULL: this process's), with the
 * variables of env its interpreter reads at its start, leasing the venv. A
 * failure is said (cli_note) and changes nothing else. */
void engine_start_warm(struct cli *cli, const char *key, const char *venv, const char *warm_id, char *const *env,
                       const pt_user *u);

/* A later update of a running or ended service's record (pid 0: ended now);
 * a failure is said. */
void engine_note_service(struct cli *cli, pt_service *svc);

/* The service svc (whose leader was pid) has ended or was stopped: its record
 * says so (pid 0, ended now unless set) and pid's lease on svc->key ends, in
 * one commit (pt_index_service_lease); a failure is said. */
void engine_end_service(struct cli *cli, pt_service *svc, pid_t pid);

#endif
