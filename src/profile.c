/* profile.c — users' profiles and pactown's tier presets (pactown/profile.h). */
#include "pactown/profile.h"

#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* pactown's UserProfile.from_tier, figure for figure */
static const struct {
    const char *name;
    long concurrent, memory_mb, cpu_percent, per_minute, per_hour;
} tiers[] = {
    { "free", 2, 256, 25, 20, 5 },
    { "basic", 5, 512, 50, 60, 20 },
    { "pro", 10, 2048, 80, 120, 50 },
    { "enterprise", 50, 8192, 100, 500, 200 },
    { "admin", 100, 16384, 100, 1000, 1000 },
};

int pt_profile_tier(pt_profile *p, const char *tier, pt_error *err)
{
    for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++)
        if (strcasecmp(tier, tiers[i].name) == 0) {
            snprintf(p->tier, sizeof p->tier, "%s", tiers[i].name);
            p->max_concurrent_services = tiers[i].concurrent;
            p->max_memory_mb = tiers[i].memory_mb;
            p->max_cpu_percent = tiers[i].cpu_percent;
            p->max_requests_per_minute = tiers[i].per_minute;
            p->max_services_per_hour = tiers[i].per_hour;
            return 0;
        }
    return pt_error_set(err, -EINVAL, 0, "tier '%.32s': expected free, basic, pro, enterprise or admin", tier);
}

static const struct {
    const char *name;
    size_t off;
} longs[] = {
    { "max_concurrent_services", offsetof(pt_profile, max_concurrent_services) },
    { "max_services_per_hour", offsetof(pt_profile, max_services_per_hour) },
    { "max_requests_per_minute", offsetof(pt_profile, max_requests_per_minute) },
    { "max_memory_mb", offsetof(pt_profile, max_memory_mb) },
    { "max_cpu_percent", offsetof(pt_profile, max_cpu_percent) },
    { "max_processes", offsetof(pt_profile, max_processes) },
};

int pt_profile_set(pt_profile *p, const char *field, const char *value, pt_error *err)
{
    if (strcmp(field, "tier") == 0)
        return pt_profile_tier(p, value, err);
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        if (strcmp(field, longs[i].name) != 0)
            continue;
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        /* bounds the kernel takes: a CFS quota of 1000 CPUs, pid_max, MiB that fit the record */
        long hi = strcmp(field, "max_cpu_percent") == 0 ? 100000 : strcmp(field, "max_processes") == 0 ? 4194304
                : strcmp(field, "max_memory_mb") == 0 ? 2147483647L : 1L << 40;
        if (errno || end == value || *end || v < 0 || v > hi)
            return pt_error_set(err, -EINVAL, 0, "%s: '%.32s' is not a whole number 0..%ld", field, value, hi);
        *(long *)((char *)p + longs[i].off) = v;
        return 0;
    }
    if (strcmp(field, "blocked") == 0) {
        if (!strcasecmp(value, "yes") || !strcasecmp(value, "true") || !strcmp(value, "1"))
            p->blocked = true;
        else if (!strcasecmp(value, "no") || !strcasecmp(value, "false") || !strcmp(value, "0"))
            p->blocked = false;
        else
            return pt_error_set(err, -EINVAL, 0, "blocked: '%.32s' is not yes or no", value);
        return 0;
    }
    if (strcmp(field, "reason") == 0) {
        snprintf(p->reason, sizeof p->reason, "%s", value);
        return 0;
    }
    if (strcmp(field, "allowed_ports") == 0) {
        int n = 0;
        for (const char *s = value; *s;) {
            char *end;
            long port = strtol(s, &end, 10);
            if (end == s || port < 1024 || port > 65535 || n == PT_PROFILE_PORTS || (*end && *end != ',') ||
                (*end == ',' && !end[1])) /* an empty item: "8001," */
                return pt_error_set(err, -EINVAL, 0, "allowed_ports: '%.64s': expected up to %d ports 1024..65535,"
                                                     " separated by commas", value, PT_PROFILE_PORTS);
            p->allowed_ports[n++] = (int)port;
            s = *end ? end + 1 : end;
        }
        p->n_allowed_ports = n;
        return 0;
    }
    return pt_error_set(err, -ENOENT, 0, "unknown profile field '%.64s' (tier, max_concurrent_services,"
                                         " max_services_per_hour, max_requests_per_minute, max_memory_mb,"
                                         " max_cpu_percent, max_processes, allowed_ports, blocked, reason)", field);
}

struct load_ctx {
    const char *user;
    bool own;          /* the file has the user's own section */
    bool second;       /* the pass that applies */
    pt_profile *p;
    pt_error *err;
    int rc;
};

static int on_pair(void *arg, const char *section, const char *name, const char *value)
{
    struct load_ctx *c = arg;
    if (!c->second) {
        if (strcmp(section, c->user) == 0)
            c->own = true;
        return 1;
    }
    if (strcmp(section, c->own ? c->user : "*") != 0)
        return 1;
    int rc = pt_profile_set(c->p, name, value, c->err);
    if (rc && !c->rc)
        c->rc = rc;
    return rc == 0;
}

int pt_profile_load(const char *path, const char *user, pt_profile *p, pt_error *err)
{
    if (!path || !*path)
        return 0;
    struct load_ctx c = { .user = user, .p = p, .err = err };
    for (int pass = 0; pass < 2; pass++) {
        c.second = pass == 1;
        FILE *f = fopen(path, "re");
        if (!f)
            return errno == ENOENT ? 0 : pt_error_set(err, -errno, 0, "user_profiles %s: %s", path, strerror(errno));
        int r = ini_parse_file(f, on_pair, &c);
        fclose(f);
        if (c.rc) {
            char reason[sizeof err->msg];
            snprintf(reason, sizeof reason, "%s", err ? err->msg : "");
            return pt_error_set(err, c.rc, (unsigned)r, "%s:%d: %s", path, r, reason);
        }
        if (r > 0)
            return pt_error_set(err, -EINVAL, (unsigned)r, "%s:%d: not a `key = value` line", path, r);
    }
    return 0;
}

bool pt_profile_any(const pt_profile *p)
{
    return p->max_concurrent_services || p->max_services_per_hour || p->max_requests_per_minute ||
           p->max_memory_mb || p->max_cpu_percent || p->max_processes || p->n_allowed_ports || p->blocked;
}

bool pt_profile_port_ok(const pt_profile *p, int port)
{
    if (!p->n_allowed_ports)
        return true;
    for (int i = 0; i < p->n_allowed_ports; i++)
        if (p->allowed_ports[i] == port)
            return true;
    return false;
}
