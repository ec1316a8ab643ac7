/* fuzz_req.c — libFuzzer target: requirement lines and requirements text.
 *
 * Input: arbitrary bytes, given to pt_req_parse() as one line and to
 * pt_reqset_add_text() as a requirements file.
 *
 * Invariants (abort on violation):
 *   pt_req_parse
 *     - failure: -EINVAL/-ENOMEM, err filled ("line N: ..." with N the line
 *       number passed in), *out zeroed;
 *     - success: name is a PEP 503 name ([a-z0-9-], no leading, trailing or
 *       doubled '-'); extras are such names, strictly sorted; specifier has
 *       no whitespace and strictly sorted clauses, each starting with an
 *       operator; canonical == name[extras]specifier[; marker][ hashes] or
 *       name[extras] @ URL[ ; marker][ hashes] (never both a specifier and
 *       a URL);
 *     - canonical is printable ASCII with nothing pip or a shell would read
 *       specially: no " #", no " -" option, no trailing '\', no '$', '`',
 *       '\'', '\\', tab or control byte (the builder hands these lines to
 *       pip/uv as a requirements file);
 *     - canonical is a fixpoint: parsing it gives the same fields back, and
 *       pt_reqset_add_line() reads it back as exactly that one line;
 *     - surrounding blanks do not matter: " \t" + line + " \t" parses to the
 *       same canonical line.
 *   pt_reqset_add_text
 *     - failure: the set is exactly as before the call; err.line lies within
 *       the text (first_line .. first_line + lines - 1);
 *     - success: at most one requirement per physical line; every new line is
 *       a canonical fixpoint, or an index option line "--OPT http(s)-URL"
 *       that pt_req_source_line gives back unchanged; after pt_reqset_finish the set is strictly
 *       sorted;
 *     - without '\' continuations and NUL bytes, the text gives the same
 *       result (lines, or the first bad line number) as pt_reqset_add_line()
 *       on each physical line.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pactown/req.h"

#include "fuzz_util.h"

#define LINENO 7u      /* line number given to pt_req_parse: errors must carry it */
#define FIRST_LINE 3u  /* first_line given to pt_reqset_add_text */
static const char SENTINEL[] = "zzz-sentinel";

static bool is_pep503_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
        if (c == '-' && s[i + 1] == '-')
            return false;
    }
    return true;
}

static bool starts_with_op(const char *s)
{
    static const char *const ops[] = { "===", "==", "!=", "<=", ">=", "~=", "<", ">" };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strncmp(s, ops[i], strlen(ops[i])) == 0)
            return true;
    return false;
}

/* Characters and sequences a canonical requirement line must never contain:
 * the only " -" is the start of a " --hash=" option. */
static void check_canonical_text(const char *c)
{
    size_t n = strlen(c);
    FUZZ_CHECK(n > 0, "empty canonical line");
    FUZZ_CHECK(c[0] != '-' && c[0] != ' ', "canonical line '%s' starts with '%c'", c, c[0]);
    FUZZ_CHECK(c[n - 1] != '\\' && c[n - 1] != ' ', "canonical line '%s' ends with '%c'", c, c[n - 1]);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c[i];
        FUZZ_CHECK(ch >= 0x20 && ch < 0x7f, "byte 0x%02x at %zu in canonical line '%s'", ch, i, c);
        FUZZ_CHECK(!strchr("$`'\\", ch), "'%c' in canonical line '%s'", ch, c);
        if (ch == ' ')
            FUZZ_CHECK(c[i + 1] != '#' && (c[i + 1] != '-' || strncmp(c + i, " --hash=sha", 11) == 0),
                       "' %c' (pip comment/option) in canonical line '%s'", c[i + 1], c);
    }
}

/* A set line that is an index option: "--OPT URL", one http(s) URL of
 * printable characters, a fixpoint of pt_req_source_line. */
