/* req.c — one requirement line: PEP 508 parsing and canonical form.
 *
 * Grammar accepted (PEP 508, name-based form only):
 *     line      = wsp* name wsp* extras? wsp* spec? wsp* (';' wsp* marker)? wsp*
 *     name      = [A-Za-z0-9] ([A-Za-z0-9._-]* [A-Za-z0-9])?
 *     extras    = '[' wsp* (name (wsp* ',' wsp* name)*)? wsp* ']'
 *     spec      = '(' clauses ')' | clauses
 *     clauses   = clause (wsp* ',' wsp* clause)*
 *     clause    = op wsp* version          op: ~= == != <= >= < > ===
 *     marker    = and_expr ('or' and_expr)*
 *     and_expr  = atom ('and' atom)*
 *     atom      = '(' marker ')' | value marker_op value
 *     value     = env_var | quoted string
 * Versions are checked against PEP 440 with the per-operator rules of
 * packaging's Specifier ('.*' only after == / !=, local versions only with
 * == / !=, ~= needs two release segments, === takes any version text).
 */
#include "pactown/req.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* character classes (ASCII only, locale independent)                 */

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }
static bool is_wsp(unsigned char c) { return c == ' ' || c == '\t'; }
static bool is_sep(unsigned char c) { return c == '-' || c == '_' || c == '.'; }
static bool is_name_char(unsigned char c) { return is_alnum(c) || is_sep(c); }
static bool is_version_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '*' || c == '+' || c == '!' || c == '_' || c == '-';
}
static char to_lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c; }

/* ------------------------------------------------------------------ */
/* growable string                                                    */

typedef struct sbuf { char *p; size_t n, cap; bool oom; } sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }
static void sb_putc(sbuf *b, char c) { sb_putn(b, &c, 1); }

/* Return the NUL-terminated contents (possibly "") and reset b; NULL on OOM. */
static char *sb_take(sbuf *b)
{
    char *p;
    if (b->oom) {
        free(b->p);
        p = NULL;
    } else if (b->p) {
        p = b->p;
    } else {
        p = calloc(1, 1);
    }
    memset(b, 0, sizeof *b);
    return p;
}

/* ------------------------------------------------------------------ */
/* string lists                                                       */

typedef struct slist { char **v; size_t n, cap; } slist;

static int sl_push(slist *l, char *s)
{
    if (!s)
        return -ENOMEM;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(s);
            return -ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

static void sl_free(slist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort (strcmp) and drop duplicates. */
static void sl_sort_unique(slist *l)
{
    if (l->n < 2)
        return;
    qsort(l->v, l->n, sizeof *l->v, cmp_str);
    size_t k = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->v[i], l->v[k - 1]) == 0)
            free(l->v[i]);
        else
            l->v[k++] = l->v[i];
    }
    l->n = k;
}

char *pt_name_normalize(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_sep((unsigned char)s[i])) {
            if (k == 0 || out[k - 1] != '-')
                out[k++] = '-';
        } else {
            out[k++] = to_lower((unsigned char)s[i]);
        }
    }
    out[k] = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* parser state and errors                                            */

typedef struct rp {
    const char *s;   /* the line, trimmed */
    size_t n;
    size_t i;        /* current position */
    unsigned lineno;
    pt_error *err;
} rp;

/* Printable rendering of s[0..n) for messages: at most ~80 characters,
 * non-printable bytes as \xNN, "..." when cut. out must hold 96 bytes. */
static void quote_text(const char *s, size_t n, char out[96])
{
    size_t k = 0;
    size_t i = 0;
    for (; i < n && k < 80; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out[k++] = (char)c;
        } else {
            snprintf(out + k, 5, "\\x%02x", c);
            k += 4;
        }
    }
    if (i < n) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

/* Describe the character at s[i] for "unexpected X" messages. */
static void describe_char(unsigned char c, char out[16])
{
    if (c >= 0x20 && c < 0x7f)
        snprintf(out, 16, "'%c'", c);
    else
        snprintf(out, 16, "byte \\x%02x", c);
}

__attribute__((format(printf, 2, 3)))
static int rp_fail(const rp *p, const char *fmt, ...)
{
    char text[96];
    char reason[400];
    va_list ap;
    quote_text(p->s, p->n, text);
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return pt_error_set(p->err, -EINVAL, p->lineno, "line %u: '%s': %s", p->lineno, text, reason);
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

static bool ci_starts_with(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++)
        if (to_lower((unsigned char)s[i]) != prefix[i])
            return false;
    return true;
}

static const char SHELL_META[] = "&|;`$<>(){}*?\\\"'";

/* Report the character at p->i (or the end of the line) as unexpected.
 * where: "after the name" etc.; expected: what the grammar allows there.
 * Gives a specific reason for things people actually write (URLs, options,
 * hashes, environment variables, shell syntax). */
