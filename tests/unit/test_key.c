/* test_key.c — canonical text and XXH3-128 cache key. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pactown/key.h"
#include "pactown/req.h"

static const pt_python_tag PY311 = { "cpython", "3.11.7", "linux-x86_64" };

/* Canonical text of requirements-file text (asserts success). */
static char *canonical_of(const char *text, const pt_python_tag *py, const pt_source *src, size_t *len)
{
    pt_reqset s;
    pt_reqset_init(&s);
    pt_error err = { 0 };
    cr_assert_eq(pt_reqset_add_text(&s, text, strlen(text), 1, &err), 0, "%s", err.msg);
    pt_reqset_finish(&s);
    char *out = NULL;
    cr_assert_eq(pt_canonical_text(&s, py, src, &out, len), 0);
    pt_reqset_free(&s);
    return out;
}

static void key_of(const char *text, const pt_python_tag *py, const pt_source *src, char key[PT_KEY_HEX + 1])
{
    size_t len = 0;
    char *c = canonical_of(text, py, src, &len);
    cr_assert_eq(strlen(c), len);
    pt_key_hex(c, len, key);
    free(c);
}

/* ------------------------------------------------------------------ */

Test(key, exact_canonical_text)
{
    size_t len = 0;
    char *c = canonical_of("uvicorn[standard] >= 0.20  # server\r\n"
                           "FastAPI==0.110\n"
                           "\n"
                           "# tools\n"
                           "pydantic_settings ; python_version>='3.8'\n"
                           "fastapi == 0.110\n",
                           &PY311, NULL, &len);
    const char want[] =
        "pactown-venv/1\n"
        "python cpython 3.11.7 linux-x86_64\n"
        "installer index-url=default find-links=none no-index=no\n"
        "fastapi==0.110\n"
        "pydantic-settings; python_version >= \"3.8\"\n"
        "uvicorn[standard]>=0.20\n";
    cr_expect_str_eq(c, want);
    cr_expect_eq(len, sizeof want - 1);
    free(c);

    pt_source src = { "https://pypi.example/simple", "/srv/wheels", 1 };
    c = canonical_of("", &PY311, &src, &len);
    cr_expect_str_eq(c, "pactown-venv/1\n"
                        "python cpython 3.11.7 linux-x86_64\n"
                        "installer index-url=https://pypi.example/simple find-links=/srv/wheels no-index=yes\n");
    free(c);

    pt_source empty = { "", "", 0 };
    c = canonical_of("x", &PY311, &empty, &len);
    cr_expect_str_eq(c, "pactown-venv/1\n"
                        "python cpython 3.11.7 linux-x86_64\n"
                        "installer index-url=default find-links=none no-index=no\n"
                        "x\n");
    free(c);
}

static const struct { const char *a, *b; } SAME[] = {
    { "FastAPI\nuvicorn", "uvicorn  # server\nfastapi" },
    { "fastapi\nuvicorn\n", "fastapi\nfastapi\nuvicorn\nuvicorn\nFastAPI" },
    { "fastapi\nuvicorn", "\n\n# deps\n\nfastapi\n\n   \nuvicorn\n\n" },
    { "fastapi\nuvicorn", "fastapi\r\nuvicorn\r\n" },
    { "fastapi>=0.100,<1\nuvicorn", "uvicorn\nFastAPI  (< 1 , >= 0.100)" },
    { "a[x,y]; os_name == 'nt'", "A[Y, X];os_name==\"nt\"" },
};

Test(key, same_sets_same_key)
{
    for (size_t i = 0; i < sizeof SAME / sizeof SAME[0]; i++) {
        char ka[PT_KEY_HEX + 1], kb[PT_KEY_HEX + 1];
        key_of(SAME[i].a, &PY311, NULL, ka);
        key_of(SAME[i].b, &PY311, NULL, kb);
        cr_expect_str_eq(ka, kb, "pair %zu: '%s' vs '%s'", i, SAME[i].a, SAME[i].b);
    }
    /* fast_api and fastapi are different PEP 503 names */
    char ka[PT_KEY_HEX + 1], kb[PT_KEY_HEX + 1];
    key_of("fastapi", &PY311, NULL, ka);
    key_of("fast_api", &PY311, NULL, kb);
    cr_expect_str_neq(ka, kb);
}

