/* pactown/redact.h — keep secrets (index credentials, pactown/url.h) out of
 * logs: every occurrence of a secret is written as "***". */
#ifndef PACTOWN_REDACT_H
#define PACTOWN_REDACT_H

#include <stddef.h>

/* Copy fd in to fd out until EOF (read(2)/write(2), EINTR retried), with
 * every occurrence of each secret (NULL-terminated array of non-empty
 * strings; NULL or empty = plain copy) replaced by "***", also across read
 * boundaries. Returns 0, or -errno of the first failed read or write. */
int pt_redact_copy(int in, int out, const char *const *secrets);

/* s with every occurrence of each secret replaced by "***": malloc'd, caller
 * frees; NULL on out-of-memory. */
char *pt_redact(const char *s, const char *const *secrets);

#endif
