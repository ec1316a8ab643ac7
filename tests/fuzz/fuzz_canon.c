/* fuzz_canon.c — libFuzzer target: requirement sets, canonical text and key.
 *
 * Input: arbitrary bytes, used three ways.
 *   1. As a canonical text candidate for pt_canonical_parse(). When it is
 *      accepted, the harness reads the installer line itself and rebuilds the
 *      text from the parsed pieces with pt_reqset_* + pt_canonical_text():
 *      the result must be byte-for-byte the input (the parser accepts exactly
 *      the canonical texts, nothing "almost canonical" that would hash to
 *      another key than its rebuild).
 *   2. As a requirements text for pt_reqset_add_text(), with an interpreter
 *      tag and installer settings picked from the input's length (or taken
 *      from the input when (1) accepted it).
 *
 * Invariants for (2) when the text is accepted (abort on violation):
 *   - pt_canonical_text() succeeds, returns strlen(text) as its length, the
 *     text starts with the three header lines and ends in '\n';
 *   - pt_canonical_parse() accepts it, gives back the same python tag, and
 *     its requirement lines are exactly the set's lines, in order;
 *   - round trip: those lines, read again with pt_reqset_add_text and
 *     finished, give the same canonical text and hence the same key;
 *   - key stability: the set's lines rewritten in reverse order, with
 *     duplicates, comments, blank lines, CRLF and surrounding blanks give the
 *     same canonical text and key;
 *   - the key is 32 lowercase hex digits (pt_key_is_valid), the same when
 *     computed twice, and changes when a requirement is dropped;
 *   - pt_canonical_text() refuses an unfinished set (lines out of order or
 *     duplicated) with -EINVAL.
 *   3. Its first bytes as the interpreter name and the whole of it as the
 *      index URL: pt_canonical_text() refuses exactly the invalid ones
 *      (empty, unterminated, blanks, control or non-ASCII bytes), and the
 *      header it writes parses back to the same tag.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pactown/key.h"
#include "pactown/req.h"

#include "fuzz_util.h"

static const pt_python_tag TAGS[] = {
    { "cpython", "3.11.7", "linux-x86_64" },
    { "pypy", "3.10.14", "linux-aarch64" },
};

static const pt_source SOURCES[] = {
    { NULL, NULL, 0 },
    { "https://pypi.example/simple", "/srv/wheels", 1 },
    { "", "", 0 },
};

typedef struct buf { char *p; size_t n, cap; } buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        FUZZ_CHECK(b->p != NULL, "realloc");
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* Canonical text of requirements text[0..len) (added to a set, finished);
 * the finished set is handed back in *set_out when set_out is not NULL. */
static int canonical_of_text(const char *text, size_t len, const pt_python_tag *py, const pt_source *src,
                             char **out, size_t *out_len, pt_reqset *set_out)
{
    pt_reqset s;
    pt_error err;
    pt_reqset_init(&s);
    int rc = pt_reqset_add_text(&s, text, len, 1, &err);
    if (rc) {
        pt_reqset_free(&s);
        return rc;
    }
    pt_reqset_finish(&s);
    rc = pt_canonical_text(&s, py, src, out, out_len);
    if (rc == 0 && set_out)
        *set_out = s;
    else
        pt_reqset_free(&s);
    return rc;
}

