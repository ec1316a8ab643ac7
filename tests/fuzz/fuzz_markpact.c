/* fuzz_markpact.c — libFuzzer target: markpact README parser and path check.
 *
 * Input: arbitrary bytes as a README for pt_markpact_parse(), and (up to its
 * first NUL) as a path for pt_markpact_check_path().
 *
 * Invariants (abort on violation):
 *   - failure: -EINVAL/-ENOMEM, err filled with a line inside the README
 *     ("line N: ..."), *out left empty;
 *   - success: every block has a NUL-free body of exactly len bytes made of
 *     "\n"-terminated lines, line == fence_line + 1, a trimmed info string
 *     holding its markpact:KIND word, a lang that is the first info word and
 *     not the token; blocks of a kind are in README order and no two blocks
 *     (with their fences) overlap or run past the end of the README; deps
 *     blocks say nothing or "python" after the token; the run block is not
 *     blank; file blocks have distinct paths, each accepted by
 *     pt_markpact_check_path(); other blocks have no path;
 *   - round trip: the parsed blocks written out again as a README (fences
 *     longer than any run in the body, CRLF line ends) parse to the same
 *     blocks;
 *   - line endings and BOM do not matter: the README with every LF turned
 *     into CRLF (when it has no CR), or with a UTF-8 BOM in front (when it has
 *     none), gives the same result, error line and message;
 *   - deps bodies read as requirements: an error points at a line of the
 *     block;
 *   - pt_markpact_check_path() agrees with an independent implementation of
 *     the rules in pactown/markpact.h (UTF-8 decoded to code points).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pactown/markpact.h"
#include "pactown/req.h"

#include "fuzz_util.h"

/* ---- reference path check -------------------------------------------- */

static bool ref_path_ok(const unsigned char *p, size_t n)
{
    if (n == 0 || n > PT_MP_PATH_MAX || p[0] == '/')
        return false;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0)
            len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            len = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += len;
    }
    size_t start = 0;
    for (bool first = true;; first = false) {
        size_t end = start;
        while (end < n && p[end] != '/')
            end++;
        size_t cn = end - start;
        const char *c = (const char *)p + start;
        if (cn == 0 || cn > PT_MP_NAME_MAX || (cn == 1 && c[0] == '.') || (cn == 2 && memcmp(c, "..", 2) == 0))
            return false;
        if (first && ((cn == 5 && memcmp(c, ".venv", 5) == 0) || (cn == 8 && memcmp(c, ".pactown", 8) == 0)))
            return false;
        if (end == n)
            return true;
        start = end + 1;
    }
}

static void fuzz_check_path(const uint8_t *data, size_t size)
{
    size_t n = strnlen((const char *)data, size);
    char *path = fuzz_strndup(data, n);
    pt_error err;
    pt_error_clear(&err);
    int rc = pt_markpact_check_path(path, 5, &err);
    bool want = ref_path_ok((const unsigned char *)path, n);
    FUZZ_CHECK((rc == 0) == want, "pt_markpact_check_path %s a path the rules %s: %s",
               rc ? "rejects" : "accepts", want ? "accept" : "reject", err.msg);
    if (rc) {
        fuzz_check_error(rc, &err);
        FUZZ_CHECK(rc == -EINVAL && err.line == 5, "rc %d line %u", rc, err.line);
        pt_error_clear(&err);
        FUZZ_CHECK(pt_markpact_check_path(path, 0, &err) == -EINVAL && err.line == 0 &&
                       strncmp(err.msg, "line", 4) != 0,
                   "line 0: %s", err.msg);
    }
    free(path);
}

/* ---- parse invariants --------------------------------------------------- */

static size_t count_lines(const uint8_t *data, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    return n + (size && data[size - 1] != '\n');
}

static size_t body_lines(const pt_mp_block *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->body[i] == '\n';
    return n;
}

/* word as a whole blank-separated word of info, or NULL. (A known kind's
 * token is exactly "markpact:KIND".) */
static const char *info_word(const char *info, const char *word)
{
    size_t wn = strlen(word);
    for (const char *p = info; (p = strstr(p, word)) != NULL; p++)
        if ((p == info || p[-1] == ' ' || p[-1] == '\t') && (p[wn] == '\0' || p[wn] == ' ' || p[wn] == '\t'))
            return p;
    return NULL;
}

