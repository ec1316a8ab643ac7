/* key.c — canonical text of a dependency set and its XXH3-128 cache key. */
#include "pactown/key.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "pactown/url.h"

/* A non-empty, NUL-terminated word of printable ASCII without spaces, within
 * a field of size cap. */
static bool valid_word(const char *s, size_t cap)
{
    const char *end = memchr(s, '\0', cap);
    if (!end || end == s)
        return false;
    for (const char *c = s; c < end; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return false;
    return true;
}

/* NULL or "" (meaning the default), or a word as above. */
static bool valid_setting(const char *s)
{
    if (!s || !*s)
        return true;
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return false;
    return true;
}

/* a canonical text never holds credentials (pt_canonical_text drops them) */
static bool value_has_userinfo(const char *v, size_t n)
{
    char *buf = malloc(n + 1); /* v is not NUL-terminated (strndup may read past n) */
    if (buf) {
        memcpy(buf, v, n);
        buf[n] = '\0';
    }
    bool has = !buf || pt_url_has_userinfo(buf); /* out of memory: refuse */
    free(buf);
    return has;
}

int pt_canonical_text(const pt_reqset *set, const pt_python_tag *py, const pt_source *src, char **out, size_t *out_len)
{
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!set || !py || !out || (set->n && !set->lines))
        return -EINVAL;
    if (!valid_word(py->impl, sizeof py->impl) || !valid_word(py->version, sizeof py->version) ||
        !valid_word(py->platform, sizeof py->platform))
        return -EINVAL;

    size_t reqs_len = 0;
    for (size_t i = 0; i < set->n; i++) {
        const char *l = set->lines[i];
        if (!l || !*l || strchr(l, '\n'))
            return -EINVAL;
        if (i && strcmp(set->lines[i - 1], l) >= 0)
            return -EINVAL; /* not finished: unsorted or duplicate */
        reqs_len += strlen(l) + 1;
    }

    /* credentials never enter the canonical text (pactown/url.h) */
    char *index_pub = NULL, *links_pub = NULL;
    if ((src && src->index_url && *src->index_url && pt_url_split_userinfo(src->index_url, &index_pub, NULL)) ||
        (src && src->find_links && *src->find_links && pt_url_split_userinfo(src->find_links, &links_pub, NULL))) {
        free(index_pub);
        return -ENOMEM;
    }
    const char *index_url = index_pub ? index_pub : "default";
    const char *find_links = links_pub ? links_pub : "none";
    const char *no_index = src && src->no_index ? "yes" : "no";
    if (!valid_setting(index_url) || !valid_setting(find_links)) {
        free(index_pub);
        free(links_pub);
        return -EINVAL;
    }

    int head = snprintf(NULL, 0,
                        PT_CANONICAL_MAGIC "\n"
                        "python %s %s %s\n"
                        "installer index-url=%s find-links=%s no-index=%s\n",
                        py->impl, py->version, py->platform, index_url, find_links, no_index);
    size_t total = (size_t)(head < 0 ? 0 : head) + reqs_len;
    char *buf = head < 0 ? NULL : malloc(total + 1);
    if (!buf) {
        free(index_pub);
        free(links_pub);
        return head < 0 ? -EINVAL : -ENOMEM;
    }
    snprintf(buf, (size_t)head + 1,
             PT_CANONICAL_MAGIC "\n"
             "python %s %s %s\n"
             "installer index-url=%s find-links=%s no-index=%s\n",
             py->impl, py->version, py->platform, index_url, find_links, no_index);
    free(index_pub);
    free(links_pub);
    char *p = buf + head;
    for (size_t i = 0; i < set->n; i++) {
        size_t n = strlen(set->lines[i]);
        memcpy(p, set->lines[i], n);
        p += n;
        *p++ = '\n';
    }
    *p = '\0';
    *out = buf;
    if (out_len)
        *out_len = total;
    return 0;
}

void pt_key_hex(const char *canonical, size_t len, char out[PT_KEY_HEX + 1])
{
    static const char hex[] = "0123456789abcdef";
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(len ? canonical : "", len));
    for (size_t i = 0; i < sizeof c.digest; i++) {
        out[2 * i] = hex[c.digest[i] >> 4];
        out[2 * i + 1] = hex[c.digest[i] & 0xf];
    }
    out[PT_KEY_HEX] = '\0';
}

bool pt_key_is_valid(const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < PT_KEY_HEX; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false; /* also stops at an early NUL */
    }
    return s[PT_KEY_HEX] == '\0';
}

/* ------------------------------------------------------------------ */

/* Copy the space-separated word at *p (up to end) into dst[cap]; advance *p
 * past it. Returns false if empty or too long. */
static bool take_word(const char **p, const char *end, char *dst, size_t cap)
{
    const char *s = *p;
    const char *e = s;
    while (e < end && *e != ' ')
        e++;
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    *p = e;
    return true;
}

/* "key=" then a non-empty word of printable ASCII (returned in *val, *vlen),
 * then ' ' (or the end of the line when last). */