/* Check text (from pt_canonical_text) against the finished set it came from. */
static void check_canonical(const char *text, size_t len, const pt_reqset *set, const pt_python_tag *py,
                            const pt_source *src)
{
    FUZZ_CHECK(text && strlen(text) == len, "length %zu, strlen %zu", len, text ? strlen(text) : 0);
    FUZZ_CHECK(len > 0 && text[len - 1] == '\n', "canonical text does not end in a newline");
    FUZZ_CHECK(strncmp(text, PT_CANONICAL_MAGIC "\npython ", strlen(PT_CANONICAL_MAGIC) + 8) == 0,
               "bad header: %.60s", text);

    pt_python_tag back;
    const char *reqs = NULL;
    pt_error err;
    memset(&back, 0, sizeof back);
    int rc = pt_canonical_parse(text, len, &back, &reqs, &err);
    FUZZ_CHECK(rc == 0, "pt_canonical_parse refuses pt_canonical_text's output: %s\n%s", err.msg, text);
    FUZZ_CHECK(strcmp(back.impl, py->impl) == 0 && strcmp(back.version, py->version) == 0 &&
                   strcmp(back.platform, py->platform) == 0,
               "python tag changed: %s %s %s", back.impl, back.version, back.platform);
    FUZZ_CHECK(reqs >= text && reqs <= text + len, "reqs outside the text");

    /* the installer line says what src says */
    char *want = NULL;
    FUZZ_CHECK(asprintf(&want, "installer index-url=%s find-links=%s no-index=%s\n",
                        src && src->index_url && *src->index_url ? src->index_url : "default",
                        src && src->find_links && *src->find_links ? src->find_links : "none",
                        src && src->no_index ? "yes" : "no") >= 0,
               "asprintf");
    size_t wl = strlen(want);
    FUZZ_CHECK((size_t)(reqs - text) >= wl && memcmp(reqs - wl, want, wl) == 0, "installer line: want %s", want);
    free(want);

    /* the requirement lines are the set, in order */
    size_t i = 0;
    for (const char *l = reqs; l < text + len; i++) {
        const char *nl = memchr(l, '\n', (size_t)(text + len - l));
        FUZZ_CHECK(nl != NULL, "unterminated requirement line");
        FUZZ_CHECK(i < set->n, "more requirement lines than the set's %zu", set->n);
        FUZZ_CHECK(strlen(set->lines[i]) == (size_t)(nl - l) && memcmp(l, set->lines[i], (size_t)(nl - l)) == 0,
                   "line %zu: '%.*s' vs '%s'", i, (int)(nl - l), l, set->lines[i]);
        l = nl + 1;
    }
    FUZZ_CHECK(i == set->n, "%zu requirement lines, set has %zu", i, set->n);

    char k1[PT_KEY_HEX + 1], k2[PT_KEY_HEX + 1];
    pt_key_hex(text, len, k1);
    char *copy = fuzz_strndup((const uint8_t *)text, len);
    pt_key_hex(copy, len, k2);
    free(copy);
    FUZZ_CHECK(pt_key_is_valid(k1), "invalid key '%s'", k1);
    FUZZ_CHECK(strcmp(k1, k2) == 0, "key not stable: %s vs %s", k1, k2);
}

/* (1) pt_canonical_parse on the raw input. On success returns true and
 * fills py, src (pointing into *storage, malloc'd, caller frees) and the
 * requirement lines. */
