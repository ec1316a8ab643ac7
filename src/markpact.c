/* markpact.c — markpact README parser (fenced `markpact:*` code blocks).
 *
 * One forward pass over the text, line by line (memchr for '\n'); a markpact
 * block is scanned once to find its closing fence and measure its body, then
 * its lines are copied once.  File paths are deduplicated with a hash set, so
 * the whole parse is linear in the input size.
 */
#include "pactown/markpact.h"
#include "pactown/error.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ------------------------------------------------------ */

typedef struct span {
    const char *p;
    size_t n;
} span;

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool span_eq(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool span_starts(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n >= n && memcmp(s.p, lit, n) == 0;
}

static char *span_dup(span s)
{
    char *d = malloc(s.n + 1);
    if (d) {
        if (s.n)
            memcpy(d, s.p, s.n);
        d[s.n] = '\0';
    }
    return d;
}

/* ---- paths -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p[0..n), 0 if invalid (overlong,
 * surrogate, > U+10FFFF, truncated, stray continuation byte). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (n >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && p[1] < 0xa0) /* overlong */
            return 0;
        if (c == 0xed && p[1] >= 0xa0) /* surrogates */
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && p[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xf4 && p[1] >= 0x90) /* > U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

static int path_error(pt_error *err, unsigned line, const char *p, size_t n, const char *why)
{
    char q[PT_QUOTE_CAP];
    pt_quote(q, sizeof q, p, n);
    if (line)
        return pt_error_set(err, -EINVAL, line, "line %u: markpact:file path %s: %s", line, q, why);
    return pt_error_set(err, -EINVAL, line, "markpact:file path %s: %s", q, why);
}

static int check_path_n(const char *p, size_t n, unsigned line, pt_error *err)
{
    if (n == 0)
        return path_error(err, line, p, n, "path is empty");
    if (n > PT_MP_PATH_MAX)
        return path_error(err, line, p, n, "path is longer than 4096 bytes");
    if (p[0] == '/')
        return path_error(err, line, p, n, "absolute paths are not allowed (the path must be relative)");

    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        if (c == 0)
            return path_error(err, line, p, n, "path contains a NUL byte");
        if (c < 0x20 || c == 0x7f)
            return path_error(err, line, p, n, "path contains a control character");
        if (c == '\\')
            return path_error(err, line, p, n, "path contains a backslash (use '/' to separate components)");
        size_t k = utf8_seq((const unsigned char *)p + i, n - i);
        if (k == 0)
            return path_error(err, line, p, n, "path is not valid UTF-8");
        i += k;
    }

    size_t start = 0;
    bool first = true;
    for (;;) {
        const char *slash = memchr(p + start, '/', n - start);
        size_t end = slash ? (size_t)(slash - p) : n;
        span comp = { p + start, end - start };
        if (comp.n == 0)
            return path_error(err, line, p, n, "path has an empty component (\"//\" or a trailing \"/\")");
        if (span_eq(comp, ".") || span_eq(comp, ".."))
            return path_error(err, line, p, n, "\".\" and \"..\" components are not allowed");
        if (comp.n > PT_MP_NAME_MAX)
            return path_error(err, line, p, n, "a path component is longer than 255 bytes");
        if (first && (span_eq(comp, ".venv") || span_eq(comp, ".pactown")))
            return path_error(err, line, p, n, "\".venv\" and \".pactown\" are reserved by pactown");
        first = false;
        if (!slash)
            break;
        start = end + 1;
    }
    return 0;
}

int pt_markpact_check_path(const char *path, unsigned line, pt_error *err)
{
    if (!path)
        return path_error(err, line, "", 0, "path is empty");
    return check_path_n(path, strlen(path), line, err);
}

/* ---- lines and fences --------------------------------------------------- */

typedef struct reader {
    const char *text;
    size_t len;
    size_t pos;      /* offset of the next unread line */
    unsigned lineno; /* number of the line last returned (1-based) */
} reader;

/* Next line without its terminator ("\n", "\r\n", or a final "\r" at EOF).
 * Returns 1, 0 at EOF, -1 when the line number would overflow. */
static int next_line(reader *r, span *ln)
{
    if (r->pos >= r->len)
        return 0;
    if (r->lineno >= UINT_MAX - 1)
        return -1;
    const char *s = r->text + r->pos;
    size_t rem = r->len - r->pos;
    const char *nl = memchr(s, '\n', rem);
    size_t n = nl ? (size_t)(nl - s) : rem;
    r->pos += nl ? n + 1 : n;
    if (n && s[n - 1] == '\r')
        n--;
    r->lineno++;
    ln->p = s;
    ln->n = n;
    return 1;
}

typedef struct fence {
    char ch;       /* '`' or '~' */
    size_t count;  /* length of the run */
    size_t indent; /* spaces before it (0..3) */
    span info;     /* info string, blanks trimmed */
} fence;

/* CommonMark opening code fence? */
static bool open_fence(span ln, fence *f)
{
    size_t i = 0;
    while (i < 3 && i < ln.n && ln.p[i] == ' ')
        i++;
    if (i >= ln.n || (ln.p[i] != '`' && ln.p[i] != '~'))
        return false;
    char ch = ln.p[i];
    size_t j = i;
    while (j < ln.n && ln.p[j] == ch)
        j++;
    if (j - i < 3)
        return false;
    size_t a = j, b = ln.n;
    while (a < b && is_blank(ln.p[a]))
        a++;
    while (b > a && is_blank(ln.p[b - 1]))
        b--;
    if (ch == '`' && memchr(ln.p + a, '`', b - a))
        return false; /* an inline code span, not a fence */
    f->ch = ch;
    f->count = j - i;
    f->indent = i;
    f->info.p = ln.p + a;
    f->info.n = b - a;
    return true;
}

/* CommonMark closing fence for f? */
static bool close_fence(span ln, const fence *f)
{
    size_t i = 0;
    while (i < 3 && i < ln.n && ln.p[i] == ' ')
        i++;
    size_t j = i;
    while (j < ln.n && ln.p[j] == f->ch)
        j++;
    if (j - i < f->count)
        return false;
    for (; j < ln.n; j++)
        if (!is_blank(ln.p[j]))
            return false;
    return true;
}

/* Body line with up to f->indent leading spaces removed. */
static span deindent(span ln, const fence *f)
{
    size_t k = 0;
    while (k < f->indent && k < ln.n && ln.p[k] == ' ')
        k++;
    ln.p += k;
    ln.n -= k;
    return ln;
}

/* Next blank-separated word of s starting at *pos.  A quote right after '='
 * (key="a b" or key='a b') groups up to the matching quote. */
static bool next_word(span s, size_t *pos, span *w)
{
    size_t i = *pos;
    while (i < s.n && is_blank(s.p[i]))
        i++;
    if (i >= s.n)
        return false;
    size_t start = i;
    char q = 0;
    for (; i < s.n; i++) {
        char c = s.p[i];
        if (q) {
            if (c == q)
                q = 0;
        } else if ((c == '"' || c == '\'') && i > start && s.p[i - 1] == '=') {
            q = c;
        } else if (is_blank(c)) {
            break;
        }
    }
    w->p = s.p + start;
    w->n = i - start;
    *pos = i;
    return true;
}

/* ---- parser state ------------------------------------------------------- */

enum kind { K_DEPS, K_FILE, K_RUN, K_TEST, K_BUILD, K_TARGET, K_OTHER };

typedef struct vec {
    pt_mp_block *v;
    size_t n, cap;
} vec;

typedef struct parser {
    reader r;
    pt_error *err;
    vec deps, files, tests;
    pt_mp_block *run, *build, *target;
    unsigned n_unknown, first_unknown_line;
    char **warnings;
    size_t n_warnings;
    size_t n_dead;   /* file blocks replaced by a later one (body NULL), dropped at the end */
    pt_mp_include *includes;
    size_t n_includes;
    size_t *hash;  /* open addressing: files index + 1, 0 = empty */
    size_t hcap;   /* power of two, 0 before the first file */
} parser;

void pt_mp_block_free(pt_mp_block *b)
{
    if (!b)
        return;
    free(b->source);
    free(b->body);
    free(b->path);
    free(b->lang);
    free(b->info);
    memset(b, 0, sizeof *b);
}

static void vec_free(vec *v)
{
    for (size_t i = 0; i < v->n; i++)
        pt_mp_block_free(&v->v[i]);
    free(v->v);
    memset(v, 0, sizeof *v);
}

static int vec_push(vec *v, pt_mp_block *b)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        if (cap > SIZE_MAX / sizeof *v->v)
            return -ENOMEM;
        pt_mp_block *nv = realloc(v->v, cap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = *b;
    memset(b, 0, sizeof *b);
    return 0;
}

static uint64_t hash_bytes(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Slot of path in the file hash: either holding a file with that path or
 * empty.  Requires hcap > 0. */
static size_t hash_slot(const parser *ps, const char *path)
{
    size_t mask = ps->hcap - 1;
    size_t i = (size_t)hash_bytes(path) & mask;
    while (ps->hash[i] && strcmp(ps->files.v[ps->hash[i] - 1].path, path) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Make room for one more file in the hash (load factor <= 1/2). */
static int hash_reserve(parser *ps)
{
    if ((ps->files.n + 1) * 2 <= ps->hcap)
        return 0;
    size_t ncap = ps->hcap ? ps->hcap * 2 : 16;
    size_t *nh = calloc(ncap, sizeof *nh);
    if (!nh)
        return -ENOMEM;
    size_t *old = ps->hash;
    ps->hash = nh;
    ps->hcap = ncap;
    for (size_t k = 0; k < ps->files.n; k++)
        if (ps->files.v[k].path) /* not a replaced block */
            ps->hash[hash_slot(ps, ps->files.v[k].path)] = k + 1;
    free(old);
    return 0;
}

static int oom(parser *ps)
{
    return pt_error_set(ps->err, -ENOMEM, ps->r.lineno, "line %u: out of memory", ps->r.lineno);
}

static int too_many_lines(parser *ps)
{
    return pt_error_set(ps->err, -EINVAL, 0, "README has more than %u lines", UINT_MAX - 1);
}

/* Skip a non-markpact fenced block (up to and including its closing fence or
 * EOF; CommonMark closes an unclosed block at the end of the document). */
static int skip_block(parser *ps, const fence *f)
{
    span ln;
    int rc;
    while ((rc = next_line(&ps->r, &ln)) > 0)
        if (close_fence(ln, f))
            return 0;
    return rc < 0 ? too_many_lines(ps) : 0;
}

/* Parse the info string of a markpact fence into b (lang, info, path) and
 * return its kind through *kind.  tok is the markpact:... word, tok_end the
 * offset just after it in f->info. */
static int markpact_header(parser *ps, const fence *f, span tok, size_t tok_end,
                           enum kind *kind, pt_mp_block *b)
{
    unsigned fl = b->fence_line;
    span kw = { tok.p + 9, tok.n - 9 }; /* after "markpact:" */
    char q[PT_QUOTE_CAP];

    if (span_eq(kw, "deps"))
        *kind = K_DEPS;
    else if (span_eq(kw, "file"))
        *kind = K_FILE;
    else if (span_eq(kw, "run"))
        *kind = K_RUN;
    else if (span_eq(kw, "test"))
        *kind = K_TEST;
    else if (span_eq(kw, "build"))
        *kind = K_BUILD;
    else if (span_eq(kw, "target"))
        *kind = K_TARGET;
    else
        *kind = K_OTHER;

    b->info = span_dup(f->info);
    if (!b->info)
        return oom(ps);
    size_t pos = 0;
    span first;
    if (next_word(f->info, &pos, &first) && first.p != tok.p) {
        b->lang = span_dup(first);
        if (!b->lang)
            return oom(ps);
    }

    /* Words after the markpact token. */
    span w = { NULL, 0 };
    pos = tok_end;
    if (*kind == K_DEPS) {
        static const char *const node[] = { "javascript", "js", "node", "nodejs", "npm", "typescript", "ts",
                                            "yarn", "pnpm", NULL };
        span eco = { NULL, 0 };
        if (next_word(f->info, &pos, &w))
            eco = w;
        else if (b->lang)
            eco = first;
        for (size_t i = 0; eco.p && node[i]; i++)
            if (span_eq(eco, node[i]))
                return pt_error_set(ps->err, -EINVAL, fl,
                                    "line %u: markpact:deps for Node.js (%s) are not supported yet: pactown-fs builds"
                                    " Python venvs only",
                                    fl, pt_quote(q, sizeof q, eco.p, eco.n));
        if (eco.p == w.p && eco.p && !span_eq(w, "python"))
            return pt_error_set(ps->err, -EINVAL, fl,
                                "line %u: markpact:deps %s: only python deps are supported",
                                fl, pt_quote(q, sizeof q, w.p, w.n));
        if (eco.p && eco.p != w.p && (span_eq(eco, "go") || span_eq(eco, "golang") || span_eq(eco, "rust")))
            return pt_error_set(ps->err, -EINVAL, fl,
                                "line %u: markpact:deps for %s are not supported: pactown-fs builds Python venvs only",
                                fl, pt_quote(q, sizeof q, eco.p, eco.n));
    } else if (*kind == K_FILE) {
        span val = { NULL, 0 };
        bool have = false;
        while (next_word(f->info, &pos, &w)) {
            if (span_eq(w, "template=true") || span_eq(w, "template=yes") || span_eq(w, "template=1") ||
                span_eq(w, "template"))
                b->template = true;
            if (!span_starts(w, "path="))
                continue;
            if (have)
                return pt_error_set(ps->err, -EINVAL, fl,
                                    "line %u: markpact:file block has more than one path=", fl);
            have = true;
            val.p = w.p + 5;
            val.n = w.n - 5;
            if (val.n && (val.p[0] == '"' || val.p[0] == '\'')) {
                const char *close = memchr(val.p + 1, val.p[0], val.n - 1);
                if (!close)
                    return pt_error_set(ps->err, -EINVAL, fl,
                                        "line %u: markpact:file path= has an unterminated quote", fl);
                if (close != val.p + val.n - 1)
                    return pt_error_set(ps->err, -EINVAL, fl,
                                        "line %u: markpact:file path= has text after the closing quote", fl);
                val.p++;
                val.n -= 2;
            }
        }
        if (!have) {
            val.p = "main.py"; /* as pactown: a file block without path= is main.py */
            val.n = 7;
        }
        while (val.n > 2 && val.p[0] == '.' && val.p[1] == '/') {
            val.p += 2; /* path=./x is x */
            val.n -= 2;
        }
        int rc = check_path_n(val.p, val.n, fl, ps->err);
        if (rc)
            return rc;
        b->path = span_dup(val);
        if (!b->path)
            return oom(ps);
    }
    return 0;
}

/* Keep a warning for the caller ("line N: ..."). 0 or -ENOMEM. */
__attribute__((format(printf, 2, 3))) static int warn(parser *ps, const char *fmt, ...)
{
    char **nv = realloc(ps->warnings, (ps->n_warnings + 1) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    ps->warnings = nv;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&nv[ps->n_warnings], fmt, ap);
    va_end(ap);
    if (r < 0)
        return -ENOMEM;
    ps->n_warnings++;
    return 0;
}

/* `<!-- markpact:include path=FILE -->` on line ln (up to 3 spaces before
 * it): recorded, in README order. 0, 1 when ln is not one, or -errno. */
static int include_line(parser *ps, span ln)
{
    size_t k = 0;
    while (k < 3 && k < ln.n && ln.p[k] == ' ')
        k++;
    span s = { ln.p + k, ln.n - k };
    if (!span_starts(s, "<!--"))
        return 1;
    s.p += 4;
    s.n -= 4;
    size_t pos = 0;
    span w;
    if (!next_word(s, &pos, &w) || !span_eq(w, "markpact:include"))
        return 1;
    unsigned line = ps->r.lineno;
    span path = { NULL, 0 };
    bool closed = false;
    while (next_word(s, &pos, &w)) {
        if (span_eq(w, "-->")) {
            closed = true;
            break;
        }
        if (span_starts(w, "path=")) {
            path.p = w.p + 5;
            path.n = w.n - 5;
            if (path.n >= 3 && span_starts(path, "-->")) /* path=x--> */
                path.n = 0;
            if (path.n >= 2 && (path.p[0] == '"' || path.p[0] == '\'') && path.p[path.n - 1] == path.p[0]) {
                path.p++;
                path.n -= 2;
            }
        }
    }
    if (path.n > 3 && memcmp(path.p + path.n - 3, "-->", 3) == 0) {
        path.n -= 3;
        closed = true;
    }
    if (!closed || !path.p || path.n == 0)
        return pt_error_set(ps->err, -EINVAL, line,
                            "line %u: markpact:include needs the form <!-- markpact:include path=FILE.md -->", line);
    if (memchr(path.p, '\0', path.n))
        return pt_error_set(ps->err, -EINVAL, line, "line %u: NUL byte in a markpact:include path", line);
    pt_mp_include *nv = realloc(ps->includes, (ps->n_includes + 1) * sizeof *nv);
    if (!nv)
        return oom(ps);
    ps->includes = nv;
    nv[ps->n_includes].line = line;
    if (!(nv[ps->n_includes].path = span_dup(path)))
        return oom(ps);
    ps->n_includes++;
    return 0;
}

/* Handle a markpact fenced block whose opening fence f was the last line read. */
static int markpact_block(parser *ps, const fence *f, span tok, size_t tok_end)
{
    pt_mp_block b = { 0 };
    enum kind kind;
    int rc;
    char q[PT_QUOTE_CAP];

    b.fence_line = ps->r.lineno;
    b.line = b.fence_line + 1;
    rc = markpact_header(ps, f, tok, tok_end, &kind, &b);
    if (rc)
        goto out;

    size_t hslot = 0;
    if (kind == K_FILE) {
        if ((rc = hash_reserve(ps)) != 0) {
            rc = oom(ps);
            goto out;
        }
        hslot = hash_slot(ps, b.path);
    }

    /* Find the closing fence, measuring the body. */
    size_t body_start = ps->r.pos, body_end = 0, size = 0;
    unsigned nul_line = 0;
    bool closed = false;
    span ln;
    while ((rc = next_line(&ps->r, &ln)) > 0) {
        if (close_fence(ln, f)) {
            closed = true;
            break;
        }
        if (!nul_line && memchr(ln.p, '\0', ln.n))
            nul_line = ps->r.lineno;
        size += deindent(ln, f).n + 1;
        body_end = ps->r.pos;
    }
    if (rc < 0) {
        rc = too_many_lines(ps);
        goto out;
    }
    if (!closed) {
        static const char *const names[] = { "deps", "file", "run", "test", "build", "target" };
        if (kind == K_OTHER)
            rc = pt_error_set(ps->err, -EINVAL, b.fence_line,
                              "line %u: markpact block %s opened here is never closed",
                              b.fence_line, pt_quote(q, sizeof q, tok.p, tok.n));
        else
            rc = pt_error_set(ps->err, -EINVAL, b.fence_line,
                              "line %u: markpact:%s block opened here is never closed",
                              b.fence_line, names[kind]);
        goto out;
    }
    if (nul_line) {
        rc = pt_error_set(ps->err, -EINVAL, nul_line,
                          "line %u: NUL byte inside the markpact block opened at line %u",
                          nul_line, b.fence_line);
        goto out;
    }
    if (kind == K_OTHER) {
        if (ps->n_unknown++ == 0)
            ps->first_unknown_line = b.fence_line;
        rc = 0;
        goto out;
    }

    /* Copy the body. */
    b.body = malloc(size + 1);
    if (!b.body) {
        rc = oom(ps);
        goto out;
    }
    reader br = { ps->r.text, body_end, body_start, 0 };
    while (next_line(&br, &ln) > 0) {
        span d = deindent(ln, f);
        if (d.n)
            memcpy(b.body + b.len, d.p, d.n);
        b.len += d.n;
        b.body[b.len++] = '\n';
    }
    b.body[b.len] = '\0';

    switch (kind) {
    case K_DEPS:
        rc = vec_push(&ps->deps, &b);
        break;
    case K_TEST:
        rc = vec_push(&ps->tests, &b);
        break;
    case K_FILE:
        if (ps->hash[hslot]) {
            /* as pactown: a later block for the same file wins.  The earlier
             * one is emptied (body NULL) and dropped at the end, so that the
             * files stay in README order without moving anything now. */
            pt_mp_block *old = &ps->files.v[ps->hash[hslot] - 1];
            if ((rc = warn(ps, "line %u: markpact:file %s again: this block replaces the one at line %u",
                           b.fence_line, pt_quote(q, sizeof q, b.path, strlen(b.path)), old->fence_line)) != 0)
                break;
            pt_mp_block_free(old);
            ps->n_dead++;
        }
        rc = vec_push(&ps->files, &b);
        if (rc == 0)
            ps->hash[hslot] = ps->files.n;
        break;
    case K_RUN:
    case K_BUILD:
    case K_TARGET: {
        const char *name = kind == K_RUN ? "run" : kind == K_BUILD ? "build" : "target";
        bool blank = true;
        for (size_t i = 0; i < b.len && blank; i++)
            blank = b.body[i] == ' ' || b.body[i] == '\t' || b.body[i] == '\n' || b.body[i] == '\r';
        if (blank && kind == K_TARGET) {
            rc = 0; /* an empty deployment hint says nothing */
            break;
        }
        if (blank) {
            rc = pt_error_set(ps->err, -EINVAL, b.fence_line,
                              "line %u: markpact:%s block is empty", b.fence_line, name);
            break;
        }
        pt_mp_block **slot = kind == K_RUN ? &ps->run : kind == K_BUILD ? &ps->build : &ps->target;
        if (*slot) {
            rc = warn(ps, "line %u: second markpact:%s block: it replaces the one at line %u", b.fence_line, name,
                      (*slot)->fence_line);
            if (rc)
                break;
            pt_mp_block_free(*slot);
        } else if (!(*slot = malloc(sizeof **slot))) {
            rc = -ENOMEM;
            break;
        }
        **slot = b;
        memset(&b, 0, sizeof b);
        rc = 0;
        break;
    }
    case K_OTHER:
        break;
    }
    if (rc == -ENOMEM)
        rc = oom(ps);
out:
    pt_mp_block_free(&b);
    return rc;
}

int pt_markpact_parse(const char *text, size_t len, pt_markpact *out, pt_error *err)
{
    parser ps;
    int rc = 0;

    memset(&ps, 0, sizeof ps);
    pt_error_clear(err);
    if (out)
        memset(out, 0, sizeof *out);
    if (!out || (!text && len))
        return pt_error_set(err, -EINVAL, 0, "pt_markpact_parse: invalid arguments");

    ps.r.text = text;
    ps.r.len = len;
    ps.err = err;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        ps.r.pos = 3; /* UTF-8 byte order mark */

    span ln;
    int lr;
    while ((lr = next_line(&ps.r, &ln)) > 0) {
        fence f;
        if (!open_fence(ln, &f)) {
            if (ln.n >= 4 && memchr(ln.p, '<', ln.n < 4 ? ln.n : 4) && (rc = include_line(&ps, ln)) < 0)
                goto done;
            rc = 0;
            continue;
        }
        /* Look for the markpact:KIND word. */
        span w, tok = { NULL, 0 };
        size_t pos = 0, tok_end = 0;
        while (next_word(f.info, &pos, &w)) {
            if (!span_starts(w, "markpact:"))
                continue;
            if (tok.p) {
                rc = pt_error_set(err, -EINVAL, ps.r.lineno,
                                  "line %u: more than one markpact: word in one info string",
                                  ps.r.lineno);
                goto done;
            }
            tok = w;
            tok_end = pos;
        }
        if (!tok.p) {
            rc = skip_block(&ps, &f);
        } else if (memchr(ln.p, '\0', ln.n)) {
            rc = pt_error_set(err, -EINVAL, ps.r.lineno,
                              "line %u: NUL byte in a markpact fence line", ps.r.lineno);
        } else {
            rc = markpact_block(&ps, &f, tok, tok_end);
        }
        if (rc < 0)
            goto done;
    }
    if (lr < 0) {
        rc = too_many_lines(&ps);
        goto done;
    }

    if (ps.n_dead) {
        size_t k = 0;
        for (size_t i = 0; i < ps.files.n; i++)
            if (ps.files.v[i].body)
                ps.files.v[k++] = ps.files.v[i];
        ps.files.n = k;
    }
    out->deps = ps.deps.v;
    out->n_deps = ps.deps.n;
    out->files = ps.files.v;
    out->n_files = ps.files.n;
    out->tests = ps.tests.v;
    out->n_tests = ps.tests.n;
    out->run = ps.run;
    out->build = ps.build;
    out->target = ps.target;
    out->warnings = ps.warnings;
    out->n_warnings = ps.n_warnings;
    out->includes = ps.includes;
    out->n_includes = ps.n_includes;
    out->n_unknown = ps.n_unknown;
    out->first_unknown_line = ps.first_unknown_line;
    free(ps.hash);
    return 0;

done:
    vec_free(&ps.deps);
    vec_free(&ps.files);
    vec_free(&ps.tests);
    pt_markpact tmp = { .run = ps.run, .build = ps.build, .target = ps.target, .warnings = ps.warnings, .n_warnings = ps.n_warnings,
                        .includes = ps.includes, .n_includes = ps.n_includes };
    pt_markpact_free(&tmp);
    free(ps.hash);
    return rc;
}

void pt_markpact_free(pt_markpact *mp)
{
    if (!mp)
        return;
    vec deps = { mp->deps, mp->n_deps, mp->n_deps };
    vec files = { mp->files, mp->n_files, mp->n_files };
    vec tests = { mp->tests, mp->n_tests, mp->n_tests };
    vec_free(&deps);
    vec_free(&files);
    vec_free(&tests);
    if (mp->run) {
        pt_mp_block_free(mp->run);
        free(mp->run);
    }
    if (mp->build) {
        pt_mp_block_free(mp->build);
        free(mp->build);
    }
    if (mp->target) {
        pt_mp_block_free(mp->target);
        free(mp->target);
    }
    for (size_t i = 0; i < mp->n_warnings; i++)
        free(mp->warnings[i]);
    free(mp->warnings);
    for (size_t i = 0; i < mp->n_includes; i++)
        free(mp->includes[i].path);
    free(mp->includes);
    memset(mp, 0, sizeof *mp);
}
