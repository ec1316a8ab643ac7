/* pactown/profile.h — a user's profile: the limits a runner holds a user to,
 * with pactown's tier presets (pactown's security/profiles.py: free, basic,
 * pro, enterprise, admin) and its field names.
 *
 * Sources, later wins field by field: the profiles file (setting
 * user_profiles: an INI file, one [user] section each, [*] for users without
 * one), the API request's user_profile, `pactown run --limit FIELD=VALUE`.
 * A `tier` sets every limit of its preset at once; fields after it override.
 */
#ifndef PACTOWN_PROFILE_H
#define PACTOWN_PROFILE_H

#include <stdbool.h>

#include "pactown/error.h"

#define PT_PROFILE_PORTS 64

typedef struct pt_profile {
    char tier[16];                    /* "" when none was given */
    long max_concurrent_services;     /* running services at once; 0 = no limit (as every field) */
    long max_services_per_hour;       /* starts in the last 3600 s */
    long max_requests_per_minute;     /* API runs asked in the current minute */
    long max_memory_mb;               /* the kernel's limits (pactown/cgroup.h) */
    long max_cpu_percent;
    long max_processes;
    int allowed_ports[PT_PROFILE_PORTS]; /* the ports its services may take; none listed = any */
    int n_allowed_ports;
    bool blocked;                     /* every start refused, with reason */
    char reason[256];
} pt_profile;

/* Set the preset limits of tier ("free", "basic", "pro", "enterprise",
 * "admin", as pactown's), leaving allowed_ports, blocked and reason. -EINVAL
 * (err names the tiers) for another name. */
int pt_profile_tier(pt_profile *p, const char *tier, pt_error *err);

/* Set one field from text: a tier name, a whole number >= 0, "yes"/"no"
 * (blocked), a reason, or allowed_ports as "8001,8002" (1024..65535).
 * -ENOENT for an unknown field, -EINVAL for a bad value (err says which). */
int pt_profile_set(pt_profile *p, const char *field, const char *value, pt_error *err);

/* The [user] section of the INI file at path (or its [*] section when user
 * has none) applied to *p; a missing file or section changes nothing.
 * Returns 0, or -errno with err naming the file, line and reason. */
int pt_profile_load(const char *path, const char *user, pt_profile *p, pt_error *err);

/* true if any field was set to something that limits (or blocks). */
bool pt_profile_any(const pt_profile *p);

/* true if port is one of allowed_ports, or the list is empty. */
bool pt_profile_port_ok(const pt_profile *p, int port);

#endif