static int rp_unexpected(const rp *p, const char *where, const char *expected)
{
    size_t rest = p->n - p->i;
    const char *c = p->s + p->i;
    char what[16];

    if (rest == 0)
        return rp_fail(p, "unexpected end of line %s, expected %s", where, expected);
    describe_char((unsigned char)*c, what);
    if (*c == '$' && rest > 1 && c[1] == '{')
        return rp_fail(p, "environment variable references ('${...}') are not supported");
    if (*c == '-' && p->i > 0 && is_wsp((unsigned char)p->s[p->i - 1])) {
        size_t w = 0;
        while (w < rest && !is_wsp((unsigned char)c[w]) && c[w] != '=')
            w++;
        return rp_fail(p, "per-requirement options ('%.*s') are not supported", (int)w, c);
    }
    if (*c == '#')
        return rp_fail(p, "unexpected '#' %s, expected %s (a comment needs whitespace before '#')",
                       where, expected);
    if (strchr(SHELL_META, *c))
        return rp_fail(p, "unexpected %s %s, expected %s (shell syntax is not allowed in requirements)",
                       what, where, expected);
    return rp_fail(p, "unexpected %s %s, expected %s", what, where, expected);
}

static void skip_wsp(rp *p)
{
    while (p->i < p->n && is_wsp((unsigned char)p->s[p->i]))
        p->i++;
}

/* Lines that start with '-' are pip options. */
static int option_error(rp *p)
{
    const char *s = p->s;
    size_t w = 0;
    while (w < p->n && !is_wsp((unsigned char)s[w]) && s[w] != '=')
        w++;
    char shortopt = (p->n >= 2 && s[1] != '-') ? s[1] : 0;

#define IS_OPT(shortc, longname) \
    ((shortc && shortopt == shortc) || (w == strlen(longname) && memcmp(s, longname, w) == 0))

    if (IS_OPT('r', "--requirement") || IS_OPT('c', "--constraint"))
        return rp_fail(p, "includes ('-r', '-c') are not supported; list the requirements directly");
    if (IS_OPT('e', "--editable"))
        return rp_fail(p, "editable installs ('-e') are not supported; give a package name and version");
    if (IS_OPT('i', "--index-url") || IS_OPT('f', "--find-links") || IS_OPT(0, "--extra-index-url"))
        return rp_fail(p, "an index option is a line of its own in a requirements text, not one requirement");
    if (IS_OPT(0, "--no-index") || IS_OPT(0, "--trusted-host"))
        return rp_fail(p, "--no-index and --trusted-host are pactown settings (no_index; https for the index),"
                          " not requirement lines");
    if (IS_OPT(0, "--hash"))
        return rp_fail(p, "--hash follows the requirement it pins (name==1.0 --hash=sha256:...)");
#undef IS_OPT
    return rp_fail(p, "options ('%.*s') are not supported; only 'name[extras] specifier ; marker' "
                      "requirement lines are", (int)w, s);
}

/* ------------------------------------------------------------------ */
/* PEP 440 versions                                                   */

enum vkind { V_ARBITRARY, V_EQ, V_COMPAT, V_ORDER };

static size_t skip_digits(const char *v, size_t n, size_t *i)
{
    size_t k = 0;
    while (*i < n && is_digit((unsigned char)v[*i])) {
        (*i)++;
        k++;
    }
    return k;
}

static bool match_word(const char *v, size_t n, size_t *i, const char *const *words)
{
    for (; *words; words++) {
        if (ci_starts_with(v + *i, n - *i, *words)) {
            *i += strlen(*words);
            return true;
        }
    }
    return false;
}

/* Optional "[-_.]? WORD [-_.]? [0-9]*" at *i; advances only on a match. */
static bool opt_suffix(const char *v, size_t n, size_t *i, const char *const *words)
{
    size_t j = *i;
    if (j < n && is_sep((unsigned char)v[j]))
        j++;
    if (!match_word(v, n, &j, words))
        return false;
    if (j < n && is_sep((unsigned char)v[j]))
        j++;
    skip_digits(v, n, &j);
    *i = j;
    return true;
}

static bool pep440_valid(const char *v, size_t n, enum vkind k)
{
    static const char *const pre[] = { "alpha", "beta", "preview", "pre", "rc", "a", "b", "c", NULL };
    static const char *const post[] = { "post", "rev", "r", NULL };
    static const char *const dev[] = { "dev", NULL };
    size_t i = 0;

    if (n == 0)
        return false;
    if (k == V_ARBITRARY)
        return true;
    if (v[i] == 'v' || v[i] == 'V')
        i++;
    {   /* epoch */
        size_t j = i;
        if (skip_digits(v, n, &j) && j < n && v[j] == '!')
            i = j + 1;
    }
    if (!skip_digits(v, n, &i))
        return false;
    size_t segs = 1;
    while (i + 1 < n && v[i] == '.' && is_digit((unsigned char)v[i + 1])) {
        i++;
        skip_digits(v, n, &i);
        segs++;
    }
    if (k == V_EQ && n - i == 2 && v[i] == '.' && v[i + 1] == '*')
        return true;
    if (k == V_COMPAT && segs < 2)
        return false;
    opt_suffix(v, n, &i, pre);
    if (i + 1 < n && v[i] == '-' && is_digit((unsigned char)v[i + 1])) {
        i++;
        skip_digits(v, n, &i);
    } else {
        opt_suffix(v, n, &i, post);
    }
    opt_suffix(v, n, &i, dev);
    if (i < n && v[i] == '+') {
        if (k != V_EQ)
            return false;
        i++;
        for (;;) {
            size_t start = i;
            while (i < n && is_alnum((unsigned char)v[i]))
                i++;
            if (i == start)
                return false;
            if (i < n && is_sep((unsigned char)v[i]))
                i++;
            else
                break;
        }
    }
    return i == n;
}

