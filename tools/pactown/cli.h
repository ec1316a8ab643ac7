/* cli.h — what the pactown subcommands share (internal to tools/pactown). */
#ifndef PACTOWN_CLI_H
#define PACTOWN_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "pactown/config.h"
#include "pactown/error.h"
#include "pactown/index.h"
#include "pactown/interp.h"
#include "pactown/key.h"
#include "pactown/req.h"
#include "pactown/sandbox.h"

/* Exit codes scripts can rely on (also in README.md and `pactown --help`). */
enum {
    EXIT_OK = 0,
    EXIT_ERROR = 1,        /* anything else: index, permissions, internal */
    EXIT_USAGE = 2,        /* bad command line */
    EXIT_BAD_INPUT = 3,    /* malformed README or requirement (file:line: reason) */
    EXIT_BUILD = 4,        /* the venv build failed (see the build log) */
    EXIT_EXITED = 5,       /* the service exited before it was healthy */
    EXIT_TIMEOUT = 6,      /* the service was not healthy within --timeout */
    EXIT_NOT_MOUNTED = 7,  /* pactownfs is not mounted at the mountpoint */
    EXIT_NOT_FOUND = 8,    /* no such service */
    EXIT_RUNNING = 9,      /* a service with this id is already running */
    EXIT_TESTS_FAILED = 10, /* the README's markpact:test tests ran and one or more failed */
    EXIT_PORT_TAKEN = 11,  /* the service's port is held by another program */
    EXIT_REFUSED = 12,     /* refused: a limit the host cannot hold, or another user's service */
    /* run --once: the job's own exit code; 128 + N when signal N killed it (as sh(1) reports) */
};

/* Options every subcommand takes; add CLI_COMMON_LONGOPTS to its option table
 * and pass unknown option codes to cli_common_opt. */
enum { OPT_CONFIG = 1000, OPT_SET, OPT_CACHE_DIR, OPT_MOUNT, OPT_SANDBOX_ROOT, OPT_PYTHON, OPT_JSON, OPT_HELP };
#define CLI_COMMON_LONGOPTS                                         \
    { "config", required_argument, NULL, OPT_CONFIG },              \
    { "set", required_argument, NULL, OPT_SET },                    \
    { "cache-dir", required_argument, NULL, OPT_CACHE_DIR },        \
    { "mount", required_argument, NULL, OPT_MOUNT },                \
    { "sandbox-root", required_argument, NULL, OPT_SANDBOX_ROOT },  \
    { "python", required_argument, NULL, OPT_PYTHON },              \
    { "help", no_argument, NULL, 'h' }

#define CLI_COMMON_HELP                                                              \
    "common options:\n"                                                              \
    "  --config FILE        config file (default $PACTOWN_CONFIG, /etc/pactown/pactown.conf)\n" \
    "  --set KEY=VALUE      any setting (see `pactown config`)\n"                   \
    "  --cache-dir DIR      cache directory (setting cache_dir)\n"                  \
    "  --mount DIR          pactownfs mountpoint (setting mountpoint)\n"            \
    "  --sandbox-root DIR   sandboxes directory (setting sandbox_root)\n"           \
    "  --python PY          interpreter for venvs (setting python)\n"               \
    "  -h, --help           this help\n"

struct cli {
    const char *prog;        /* "pactown run", for messages */
    pt_config cfg;
    pt_index *idx;
    char *sets[32];          /* KEY=VALUE from flags, applied after file and environment */
    int n_sets;
    /* Where messages go: NULL = stderr; else say(say_ctx, error, line) with
     * the line without "prog: " (pactown serve: a request's logs[]). */
    void (*say)(void *ctx, bool error, const char *line);
    void *say_ctx;
    bool borrowed;           /* cfg and idx belong to the caller (pactown serve): cli_free leaves them */
    bool api;                /* a request of the API: templates see only its env, no secrets file */
    bool run_as;             /* the README's programs (build step, shell tests) run as run_uid */
    uid_t run_uid;
    const int *cg_procs;     /* and join these cgroups (pt_spawn_opts.cgroup_procs) */
    int n_cg_procs;
};

/* Handle a common option code c (with optarg). Returns 0 if handled, 1 for
 * --help (caller prints usage and exits 0), -1 if c is not common. */
int cli_common_opt(struct cli *cli, int c, const char *arg);

/* The default case of a command's option loop: a common option (returns -1:
 * go on), --help (usage on stdout, EXIT_OK) or an unknown option (usage on
 * stderr, EXIT_USAGE); cli is freed when an exit code is returned. */