Test(key, different_sets_different_keys)
{
    char k0[PT_KEY_HEX + 1], k[PT_KEY_HEX + 1];
    key_of("fastapi", &PY311, NULL, k0);

    key_of("fastapi==0.110", &PY311, NULL, k);
    cr_expect_str_neq(k0, k, "pinned vs unpinned");
    key_of("fastapi[all]", &PY311, NULL, k);
    cr_expect_str_neq(k0, k, "extras");
    key_of("fastapi; python_version >= '3.8'", &PY311, NULL, k);
    cr_expect_str_neq(k0, k, "marker");
    key_of("fastapi\nuvicorn", &PY311, NULL, k);
    cr_expect_str_neq(k0, k, "extra requirement");

    pt_python_tag py312 = { "cpython", "3.12.1", "linux-x86_64" };
    pt_python_tag pypy = { "pypy", "3.11.7", "linux-x86_64" };
    pt_python_tag arm = { "cpython", "3.11.7", "linux-aarch64" };
    key_of("fastapi", &py312, NULL, k);
    cr_expect_str_neq(k0, k, "python version");
    key_of("fastapi", &pypy, NULL, k);
    cr_expect_str_neq(k0, k, "implementation");
    key_of("fastapi", &arm, NULL, k);
    cr_expect_str_neq(k0, k, "platform");

    pt_source idx = { "https://pypi.example/simple", NULL, 0 };
    pt_source fl = { NULL, "/srv/wheels", 0 };
    pt_source noidx = { NULL, NULL, 1 };
    key_of("fastapi", &PY311, &idx, k);
    cr_expect_str_neq(k0, k, "index-url");
    key_of("fastapi", &PY311, &fl, k);
    cr_expect_str_neq(k0, k, "find-links");
    key_of("fastapi", &PY311, &noidx, k);
    cr_expect_str_neq(k0, k, "no-index");

    /* NULL source and an all-default source are the same thing */
    pt_source def = { "", NULL, 0 };
    key_of("fastapi", &PY311, &def, k);
    cr_expect_str_eq(k0, k);
}

/* ------------------------------------------------------------------ */

Test(key, known_values)
{
    char k[PT_KEY_HEX + 1];
    /* XXH3-128 of the empty input, from xxHash's own test vectors
     * (cli/xsum_sanity_check.c: { 0x6001C324468D497F, 0x99AA06D3014798D8 }),
     * printed high 64 bits first (XXH128_canonicalFromHash). */
    pt_key_hex(NULL, 0, k);
    cr_expect_str_eq(k, "99aa06d3014798d86001c324468d497f");

    /* A real canonical text. The value was cross-checked with an independent
     * pure-Python implementation of XXH3-128 (17..128-byte path). */
    const char canon[] =
        "pactown-venv/1\n"
        "python cpython 3.11.7 linux-x86_64\n"
        "installer index-url=default find-links=none no-index=no\n"
        "fastapi\n"
        "uvicorn\n";
    pt_key_hex(canon, sizeof canon - 1, k);
    cr_expect_str_eq(k, "f77ec72325e6186868f22ffd55fbf89d");

    /* and the same value through the whole pipeline */
    key_of("FastAPI\nuvicorn", &PY311, NULL, k);
    cr_expect_str_eq(k, "f77ec72325e6186868f22ffd55fbf89d");
}

Test(key, properties)
{
    const char canon[] = "pactown-venv/1\npython cpython 3.11.7 linux-x86_64\n"
                         "installer index-url=default find-links=none no-index=no\nflask\n";
    char a[PT_KEY_HEX + 1], b[PT_KEY_HEX + 1];
    memset(a, 'X', sizeof a);
    pt_key_hex(canon, sizeof canon - 1, a);
    pt_key_hex(canon, sizeof canon - 1, b);
    cr_expect_eq(strlen(a), PT_KEY_HEX);
    cr_expect(pt_key_is_valid(a), "%s", a);
    cr_expect_str_eq(a, b, "stable across calls");

    char copy[sizeof canon];
    memcpy(copy, canon, sizeof canon);
    for (size_t i = 0; i < sizeof canon - 1; i += 7) {
        copy[i] ^= 1;
        pt_key_hex(copy, sizeof canon - 1, b);
        cr_expect_str_neq(a, b, "flipping byte %zu did not change the key", i);
        copy[i] ^= 1;
    }
    pt_key_hex(canon, sizeof canon - 2, b); /* one byte shorter */
    cr_expect_str_neq(a, b);
}

Test(key, is_valid)
{
    cr_expect(pt_key_is_valid("0123456789abcdef0123456789abcdef"));
    cr_expect(!pt_key_is_valid(NULL));
    cr_expect(!pt_key_is_valid(""));
    cr_expect(!pt_key_is_valid("0123456789abcdef0123456789abcde"));    /* 31 */
    cr_expect(!pt_key_is_valid("0123456789abcdef0123456789abcdef0"));  /* 33 */
    cr_expect(!pt_key_is_valid("0123456789ABCDEF0123456789abcdef"));   /* uppercase */
    cr_expect(!pt_key_is_valid("0123456789abcdeg0123456789abcdef"));   /* g */
    cr_expect(!pt_key_is_valid("../../../../etc/passwd/0123456789"));
    cr_expect(!pt_key_is_valid("0123456789abcdef0123456789abcde/"));
}