/* ------------------------------------------------------------------ */
/* name, extras, specifier                                            */

static bool ends_with_ci(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && ci_starts_with(s + n - k, k, suffix);
}

static bool looks_like_archive(const char *s, size_t n)
{
    static const char *const ext[] = { ".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz",
                                       ".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma", NULL };
    for (const char *const *e = ext; *e; e++)
        if (ends_with_ci(s, n, *e))
            return true;
    return false;
}

/* A PEP 508 identifier at p->i (name or extra): *start and *len are set.
 * Returns 0 or -EINVAL (reported). */
static int parse_identifier(rp *p, const char *what, const char *where, size_t *start, size_t *len)
{
    *start = p->i;
    if (p->i >= p->n || !is_alnum((unsigned char)p->s[p->i]))
        return rp_unexpected(p, where, what);
    while (p->i < p->n && is_name_char((unsigned char)p->s[p->i]))
        p->i++;
    *len = p->i - *start;
    if (!is_alnum((unsigned char)p->s[p->i - 1]))
        return rp_fail(p, "'%.*s' must end with a letter or digit (PEP 508 names)", (int)*len, p->s + *start);
    return 0;
}

static int parse_extras(rp *p, slist *extras)
{
    p->i++; /* '[' */
    skip_wsp(p);
    if (p->i < p->n && p->s[p->i] == ']') {
        p->i++;
        return 0;
    }
    for (;;) {
        size_t st, len;
        int rc = parse_identifier(p, "an extra name", "in the extras", &st, &len);
        if (rc)
            return rc;
        if ((rc = sl_push(extras, pt_name_normalize(p->s + st, len))))
            return rc;
        skip_wsp(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            skip_wsp(p);
            continue;
        }
        if (p->i < p->n && p->s[p->i] == ']') {
            p->i++;
            break;
        }
        return rp_unexpected(p, "in the extras", "',' or ']'");
    }
    sl_sort_unique(extras);
    return 0;
}

static size_t match_op(const char *s, size_t n)
{
    static const char *const ops[] = { "===", "==", "!=", "<=", ">=", "~=", "<", ">", NULL };
    for (const char *const *o = ops; *o; o++)
        if (starts_with(s, n, *o))
            return strlen(*o);
    return 0;
}

static enum vkind op_kind(const char *op, size_t len)
{
    if (len == 3)
        return V_ARBITRARY;
    if (len == 2 && (op[0] == '=' || op[0] == '!'))
        return V_EQ;
    if (len == 2 && op[0] == '~')
        return V_COMPAT;
    return V_ORDER;
}

static int parse_specifier(rp *p, slist *clauses)
{
    static const char ops_expected[] = "a version operator (~=, ==, !=, <=, >=, <, >, ===)";
    bool paren = false;
    if (p->s[p->i] == '(') {
        paren = true;
        p->i++;
        skip_wsp(p);
    }
    for (;;) {
        size_t oplen = match_op(p->s + p->i, p->n - p->i);
        if (!oplen)
            return rp_unexpected(p, "in the version specifier", ops_expected);
        const char *op = p->s + p->i;
        p->i += oplen;
        skip_wsp(p);
        size_t vs = p->i;
        while (p->i < p->n && is_version_char((unsigned char)p->s[p->i]))
            p->i++;
        size_t vlen = p->i - vs;
        if (!vlen)
            return rp_unexpected(p, "after the version operator", "a version");
        if (!pep440_valid(p->s + vs, vlen, op_kind(op, oplen)))
            return rp_fail(p, "invalid version specifier '%.*s%.*s' (PEP 440)",
                           (int)oplen, op, (int)vlen, p->s + vs);
        char *clause = malloc(oplen + vlen + 1);
        if (clause) {
            memcpy(clause, op, oplen);
            memcpy(clause + oplen, p->s + vs, vlen);
            clause[oplen + vlen] = '\0';
        }
        int rc = sl_push(clauses, clause);
        if (rc)
            return rc;
        skip_wsp(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            skip_wsp(p);
            continue;
        }
        break;
    }
    if (paren) {
        if (p->i >= p->n || p->s[p->i] != ')')
            return rp_unexpected(p, "in the version specifier", "',' or ')'");
        p->i++;
    }
    sl_sort_unique(clauses);
    return 0;
}

/* ------------------------------------------------------------------ */
/* markers                                                            */

enum tkind { T_END, T_LP, T_RP, T_VAR, T_STR, T_OP, T_AND, T_OR };

typedef struct tok {
    enum tkind kind;
    size_t start;       /* offset of the token in the line */
    const char *text;   /* T_VAR: canonical variable name; T_OP: operator */
    const char *str;    /* T_STR: contents (without quotes) */
    size_t len;         /* T_STR: length of contents */
} tok;

