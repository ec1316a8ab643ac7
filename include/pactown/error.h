/* pactown/error.h — error reports shared by the core library.
 *
 * Convention: functions return 0 on success and -errno on failure (see
 * errno(3)); parsers additionally fill a pt_error with the 1-based source line
 * and a human-readable reason, so callers can print "FILE:LINE: reason".
 */
#ifndef PACTOWN_ERROR_H
#define PACTOWN_ERROR_H

#include <stddef.h>

typedef struct pt_error {
    int code;        /* -errno of the failure (e.g. -EINVAL for bad input), 0 if none */
    unsigned line;   /* 1-based line in the input the error refers to, 0 when none */
    char msg[512];   /* reason, NUL-terminated, no trailing newline */
} pt_error;

/* Fill err (if non-NULL) with code, line and a printf-style reason.
 * Returns code, so parsers can write `return pt_error_set(err, -EINVAL, n, "...")`. */
int pt_error_set(pt_error *err, int code, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reset err to "no error". err may be NULL. */
void pt_error_clear(pt_error *err);

/* Quote p[0..n) for a message: '"' ... '"', with control bytes, bytes >= 0x7f
 * (invalid UTF-8, C1 controls, lookalikes), '\\' and '"' as \xHH, cut with
 * "..." after about 60 visible bytes, so that hostile input can neither break
 * a log line nor pass for something else.  buf: caller's, cap >= 16
 * (PT_QUOTE_CAP holds any result).  Returns buf. */
#define PT_QUOTE_CAP 96
const char *pt_quote(char *buf, size_t cap, const char *p, size_t n);

#endif