Test(key, canonical_text_rejects_bad_input)
{
    pt_reqset s;
    pt_reqset_init(&s);
    cr_assert_eq(pt_reqset_add_text(&s, "b\na\n", 4, 1, NULL), 0);
    char *out = (char *)1;
    /* not finished: unsorted */
    cr_expect_eq(pt_canonical_text(&s, &PY311, NULL, &out, NULL), -EINVAL);
    cr_expect_null(out);
    pt_reqset_finish(&s);
    cr_expect_eq(pt_canonical_text(&s, &PY311, NULL, &out, NULL), 0);
    free(out);

    pt_python_tag bad = { "cpython", "3.11 7", "linux-x86_64" };
    cr_expect_eq(pt_canonical_text(&s, &bad, NULL, &out, NULL), -EINVAL);
    pt_python_tag empty = { "", "3.11.7", "linux-x86_64" };
    cr_expect_eq(pt_canonical_text(&s, &empty, NULL, &out, NULL), -EINVAL);
    pt_source src = { "https://x/ y", NULL, 0 };
    cr_expect_eq(pt_canonical_text(&s, &PY311, &src, &out, NULL), -EINVAL);
    pt_source src2 = { NULL, "a\nb", 0 };
    cr_expect_eq(pt_canonical_text(&s, &PY311, &src2, &out, NULL), -EINVAL);
    cr_expect_eq(pt_canonical_text(NULL, &PY311, NULL, &out, NULL), -EINVAL);

    /* duplicates (e.g. lines added after finish) */
    cr_assert_eq(pt_reqset_add_line(&s, "b", 1, NULL), 0);
    cr_expect_eq(pt_canonical_text(&s, &PY311, NULL, &out, NULL), -EINVAL);
    pt_reqset_free(&s);

    /* the empty set is fine */
    pt_reqset_init(&s);
    size_t len = 0;
    cr_assert_eq(pt_canonical_text(&s, &PY311, NULL, &out, &len), 0);
    cr_expect_eq(len, strlen(out));
    free(out);
}

/* ------------------------------------------------------------------ */

Test(key, canonical_parse_round_trip)
{
    pt_python_tag py = { "cpython", "3.12.1", "darwin-arm64" };
    pt_source src = { "https://pypi.example/simple", NULL, 0 };
    size_t len = 0;
    char *c = canonical_of("uvicorn[standard]>=0.20; python_version >= '3.8'\nfastapi==0.110\n",
                           &py, &src, &len);

    pt_python_tag got;
    memset(&got, 0x55, sizeof got);
    const char *reqs = NULL;
    pt_error err = { 0 };
    cr_assert_eq(pt_canonical_parse(c, len, &got, &reqs, &err), 0, "%s", err.msg);
    cr_expect_str_eq(got.impl, "cpython");
    cr_expect_str_eq(got.version, "3.12.1");
    cr_expect_str_eq(got.platform, "darwin-arm64");
    cr_assert_not_null(reqs);
    cr_expect_str_eq(reqs, "fastapi==0.110\nuvicorn[standard]>=0.20; python_version >= \"3.8\"\n");

    /* the parsed tag and requirement lines rebuild the same text */
    pt_reqset s;
    pt_reqset_init(&s);
    cr_assert_eq(pt_reqset_add_text(&s, reqs, len - (size_t)(reqs - c), 4, &err), 0, "%s", err.msg);
    pt_reqset_finish(&s);
    char *again = NULL;
    cr_assert_eq(pt_canonical_text(&s, &got, &src, &again, NULL), 0);
    cr_expect_str_eq(again, c);
    free(again);
    pt_reqset_free(&s);

    /* len is honoured: a copy without NUL terminator works */
    char *copy = malloc(len);
    memcpy(copy, c, len);
    cr_expect_eq(pt_canonical_parse(copy, len, NULL, &reqs, &err), 0, "%s", err.msg);
    cr_expect_eq(reqs, copy + len - strlen("fastapi==0.110\nuvicorn[standard]>=0.20; python_version >= \"3.8\"\n"));
    free(copy);
    free(c);

    /* no requirements: reqs points at the end */
    c = canonical_of("", &py, NULL, &len);
    cr_assert_eq(pt_canonical_parse(c, len, &got, &reqs, &err), 0, "%s", err.msg);
    cr_expect_eq(reqs, c + len);
    free(c);
}

