/* pactown/oci.h — a client of one repository of an OCI distribution
 * registry (the OCI Distribution Specification v1.1: "Pull", "Push",
 * "Content discovery"), with libcurl.
 *
 * Authentication. The registry's first 401 tells how (its WWW-Authenticate
 * header, RFC 7235): `Basic` (an htpasswd registry) gets the user and
 * password of registry_auth; `Bearer realm=…,service=…,scope=…` (Harbor,
 * GHCR, ECR, distribution with token auth: the distribution project's
 * "Token Authentication Specification") gets a token from the realm, sent
 * the same credentials when there are any (anonymous otherwise), which is
 * then sent as `Authorization: Bearer` until it is refused again.
 * Credentials come from a Docker `config.json`-style file (registry_auth):
 * `{"auths": {"HOST[:PORT]": {"auth": base64("user:password")}}}`, or with
 * "username" and "password" (what `docker login` and `skopeo login` write;
 * credential helpers and OAuth2 refresh tokens are not read). The file must
 * not be readable by group or others. Neither the credentials nor a token ever reach a log, an
 * argument vector or an error message.
 *
 * Limits. Every request gives up after registry_timeout seconds without a
 * connection, or below 1 KiB/s for that long; requests other than blob
 * bodies after that long in all. Redirects (blob downloads from a storage
 * backend) are followed, with the Authorization header kept for the
 * registry's own host (libcurl's rule) and http(s) only.
 *
 * Conventions: 0 or -errno; err (may be NULL) says why, naming the
 * registry and the request: -ENOENT 404 (no such tag or blob), -EACCES 401
 * or 403 (credentials missing or refused), -ETIMEDOUT, -ECONNREFUSED and
 * -EHOSTUNREACH for the transport, -EBADMSG a digest or size that does not
 * match, -EPROTO another status or a malformed answer, -EFBIG over a limit.
 */
#ifndef PACTOWN_OCI_H
#define PACTOWN_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pactown/error.h"

typedef struct pt_oci pt_oci;

/* sha256 digests as the spec writes them: "sha256:" + 64 lower-case hex digits */
#define PT_DIGEST_LEN 71

/* Connect nothing yet: parse url (pactown/ociref.h), read the credentials
 * of its host from auth_file (NULL or "" = anonymous; a host without an
 * entry is anonymous too), keep timeout_s (>= 1). *out: free with
 * pt_oci_close. Errors: -EINVAL (url), -EACCES (auth_file readable by group
 * or others), -errno of reading auth_file, -EPROTO (it is not JSON of that
 * shape), -ENOMEM. */
int pt_oci_open(const char *url, const char *auth_file, long timeout_s, pt_oci **out, pt_error *err);
void pt_oci_close(pt_oci *c);

/* A second client of the same repository, with c's credentials and the
 * token c holds, for another thread (a client is one thread's at a time).
 * NULL when out of memory. Free with pt_oci_close. */
pt_oci *pt_oci_dup(const pt_oci *c);

/* "host[:port]/repository", for messages. */
const char *pt_oci_name(const pt_oci *c);

/* The manifest tagged (or with the digest) ref: *body (malloc'd, NUL-
 * terminated, at most 4 MiB) and *len; digest (may be NULL, PT_DIGEST_LEN+1
 * bytes): the sha256 of the body as received. Accepts the OCI image
 * manifest media type only. */
int pt_oci_manifest_get(pt_oci *c, const char *ref, char **body, size_t *len, char *digest, pt_error *err);

/* Upload a manifest (OCI image manifest media type) under tag. */
int pt_oci_manifest_put(pt_oci *c, const char *tag, const char *body, size_t len, pt_error *err);

/* 1 if the blob digest is in the repository, 0 if not (404). */
int pt_oci_blob_exists(pt_oci *c, const char *digest, pt_error *err);

/* Download blob digest of size bytes into fd (from its current offset),
 * hashing as it comes: -EBADMSG when the body is longer or shorter than
 * size or its sha256 is not digest (what was written stays: the caller
 * discards it). */
int pt_oci_blob_get(pt_oci *c, const char *digest, uint64_t size, int fd, pt_error *err);

/* Download blob digest (at most max bytes) into memory: *out malloc'd and
 * NUL-terminated, checked as pt_oci_blob_get does. */
int pt_oci_blob_get_mem(pt_oci *c, const char *digest, uint64_t size, char **out, pt_error *err);

/* Upload size bytes of fd (read with pread from offset 0) as blob digest:
 * POST an upload, then PUT it whole ("Pushing a blob monolithically"). */
int pt_oci_blob_put(pt_oci *c, const char *digest, int fd, uint64_t size, pt_error *err);
int pt_oci_blob_put_mem(pt_oci *c, const char *digest, const void *data, size_t len, pt_error *err);

/* Every tag of the repository, following the Link header's pages
 * ("Listing tags"). *tags: malloc'd array of malloc'd strings, *n of them;
 * free with pt_oci_tags_free. A repository that does not exist yet (404)
 * has none. */
int pt_oci_tags(pt_oci *c, char ***tags, size_t *n, pt_error *err);
void pt_oci_tags_free(char **tags, size_t n);

/* The 32 bytes of a sha256 as the spec writes a digest ("sha256:" and 64
 * lower-case hex digits) into out (PT_DIGEST_LEN + 1). */
void pt_digest_format(const unsigned char sha256[32], char *out);

/* The sha256 digest of len bytes of data into out (PT_DIGEST_LEN + 1). */
void pt_sha256_digest(const void *data, size_t len, char *out);

/* true if s is "sha256:" and 64 lower-case hex digits. */
bool pt_digest_valid(const char *s);

#endif