static bool fuzz_parse_raw(const uint8_t *data, size_t size, pt_python_tag *py, pt_source *src, char **storage,
                           const char **reqs)
{
    pt_error err;
    pt_python_tag tag;
    memset(&tag, 0x5a, sizeof tag);
    int rc = pt_canonical_parse((const char *)data, size, &tag, reqs, &err);
    if (rc) {
        fuzz_check_error(rc, &err);
        return false;
    }
    FUZZ_CHECK(err.code == 0 && err.msg[0] == '\0', "err not cleared on success");
    FUZZ_CHECK(*reqs >= (const char *)data && *reqs <= (const char *)data + size, "reqs outside the input");
    FUZZ_CHECK(memchr(tag.impl, '\0', sizeof tag.impl) && memchr(tag.version, '\0', sizeof tag.version) &&
                   memchr(tag.platform, '\0', sizeof tag.platform),
               "unterminated python tag field");

    /* installer line: the three lines before *reqs; take its values */
    const char *l3 = memchr(data, '\n', size);
    FUZZ_CHECK(l3, "no first line");
    l3 = memchr(l3 + 1, '\n', (size_t)((const char *)data + size - (l3 + 1)));
    FUZZ_CHECK(l3, "no second line");
    l3++;
    size_t n3 = (size_t)(*reqs - l3 - 1);
    char *line3 = *storage = fuzz_strndup((const uint8_t *)l3, n3);
    char *idx = strstr(line3, " index-url="), *fl = strstr(line3, " find-links="), *ni = strstr(line3, " no-index=");
    FUZZ_CHECK(strncmp(line3, "installer ", 10) == 0 && idx && fl && ni && idx < fl && fl < ni,
               "accepted installer line '%s'", line3);
    *fl = *ni = '\0';
    idx += 11;
    fl += 12;
    ni += 10;
    src->index_url = strcmp(idx, "default") == 0 ? NULL : idx;
    src->find_links = strcmp(fl, "none") == 0 ? NULL : fl;
    FUZZ_CHECK(strcmp(ni, "yes") == 0 || strcmp(ni, "no") == 0, "no-index=%s", ni);
    src->no_index = strcmp(ni, "yes") == 0;
    *py = tag;

    /* rebuild: the accepted text is exactly the canonical text of its pieces */
    char *text = NULL;
    size_t len = 0;
    pt_reqset set;
    memset(&set, 0, sizeof set);
    rc = canonical_of_text(*reqs, (size_t)((const char *)data + size - *reqs), py, src, &text, &len, &set);
    FUZZ_CHECK(rc == 0, "accepted canonical text does not rebuild (rc %d)", rc);
    FUZZ_CHECK(len == size && memcmp(text, data, size) == 0,
               "accepted text is not canonical: rebuilt\n%s\nfrom\n%.*s", text, (int)size, (const char *)data);
    free(text);
    pt_reqset_free(&set);
    return true;
}

/* (2) requirements text -> set -> canonical text -> parse -> same set, same key */
static void fuzz_roundtrip(const char *text, size_t len, const pt_python_tag *py, const pt_source *src)
{
    pt_reqset set;
    char *canon = NULL;
    size_t clen = 0;
    memset(&set, 0, sizeof set);
    int rc = canonical_of_text(text, len, py, src, &canon, &clen, &set);
    if (rc) {
        FUZZ_CHECK(canon == NULL, "output on failure");
        FUZZ_CHECK(set.n == 0 && set.lines == NULL, "set on failure");
        return; /* bad requirements text: fuzz_req checks these */
    }
    check_canonical(canon, clen, &set, py, src);

    char key[PT_KEY_HEX + 1];
    pt_key_hex(canon, clen, key);

    /* round trip: the requirement lines of the canonical text, read again */
    const char *reqs = NULL;
    FUZZ_CHECK(pt_canonical_parse(canon, clen, NULL, &reqs, NULL) == 0, "parse");
    char *again = NULL;
    size_t alen = 0;
    rc = canonical_of_text(reqs, (size_t)(canon + clen - reqs), py, src, &again, &alen, NULL);
    FUZZ_CHECK(rc == 0, "requirement lines of a canonical text do not parse again (rc %d)", rc);
    FUZZ_CHECK(alen == clen && memcmp(again, canon, clen) == 0, "round trip changed the text:\n%s\n->\n%s",
               canon, again);
    free(again);

    /* key stability: the same set written differently */
    buf b = { 0 };
    puts_(&b, "# rewritten\r\n\r\n");
    for (size_t i = set.n; i-- > 0;) {
        puts_(&b, " \t");
        puts_(&b, set.lines[i]);
        puts_(&b, i % 2 ? "  # comment\r\n" : "\t\n");
        if (i == 0) { /* and once more: a duplicate */
            puts_(&b, "\n");
            puts_(&b, set.lines[i]);
            puts_(&b, "\n");
        }
    }
    rc = canonical_of_text(b.p, b.n, py, src, &again, &alen, NULL);
    FUZZ_CHECK(rc == 0, "rewritten set does not parse (rc %d):\n%s", rc, b.p);
    char key2[PT_KEY_HEX + 1];
    pt_key_hex(again, alen, key2);
    FUZZ_CHECK(alen == clen && memcmp(again, canon, clen) == 0 && strcmp(key, key2) == 0,
               "rewritten set changes the text/key:\n%s\n->\n%s", canon, again);
    free(again);
    free(b.p);

    /* a different set, a different key; an unfinished set is refused */
    if (set.n > 0) {
        pt_reqset fewer = set;
        fewer.n--;
        char *t3 = NULL;
        size_t l3 = 0;
        FUZZ_CHECK(pt_canonical_text(&fewer, py, src, &t3, &l3) == 0, "subset");
        char key3[PT_KEY_HEX + 1];
        pt_key_hex(t3, l3, key3);
        FUZZ_CHECK(strcmp(key, key3) != 0, "dropping '%s' keeps key %s", set.lines[set.n - 1], key);
        free(t3);
    }
    if (set.n > 1) {
        char *a = set.lines[0], *b1 = set.lines[1], *t4 = (char *)1;
        set.lines[0] = b1; /* out of order */
        set.lines[1] = a;
        FUZZ_CHECK(pt_canonical_text(&set, py, src, &t4, NULL) == -EINVAL && t4 == NULL, "unsorted set accepted");
        set.lines[0] = a; /* duplicate */
        FUZZ_CHECK(pt_canonical_text(&set, py, src, &t4, NULL) == -EINVAL && t4 == NULL, "duplicate accepted");
        set.lines[1] = b1;
    }
    free(canon);
    pt_reqset_free(&set);
}

