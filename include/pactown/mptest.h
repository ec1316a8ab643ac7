/* pactown/mptest.h — the tests of a markpact README: the lines of its
 * `markpact:test` blocks (../shared/markpact.md, "test").
 *
 *   ```http markpact:test http        (also a bare markpact:test)
 *   GET /health EXPECT 200
 *   POST /items BODY {"title": "x"} EXPECT 201
 *   ```
 *   ```bash markpact:test shell       (the info string has the word shell or bash)
 *   python -c "import app"
 *   ```
 *
 * http: one request a line, `METHOD /path [BODY json] [EXPECT status]`, the
 * two clauses in either order; the method any case (sent upper-case), the
 * path starting with '/', BODY a one-line JSON object or array (sent as it
 * is written, as application/json), EXPECT a final status 200..599.  Without
 * EXPECT a test passes on 200..399.  shell: each line is a command for
 * /bin/sh -c.  In both, blank lines and lines starting with '#' are skipped.
 */
#ifndef PACTOWN_MPTEST_H
#define PACTOWN_MPTEST_H

#include <stdbool.h>
#include <stddef.h>

#include "pactown/error.h"
#include "pactown/markpact.h"

typedef enum { PT_TEST_HTTP = 0, PT_TEST_SHELL = 1 } pt_test_kind;

typedef struct pt_mp_test {
    pt_test_kind kind;
    unsigned line;      /* 1-based README line of the test */
    char method[17];    /* http: "GET", "POST", ... upper-case */
    char *path;         /* http: malloc'd, e.g. "/items?x=1" */
    char *body;         /* http: the BODY JSON as written, malloc'd, NUL-terminated; NULL if none */
    int expect;         /* http: the EXPECT status, 0 = any of 200..399 */
    char *command;      /* shell: the line (leading/trailing blanks removed), malloc'd */
} pt_mp_test;

typedef struct pt_mp_tests {
    pt_mp_test *v;      /* in README order */
    size_t n;
} pt_mp_tests;

/* Read the tests of blocks[0..n) (markpact:test blocks from
 * pt_markpact_parse) into *out, which the caller releases with
 * pt_mp_tests_free.  Returns 0, or -EINVAL / -ENOMEM with err filled
 * ("line N: reason", err->line the README line) and *out empty.  -EINVAL:
 * an http line with a method that is not letters, no path, a path that does
 * not start with '/' or holds control bytes, BODY or EXPECT twice, BODY that
 * is not one JSON object or array, EXPECT without a status in 200..599, or
 * any other word. */
int pt_mp_tests_parse(const pt_mp_block *blocks, size_t n, pt_mp_tests *out, pt_error *err);

void pt_mp_tests_free(pt_mp_tests *t);

/* Whether an http test passed with this answer status: == expect, or
 * 200..399 without EXPECT.  Shell tests pass on exit status 0. */
bool pt_mp_test_http_passed(const pt_mp_test *t, long status);

/* Whether a markpact:test block's tests are shell commands: its info string
 * has the word "shell" or "bash" (lang or argument). */
bool pt_mp_test_block_is_shell(const pt_mp_block *b);

#endif