static const struct { const char *in, *out; } MARKER_VARS[] = {
    { "python_version", "python_version" },
    { "python_full_version", "python_full_version" },
    { "os_name", "os_name" },
    { "os.name", "os_name" },
    { "sys_platform", "sys_platform" },
    { "sys.platform", "sys_platform" },
    { "platform_release", "platform_release" },
    { "platform_system", "platform_system" },
    { "platform_version", "platform_version" },
    { "platform.version", "platform_version" },
    { "platform_machine", "platform_machine" },
    { "platform.machine", "platform_machine" },
    { "platform_python_implementation", "platform_python_implementation" },
    { "platform.python_implementation", "platform_python_implementation" },
    { "python_implementation", "platform_python_implementation" },
    { "implementation_name", "implementation_name" },
    { "implementation_version", "implementation_version" },
    { "extra", "extra" },
    { "extras", "extras" },
    { "dependency_groups", "dependency_groups" },
};

#define MAX_MARKER_DEPTH 32

typedef struct mp {
    rp *p;
    tok cur;
    sbuf out;
    int depth;
} mp;

static bool is_ident_start(unsigned char c) { return is_alpha(c) || c == '_'; }
static bool is_ident_char(unsigned char c) { return is_alnum(c) || c == '_' || c == '.'; }

static int lex_string(rp *p, tok *t)
{
    char q = p->s[p->i];
    size_t st = p->i + 1;
    const char *end = memchr(p->s + st, q, p->n - st);
    if (!end)
        return rp_fail(p, "unterminated string in the marker (missing closing %c)", q);
    size_t len = (size_t)(end - (p->s + st));
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)p->s[st + k];
        char what[16];
        if (c < 0x20 || c >= 0x7f) {
            describe_char(c, what);
            return rp_fail(p, "%s is not allowed in a marker string", what);
        }
        if (c == '"' || c == '\'')
            return rp_fail(p, "quotes inside a marker string are not supported");
        if (strchr("$`|&;<>\\", c)) {
            describe_char(c, what);
            return rp_fail(p, "shell metacharacter %s is not allowed in a marker string", what);
        }
        if (k > 0 && p->s[st + k - 1] == ' ' && (c == '#' || c == '-'))
            return rp_fail(p, "' %c' is not allowed in a marker string (pip would read it as %s)",
                           c, c == '#' ? "a comment" : "an option");
    }
    t->kind = T_STR;
    t->str = p->s + st;
    t->len = len;
    p->i = st + len + 1;
    return 0;
}

static const char MARKER_VARS_EXPECTED[] =
    "one of python_version, python_full_version, os_name, sys_platform, platform_release, "
    "platform_system, platform_version, platform_machine, platform_python_implementation, "
    "implementation_name, implementation_version, extra";

static int lex(mp *m)
{
    rp *p = m->p;
    tok *t = &m->cur;
    skip_wsp(p);
    memset(t, 0, sizeof *t);
    t->start = p->i;
    if (p->i >= p->n) {
        t->kind = T_END;
        return 0;
    }
    const char *c = p->s + p->i;
    size_t rest = p->n - p->i;
    if (*c == '(' || *c == ')') {
        t->kind = *c == '(' ? T_LP : T_RP;
        p->i++;
        return 0;
    }
    if (*c == '"' || *c == '\'')
        return lex_string(p, t);
    size_t oplen = match_op(c, rest);
    if (oplen) {
        static const char *const ops[] = { "===", "==", "!=", "<=", ">=", "~=", "<", ">", NULL };
        for (const char *const *o = ops; *o; o++)
            if (strlen(*o) == oplen && memcmp(*o, c, oplen) == 0)
                t->text = *o;
        t->kind = T_OP;
        p->i += oplen;
        return 0;
    }
    if (is_ident_start((unsigned char)*c)) {
        size_t w = 0;
        while (w < rest && is_ident_char((unsigned char)c[w]))
            w++;
        if (w == 3 && memcmp(c, "and", 3) == 0) {
            t->kind = T_AND;
        } else if (w == 2 && memcmp(c, "or", 2) == 0) {
            t->kind = T_OR;
        } else if (w == 2 && memcmp(c, "in", 2) == 0) {
            t->kind = T_OP;
            t->text = "in";
        } else if (w == 3 && memcmp(c, "not", 3) == 0) {
            size_t j = p->i + 3;
            size_t ws = j;
            while (j < p->n && is_wsp((unsigned char)p->s[j]))
                j++;
            if (j == ws || !starts_with(p->s + j, p->n - j, "in") ||
                (j + 2 < p->n && is_ident_char((unsigned char)p->s[j + 2]))) {
                p->i = j;
                return rp_unexpected(p, "after 'not' in the marker", "'in'");
            }
            t->kind = T_OP;
            t->text = "not in";
            p->i = j + 2;
            return 0;
        } else {
            for (size_t k = 0; k < sizeof MARKER_VARS / sizeof MARKER_VARS[0]; k++) {
                if (strlen(MARKER_VARS[k].in) == w && memcmp(MARKER_VARS[k].in, c, w) == 0) {
                    t->kind = T_VAR;
                    t->text = MARKER_VARS[k].out;
                    break;
                }
            }
            if (t->kind != T_VAR)
                return rp_fail(p, "unknown marker variable '%.*s', expected %s",
                               (int)(w > 40 ? 40 : w), c, MARKER_VARS_EXPECTED);
        }
        p->i += w;
        return 0;
    }
    if (is_digit((unsigned char)*c))
        return rp_fail(p, "unexpected '%c' in the marker: values must be quoted, e.g. python_version >= \"3.8\"", *c);
    return rp_unexpected(p, "in the marker", "a marker variable, a quoted string, an operator or '('");
}

