/* pactown/url.h — credentials in index and find-links URLs.
 *
 * An index URL may carry credentials in its userinfo
 * (https://user:token@host/simple, RFC 3986 section 3.2.1). They never enter
 * a requirement set's canonical text (so neither the key, the index, `pactown
 * hash` nor a log), an argument vector or a world-readable file: the key
 * keeps the URL without its userinfo, and the installer gets the whole URL
 * through its environment (proc(5): /proc/PID/environ is readable by the
 * process's owner only).
 */
#ifndef PACTOWN_URL_H
#define PACTOWN_URL_H

#include <stdbool.h>
#include <stddef.h>

/* Split url into the URL without its userinfo and the userinfo (RFC 3986
 * section 3.2.1: between "://" and the last '@' before the first '/', '?' or
 * '#'). *public_url: malloc'd; url's own text, unchanged, when url has no
 * userinfo or is not an absolute URL (a directory, for find-links), so keys
 * of URLs without credentials never change; otherwise url without
 * "userinfo@", nothing else touched. *userinfo (may be NULL): malloc'd "user" or
 * "user:password" as written in url, or NULL when there is none. Returns 0 or
 * -ENOMEM; on error both outputs are NULL. */
int pt_url_split_userinfo(const char *url, char **public_url, char **userinfo);

/* true if url carries userinfo (credentials). */
bool pt_url_has_userinfo(const char *url);

/* The secrets to redact from text that may contain url: its userinfo, its
 * password as written and URL-decoded. Appends up to max-*n malloc'd strings
 * to out at *n (free each). Returns 0 or -ENOMEM. */
int pt_url_secrets(const char *url, char **out, size_t max, size_t *n);

#endif