static void check_option_line(const char *c)
{
    static const char *const opts[] = { "--index-url ", "--extra-index-url ", "--find-links ", NULL };
    size_t k = 0;
    for (size_t i = 0; opts[i] && !k; i++)
        if (strncmp(c, opts[i], strlen(opts[i])) == 0)
            k = strlen(opts[i]);
    FUZZ_CHECK(k, "option line '%s' is not an index option", c);
    FUZZ_CHECK(strncasecmp(c + k, "http://", 7) == 0 || strncasecmp(c + k, "https://", 8) == 0, "URL of '%s'", c);
    for (const char *p = c + k; *p; p++)
        FUZZ_CHECK(*p > 0x20 && *p < 0x7f && !strchr("$`'\\\"{}<>|^", *p), "'%c' in option line '%s'", *p, c);
    char *again = NULL;
    pt_error err;
    FUZZ_CHECK(pt_req_source_line(c, strlen(c), 1, &again, &err) == 0 && strcmp(again, c) == 0,
               "option line '%s' is not a fixpoint", c);
    free(again);
}

/* Field-by-field invariants of a successful parse. */
static void check_req(const pt_req *r)
{
    FUZZ_CHECK(r->name && r->specifier && r->marker && r->url && r->hashes && r->canonical, "NULL field");
    FUZZ_CHECK(is_pep503_name(r->name), "name '%s' is not PEP 503 normalized", r->name);
    FUZZ_CHECK((r->n_extras == 0) == (r->extras == NULL), "n_extras %zu, extras %p", r->n_extras,
               (void *)r->extras);
    for (size_t i = 0; i < r->n_extras; i++) {
        FUZZ_CHECK(is_pep503_name(r->extras[i]), "extra '%s' is not normalized", r->extras[i]);
        if (i)
            FUZZ_CHECK(strcmp(r->extras[i - 1], r->extras[i]) < 0, "extras '%s', '%s' not sorted/unique",
                       r->extras[i - 1], r->extras[i]);
    }

    /* specifier: clauses without blanks, each with an operator, strictly sorted */
    const char *sp = r->specifier;
    FUZZ_CHECK(!strpbrk(sp, " \t"), "blank in specifier '%s'", sp);
    if (*sp) {
        char *copy = strdup(sp), *save = NULL, *prev = NULL;
        FUZZ_CHECK(copy != NULL, "strdup");
        FUZZ_CHECK(sp[strlen(sp) - 1] != ',' && sp[0] != ',', "empty clause in '%s'", sp);
        for (char *cl = strtok_r(copy, ",", &save); cl; cl = strtok_r(NULL, ",", &save)) {
            FUZZ_CHECK(starts_with_op(cl), "clause '%s' has no operator", cl);
            if (prev)
                FUZZ_CHECK(strcmp(prev, cl) < 0, "clauses '%s', '%s' not sorted/unique", prev, cl);
            prev = cl;
        }
        FUZZ_CHECK(!strstr(sp, ",,"), "empty clause in '%s'", sp);
        free(copy);
    }
    FUZZ_CHECK(r->marker[0] != ' ' && (!*r->marker || r->marker[strlen(r->marker) - 1] != ' '),
               "marker '%s' has surrounding blanks", r->marker);

    /* canonical = name[extras]specifier[; marker] */
    size_t cap = strlen(r->canonical) + 1, k = 0;
    char *want = malloc(cap + 1);
    FUZZ_CHECK(want != NULL, "malloc");
#define PUT(s)                                                                            \
    do {                                                                                  \
        size_t l_ = strlen(s);                                                            \
        FUZZ_CHECK(k + l_ < cap, "canonical '%s' shorter than its fields", r->canonical); \
        memcpy(want + k, s, l_);                                                          \
        k += l_;                                                                          \
    } while (0)
    PUT(r->name);
    for (size_t i = 0; i < r->n_extras; i++) {
        PUT(i ? "," : "[");
        PUT(r->extras[i]);
    }
    if (r->n_extras)
        PUT("]");
    PUT(r->specifier);
    if (*r->url) {
        FUZZ_CHECK(!*r->specifier, "both a URL and a specifier in '%s'", r->canonical);
        PUT(" @ ");
        PUT(r->url);
    }
    if (*r->marker) {
        PUT(*r->url ? " ; " : "; ");
        PUT(r->marker);
    }
    if (*r->hashes) {
        PUT(" ");
        PUT(r->hashes);
    }
#undef PUT
    want[k] = '\0';
    FUZZ_CHECK(strcmp(want, r->canonical) == 0, "canonical '%s' != assembled '%s'", r->canonical, want);
    free(want);
    check_canonical_text(r->canonical);
}

