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

#endif
