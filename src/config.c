/* config.c — the settings table: defaults, INI file (inih), environment, flags. */
#include "pactown/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pactown/ociref.h"
#include "pactown/redact.h"
#include "pactown/url.h"

enum setting_type { T_STR, T_BOOL, T_LONG, T_SECRET /* a string never printed */ };

struct setting {
    const char *name;
    enum setting_type type;
    size_t offset;
    const char *def;
};

#define S(n, t, d) { #n, t, offsetof(pt_config, n), d }
static const struct setting settings[] = {
    S(mountpoint, T_STR, "/mnt/pactown"),
    S(cache_dir, T_STR, "/var/cache/pactown"),
    S(sandbox_root, T_STR, "/var/lib/pactown/sandboxes"),
    S(python, T_STR, "python3"),
    S(installer, T_STR, "auto"),
    S(uv, T_STR, "uv"),
    S(uv_cache_dir, T_STR, ""),
    S(index_url, T_STR, ""),
    S(find_links, T_STR, ""),
    S(no_index, T_BOOL, "no"),
    S(offline, T_BOOL, "no"),
    S(failure_ttl, T_LONG, "60"),
    S(build_timeout, T_LONG, "1800"),
    S(entry_timeout, T_LONG, "3600"),
    S(max_entries, T_LONG, "20"),
    S(max_age_hours, T_LONG, "24"),
    S(max_bytes, T_LONG, "0"),
    S(min_idle_seconds, T_LONG, "300"),
    S(wheel_keep_hours, T_LONG, "24"),
    S(evict_interval, T_LONG, "60"),
    S(atime_throttle, T_LONG, "60"),
    S(evict_grace_ms, T_LONG, "100"),
    S(stopped_service_ttl, T_LONG, "604800"),
    S(api_socket, T_STR, "/run/pactown/api.sock"),
    S(runner_token, T_SECRET, ""),
    S(runner_token_file, T_STR, ""),
    S(api_max_body, T_LONG, "4194304"),
    S(port_start, T_LONG, "10000"),
    S(port_end, T_LONG, "20000"),
    S(user_uid_min, T_LONG, "61184"),
    S(user_uid_max, T_LONG, "65519"),
    S(user_profiles, T_STR, ""),
    S(registry, T_STR, ""),
    S(registry_auth, T_STR, ""),
    S(registry_push, T_BOOL, "yes"),
    S(registry_timeout, T_LONG, "10"),
    S(warm, T_STR, "auto"),
    S(warm_idle_seconds, T_LONG, "600"),
    S(max_warm, T_LONG, "8"),
};
#undef S
#define N_SETTINGS (sizeof settings / sizeof settings[0])

static const struct setting *find_setting(const char *name)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

bool pt_config_has_key(const char *key)
{
    return find_setting(key) != NULL;
}

static int set_one(pt_config *c, const struct setting *s, const char *value, pt_error *err)
{
    void *field = (char *)c + s->offset;
    if (strchr(value, '\n') || strchr(value, '\r'))
        return pt_error_set(err, -EINVAL, 0, "%s: value may not contain a newline", s->name);
    switch (s->type) {
    case T_STR:
    case T_SECRET: {
        char *dup = strdup(value);
        if (!dup)
            return pt_error_set(err, -ENOMEM, 0, "out of memory");
        free(*(char **)field);
        *(char **)field = dup;
        return 0;
    }
    case T_BOOL:
        if (!strcmp(value, "1") || !strcasecmp(value, "yes") || !strcasecmp(value, "true") || !strcasecmp(value, "on"))
            *(bool *)field = true;
        else if (!strcmp(value, "0") || !strcasecmp(value, "no") || !strcasecmp(value, "false") || !strcasecmp(value, "off"))
            *(bool *)field = false;
        else
            return pt_error_set(err, -EINVAL, 0, "%s: '%s' is not a boolean (yes/no)", s->name, value);
        return 0;
    case T_LONG: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < 0)
            return pt_error_set(err, -EINVAL, 0, "%s: '%s' is not a non-negative whole number", s->name, value);
        *(long *)field = v;
        return 0;
    }
    }
    return -EINVAL;
}

int pt_config_set(pt_config *c, const char *key, const char *value, pt_error *err)
{
    const struct setting *s = find_setting(key);
    if (!s)
        return pt_error_set(err, -ENOENT, 0, "unknown setting '%s'", key);
    if (strcmp(key, "registry") == 0 && *value) {
        pt_ociref ref;
        int rc = pt_ociref_parse(value, &ref, err);
        if (rc)
            return rc;
    }
    if (strcmp(key, "warm") == 0 && strcmp(value, "no") && strcmp(value, "yes") && strcmp(value, "auto"))
        return pt_error_set(err, -EINVAL, 0, "warm: '%s' is not one of no, yes, auto", value);
    if (strcmp(key, "registry_timeout") == 0 && strcmp(value, "0") == 0)
        return pt_error_set(err, -EINVAL, 0, "registry_timeout: at least 1 second");
    return set_one(c, s, value, err);
}