/* Error about the current token (positioned at its start). */
static int m_unexpected(mp *m, const char *expected)
{
    m->p->i = m->cur.start;
    return rp_unexpected(m->p, "in the marker", expected);
}

static void m_emit(mp *m, const char *s, size_t n)
{
    bool close = n == 1 && s[0] == ')';
    if (m->out.n && m->out.p[m->out.n - 1] != '(' && !close)
        sb_putc(&m->out, ' ');
    sb_putn(&m->out, s, n);
}

/* Emit a value; a string compared with `extra` is normalized like a name.
 * Returns 0 or -EINVAL (reported). */
static int m_emit_value(mp *m, const tok *t, bool normalize)
{
    if (t->kind == T_VAR) {
        m_emit(m, t->text, strlen(t->text));
        return 0;
    }
    m_emit(m, "\"", 1);
    if (normalize) {
        char *v = pt_name_normalize(t->str, t->len);
        if (!v) {
            m->out.oom = true;
            return 0;
        }
        /* lex_string refused ' -' in the text, but normalizing turns ' _' and
         * ' .' into ' -' too, which pip would read as an option */
        if (strstr(v, " -")) {
            free(v);
            return rp_fail(m->p, "' -', ' _' and ' .' are not allowed in an extra name in a marker "
                                 "(normalized, pip would read ' -' as an option)");
        }
        sb_puts(&m->out, v);
        free(v);
    } else {
        sb_putn(&m->out, t->str, t->len);
    }
    sb_putc(&m->out, '"');
    return 0;
}

static int m_or(mp *m);

static int m_atom(mp *m)
{
    int rc;
    if (m->cur.kind == T_LP) {
        if (++m->depth > MAX_MARKER_DEPTH)
            return m_unexpected(m, "fewer nested parentheses (at most 32)");
        m_emit(m, "(", 1);
        if ((rc = lex(m)) || (rc = m_or(m)))
            return rc;
        if (m->cur.kind != T_RP)
            return m_unexpected(m, "'and', 'or' or ')'");
        m_emit(m, ")", 1);
        m->depth--;
        return lex(m);
    }
    static const char value_expected[] = "a marker variable, a quoted string or '('";
    if (m->cur.kind != T_VAR && m->cur.kind != T_STR)
        return m_unexpected(m, value_expected);
    tok lhs = m->cur;
    if ((rc = lex(m)))
        return rc;
    if (m->cur.kind != T_OP)
        return m_unexpected(m, "a comparison operator (==, !=, <, <=, >, >=, ~=, ===, in, not in)");
    tok op = m->cur;
    if ((rc = lex(m)))
        return rc;
    if (m->cur.kind != T_VAR && m->cur.kind != T_STR)
        return m_unexpected(m, "a marker variable or a quoted string");
    tok rhs = m->cur;
    /* PEP 685 / packaging: the value compared with `extra` is a normalized name */
    bool lhs_extra = lhs.kind == T_VAR && strcmp(lhs.text, "extra") == 0;
    bool rhs_extra = rhs.kind == T_VAR && strcmp(rhs.text, "extra") == 0;
    if ((rc = m_emit_value(m, &lhs, rhs_extra && lhs.kind == T_STR)))
        return rc;
    m_emit(m, op.text, strlen(op.text));
    if ((rc = m_emit_value(m, &rhs, lhs_extra && rhs.kind == T_STR)))
        return rc;
    return lex(m);
}

static int m_and(mp *m)
{
    int rc = m_atom(m);
    while (!rc && m->cur.kind == T_AND) {
        m_emit(m, "and", 3);
        if (!(rc = lex(m)))
            rc = m_atom(m);
    }
    return rc;
}

static int m_or(mp *m)
{
    int rc = m_and(m);
    while (!rc && m->cur.kind == T_OR) {
        m_emit(m, "or", 2);
        if (!(rc = lex(m)))
            rc = m_and(m);
    }
    return rc;
}

/* Marker from p->i to the end of the line. *out: malloc'd normalized text. */
static int parse_marker(rp *p, char **out)
{
    mp m;
    memset(&m, 0, sizeof m);
    m.p = p;
    int rc = lex(&m);
    if (!rc)
        rc = m_or(&m);
    if (!rc && m.cur.kind != T_END)
        rc = m_unexpected(&m, "'and', 'or' or the end of the line");
    if (rc) {
        free(m.out.p);
        return rc;
    }
    *out = sb_take(&m.out);
    return *out ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------ */
/* requirement                                                        */

static bool looks_like_url(const char *s, size_t n)
{
    size_t i = 0;
    if (!n || !is_alpha((unsigned char)s[0]))
        return false;
    while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '-'))
        i++;
    return starts_with(s + i, n - i, "://") || (i == 1 && i < n && s[i] == ':') ||
           (i == 4 && ci_starts_with(s, n, "file:"));
}


static const char CREDENTIALS[] = "credentials in a README's URL are refused (the line is not shown: it holds"
                                  " them): set the index with its credentials in the pactown settings"
                                  " (index_url), which keep them out of keys and logs";

