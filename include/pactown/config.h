/* pactown/config.h — settings shared by the daemon and the CLI.
 *
 * One table of settings, read in this order, later wins:
 *   1. built-in defaults (work with no file at all);
 *   2. the config file: $PACTOWN_CONFIG, else /etc/pactown/pactown.conf
 *      (INI syntax, `key = value`, read with inih; a missing default file is
 *      fine, a missing $PACTOWN_CONFIG is an error);
 *   3. environment variables PACTOWN_<KEY> (key upper-cased, e.g.
 *      PACTOWN_CACHE_DIR);
 *   4. flags: daemon `-o key=value`, CLI `--set key=value` and named flags.
 */
#ifndef PACTOWN_CONFIG_H
#define PACTOWN_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "pactown/error.h"

typedef struct pt_config {
    char *mountpoint;     /* default /mnt/pactown */
    char *cache_dir;      /* default /var/cache/pactown: index/, store/, logs/, tmp/ */
    char *sandbox_root;   /* default /var/lib/pactown/sandboxes */
    char *python;         /* interpreter for venvs: a name looked up in PATH or a path; default python3 */
    char *installer;      /* auto | uv | pip; default auto (uv when found, else pip) */
    char *uv;             /* uv executable: name or path; default uv */
    char *uv_cache_dir;   /* "" = uv's own default */
    char *index_url;      /* "" = installer default */
    char *find_links;     /* "" = none */
    bool no_index;        /* install only from find_links */
    bool offline;         /* never touch the network (uv --offline); not part of the key */
    long failure_ttl;     /* seconds a failed build is remembered before a lookup retries; default 60 */
    long build_timeout;   /* seconds before a build is killed; default 1800 */
    long entry_timeout;   /* seconds the kernel caches a built by-deps entry; default 3600 */
    long max_entries;     /* ready venvs kept at most; default 20; 0 = no limit */
    long max_age_hours;   /* a venv unused this long is evicted; default 24; 0 = no limit */
    long max_bytes;       /* disk the store takes at most, uv cache included (pactown/usage.h); default 0 = no limit */
    long min_idle_seconds;/* nothing used more recently is evicted; default 300 */
    long wheel_keep_hours;/* the store's uv cache keeps an unpacked wheel no venv links this long
                           * (pactown/uvcache.h); 0 = pruned after the eviction that unlinked it; default 24 */
    long evict_interval;  /* seconds between eviction runs of the daemon; default 60 */
    long atime_throttle;  /* seconds between access-time writes for one venv on lookups; default 60 */
    long evict_grace_ms;  /* milliseconds between telling the kernel to drop an evicted venv and
                           * removing it, for path walks already on their way in; default 100 */
    long stopped_service_ttl; /* seconds a stopped service's record and sandbox are kept before
                           * `pactown run`/`ps` prune them; default 604800 (7 days); 0 = kept */
    char *api_socket;     /* `pactown serve`'s Unix socket; default /run/pactown/api.sock (mode 0660) */
    char *runner_token;   /* the API's token (X-Runner-Token or Authorization: Bearer); "" = none;
                           * pactown's PACTOWN_RUNNER_TOKEN sets it; never printed */
    char *runner_token_file; /* a file (mode 0600 or stricter, one line) holding the token instead */
    long api_max_body;    /* largest API request body in bytes (413 above it); default 4194304 */
    long port_start;      /* ports the API hands out for `port: 0`, port_start..port_end inclusive; */
    long port_end;        /* default 10000..20000, as pactown's PACTOWN_PORT_START/END */
    long user_uid_min;    /* uids given to users (`run --user`, the API's user_id), */
    long user_uid_max;    /* user_uid_min..user_uid_max; default 61184..65519, systemd's DynamicUser range */
    char *user_profiles;  /* INI file of users' profiles (pactown/profile.h); "" = none */
    char *registry;       /* venvs shared through an OCI registry: https://HOST[:PORT]/REPOSITORY
                           * (http:// for loopback only; pactown/ociref.h); "" = off (the default) */
    char *registry_auth;  /* Docker config.json-style credentials (pactown/oci.h); "" = anonymous */
    bool registry_push;   /* push each venv built here; default yes (with registry set) */
    long registry_timeout;/* seconds without a connection or progress before a registry request
                           * gives up (and the venv is built here); default 10 */
    char *warm;           /* warm starts (pactown/warm.h): no | yes | auto (the same as yes for now); default auto */
    long warm_idle_seconds; /* a warm process with no start and no child this long exits; default 600 */
    long max_warm;        /* warm processes at most (the least recently used is ended); default 8 */
} pt_config;

/* Fill c with the defaults. Strings are malloc'd; free with pt_config_free. */
void pt_config_defaults(pt_config *c);

/* defaults + config file + environment. Returns 0, or -errno with err naming
 * the file, line and reason (e.g. unknown key, bad number). */
int pt_config_load(pt_config *c, pt_error *err);

/* Set one setting by its name ("cache_dir", …) from text. Returns 0,
 * -ENOENT for an unknown key, -EINVAL for a bad value (err says why). Values
 * may not contain newlines. */
int pt_config_set(pt_config *c, const char *key, const char *value, pt_error *err);

/* Parse "key=value" and set it. */
int pt_config_set_kv(pt_config *c, const char *kv, pt_error *err);

/* true if key names a setting. */
bool pt_config_has_key(const char *key);

/* Print every setting as `key = value` lines (for `pactown config`). */
void pt_config_print(const pt_config *c, FILE *out);

void pt_config_free(pt_config *c);

/* Build "<cache_dir>/<sub>" (or "<cache_dir>/<sub>/<name>" if name != NULL)
 * into buf of size n. Returns 0 or -ENAMETOOLONG. */
int pt_config_cache_path(const pt_config *c, const char *sub, const char *name, char *buf, size_t n);

#endif