int pt_config_set_kv(pt_config *c, const char *kv, pt_error *err)
{
    const char *eq = strchr(kv, '=');
    if (!eq)
        return pt_error_set(err, -EINVAL, 0, "'%s': expected key=value", kv);
    char key[64];
    size_t n = (size_t)(eq - kv);
    if (n == 0 || n >= sizeof key)
        return pt_error_set(err, -ENOENT, 0, "unknown setting in '%s'", kv);
    memcpy(key, kv, n);
    key[n] = '\0';
    return pt_config_set(c, key, eq + 1, err);
}

void pt_config_defaults(pt_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_SETTINGS; i++)
        set_one(c, &settings[i], settings[i].def, NULL);
}

struct ini_ctx {
    pt_config *c;
    pt_error *err;
    int rc;
};

/* Debian's inih has no line number in the handler: ini_parse_file returns the
 * line of the first pair the handler refused, which names it. */
static int on_ini_pair(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *ctx = user;
    (void)section; /* sections are allowed for readability; keys are global */
    int rc = pt_config_set(ctx->c, name, value, ctx->err);
    if (rc) {
        if (!ctx->rc)
            ctx->rc = rc;
        return 0;
    }
    return 1;
}

int pt_config_load(pt_config *c, pt_error *err)
{
    pt_config_defaults(c);
    const char *path = getenv("PACTOWN_CONFIG");
    bool explicit_path = path && *path;
    if (!explicit_path)
        path = "/etc/pactown/pactown.conf";
    FILE *f = fopen(path, "r");
    if (!f) {
        if (explicit_path || errno != ENOENT)
            return pt_error_set(err, -errno, 0, "%s: %s", path, strerror(errno));
    } else {
        struct ini_ctx ctx = { c, err, 0 };
        int r = ini_parse_file(f, on_ini_pair, &ctx);
        fclose(f);
        if (ctx.rc) {
            char reason[sizeof err->msg];
            snprintf(reason, sizeof reason, "%s", err ? err->msg : "");
            return pt_error_set(err, ctx.rc, (unsigned)r, "%s:%d: %s", path, r, reason);
        }
        if (r > 0)
            return pt_error_set(err, -EINVAL, (unsigned)r, "%s:%d: not a `key = value` line", path, r);
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        char env[80] = "PACTOWN_";
        size_t k = strlen(env);
        for (const char *p = settings[i].name; *p && k + 1 < sizeof env; p++)
            env[k++] = (char)toupper((unsigned char)*p);
        env[k] = '\0';
        const char *v = getenv(env);
        if (v) {
            int rc = pt_config_set(c, settings[i].name, v, err);
            if (rc) {
                char reason[sizeof err->msg];
                snprintf(reason, sizeof reason, "%s", err ? err->msg : "");
                return pt_error_set(err, rc, 0, "environment %s: %s", env, reason);
            }
        }
    }
    return 0;
}

void pt_config_print(const pt_config *c, FILE *out)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const void *field = (const char *)c + settings[i].offset;
        switch (settings[i].type) {
        case T_STR: {
            /* credentials in index_url or find_links are never shown (pactown/url.h) */
            const char *v = *(char *const *)field;
            char *secrets[8] = { 0 }, *shown = NULL;
            size_t n = 0;
            if (pt_url_secrets(v, secrets, 7, &n) == 0 && n > 0)
                shown = pt_redact(v, (const char *const *)secrets);
            fprintf(out, "%s = %s\n", settings[i].name, shown ? shown : n > 0 ? "(hidden: it holds credentials)" : v);
            free(shown);
            for (size_t j = 0; j < n; j++)
                free(secrets[j]);
            break;
        }
        case T_BOOL: fprintf(out, "%s = %s\n", settings[i].name, *(const bool *)field ? "yes" : "no"); break;
        case T_LONG: fprintf(out, "%s = %ld\n", settings[i].name, *(const long *)field); break;
        case T_SECRET:
            fprintf(out, "%s = %s\n", settings[i].name, **(char *const *)field ? "(set, hidden)" : "");
            break;
        }
    }
}

void pt_config_free(pt_config *c)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].type == T_STR || settings[i].type == T_SECRET) {
            char **field = (char **)((char *)c + settings[i].offset);
            free(*field);
            *field = NULL;
        }
}

int pt_config_cache_path(const pt_config *c, const char *sub, const char *name, char *buf, size_t n)
{
    int len = name ? snprintf(buf, n, "%s/%s/%s", c->cache_dir, sub, name)
                   : snprintf(buf, n, "%s/%s", c->cache_dir, sub);
    return (len < 0 || (size_t)len >= n) ? -ENAMETOOLONG : 0;
}