/* A URL for a direct reference or an index option: http(s) (and git+http(s)
 * with git), printable ASCII of RFC 3986 characters (no quotes, spaces,
 * backslash, '`', '$', braces), no userinfo (credentials belong in the
 * settings, never in a README).  Returns NULL when fine, else the reason. */
static const char *url_problem(const char *u, size_t n, bool git)
{
    static const char *const schemes[] = { "https://", "http://", "git+https://", "git+http://", NULL };
    size_t sl = 0;
    for (size_t k = 0; schemes[k] && !sl; k++)
        if ((git || k < 2) && ci_starts_with(u, n, schemes[k]))
            sl = strlen(schemes[k]);
    if (!sl) {
        if (ci_starts_with(u, n, "file:") || (n && (u[0] == '/' || u[0] == '.' || u[0] == '~')))
            return "local paths and file: URLs are refused (the venv must build the same anywhere)";
        return git ? "expected an http://, https:// or git+https:// URL" : "expected an http:// or https:// URL";
    }
    if (n == sl)
        return "the URL has no host";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (!(is_alnum(c) || strchr("-._~:/?#[]@!&+,;=%", c)))
            return "the URL holds a character that URLs do not (quote, space, '$', '`', '\\', braces, ...)";
    }
    const char *auth = u + sl, *end = u + n;
    const char *slash = memchr(auth, '/', (size_t)(end - auth));
    if (memchr(auth, '@', (size_t)((slash ? slash : end) - auth)))
        return CREDENTIALS;
    return NULL;
}

/* The error for a URL with credentials: the line is not quoted (it holds them). */
static int credentials_error(const rp *p, const char *what)
{
    return pt_error_set(p->err, -EINVAL, p->lineno, "line %u: %s: %s", p->lineno, what, CREDENTIALS);
}

static const struct { const char *lng; char shrt; const char *canon; } source_opts[] = {
    { "--index-url", 'i', "--index-url" },
    { "--extra-index-url", 0, "--extra-index-url" },
    { "--find-links", 'f', "--find-links" },
};

int pt_req_source_line(const char *line, size_t len, unsigned lineno, char **canonical, pt_error *err)
{
    rp p = { .s = line, .n = len, .i = 0, .lineno = lineno, .err = err };
    *canonical = NULL;
    while (p.n && (is_wsp((unsigned char)p.s[p.n - 1]) || p.s[p.n - 1] == '\r'))
        p.n--;
    while (p.n && is_wsp((unsigned char)p.s[0])) {
        p.s++;
        p.n--;
    }
    if (!p.n || p.s[0] != '-')
        return 1;
    size_t w = 0;
    while (w < p.n && !is_wsp((unsigned char)p.s[w]) && p.s[w] != '=')
        w++;
    const char *canon = NULL;
    for (size_t k = 0; k < sizeof source_opts / sizeof source_opts[0] && !canon; k++)
        if ((w == strlen(source_opts[k].lng) && memcmp(p.s, source_opts[k].lng, w) == 0) ||
            (source_opts[k].shrt && p.n >= 2 && p.s[1] == source_opts[k].shrt && (w == 2 || p.s[2] != '-')))
            canon = source_opts[k].canon;
    if (!canon)
        return 1;
    /* the value: "--opt URL", "--opt=URL", "-iURL" or "-i URL" */
    size_t v = p.s[1] != '-' && w > 2 ? 2 : w;
    if (v < p.n && p.s[v] == '=')
        v++;
    while (v < p.n && is_wsp((unsigned char)p.s[v]))
        v++;
    if (v == p.n)
        return rp_fail(&p, "%s needs a URL", canon);
    size_t e = v;
    while (e < p.n && !is_wsp((unsigned char)p.s[e]))
        e++;
    if (e != p.n)
        return rp_fail(&p, "%s takes one URL, and nothing after it", canon);
    const char *why = url_problem(p.s + v, e - v, false);
    if (why == CREDENTIALS)
        return credentials_error(&p, canon);
    if (why)
        return rp_fail(&p, "%s: %s", canon, why);
    if (asprintf(canonical, "%s %.*s", canon, (int)(e - v), p.s + v) < 0) {
        *canonical = NULL;
        return pt_error_set(err, -ENOMEM, lineno, "line %u: out of memory", lineno);
    }
    return 0;
}

/* Hash options at the end of a requirement line (pip's hash-checking mode):
 * " --hash=ALGO:HEX" or " --hash ALGO:HEX", one or more. Cuts them off p
 * (p->n shrinks) into *out: "--hash=a:x --hash=b:y", sorted, unique, hex
 * lower-cased; "" when there are none. */