/* A word pt_canonical_text accepts: non-empty printable ASCII, no blanks. */
static bool ref_word(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* (3) header validation: the input's first bytes as the interpreter name
 * (unterminated when they fill the field) and the whole input, up to a NUL,
 * as index URL. pt_canonical_text must refuse exactly the invalid ones, and
 * what it accepts must parse back to the same tag. */
static void fuzz_header(const uint8_t *data, size_t size)
{
    pt_python_tag py;
    memset(&py, 0, sizeof py);
    size_t n = size < sizeof py.impl ? size : sizeof py.impl;
    memcpy(py.impl, data, n);
    strcpy(py.version, "3.12.1");
    strcpy(py.platform, "linux-x86_64");
    size_t impl_len = strnlen(py.impl, sizeof py.impl);
    bool impl_ok = impl_len < sizeof py.impl && ref_word(py.impl, impl_len);

    char *url = fuzz_strndup(data, size);
    size_t url_len = strlen(url);
    bool url_ok = url_len == 0 || ref_word(url, url_len);
    pt_source src = { url, NULL, 0 };
    pt_reqset empty;
    pt_reqset_init(&empty);
    char *text = (char *)1;
    size_t len = 0;
    int rc = pt_canonical_text(&empty, &py, &src, &text, &len);
    FUZZ_CHECK((rc == 0) == (impl_ok && url_ok), "rc %d for impl ok %d, url ok %d", rc, impl_ok, url_ok);
    if (rc) {
        FUZZ_CHECK(rc == -EINVAL && text == NULL && len == 0, "rc %d", rc);
    } else {
        pt_python_tag back;
        const char *reqs = NULL;
        pt_error err;
        FUZZ_CHECK(pt_canonical_parse(text, len, &back, &reqs, &err) == 0, "header does not parse: %s\n%s",
                   err.msg, text);
        FUZZ_CHECK(strcmp(back.impl, py.impl) == 0, "impl '%s' -> '%s'", py.impl, back.impl);
        FUZZ_CHECK(reqs == text + len, "requirements in an empty set");
    }
    free(text);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_python_tag py = TAGS[size % 2];
    pt_source src = SOURCES[(size / 2) % 3];
    char *storage = NULL;
    const char *reqs = NULL;

    if (fuzz_parse_raw(data, size, &py, &src, &storage, &reqs))
        fuzz_roundtrip(reqs, (size_t)((const char *)data + size - reqs), &py, &src);
    else
        fuzz_roundtrip((const char *)data, size, &py, &src);
    free(storage);
    fuzz_header(data, size);
    return 0;
}