static const struct { const char *text; unsigned line; const char *reason; } BAD_CANON[] = {
    { "", 0, "end with a newline" },
    { "pactown-venv/1", 0, "end with a newline" },
    { "pactown-venv/2\n", 1, "not a pactown canonical text" },
    { "pactown-venv/1\n", 2, "truncated" },
    { "pactown-venv/1\npython cpython 3.11.7\n", 2, "expected 'python <impl> <version> <platform>'" },
    { "pactown-venv/1\npython cpython  3.11.7 linux\n", 2, "expected 'python" },
    { "pactown-venv/1\npython cpython 3.11.7 linux\n", 3, "truncated" },
    { "pactown-venv/1\npython cpython 3.11.7 linux\ninstaller index-url=default\n", 3, "expected 'installer" },
    { "pactown-venv/1\npython cpython 3.11.7 linux\ninstaller index-url=default find-links=none no-index=maybe\n",
      3, "expected 'installer" },
    { "pactown-venv/1\npython cpython 3.11.7 linux\ninstaller index-url=default find-links=none no-index=no\n"
      "FastAPI\n", 4, "not in canonical form" },
    { "pactown-venv/1\npython cpython 3.11.7 linux\ninstaller index-url=default find-links=none no-index=no\n"
      "b\na\n", 5, "not sorted and unique" },
    { "pactown-venv/1\npython cpython 3.11.7 linux\ninstaller index-url=default find-links=none no-index=no\n"
      "a\na\n", 5, "not sorted and unique" },
    { "pactown-venv/1\npython cpython 3.11.7 linux\ninstaller index-url=default find-links=none no-index=no\n"
      "a\n\n", 5, "empty requirement" },
    { "pactown-venv/1\npython cpython 3.11.7 linux\ninstaller index-url=default find-links=none no-index=no\n"
      "a; rm -rf /\n", 4, "unknown marker variable" },
};

Test(key, canonical_parse_rejects)
{
    for (size_t i = 0; i < sizeof BAD_CANON / sizeof BAD_CANON[0]; i++) {
        pt_error err = { 0 };
        pt_python_tag py;
        const char *reqs = (const char *)1;
        int rc = pt_canonical_parse(BAD_CANON[i].text, strlen(BAD_CANON[i].text), &py, &reqs, &err);
        cr_expect_eq(rc, -EINVAL, "case %zu accepted", i);
        cr_expect_eq(err.line, BAD_CANON[i].line, "case %zu: line %u", i, err.line);
        cr_expect(strstr(err.msg, BAD_CANON[i].reason) != NULL, "case %zu: '%s'", i, err.msg);
        cr_expect_eq(reqs, (const char *)1, "case %zu: reqs changed on error", i);
    }
    /* NUL byte */
    const char nul[] = "pactown-venv/1\0\n";
    pt_error err = { 0 };
    cr_expect_eq(pt_canonical_parse(nul, sizeof nul - 1, NULL, NULL, &err), -EINVAL);
}

/* Credentials in index_url/find_links never enter the canonical text: the key
 * is the one of the same URL without them (pactown/url.h). */
Test(key, credentials_are_not_in_the_key)
{
    pt_source with = { .index_url = "https://bob:t0ken@pypi.example.org/simple/",
                       .find_links = "https://__token__:abc%40def@files.example.org/wheels/" };
    pt_source without = { .index_url = "https://pypi.example.org/simple/", .find_links = "https://files.example.org/wheels/" };
    size_t len;
    char *c = canonical_of("flask\n", &PY311, &with, &len);
    cr_assert_str_eq(c, "pactown-venv/1\n"
                        "python cpython 3.11.7 linux-x86_64\n"
                        "installer index-url=https://pypi.example.org/simple/ find-links=https://files.example.org/wheels/"
                        " no-index=no\n"
                        "flask\n");
    cr_assert_null(strstr(c, "t0ken"));
    free(c);
    char k1[PT_KEY_HEX + 1], k2[PT_KEY_HEX + 1];
    key_of("flask\n", &PY311, &with, k1);
    key_of("flask\n", &PY311, &without, k2);
    cr_assert_str_eq(k1, k2);
    /* and a canonical text that holds some is not one (found by fuzz_canon) */
    static const char with_userinfo[] = "pactown-venv/1\npython cpython 3.11.7 linux-x86_64\n"
                                        "installer index-url=https://u@host/simple find-links=none no-index=no\nflask\n";
    pt_python_tag tag;
    const char *reqs = NULL;
    pt_error err = { 0 };
    cr_assert_eq(pt_canonical_parse(with_userinfo, strlen(with_userinfo), &tag, &reqs, &err), -EINVAL);
    cr_assert_eq(err.line, 3, "%s", err.msg);
    /* a URL without credentials and a directory are kept as written */
    pt_source plain = { .index_url = "HTTPS://Example.org:443/simple", .find_links = "/opt/wheels" };
    c = canonical_of("flask\n", &PY311, &plain, &len);
    cr_assert(strstr(c, "index-url=HTTPS://Example.org:443/simple find-links=/opt/wheels no-index=no\n"), "%s", c);
    free(c);
}