typedef struct span_l { unsigned first, last; } span_l;

static int cmp_span(const void *a, const void *b)
{
    const span_l *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static void check_block(const pt_mp_block *b, const char *kind, size_t total_lines)
{
    FUZZ_CHECK(b->body && b->info, "%s block without body or info", kind);
    FUZZ_CHECK(strlen(b->body) == b->len, "%s block at line %u: strlen %zu, len %zu", kind, b->fence_line,
               strlen(b->body), b->len);
    FUZZ_CHECK(b->len == 0 || b->body[b->len - 1] == '\n', "%s block body does not end in a newline", kind);
    FUZZ_CHECK(b->fence_line >= 1 && b->line == b->fence_line + 1, "%s block: fence_line %u, line %u", kind,
               b->fence_line, b->line);
    FUZZ_CHECK(b->fence_line + body_lines(b) + 1 <= total_lines,
               "%s block at line %u with %zu body lines runs past the %zu lines of the README", kind,
               b->fence_line, body_lines(b), total_lines);
    size_t in = strlen(b->info);
    FUZZ_CHECK(in == 0 || (b->info[0] != ' ' && b->info[0] != '\t' && b->info[in - 1] != ' ' &&
                           b->info[in - 1] != '\t'),
               "info '%s' not trimmed", b->info);
    char word[32];
    snprintf(word, sizeof word, "markpact:%s", kind);
    FUZZ_CHECK(info_word(b->info, word), "info '%s' of a %s block", b->info, kind);
    if (b->lang) {
        size_t ln = strlen(b->lang);
        FUZZ_CHECK(ln > 0 && strncmp(b->info, b->lang, ln) == 0, "lang '%s' is not the first word of '%s'",
                   b->lang, b->info);
        FUZZ_CHECK(strncmp(b->lang, "markpact:", 9) != 0, "lang '%s' is the token", b->lang);
    } else {
        FUZZ_CHECK(strncmp(b->info, "markpact:", 9) == 0, "no lang but info '%s' starts with another word",
                   b->info);
    }
}

static void check_kind(const pt_mp_block *v, size_t n, const char *kind, size_t total, span_l *spans,
                       size_t *ns)
{
    FUZZ_CHECK((n == 0) == (v == NULL), "%s: n %zu, v %p", kind, n, (const void *)v);
    for (size_t i = 0; i < n; i++) {
        check_block(&v[i], kind, total);
        if (i)
            FUZZ_CHECK(v[i - 1].fence_line < v[i].fence_line, "%s blocks out of README order", kind);
        if (strcmp(kind, "file") == 0) {
            pt_error err;
            FUZZ_CHECK(v[i].path != NULL, "file block without path");
            FUZZ_CHECK(pt_markpact_check_path(v[i].path, v[i].fence_line, &err) == 0,
                       "returned path rejected: %s", err.msg);
            FUZZ_CHECK(ref_path_ok((const unsigned char *)v[i].path, strlen(v[i].path)),
                       "returned path '%s' breaks the path rules", v[i].path);
            for (size_t k = 0; k < i; k++)
                FUZZ_CHECK(strcmp(v[k].path, v[i].path) != 0, "path '%s' returned twice", v[i].path);
        } else {
            FUZZ_CHECK(v[i].path == NULL, "%s block with a path", kind);
        }
        spans[*ns].first = v[i].fence_line;
        spans[*ns].last = v[i].fence_line + (unsigned)body_lines(&v[i]) + 1;
        (*ns)++;
    }
}

static void check_parsed(const pt_markpact *mp, size_t total)
{
    size_t nb = mp->n_deps + mp->n_files + mp->n_tests + (mp->run ? 1 : 0), ns = 0;
    span_l *spans = calloc(nb + 1, sizeof *spans);
    FUZZ_CHECK(spans != NULL, "calloc");
    check_kind(mp->deps, mp->n_deps, "deps", total, spans, &ns);
    check_kind(mp->files, mp->n_files, "file", total, spans, &ns);
    check_kind(mp->tests, mp->n_tests, "test", total, spans, &ns);
    if (mp->run) {
        check_kind(mp->run, 1, "run", total, spans, &ns);
        bool blank = true;
        for (size_t i = 0; i < mp->run->len; i++)
            blank = blank && strchr(" \t\r\n", mp->run->body[i]);
        FUZZ_CHECK(!blank, "blank run block accepted");
    }
    qsort(spans, ns, sizeof *spans, cmp_span);
    for (size_t i = 1; i < ns; i++)
        FUZZ_CHECK(spans[i - 1].last < spans[i].first, "blocks at lines %u-%u and %u-%u overlap",
                   spans[i - 1].first, spans[i - 1].last, spans[i].first, spans[i].last);
    FUZZ_CHECK((mp->n_unknown == 0) == (mp->first_unknown_line == 0), "n_unknown %u, first %u", mp->n_unknown,
               mp->first_unknown_line);
    for (size_t i = 0; i < mp->n_deps; i++) {
        /* the word after the token, if any, is "python".  The token may sit
         * after a quoted key="..." value that holds another blank-separated
         * "markpact:deps", so one of the occurrences must qualify. */
        const char *info = mp->deps[i].info, *t = info, *first = NULL;
        bool ok = false;
        while (!ok && (t = info_word(t, "markpact:deps")) != NULL) {
            if (!first)
                first = t;
            t += strlen("markpact:deps");
            const char *a = t + strspn(t, " \t");
            ok = *a == '\0' || (strncmp(a, "python", 6) == 0 && strchr(" \t", a[6]));
        }
        FUZZ_CHECK(first, "deps token");
        FUZZ_CHECK(ok, "deps for '%s' accepted", first + strlen("markpact:deps"));
    }
    free(spans);
}

static bool same_block(const pt_mp_block *a, const pt_mp_block *b, bool lines)
{
    return a->len == b->len && memcmp(a->body, b->body, a->len) == 0 && strcmp(a->info, b->info) == 0 &&
           (!a->path == !b->path) && (!a->path || strcmp(a->path, b->path) == 0) && (!a->lang == !b->lang) &&
           (!a->lang || strcmp(a->lang, b->lang) == 0) &&
           (!lines || (a->line == b->line && a->fence_line == b->fence_line));
}

static void check_same(const pt_markpact *a, const pt_markpact *b, bool lines, const char *what)
{
    FUZZ_CHECK(a->n_deps == b->n_deps && a->n_files == b->n_files && a->n_tests == b->n_tests &&
                   !a->run == !b->run,
               "%s: block counts differ", what);
    for (size_t i = 0; i < a->n_deps; i++)
        FUZZ_CHECK(same_block(&a->deps[i], &b->deps[i], lines), "%s: deps block %zu differs", what, i);
    for (size_t i = 0; i < a->n_files; i++)
        FUZZ_CHECK(same_block(&a->files[i], &b->files[i], lines), "%s: file block %zu differs", what, i);
    for (size_t i = 0; i < a->n_tests; i++)
        FUZZ_CHECK(same_block(&a->tests[i], &b->tests[i], lines), "%s: test block %zu differs", what, i);
    if (a->run)
        FUZZ_CHECK(same_block(a->run, b->run, lines), "%s: run block differs", what);
    if (lines)
        FUZZ_CHECK(a->n_unknown == b->n_unknown && a->first_unknown_line == b->first_unknown_line,
                   "%s: unknown blocks differ", what);
}

/* ---- round trip --------------------------------------------------------- */

typedef struct buf { char *p; size_t n, cap; } buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        FUZZ_CHECK(b->p != NULL, "realloc");
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void put_block(buf *out, const pt_mp_block *b)
{
    char ch = strchr(b->info, '`') ? '~' : '`';
    size_t run = 0, longest = 0;
    for (size_t i = 0; i < b->len; i++) {
        run = b->body[i] == ch ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    size_t count = longest < 3 ? 3 : longest + 1;
    char *fence = malloc(count);
    FUZZ_CHECK(fence != NULL, "malloc");
    memset(fence, ch, count);
    put(out, fence, count);
    put(out, " ", 1);
    put(out, b->info, strlen(b->info));
    put(out, "\r\n", 2);
    for (size_t i = 0; i < b->len;) {
        const char *nl = memchr(b->body + i, '\n', b->len - i);
        size_t n = (size_t)(nl - (b->body + i));
        put(out, b->body + i, n);
        put(out, "\r\n", 2);
        i += n + 1;
    }
    put(out, fence, count);
    put(out, "\r\n", 2);
    free(fence);
}

static void check_roundtrip(const pt_markpact *mp)
{
    buf out = { 0 };
    put(&out, "# again\n", 8);
    for (size_t i = 0; i < mp->n_deps; i++)
        put_block(&out, &mp->deps[i]);
    for (size_t i = 0; i < mp->n_files; i++)
        put_block(&out, &mp->files[i]);
    for (size_t i = 0; i < mp->n_tests; i++)
        put_block(&out, &mp->tests[i]);
    if (mp->run)
        put_block(&out, mp->run);
    pt_markpact again;
    pt_error err;
    int rc = pt_markpact_parse(out.p, out.n, &again, &err);
    FUZZ_CHECK(rc == 0, "blocks written out again do not parse: %s\n%s", err.msg, out.p);
    FUZZ_CHECK(again.n_unknown == 0, "unknown blocks appeared");
    check_same(mp, &again, false, "round trip");
    pt_markpact_free(&again);
    free(out.p);
}

/* text (malloc'd, freed here), a variant of the README, parses exactly as
 * the original did (rc0, err0, mp0). */
static void check_variant(int rc0, const pt_error *err0, const pt_markpact *mp0, const char *what, char *text,
                          size_t len)
{
    pt_markpact mp;
    pt_error err;
    int rc = pt_markpact_parse(text, len, &mp, &err);
    FUZZ_CHECK(rc == rc0, "%s: rc %d, original %d (%s / %s)", what, rc, rc0, err.msg, err0->msg);
    if (rc) {
        FUZZ_CHECK(err.line == err0->line && strcmp(err.msg, err0->msg) == 0, "%s: error '%s', original '%s'",
                   what, err.msg, err0->msg);
    } else {
        check_same(mp0, &mp, true, what);
        pt_markpact_free(&mp);
    }
    free(text);
}

static void check_deps_lines(const pt_markpact *mp)
{
    for (size_t i = 0; i < mp->n_deps; i++) {
        const pt_mp_block *b = &mp->deps[i];
        pt_reqset s;
        pt_error err;
        pt_reqset_init(&s);
        int rc = pt_reqset_add_text(&s, b->body, b->len, b->line, &err);
        if (rc && rc != -ENOMEM)
            FUZZ_CHECK(err.line >= b->line && err.line < b->line + body_lines(b),
                       "deps error at line %u, block lines %u..%zu: %s", err.line, b->line,
                       b->line + body_lines(b) - 1, err.msg);
        pt_reqset_free(&s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check_path(data, size);

    pt_markpact mp;
    pt_error err;
    memset(&mp, 0xa5, sizeof mp); /* must be overwritten on every path */
    int rc = pt_markpact_parse((const char *)data, size, &mp, &err);
    size_t total = count_lines(data, size);
    if (rc) {
        pt_markpact zero;
        memset(&zero, 0, sizeof zero);
        fuzz_check_error(rc, &err);
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "rc %d", rc);
        FUZZ_CHECK(err.line >= 1 && err.line <= total, "err.line %u outside 1..%zu: %s", err.line, total,
                   err.msg);
        FUZZ_CHECK(memcmp(&mp, &zero, sizeof mp) == 0, "*out not empty on failure");
    } else {
        FUZZ_CHECK(err.code == 0, "err.code %d on success", err.code);
        check_parsed(&mp, total);
        check_roundtrip(&mp);
        check_deps_lines(&mp);
    }

    if (!memchr(data, '\r', size)) {
        size_t nl = 0;
        for (size_t i = 0; i < size; i++)
            nl += data[i] == '\n';
        char *crlf = malloc(size + nl + 1), *p = crlf;
        FUZZ_CHECK(crlf != NULL, "malloc");
        for (size_t i = 0; i < size; i++) {
            if (data[i] == '\n')
                *p++ = '\r';
            *p++ = (char)data[i];
        }
        check_variant(rc, &err, &mp, "CRLF", crlf, size + nl);
    }
    if (size < 3 || memcmp(data, "\xef\xbb\xbf", 3) != 0) {
        char *bom = malloc(size + 3);
        FUZZ_CHECK(bom != NULL, "malloc");
        memcpy(bom, "\xef\xbb\xbf", 3);
        if (size)
            memcpy(bom + 3, data, size);
        check_variant(rc, &err, &mp, "BOM", bom, size + 3);
    }

    pt_markpact_free(&mp);
    pt_markpact_free(&mp); /* idempotent */
    return 0;
}