static bool same_req(const pt_req *a, const pt_req *b)
{
    if (strcmp(a->name, b->name) || strcmp(a->specifier, b->specifier) || strcmp(a->marker, b->marker) ||
        strcmp(a->url, b->url) || strcmp(a->hashes, b->hashes) ||
        strcmp(a->canonical, b->canonical) || a->n_extras != b->n_extras)
        return false;
    for (size_t i = 0; i < a->n_extras; i++)
        if (strcmp(a->extras[i], b->extras[i]))
            return false;
    return true;
}

/* canonical must parse back to itself, also when read as a requirements line. */
static void check_fixpoint(const char *canonical, const pt_req *orig)
{
    pt_req again;
    pt_error err;
    int rc = pt_req_parse(canonical, strlen(canonical), 1, &again, &err);
    FUZZ_CHECK(rc == 0, "canonical line '%s' does not parse: %s", canonical, err.msg);
    check_req(&again);
    FUZZ_CHECK(strcmp(again.canonical, canonical) == 0, "not a fixpoint: '%s' -> '%s'", canonical,
               again.canonical);
    if (orig)
        FUZZ_CHECK(same_req(orig, &again), "fields of '%s' change when it is parsed again", canonical);
    pt_req_free(&again);

    pt_reqset s;
    pt_reqset_init(&s);
    rc = pt_reqset_add_line(&s, canonical, 1, &err);
    FUZZ_CHECK(rc == 0 && s.n == 1 && strcmp(s.lines[0], canonical) == 0,
               "canonical line '%s' read as a requirements line gives rc %d, %zu lines ('%s')", canonical, rc,
               s.n, s.n ? s.lines[0] : "");
    pt_reqset_free(&s);
}

static void fuzz_parse(const uint8_t *data, size_t size)
{
    pt_req r;
    pt_error err;
    memset(&r, 0xa5, sizeof r); /* *out must be written on every path */
    pt_error_clear(&err);
    int rc = pt_req_parse((const char *)data, size, LINENO, &r, &err);
    if (rc) {
        pt_req zero;
        memset(&zero, 0, sizeof zero);
        fuzz_check_error(rc, &err);
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "rc %d", rc);
        FUZZ_CHECK(err.line == LINENO, "err.line %u, expected %u", err.line, LINENO);
        FUZZ_CHECK(memcmp(&r, &zero, sizeof r) == 0, "*out not zeroed on failure");
        pt_req_free(&r);
        return;
    }
    check_req(&r);
    check_fixpoint(r.canonical, &r);

    /* blanks around the line do not matter */
    if (size + 4 <= PT_REQ_MAX_LINE) {
        char *padded = malloc(size + 4);
        FUZZ_CHECK(padded != NULL, "malloc");
        memcpy(padded, " \t", 2);
        memcpy(padded + 2, data, size);
        memcpy(padded + 2 + size, "\t ", 2);
        pt_req p2;
        rc = pt_req_parse(padded, size + 4, LINENO, &p2, &err);
        FUZZ_CHECK(rc == 0, "padded line fails: %s", err.msg);
        FUZZ_CHECK(strcmp(p2.canonical, r.canonical) == 0, "padding changes '%s' into '%s'", r.canonical,
                   p2.canonical);
        pt_req_free(&p2);
        free(padded);
    }
    pt_req_free(&r);
    pt_req_free(&r); /* idempotent */
}

static size_t count_lines(const uint8_t *data, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    return n + (size && data[size - 1] != '\n');
}

