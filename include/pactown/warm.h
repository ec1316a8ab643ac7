/* pactown/warm.h — warm starts: a warm process per venv and uid that has
 * imported the venv's modules and forks a child per service start
 * (docs/WARM.md). Android's zygote, gunicorn's --preload and
 * multiprocessing's forkserver are the models.
 *
 * Three parts:
 *  - the plan (pt_warm_plan): is the run command a Python entry point a
 *    forked interpreter can run exactly (`python FILE`, `python -m MODULE`,
 *    a console script of the venv), and what sys.argv, sys.orig_argv,
 *    sys.executable and sys.path[0] a cold start would have given it;
 *  - the warm process (pt_warm_spawn): started by pactown as the services'
 *    uid, listening on <cache>/warm/<id>.sock, its state in <cache>/warm/<id>/;
 *  - the hand-off (pt_warm_start): the start given to it over that socket,
 *    with the service's descriptors (SCM_RIGHTS, unix(7)); the child it
 *    forks is moved into the service's cgroups by the caller before it runs
 *    anything of the service.
 *
 * Every function returns 0 or -errno; a plan that must start cold says why.
 */
#ifndef PACTOWN_WARM_H
#define PACTOWN_WARM_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pactown/key.h"

typedef enum pt_warm_kind {
    PT_WARM_COLD = 0,   /* start with /bin/sh -c as always (why says why) */
    PT_WARM_FILE,       /* python FILE ARGS */
    PT_WARM_MODULE,     /* python -m MODULE ARGS */
    PT_WARM_SCRIPT,     /* a console script of the venv (#!<venv>/bin/python) */
} pt_warm_kind;

#define PT_WARM_ARGS 256

typedef struct pt_warm_plan {
    pt_warm_kind kind;
    char why[256];              /* PT_WARM_COLD: the reason, for the log */
    char exe[PATH_MAX];         /* sys.executable: the interpreter as the kernel or the shell found it */
    char target[PATH_MAX];      /* FILE as __main__.__file__ has it (absolute), the MODULE, or the script */
    char path0[PATH_MAX];       /* sys.path[0] (Python/pathconfig.c, _PyPathConfig_ComputeSysPath0) */
    char *argv[PT_WARM_ARGS + 1];      /* sys.argv at the start (malloc'd; NULL-terminated) */
    char *orig_argv[PT_WARM_ARGS + 3]; /* sys.orig_argv (malloc'd; NULL-terminated) */
    uint64_t env_sig;           /* hash of the variables the interpreter reads at its start (PYTHON*, LANG,
                                 * LC_*, TZ): one warm process per (key, uid, env_sig) */
} pt_warm_plan;

/* Plan the start of the markpact:run command body for the venv at venv (the
 * store path), in cwd, with the service's environment env (NULL-terminated
 * "NAME=value"). The words are those /bin/sh would make: wordexp(3) with
 * WRDE_NOCMD, in a forked child whose environment is env and cwd is cwd (so
 * $VAR, quotes, ~ and globs expand as the service's shell would expand
 * them); a pipeline, a list, a redirection, a command substitution, an
 * assignment, a shell builtin, an interpreter option, or a program that is
 * not the venv's interpreter or one of its Python scripts: PT_WARM_COLD with
 * why. So is a PYTHON* variable the warm process cannot take as it is
 * (PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, ...). Returns 0 (a plan, maybe
 * cold), or -errno (-ENOMEM). Free with pt_warm_plan_free. single_threaded:
 * the caller has no other thread, so wordexp runs in this process, with
 * environ and the cwd swapped for it and put back (a fork costs 1.5-2 ms of
 * a warm start's 35); else in a forked child. */
int pt_warm_plan_make(const char *body, const char *venv, const char *cwd, char *const *env, bool single_threaded,
                      pt_warm_plan *p);
void pt_warm_plan_free(pt_warm_plan *p);

/* The env_sig of an environment (pt_warm_plan.env_sig): xxHash64 of its
 * variables the interpreter reads at its start, sorted. */
uint64_t pt_warm_env_sig(char *const *env);

/* The warm process's id: "<key>-<uid>-<env_sig as 16 hex>". */
void pt_warm_id(const char *key, uid_t uid, uint64_t env_sig, char *out, size_t n);

typedef struct pt_warm_spawn_opts {
    const char *cache_dir;      /* <cache>/warm/ holds the socket and the process's directory */
    const char *venv;           /* the store path: <venv>/bin/python runs the zygote */
    const char *id;             /* pt_warm_id */
    char *const *env;           /* its environment: the service's variables of env_sig, PATH, HOME */
    const char *const *preload; /* modules to import (NULL-terminated; NULL: the venv's top-level modules) */
    bool set_ids;               /* run as uid/gid (the services' uid: never root when they are not) */
    uid_t uid;
    gid_t gid;
    long idle_seconds;          /* it exits after this long without a start or a running child */
} pt_warm_spawn_opts;

/* Start the warm process of o->id in the background: <cache>/warm/<id>.sock
 * bound (root's directory, mode 0711; the socket 0600, root's), its
 * directory <cache>/warm/<id>/ (the uid's, 0700) with the preload list and
 * its log, then <venv>/bin/python <cache>/warm/zygote-<hash>.py
 * (src/warm/zygote.py) in a session of its own with the socket as its
 * stdin; it forks at once (so that it is init's child, not the caller's),
 * writes its pid, preloads, and only then calls listen(2): a start before
 * that finds nobody listening and goes cold. Returns 0 with *pid (the warm
 * process's, once it has written it), -EEXIST when one runs already
 * (pt_warm_pid), -ETIMEDOUT when it wrote no pid within 2 s, or -errno. */
int pt_warm_spawn(const pt_warm_spawn_opts *o, pid_t *pid);

