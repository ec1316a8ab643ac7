/* pactown/ociref.h — the `registry` setting: where venvs are shared.
 *
 * `registry = https://HOST[:PORT]/REPOSITORY` names one repository of an OCI
 * distribution registry (Harbor, GHCR, ECR, Artifactory, CNCF
 * `distribution`); each venv is a manifest there tagged with its key.
 * `http://` is accepted for a loopback host only (localhost, 127.0.0.0/8,
 * [::1]): anything else would carry venvs, and the registry's credentials,
 * in clear text. No userinfo: credentials come from `registry_auth`.
 *
 * The repository name follows the distribution spec ("Pulling manifests",
 * <name>): path components of [a-z0-9]+ joined by '.', '_', '__' or '-'s,
 * separated by '/'. Pure functions, no I/O.
 */
#ifndef PACTOWN_OCIREF_H
#define PACTOWN_OCIREF_H

#include <stdbool.h>
#include <stddef.h>

#include "pactown/error.h"

typedef struct pt_ociref {
    bool https;
    char host[256];        /* "host" or "host:port" ("[::1]:5000"), as written */
    char repository[256];  /* "team/venvs" */
} pt_ociref;

/* Parse url into *out. 0, or -EINVAL with err naming what is wrong (scheme,
 * userinfo, plain http to a host that is not loopback, a bad repository
 * name, a query or fragment). */
int pt_ociref_parse(const char *url, pt_ociref *out, pt_error *err);

/* true if url is http:// to a loopback host (localhost, 127.0.0.0/8,
 * [::1]) without userinfo: where plain http may go (a token realm too). */
bool pt_ociref_http_loopback(const char *url);

/* true if s is a repository name of the distribution spec (see above). */
bool pt_ociref_repository_valid(const char *s);

#endif
