/* fuzz_util.h — helpers shared by the libFuzzer targets (header only: each
 * target is its own executable).
 *
 * A target checks invariants, not just "no crash": FUZZ_CHECK prints what was
 * violated and aborts, which libFuzzer reports as a crash and saves the input
 * as an artifact (crash-<sha1>).
 */
#ifndef PT_FUZZ_UTIL_H
#define PT_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pactown/error.h"

#define FUZZ_CHECK(cond, ...)                                                         \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: invariant violated: %s\n  ", __FILE__, __LINE__,  \
                    #cond);                                                           \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* malloc'd NUL-terminated copy of data[0..n) (the targets' inputs are not
 * terminated). */
static inline char *fuzz_strndup(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    if (n)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* The common error contract of the parsers: a failure is -EINVAL or -ENOMEM,
 * recorded in err with the same code, and a message that is terminated and
 * starts with "line N: " when err->line != 0. */
static inline void fuzz_check_error(int rc, const pt_error *err)
{
    char want[32];
    FUZZ_CHECK(rc < 0, "rc %d", rc);
    FUZZ_CHECK(err->code == rc, "err.code %d, rc %d", err->code, rc);
    FUZZ_CHECK(memchr(err->msg, '\0', sizeof err->msg) != NULL, "unterminated message");
    FUZZ_CHECK(err->msg[0] != '\0', "empty message (rc %d)", rc);
    if (err->line) {
        snprintf(want, sizeof want, "line %u: ", err->line);
        FUZZ_CHECK(strncmp(err->msg, want, strlen(want)) == 0, "message '%s' does not start with '%s'",
                   err->msg, want);
    }
}

/* True if s[0..n) contains c. */
static inline bool fuzz_has(const char *s, size_t n, char c)
{
    return n && memchr(s, c, n) != NULL;
}

#endif