int cli_other_opt(struct cli *cli, int c, const char *arg, void (*usage)(FILE *));

/* Load settings (file, environment, flags). Prints the error and returns
 * EXIT_USAGE/EXIT_ERROR, or 0. */
int cli_setup(struct cli *cli);

/* Open the index in <cache_dir>/index. Prints the error; returns 0 or EXIT_ERROR. */
int cli_open_index(struct cli *cli);

/* Resolve the interpreter, build the canonical text and key of a finished
 * requirement set. *canonical is malloc'd. Prints the error; returns 0 or an exit code. */
int cli_key_of(struct cli *cli, const pt_reqset *set, char key[PT_KEY_HEX + 1], char **canonical, size_t *len);

void cli_free(struct cli *cli);

/* Print "prog: " + message to stderr (or give it to cli->say, as an error). */
void cli_err(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same for a note or warning that is not an error. */
void cli_note(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Progress of a run: "pactown: " + message to stderr, or to cli->say. */
void cli_say(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Report a parse error of file as "FILE:LINE: reason". */
void cli_input_err(const struct cli *cli, const char *file, const pt_error *err);

/* control.c: tell the daemon a cache hit of key (one datagram on
 * <cache_dir>/uses.sock, pactown/control.h), without waiting: 0 when sent,
 * -errno when it could not be (no daemon, not root, its queue full). */
int cli_tell_use(struct cli *cli, const char *key);
/* control.c: have the daemon write the access times and hits it holds in
 * memory to the index (op "flush"), before the index is read for figures;
 * quietly nothing when the daemon cannot be reached. */
void cli_flush_uses(struct cli *cli);

/* Send req to the daemon's control socket, *resp its answer (caller
 * decrefs). Prints the error; returns 0 or an exit code. */
int cli_control(struct cli *cli, json_t *req, json_t **resp);

/* control.c: have the daemon evict key (refused while leased unless force),
 * or forget its failed build (*cleared). Returns 0, EXIT_RUNNING (leased or
 * being built), EXIT_NOT_FOUND (not built), EXIT_NOT_MOUNTED or EXIT_ERROR;
 * the message is printed, but not for EXIT_NOT_FOUND with CLI_QUIET_NONE in
 * quiet, nor EXIT_RUNNING with CLI_QUIET_BUSY (the caller says it). */
enum { CLI_QUIET_NONE = 1, CLI_QUIET_BUSY = 2 };
int cli_evict(struct cli *cli, const char *key, bool force, unsigned quiet, bool *cleared);

/* Take the requirement set from -r FILE (file non-NULL) or from args[0..n),
 * finished. Prints the error; returns 0 or EXIT_BAD_INPUT. */
int cli_read_reqs(struct cli *cli, const char *file, char **args, int n, pt_reqset *set);

/* A use of a built venv (a prewarm that found it built, a --prepare hit):
 * one hit, and its access time (the LRU order): told to the daemon
 * (cli_tell_use), which writes it with the lookups' access times, or, when
 * it cannot be, committed to the index here. `pactown run` that starts a
 * service counts its use in the commit that leases the venv
 * (pt_index_lease_use). A failure to record it is said, and costs only the
 * figure. */
void cli_note_use(struct cli *cli, const char *key);

/* cmd_cache.c: register the finished set (only when build) and, when it is
 * built (*ready) or build is true, resolve its venv through the mount (building it: the
 * build log is copied as progress) into venv (size n; "" when not). A use
 * of a built venv counts as a hit. Prints the error; returns 0 or an exit
 * code. */
int cli_venv_of(struct cli *cli, const pt_reqset *set, bool build, char key[PT_KEY_HEX + 1], char *venv, size_t n,
                bool *ready);

/* The key that arg names: a whole key or a unique prefix of 8 or more hex
 * digits (any case), as git takes commits. Returns 0 with key filled,
 * EXIT_NOT_FOUND (no such requirement set), or EXIT_USAGE (not hex, too
 * short, or ambiguous: the matches are listed); the message is printed. */
int cli_find_key(struct cli *cli, const char *arg, char key[PT_KEY_HEX + 1]);

/* cmd_remote.c: pactown cache ls --remote, push KEY, pull KEY (docs/REGISTRY.md),
 * through pactown-registry. Print what they do; return an exit code. */
int cache_ls_remote(struct cli *cli, bool json);
int cache_push(struct cli *cli, const char *key);
int cache_pull(struct cli *cli, const char *key);

/* venv.c: 0 if pactownfs answers at the mountpoint, else prints why and
 * returns EXIT_NOT_MOUNTED. */
int cli_check_mount(struct cli *cli);

/* venv.c: resolve <mount>/by-deps/<key>; the daemon builds it on a miss
 * (show_progress: copy the build log to stderr meanwhile). On success venv
 * (size n) holds the store path. Prints the error; returns 0, EXIT_BUILD or
 * EXIT_ERROR. */
int cli_resolve_venv(struct cli *cli, const char *key, bool show_progress, char *venv, size_t n);

/* service.c: the environment of a service (and of its shell tests): the
 * caller's, without PORT, MARKPACT_PORT, HOST, VIRTUAL_ENV, PATH, PYTHONHOME
 * and PWD, then those set for this service (PATH: the venv's bin first),
 * then envs[0..n_envs) ("KEY=VALUE", --env). NULL on out-of-memory; free
 * with pt_env_free. */
char **cli_service_env(int port, const char *host, const char *venv, const char *sandbox, char *const *envs,
                       int n_envs, bool clean);

/* service.c: take one --env KEY=VALUE (arg, not copied) into envs[*n]
 * (at most max). Says what is wrong without echoing a value (it may be a
 * secret); returns 0 or EXIT_USAGE. */
int cli_env_opt(const struct cli *cli, char *arg, char **envs, int *n, int max);

/* service.c: the directory that holds a service's sandbox: <sandbox_root>,
 * or <sandbox_root>/@<user> for a service of user (non-empty: --user, the
 * API's user_id): service ids start with a letter or digit, so the two never
 * meet. Returns 0 or -ENAMETOOLONG. */
int cli_sandbox_parent(const pt_config *cfg, const char *user, char *out, size_t n);

/* service.c: the sandbox path of service id: its record's user (if there is
 * a record) says where. user (may be NULL) gets that user ("" for none). */
int cli_sandbox_path(const pt_config *cfg, pt_index *idx, const char *id, char *out, size_t n,
                     char user[PT_SERVICE_ID_MAX + 1]);

/* service.c: the cgroups of this host (pt_cgroup_detect), for this
 * cache_dir's services: <...>/pactown-<8 hex of cache_dir's hash>, so that
 * two pactown-fs on one host never share (or kill) a service's cgroup. */
struct pt_cg_host;
void cli_cgroups(const struct cli *cli, struct pt_cg_host *cg);

/* service.c: open <sandbox>/.pactown/NAME (dirfd: the sandbox; .pactown
 * made 0700 if absent: logs there may show secrets) with open(2) flags (O_NOFOLLOW and O_CLOEXEC added)
 * and mode. Returns the fd, or -1 with errno. */
int cli_dotdir_open(int dirfd, const char *name, int flags, mode_t mode);

/* service.c: write s[0..n) to out with control bytes (but tab) and DEL as
 * '?': text from a README or a service never drives the terminal. */
void cli_print_clean(FILE *out, const char *s, size_t n);

/* service.c: copy the last `lines` lines (of the last 64 KiB) of the
 * regular file at path to stderr, control bytes as '?',
 * each after indent (a "--- last lines of PATH ---" header first when
 * header). Silent if the file cannot be read. */
void cli_print_tail(const char *path, int lines, const char *indent, bool header);

/* service.c: say who holds a listening socket on port (pid and command, up
 * to 4), leaving out members of process group not_pgid (> 0); or that the
 * holder is not visible to this user. */
void cli_say_port_holders(const struct cli *cli, int port, pid_t not_pgid);

/* cli.c: parse the common options (and --json into *json when json is
 * non-NULL, --timeout S into *timeout_s when non-NULL) of a command that
 * takes nargs positional arguments; help is its usage text. Returns -1 to
 * go on (the arguments start at optind), else the exit code. */
int cli_parse_simple(struct cli *cli, int argc, char **argv, int nargs, const char *help, bool *json,
                     int *timeout_s);

/* cmd_ps.c: remove the services stopped more than stopped_service_ttl
 * seconds ago (sandbox and record; said on stderr). Nothing when the
 * setting is 0. */
void cli_prune_services(struct cli *cli);

/* The subcommands: argc/argv start at the subcommand's name. */
int cmd_hash(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_lease(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_serve(int argc, char **argv); /* in pactown-serve (api/serve.c), not in pactown */

/* serve_exec.c: `pactown serve`: execv(2) pactown-serve (found beside this
 * executable, else in <libexecdir>/pactown relative to it) with argv, the
 * whole command line ("pactown", "serve", options). Returns (an exit code,
 * said on stderr) only when it cannot. */
int serve_exec(int argc, char **argv);

#endif