/* The pid of the warm process of id while it runs (preloading or ready):
 * <id>/pid, counted only when it names a live process of the id's uid;
 * else 0. */
pid_t pt_warm_pid(const char *cache_dir, const char *id);

/* End the warm process of id (SIGKILL; the services it forked run on, in
 * sessions of their own) and remove its socket and directory. */
void pt_warm_stop(const char *cache_dir, const char *id);

/* A running warm process, as pt_warm_each reports it. */
typedef struct pt_warm_info {
    char id[128];
    char key[PT_KEY_HEX + 1];
    uid_t uid;
    pid_t pid;
    uint64_t rss_bytes;         /* resident memory (statm; pages shared with its children count here) */
    int64_t last_use;           /* epoch seconds of its last start (its socket's mtime), or its own start */
} pt_warm_info;

/* Call fn for every running warm process under <cache>/warm (directory
 * order); fn returning non-zero stops the walk and is returned. 0 when
 * there is none (or no <cache>/warm). */
int pt_warm_each(const char *cache_dir, int (*fn)(const pt_warm_info *w, void *arg), void *arg);

/* Make room for one more warm process under max (setting max_warm): while
 * max or more run, the least recently used one is ended (pt_warm_stop), and
 * its id said in ended (may be NULL; the last one ended). Returns the number
 * ended. max 0: no limit. */
int pt_warm_make_room(const char *cache_dir, long max, char *ended, size_t n);

/* Wait up to timeout_ms for the warm process of id to have written its pid
 * (pt_warm_spawn returns before): its pid, or 0. */
pid_t pt_warm_wait_pid(const char *cache_dir, const char *id, int timeout_ms);

typedef struct pt_warm_start_opts {
    const char *cache_dir;
    const char *id;
    const pt_warm_plan *plan;
    const char *cwd;            /* the sandbox */
    char *const *env;           /* the service's whole environment */
    int stdin_fd, stdout_fd, stderr_fd; /* the service's; -1: /dev/null (stdin) or the caller's */
    uid_t uid;                  /* the uid the warm process and the child must have */
    const int *cgroup_procs;    /* open cgroup.procs files the child is moved into before it runs */
    int n_cgroup_procs;
    int timeout_ms;             /* for the warm process's answer; 0: 2000 */
} pt_warm_start_opts;

/* Hand the start to the ready warm process of o->id: connect (checking with
 * SO_PEERCRED that its peer is that process and has o->uid), send the plan,
 * the environment, the cwd and the three descriptors, read back the child's
 * pid (checked: the warm process's child, o->uid), write it into every
 * cgroup.procs, then let it go. Returns 0 with *pid and *exit_fd (the
 * connection, on which the child's wait status arrives: pt_warm_wait;
 * close-on-exec; the caller closes it), or -errno with why (-ENOENT or
 * -EAGAIN: no ready warm process; -EPROTO: it answered wrongly, and was
 * ended). Nothing of the service has run when it fails. */
int pt_warm_start(const pt_warm_start_opts *o, pid_t *pid, int *exit_fd, char *why, size_t why_n);

/* A connection to the prober of the ready warm process of id (its peer
 * checked as pt_warm_start does: that process, with uid), for
 * pt_warm_probe: 0 with *fd (close-on-exec; the caller closes it), or
 * -errno with why (-EAGAIN or -ENOENT: no ready warm process; -EPROTO: its
 * socket is another uid's, and it was ended; -EPIPE: it refused). */
int pt_warm_probe_open(const char *cache_dir, const char *id, uid_t uid, int *fd, char *why, size_t why_n);

/* One HTTP GET of path on host:port (a numeric address or "localhost")
 * sent by the warm process's prober, as pt_http_probe (pactown/health.h)
 * sends it with libcurl: no proxy, no redirect followed, the whole answer
 * within timeout_ms (> 0). Returns 0 with *status (100..599),
 * -ECONNREFUSED, -ETIMEDOUT, -EIO (not an HTTP answer), -EINVAL, -ENOMEM,
 * or -EPIPE: the prober is unusable (it closed, did not answer within
 * timeout_ms + 1 s, or answered with anything else); the caller probes
 * another way. */
int pt_warm_probe(int fd, const char *host, int port, const char *path, int timeout_ms, long *status);

/* The exit of a child started by pt_warm_start: wait up to timeout_ms (-1:
 * no limit, 0: poll) for its wait status on exit_fd. Returns 1 with *status
 * (as waitpid(2) gives it), 0 while it runs, -EPIPE when the warm process
 * went away without saying (the status is lost; pid may still run), or
 * -errno. */
int pt_warm_wait(int exit_fd, int timeout_ms, int *status);

/* The environment of the warm process for a service's env: the variables
 * of env_sig (PYTHON*, LANG, LC_*, TZ) and PATH, copied (NULL-terminated;
 * free with pt_env_free, pactown/spawn.h), or NULL (out of memory). */
char **pt_warm_env(char *const *env);

/* A service started either way: cold (exit_fd < 0: pid is the caller's
 * child, waitpid(2)) or warm (exit_fd from pt_warm_start: the status
 * arrives there). Wait for its end: 0 with *status; when a warm process
 * went away without saying, the wait goes on until pid's process group is
 * gone and *status is 255 << 8 (exit code 255: unknown). */
int pt_started_wait(pid_t pid, int exit_fd, int *status);

/* Stop it: SIGTERM to its process group, then SIGKILL after timeout_ms,
 * then whatever is left in its group (pt_pgrp_stop, pactown/proc.h). true if
 * it ended within timeout_ms; *status (may be NULL) gets its wait status. */
bool pt_started_stop(pid_t pid, int exit_fd, int timeout_ms, int *status);

#endif
