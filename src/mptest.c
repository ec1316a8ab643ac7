/* mptest.c — the lines of markpact:test blocks: http requests and shell
 * commands (pactown/mptest.h). */
#include "pactown/mptest.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

bool pt_mp_test_block_is_shell(const pt_mp_block *b)
{
    const char *s = b->info;
    while (*s) {
        while (blank(*s))
            s++;
        size_t n = strcspn(s, " \t");
        if ((n == 5 && strncmp(s, "shell", 5) == 0) || (n == 4 && strncmp(s, "bash", 4) == 0))
            return true;
        s += n;
    }
    return false;
}

bool pt_mp_test_http_passed(const pt_mp_test *t, long status)
{
    return t->expect ? status == t->expect : status >= 200 && status <= 399;
}

static char *dupn(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

/* The next word of s[*i..n) (blank-separated); false at the end. */
static bool word(const char *s, size_t n, size_t *i, const char **w, size_t *wn)
{
    while (*i < n && blank(s[*i]))
        (*i)++;
    if (*i >= n)
        return false;
    size_t st = *i;
    while (*i < n && !blank(s[*i]))
        (*i)++;
    *w = s + st;
    *wn = *i - st;
    return true;
}

static bool word_is(const char *w, size_t wn, const char *kw)
{
    return wn == strlen(kw) && strncasecmp(w, kw, wn) == 0;
}

static int bad(pt_error *err, unsigned line, const char *why, const char *p, size_t n)
{
    char q[PT_QUOTE_CAP];
    return pt_error_set(err, -EINVAL, line, "line %u: markpact:test http: %s%s%s", line, why, p ? " " : "",
                        p ? pt_quote(q, sizeof q, p, n) : "");
}

static int parse_http(const char *s, size_t n, unsigned line, pt_mp_test *t, pt_error *err)
{
    const char *w = s;
    size_t wn = 0, i = 0;
    word(s, n, &i, &w, &wn);
    if (wn >= sizeof t->method)
        return bad(err, line, "the method is too long:", w, wn);
    for (size_t k = 0; k < wn; k++) {
        if (!isalpha((unsigned char)w[k]))
            return bad(err, line, "expected METHOD /path, the method is not a word of letters:", w, wn);
        t->method[k] = (char)toupper((unsigned char)w[k]);
    }
    t->method[wn] = '\0';
    if (!word(s, n, &i, &w, &wn))
        return bad(err, line, "no path after the method (expected e.g. GET /health)", NULL, 0);
    if (w[0] != '/')
        return bad(err, line, "the path must start with '/':", w, wn);
    for (size_t k = 0; k < wn; k++)
        if ((unsigned char)w[k] < 0x20 || w[k] == 0x7f)
            return bad(err, line, "control byte in the path", NULL, 0);
    if (!(t->path = dupn(w, wn)))
        return -ENOMEM;
    bool have_expect = false;
    while (word(s, n, &i, &w, &wn)) {
        if (word_is(w, wn, "BODY")) {
            if (t->body)
                return bad(err, line, "BODY given twice", NULL, 0);
            while (i < n && blank(s[i]))
                i++;
            json_error_t je;
            json_t *j = json_loadb(s + i, n - i, JSON_DISABLE_EOF_CHECK, &je);
            if (!j)
                return pt_error_set(err, -EINVAL, line,
                                    "line %u: markpact:test http: BODY is not a JSON object or array: %s", line,
                                    je.text);
            json_decref(j);
            size_t used = (size_t)je.position; /* bytes of the one value (JSON_DISABLE_EOF_CHECK) */
            if (i + used < n && !blank(s[i + used]))
                return bad(err, line, "text right after the BODY JSON:", s + i + used, n - i - used);
            if (!(t->body = dupn(s + i, used)))
                return -ENOMEM;
            i += used;
        } else if (word_is(w, wn, "EXPECT")) {
            if (have_expect)
                return bad(err, line, "EXPECT given twice", NULL, 0);
            have_expect = true;
            if (!word(s, n, &i, &w, &wn))
                return bad(err, line, "EXPECT needs a status (e.g. EXPECT 201)", NULL, 0);
            int st = 0;
            bool ok = wn == 3;
            for (size_t k = 0; ok && k < wn; k++) {
                ok = w[k] >= '0' && w[k] <= '9';
                st = st * 10 + (w[k] - '0');
            }
            if (!ok || st < 100 || st > 599)
                return bad(err, line, "EXPECT needs a status 100..599, not", w, wn);
            if (st < 200)
                return bad(err, line, "EXPECT of a 1xx status can never pass (1xx answers are not final):", w, wn);
            t->expect = st;
        } else {
            return bad(err, line, "expected BODY {json} or EXPECT status, not", w, wn);
        }
    }
    return 0;
}

static void test_free(pt_mp_test *t)
{
    free(t->path);
    free(t->body);
    free(t->command);
}

void pt_mp_tests_free(pt_mp_tests *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        test_free(&t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

int pt_mp_tests_parse(const pt_mp_block *blocks, size_t n, pt_mp_tests *out, pt_error *err)
{
    pt_error_clear(err);
    if (!out || (!blocks && n))
        return pt_error_set(err, -EINVAL, 0, "pt_mp_tests_parse: invalid arguments");
    out->v = NULL;
    out->n = 0;
    size_t cap = 0;
    int rc = 0;
    for (size_t b = 0; b < n && rc == 0; b++) {
        bool shell = pt_mp_test_block_is_shell(&blocks[b]);
        const char *p = blocks[b].body, *end = p + blocks[b].len;
        for (unsigned line = blocks[b].line; p < end && rc == 0; line++) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *le = nl ? nl : end;
            const char *s = p;
            p = nl ? nl + 1 : end;
            while (s < le && blank(*s))
                s++;
            size_t len = (size_t)(le - s);
            while (len && (blank(s[len - 1]) || s[len - 1] == '\r'))
                len--;
            if (len == 0 || s[0] == '#')
                continue;
            if (out->n == cap) {
                size_t nc = cap ? cap * 2 : 8;
                pt_mp_test *nv = realloc(out->v, nc * sizeof *nv);
                if (!nv) {
                    rc = -ENOMEM;
                    break;
                }
                out->v = nv;
                cap = nc;
            }
            pt_mp_test *t = &out->v[out->n++];
            memset(t, 0, sizeof *t);
            t->line = line;
            t->kind = shell ? PT_TEST_SHELL : PT_TEST_HTTP;
            if (shell)
                rc = (t->command = dupn(s, len)) ? 0 : -ENOMEM;
            else
                rc = parse_http(s, len, line, t, err);
        }
    }
    if (rc == -ENOMEM)
        pt_error_set(err, -ENOMEM, 0, "out of memory");
    if (rc)
        pt_mp_tests_free(out);
    return rc;
}