static bool take_setting(const char **p, const char *end, const char *key, bool last,
                         const char **val, size_t *vlen)
{
    size_t k = strlen(key);
    const char *s = *p;
    if ((size_t)(end - s) < k || memcmp(s, key, k) != 0)
        return false;
    s += k;
    const char *e = s;
    while (e < end && *e != ' ') {
        if ((unsigned char)*e < 0x20 || (unsigned char)*e >= 0x7f)
            return false;
        e++;
    }
    if (e == s)
        return false;
    if (last ? e != end : (e == end || e + 1 == end))
        return false;
    *val = s;
    *vlen = (size_t)(e - s);
    *p = last ? e : e + 1;
    return true;
}

int pt_canonical_parse(const char *text, size_t len, pt_python_tag *py, const char **reqs, pt_error *err)
{
    pt_python_tag tag;
    memset(&tag, 0, sizeof tag);
    if (!text && len)
        return pt_error_set(err, -EINVAL, 0, "no canonical text given");
    if (len && memchr(text, '\0', len))
        return pt_error_set(err, -EINVAL, 0, "canonical text contains a NUL byte");
    if (len == 0 || text[len - 1] != '\n')
        return pt_error_set(err, -EINVAL, 0, "canonical text must end with a newline");

    const char *end = text + len;
    const char *line = text;
    const char *prev = NULL;
    const char *first_req = end;
    size_t prev_len = 0;
    unsigned lineno = 0;

    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = (size_t)(nl - line); /* nl exists: text ends with '\n' */
        lineno++;
        if (lineno == 1) {
            if (n != strlen(PT_CANONICAL_MAGIC) || memcmp(line, PT_CANONICAL_MAGIC, n) != 0)
                return pt_error_set(err, -EINVAL, 1,
                                    "line 1: not a pactown canonical text (expected '" PT_CANONICAL_MAGIC "')");
        } else if (lineno == 2) {
            const char *p = line;
            if (n < 7 || memcmp(p, "python ", 7) != 0)
                return pt_error_set(err, -EINVAL, 2, "line 2: expected 'python <impl> <version> <platform>'");
            p += 7;
            if (!take_word(&p, nl, tag.impl, sizeof tag.impl) || p == nl || *p++ != ' ' ||
                !take_word(&p, nl, tag.version, sizeof tag.version) || p == nl || *p++ != ' ' ||
                !take_word(&p, nl, tag.platform, sizeof tag.platform) || p != nl)
                return pt_error_set(err, -EINVAL, 2,
                                    "line 2: expected 'python <impl> <version> <platform>' "
                                    "(three words, at most 31, 31 and 63 characters)");
        } else if (lineno == 3) {
            const char *p = line;
            static const char pre[] = "installer ";
            bool ok = n >= sizeof pre - 1 && memcmp(p, pre, sizeof pre - 1) == 0;
            const char *v;
            size_t vn;
            if (ok) {
                p += sizeof pre - 1;
                ok = take_setting(&p, nl, "index-url=", false, &v, &vn) && !value_has_userinfo(v, vn) &&
                     take_setting(&p, nl, "find-links=", false, &v, &vn) && !value_has_userinfo(v, vn) &&
                     take_setting(&p, nl, "no-index=", true, &v, &vn) &&
                     ((vn == 3 && memcmp(v, "yes", 3) == 0) || (vn == 2 && memcmp(v, "no", 2) == 0));
            }
            if (!ok)
                return pt_error_set(err, -EINVAL, 3,
                                    "line 3: expected 'installer index-url=<url|default> "
                                    "find-links=<value|none> no-index=<yes|no>'");
            first_req = nl + 1;
        } else {
            bool same;
            if (n && line[0] == '-') {
                char *opt = NULL;
                int rc = pt_req_source_line(line, n, lineno, &opt, err);
                if (rc)
                    return rc < 0 ? rc : pt_error_set(err, -EINVAL, lineno, "line %u: not an index option", lineno);
                same = strlen(opt) == n && memcmp(opt, line, n) == 0;
                free(opt);
            } else {
                pt_req r;
                int rc = pt_req_parse(line, n, lineno, &r, err);
                if (rc)
                    return rc;
                same = strlen(r.canonical) == n && memcmp(r.canonical, line, n) == 0;
                pt_req_free(&r);
            }
            if (!same)
                return pt_error_set(err, -EINVAL, lineno,
                                    "line %u: requirement is not in canonical form", lineno);
            if (prev) {
                size_t m = prev_len < n ? prev_len : n;
                int c = memcmp(prev, line, m);
                if (c > 0 || (c == 0 && prev_len >= n))
                    return pt_error_set(err, -EINVAL, lineno,
                                        "line %u: requirements are not sorted and unique", lineno);
            }
            prev = line;
            prev_len = n;
        }
        line = nl + 1;
    }
    if (lineno < 3)
        return pt_error_set(err, -EINVAL, lineno + 1, "line %u: canonical text is truncated", lineno + 1);
    if (py)
        *py = tag;
    if (reqs)
        *reqs = first_req;
    pt_error_clear(err);
    return 0;
}
