/* reqset.c — requirement sets: requirements-file text to canonical lines.
 *
 * Reads text the way pip reads a requirements file (pip/_internal/req/req_file.py,
 * join_lines + ignore_comments): a line ending in '\' is joined with the next
 * one unless it is a full-line comment (a full-line comment ends a joined line
 * and is then dropped); then comments ('#' at the start or after whitespace)
 * are dropped, and the rest is parsed as one PEP 508 requirement
 * (pt_req_parse). Everything is linear in the input size.
 */
#include "pactown/req.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pt_reqset_init(pt_reqset *s)
{
    if (s)
        memset(s, 0, sizeof *s);
}

void pt_reqset_free(pt_reqset *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->lines[i]);
    free(s->lines);
    memset(s, 0, sizeof *s);
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void pt_reqset_finish(pt_reqset *s)
{
    if (!s || s->n < 2)
        return;
    qsort(s->lines, s->n, sizeof *s->lines, cmp_line);
    size_t k = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (strcmp(s->lines[i], s->lines[k - 1]) == 0)
            free(s->lines[i]);
        else
            s->lines[k++] = s->lines[i];
    }
    s->n = k;
}

/* Take ownership of line (NULL means allocation failed). */
static int reqset_push(pt_reqset *s, char *line)
{
    if (!line)
        return -ENOMEM;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof *s->lines) {
            free(line);
            return -ENOMEM;
        }
        char **v = realloc(s->lines, cap * sizeof *v);
        if (!v) {
            free(line);
            return -ENOMEM;
        }
        s->lines = v;
        s->cap = cap;
    }
    s->lines[s->n++] = line;
    return 0;
}

static void reqset_truncate(pt_reqset *s, size_t n)
{
    while (s->n > n)
        free(s->lines[--s->n]);
}

/* Offset of the comment in s[0..n) (pip: '#' at the start or after
 * whitespace), or n if there is none. */
static size_t comment_start(const char *s, size_t n)
{
    const char *h = s;
    size_t left = n;
    const char *c;
    while ((c = memchr(h, '#', left)) != NULL) {
        if (c == s || c[-1] == ' ' || c[-1] == '\t')
            return (size_t)(c - s);
        left -= (size_t)(c + 1 - h);
        h = c + 1;
    }
    return n;
}

/* pip's COMMENT_RE.match: optional whitespace, then '#'. */
static bool is_full_line_comment(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i < n && s[i] == '#';
}

/* One logical line: drop the comment, skip blank lines, parse, append. */
static int add_logical(pt_reqset *s, const char *line, size_t n, unsigned lineno, pt_error *err)
{
    n = comment_start(line, n);
    size_t a = 0;
    while (a < n && (line[a] == ' ' || line[a] == '\t'))
        a++;
    while (n > a && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
        n--;
    if (a == n)
        return 0;
    char *opt = NULL;
    int rc = pt_req_source_line(line + a, n - a, lineno, &opt, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        /* one package index per set: a second, different --index-url is an error (pip takes the last) */
        if (strncmp(opt, "--index-url ", 12) == 0)
            for (size_t i = 0; i < s->n; i++)
                if (strncmp(s->lines[i], "--index-url ", 12) == 0 && strcmp(s->lines[i], opt) != 0) {
                    pt_error_set(err, -EINVAL, lineno,
                                 "line %u: a second --index-url (%s): a set has one package index; add others"
                                 " with --extra-index-url", lineno, opt + 12);
                    free(opt);
                    return -EINVAL;
                }
        rc = reqset_push(s, opt);
        if (rc)
            pt_error_set(err, rc, lineno, "line %u: out of memory", lineno);
        return rc;
    }
    pt_req r;
    rc = pt_req_parse(line + a, n - a, lineno, &r, err);
    if (rc)
        return rc;
    char *canonical = r.canonical;
    r.canonical = NULL;
    pt_req_free(&r);
    rc = reqset_push(s, canonical);
    if (rc)
        pt_error_set(err, rc, lineno, "line %u: out of memory", lineno);
    return rc;
}

/* Error for a physical line that cannot be a requirement at all. */
static int line_error(const char *line, size_t n, unsigned lineno, pt_error *err, const char *reason)
{
    char text[96];
    size_t k = 0, i = 0;
    for (; i < n && k < 80; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c >= 0x20 && c < 0x7f) {
            text[k++] = (char)c;
        } else {
            snprintf(text + k, 5, "\\x%02x", c);
            k += 4;
        }
    }
    if (i < n) {
        memcpy(text + k, "...", 3);
        k += 3;
    }
    text[k] = '\0';
    return pt_error_set(err, -EINVAL, lineno, "line %u: '%s': %s", lineno, text, reason);
}

int pt_reqset_add_text(pt_reqset *s, const char *text, size_t len, unsigned first_line, pt_error *err)
{
    if (!s || (!text && len))
        return pt_error_set(err, -EINVAL, 0, "no requirement set or text given");

    size_t start_n = s->n;
    char joined[PT_REQ_MAX_LINE + 1];
    size_t jlen = 0;
    bool continuing = false;
    unsigned jline = first_line;
    unsigned lineno = first_line;
    size_t pos = 0;
    int rc = 0;

    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);

        if (n && line[n - 1] == '\r')
            n--;
        if (n > PT_REQ_MAX_LINE) {
            rc = line_error(line, n, lineno, err, "line is longer than 4096 bytes");
            goto fail;
        }
        if (memchr(line, '\0', n)) {
            rc = line_error(line, n, lineno, err, "NUL byte in the line");
            goto fail;
        }
        bool full_comment = is_full_line_comment(line, n);
        bool cont = n && line[n - 1] == '\\' && !full_comment;

        if (!continuing && !cont) {
            rc = add_logical(s, line, n, lineno, err);
        } else {
            if (!continuing) {
                jline = lineno;
                jlen = 0;
            }
            size_t piece = cont ? n - 1 : n;
            if (full_comment && jlen < sizeof joined)
                joined[jlen++] = ' '; /* as pip: keep it a comment after joining */
            if (jlen + piece > PT_REQ_MAX_LINE) {
                rc = line_error(joined, jlen, jline, err,
                                "continued line is longer than 4096 bytes");
                goto fail;
            }
            memcpy(joined + jlen, line, piece);
            jlen += piece;
            continuing = cont;
            if (!cont)
                rc = add_logical(s, joined, jlen, jline, err);
        }
        if (rc)
            goto fail;
        lineno++;
    }
    if (continuing && (rc = add_logical(s, joined, jlen, jline, err)))
        goto fail;
    return 0;

fail:
    reqset_truncate(s, start_n);
    return rc;
}

int pt_reqset_add_line(pt_reqset *s, const char *line, unsigned lineno, pt_error *err)
{
    if (!s || !line)
        return pt_error_set(err, -EINVAL, lineno, "line %u: no requirement set or line given", lineno);
    size_t n = strnlen(line, PT_REQ_MAX_LINE + 1);
    if (n > PT_REQ_MAX_LINE)
        return line_error(line, n, lineno, err, "line is longer than 4096 bytes");
    if (memchr(line, '\n', n))
        return line_error(line, n, lineno, err,
                          "a single requirement line may not contain a newline");
    return add_logical(s, line, n, lineno, err);
}