/* The same text line by line through pt_reqset_add_line (only without '\'
 * continuations and NUL bytes, which add_line cannot express). */
static void check_against_add_line(const uint8_t *data, size_t size, int rc_text, const pt_error *err_text,
                                   const pt_reqset *text_set)
{
    pt_reqset s;
    pt_error err;
    pt_reqset_init(&s);
    pt_reqset_add_line(&s, SENTINEL, 1, NULL);
    int rc = 0;
    unsigned lineno = FIRST_LINE;
    size_t pos = 0;
    while (pos < size) {
        const char *line = (const char *)data + pos;
        const char *nl = memchr(line, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - line) : size - pos;
        pos += n + (nl ? 1 : 0);
        if (n && line[n - 1] == '\r')
            n--;
        char *copy = fuzz_strndup((const uint8_t *)line, n);
        rc = pt_reqset_add_line(&s, copy, lineno, &err);
        free(copy);
        if (rc)
            break;
        lineno++;
    }
    FUZZ_CHECK((rc == 0) == (rc_text == 0), "add_text rc %d (%s), line by line rc %d (%s)", rc_text,
               err_text->msg, rc, err.msg);
    if (rc) {
        FUZZ_CHECK(err.line == err_text->line, "add_text fails at line %u, line by line at %u", err_text->line,
                   err.line);
    } else {
        FUZZ_CHECK(s.n == text_set->n, "add_text gives %zu lines, line by line %zu", text_set->n, s.n);
        for (size_t i = 0; i < s.n; i++)
            FUZZ_CHECK(strcmp(s.lines[i], text_set->lines[i]) == 0, "line %zu: '%s' vs '%s'", i,
                       text_set->lines[i], s.lines[i]);
    }
    pt_reqset_free(&s);
}

static void fuzz_text(const uint8_t *data, size_t size)
{
    pt_reqset s;
    pt_error err;
    pt_reqset_init(&s);
    FUZZ_CHECK(pt_reqset_add_line(&s, SENTINEL, 1, NULL) == 0, "sentinel");

    pt_error_clear(&err);
    int rc = pt_reqset_add_text(&s, (const char *)data, size, FIRST_LINE, &err);
    size_t lines = count_lines(data, size);
    if (rc) {
        fuzz_check_error(rc, &err);
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "rc %d", rc);
        FUZZ_CHECK(err.line >= FIRST_LINE && err.line < FIRST_LINE + lines, "err.line %u outside %u..%zu",
                   err.line, FIRST_LINE, FIRST_LINE + lines - 1);
        FUZZ_CHECK(s.n == 1 && strcmp(s.lines[0], SENTINEL) == 0, "failed add_text changed the set (%zu lines)",
                   s.n);
    } else {
        FUZZ_CHECK(s.n >= 1 && strcmp(s.lines[0], SENTINEL) == 0, "add_text lost the sentinel");
        FUZZ_CHECK(s.n - 1 <= lines, "%zu requirements from %zu lines", s.n - 1, lines);
        for (size_t i = 1; i < s.n; i++) {
            if (s.lines[i][0] == '-') {
                check_option_line(s.lines[i]);
                continue;
            }
            check_canonical_text(s.lines[i]);
            check_fixpoint(s.lines[i], NULL);
        }
    }
    if (!memchr(data, '\\', size) && !memchr(data, '\0', size))
        check_against_add_line(data, size, rc, &err, &s);

    size_t before = s.n;
    pt_reqset_finish(&s);
    FUZZ_CHECK(s.n <= before && s.n >= 1, "finish: %zu -> %zu lines", before, s.n);
    for (size_t i = 1; i < s.n; i++)
        FUZZ_CHECK(strcmp(s.lines[i - 1], s.lines[i]) < 0, "finish left '%s', '%s'", s.lines[i - 1], s.lines[i]);
    pt_reqset_free(&s);
    FUZZ_CHECK(s.n == 0 && s.lines == NULL && s.cap == 0, "free did not reset the set");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parse(data, size);
    fuzz_text(data, size);
    return 0;
}