static int take_hashes(rp *p, char **out)
{
    *out = NULL;
    size_t cut = p->n;
    for (size_t i = 1; i + 6 <= p->n; i++)
        if (is_wsp((unsigned char)p->s[i - 1]) && memcmp(p->s + i, "--hash", 6) == 0) {
            cut = i;
            break;
        }
    slist hs = { 0 };
    size_t i = cut;
    int rc = 0;
    while (rc == 0 && i < p->n) {
        while (i < p->n && is_wsp((unsigned char)p->s[i]))
            i++;
        if (i == p->n)
            break;
        if (!starts_with(p->s + i, p->n - i, "--hash")) {
            rc = rp_fail(p, "only --hash options may follow a requirement's hashes");
            break;
        }
        i += 6;
        if (i < p->n && (p->s[i] == '=' || is_wsp((unsigned char)p->s[i])))
            i++;
        while (i < p->n && is_wsp((unsigned char)p->s[i]))
            i++;
        size_t st = i;
        while (i < p->n && !is_wsp((unsigned char)p->s[i]))
            i++;
        const char *h = p->s + st, *colon = memchr(h, ':', i - st);
        size_t al = colon ? (size_t)(colon - h) : 0, hl = colon ? i - st - al - 1 : 0;
        size_t want = al == 6 && memcmp(h, "sha256", 6) == 0   ? 64
                      : al == 6 && memcmp(h, "sha384", 6) == 0 ? 96
                      : al == 6 && memcmp(h, "sha512", 6) == 0 ? 128
                                                               : 0;
        bool hex = want && hl == want;
        for (size_t k = 0; hex && k < hl; k++)
            hex = is_digit((unsigned char)colon[1 + k]) || (to_lower((unsigned char)colon[1 + k]) >= 'a' &&
                                                            to_lower((unsigned char)colon[1 + k]) <= 'f');
        if (!hex) {
            rc = rp_fail(p, "--hash needs sha256:, sha384: or sha512: and that many hex digits (64, 96, 128)");
            break;
        }
        char *one = NULL;
        if (asprintf(&one, "--hash=%.*s:%.*s", (int)al, h, (int)hl, colon + 1) < 0) {
            rc = -ENOMEM;
            break;
        }
        for (char *c = one + 7 + al + 1; *c; c++)
            *c = to_lower((unsigned char)*c);
        rc = sl_push(&hs, one);
    }
    if (rc == 0) {
        if (hs.n > 1)
            qsort(hs.v, hs.n, sizeof *hs.v, cmp_str);
        sbuf b = { 0 };
        for (size_t k = 0; k < hs.n; k++)
            if (k == 0 || strcmp(hs.v[k], hs.v[k - 1]) != 0) {
                if (b.n)
                    sb_putc(&b, ' ');
                sb_puts(&b, hs.v[k]);
            }
        *out = b.p ? sb_take(&b) : calloc(1, 1);
        if (!*out)
            rc = -ENOMEM;
        p->n = cut;
        while (p->n && is_wsp((unsigned char)p->s[p->n - 1]))
            p->n--;
    }
    sl_free(&hs);
    return rc;
}

void pt_req_free(pt_req *r)
{
    if (!r)
        return;
    free(r->name);
    for (size_t i = 0; i < r->n_extras; i++)
        free(r->extras[i]);
    free(r->extras);
    free(r->specifier);
    free(r->marker);
    free(r->url);
    free(r->hashes);
    free(r->canonical);
    memset(r, 0, sizeof *r);
}

int pt_req_parse(const char *line, size_t len, unsigned lineno, pt_req *out, pt_error *err)
{
    slist extras = { 0 }, clauses = { 0 };
    sbuf b = { 0 };
    char *marker = NULL;
    int rc;

    if (!out || (!line && len))
        return pt_error_set(err, -EINVAL, lineno, "line %u: no requirement given", lineno);
    memset(out, 0, sizeof *out);

    rp p = { .s = line, .n = len, .i = 0, .lineno = lineno, .err = err };
    if (len > PT_REQ_MAX_LINE)
        return rp_fail(&p, "line is longer than %d bytes", PT_REQ_MAX_LINE);
    if (len && memchr(line, '\0', len))
        return rp_fail(&p, "NUL byte in the line");
    while (p.n && (is_wsp((unsigned char)p.s[p.n - 1]) || p.s[p.n - 1] == '\r'))
        p.n--;
    while (p.n && is_wsp((unsigned char)p.s[0])) {
        p.s++;
        p.n--;
    }
    if (!p.n)
        return rp_fail(&p, "empty requirement, expected a package name");
    if (p.s[0] == '-')
        return option_error(&p);

    for (size_t k = 0; k + 1 < p.n; k++)
        if (p.s[k] == '$' && p.s[k + 1] == '{')
            return rp_fail(&p, "environment variable references ('${...}') are not supported");
    if (looks_like_url(p.s, p.n)) {
        /* pip's older form, "URL#egg=name": read as the direct reference "name @ URL" */
        size_t tok = 0;
        while (tok < p.n && !is_wsp((unsigned char)p.s[tok]))
            tok++;
        const char *egg = NULL;
        for (size_t k = 0; k + 5 <= tok && !egg; k++)
            if (memcmp(p.s + k, "#egg=", 5) == 0)
                egg = p.s + k + 5;
        size_t en = 0;
        while (egg && egg + en < p.s + tok && (is_name_char((unsigned char)egg[en])))
            en++;
        if (!egg || en == 0)
            return rp_fail(&p, "a bare URL: give the package's name as a PEP 508 direct reference (name @ URL),"
                               " or end the URL with #egg=name");
        char *ref = NULL;
        if (asprintf(&ref, "%.*s @ %.*s", (int)en, egg, (int)p.n, p.s) < 0)
            return pt_error_set(err, -ENOMEM, lineno, "line %u: out of memory", lineno);
        rc = pt_req_parse(ref, strlen(ref), lineno, out, err);
        free(ref);
        return rc;
    }
    if (p.s[0] == '.' || p.s[0] == '/' || p.s[0] == '~' || p.s[0] == '\\')
        return rp_fail(&p, "local paths are not supported; give a package name and a version specifier");

    char *hashes = NULL, *url = NULL;
    if ((rc = take_hashes(&p, &hashes)) != 0)
        return rc == -ENOMEM ? pt_error_set(err, -ENOMEM, lineno, "line %u: out of memory", lineno) : rc;
    size_t name_st, name_len;
    if ((rc = parse_identifier(&p, "a package name", "at the start", &name_st, &name_len)))
        goto fail;
    if (looks_like_archive(p.s + name_st, name_len)) {
        rc = rp_fail(&p, "'%.*s' looks like a local archive; local files are not supported", (int)name_len,
                     p.s + name_st);
        goto fail;
    }

    const char *where = "after the name";
    const char *expected = "'[extras]', a version specifier, ';' and a marker, or the end of the line";
    skip_wsp(&p);
    if (p.i < p.n && p.s[p.i] == '[') {
        if ((rc = parse_extras(&p, &extras)))
            goto fail;
        where = "after the extras";
        expected = "a version specifier, ';' and a marker, or the end of the line";
        skip_wsp(&p);
    }
    if (p.i < p.n && p.s[p.i] == '@') {
        /* PEP 508 direct reference: name [extras] @ URL [; marker] (a
         * marker needs whitespace after the URL); the URL is kept exactly */
        p.i++;
        skip_wsp(&p);
        size_t st = p.i;
        while (p.i < p.n && !is_wsp((unsigned char)p.s[p.i]))
            p.i++;
        const char *why = p.i > st ? url_problem(p.s + st, p.i - st, true) : "'@' needs a URL after it";
        if (why) {
            rc = why == CREDENTIALS ? credentials_error(&p, "direct reference") : rp_fail(&p, "direct reference: %s", why);
            goto fail;
        }
        if (!(url = malloc(p.i - st + 1))) {
            rc = -ENOMEM;
            goto fail;
        }
        memcpy(url, p.s + st, p.i - st);
        url[p.i - st] = '\0';
        where = "after the URL";
        expected = "' ;' and a marker, or the end of the line";
        skip_wsp(&p);
    } else if (p.i < p.n && (p.s[p.i] == '(' || match_op(p.s + p.i, p.n - p.i))) {
        if ((rc = parse_specifier(&p, &clauses)))
            goto fail;
        where = "after the version specifier";
        expected = "',' and another clause, ';' and a marker, or the end of the line";
        skip_wsp(&p);
    }
    if (p.i < p.n && p.s[p.i] == ';') {
        p.i++;
        if ((rc = parse_marker(&p, &marker)))
            goto fail;
    }
    if (p.i != p.n) {
        rc = rp_unexpected(&p, where, expected);
        goto fail;
    }

    /* assemble */
    out->name = pt_name_normalize(p.s + name_st, name_len);
    for (size_t k = 0; k < clauses.n; k++) {
        if (k)
            sb_putc(&b, ',');
        sb_puts(&b, clauses.v[k]);
    }
    out->specifier = sb_take(&b);
    out->marker = marker ? marker : calloc(1, 1);
    marker = NULL;
    out->url = url ? url : calloc(1, 1);
    url = NULL;
    out->hashes = hashes;
    hashes = NULL;
    out->extras = extras.v;
    out->n_extras = extras.n;
    memset(&extras, 0, sizeof extras);
    if (!out->name || !out->specifier || !out->marker || !out->url || !out->hashes) {
        rc = -ENOMEM;
        goto fail;
    }
    sb_puts(&b, out->name);
    if (out->n_extras) {
        sb_putc(&b, '[');
        for (size_t k = 0; k < out->n_extras; k++) {
            if (k)
                sb_putc(&b, ',');
            sb_puts(&b, out->extras[k]);
        }
        sb_putc(&b, ']');
    }
    sb_puts(&b, out->specifier);
    if (*out->url) {
        sb_puts(&b, " @ ");
        sb_puts(&b, out->url);
    }
    if (*out->marker) {
        sb_puts(&b, *out->url ? " ; " : "; ");
        sb_puts(&b, out->marker);
    }
    if (*out->hashes) {
        sb_putc(&b, ' ');
        sb_puts(&b, out->hashes);
    }
    out->canonical = sb_take(&b);
    if (!out->canonical) {
        rc = -ENOMEM;
        goto fail;
    }
    if (strlen(out->canonical) > PT_REQ_MAX_LINE) {
        /* the canonical form adds spaces ("name @ URL", "; marker"): it must
         * still be a line that parses (the key's text is read back) */
        rc = pt_error_set(err, -EINVAL, lineno, "line %u: longer than %d bytes once written canonically", lineno,
                          PT_REQ_MAX_LINE);
        sl_free(&extras);
        sl_free(&clauses);
        free(marker);
        free(url);
        free(hashes);
        pt_req_free(out);
        return rc;
    }
    sl_free(&clauses);
    return 0;

fail:
    if (rc == -ENOMEM)
        pt_error_set(err, -ENOMEM, lineno, "line %u: out of memory", lineno);
    sl_free(&extras);
    sl_free(&clauses);
    free(b.p);
    free(marker);
    free(url);
    free(hashes);
    pt_req_free(out);
    return rc;
}
