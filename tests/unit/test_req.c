/* test_req.c — PEP 508 requirement parsing, canonical lines, requirement sets. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pactown/req.h"

/* Parse one line; return its canonical form (malloc'd) or NULL and fill err. */
static char *canon(const char *line, pt_error *err)
{
    pt_req r;
    if (pt_req_parse(line, strlen(line), 1, &r, err) != 0)
        return NULL;
    char *c = strdup(r.canonical);
    pt_req_free(&r);
    return c;
}

/* ------------------------------------------------------------------ */

static const struct { const char *in, *out; } CANON[] = {
    /* names: case and runs of - _ . (PEP 503) */
    { "FastAPI", "fastapi" },
    { "  fastapi  ", "fastapi" },
    { "fastapi\t", "fastapi" },
    { "fastapi\r", "fastapi" },
    { "Zope.Interface", "zope-interface" },
    { "zope_interface", "zope-interface" },
    { "zope-interface", "zope-interface" },
    { "a__b..c--d_.-e", "a-b-c-d-e" },
    { "A1", "a1" },
    { "x", "x" },
    /* extras: normalized, sorted, unique; empty dropped */
    { "uvicorn[standard]", "uvicorn[standard]" },
    { "uvicorn [ Standard ]", "uvicorn[standard]" },
    { "pkg[b,a]", "pkg[a,b]" },
    { "pkg[ B_c , a ]", "pkg[a,b-c]" },
    { "pkg[a,A,a_b,A-B]", "pkg[a,a-b]" },
    { "pkg[]", "pkg" },
    { "pkg[ ]", "pkg" },
    /* specifiers: whitespace removed, clauses sorted and unique */
    { "fastapi==0.110", "fastapi==0.110" },
    { "fastapi == 0.110", "fastapi==0.110" },
    { "foo>=1.0,<2", "foo<2,>=1.0" },
    { "foo < 2 , >=1.0", "foo<2,>=1.0" },
    { "foo>=1.0 ,<2, >=1.0", "foo<2,>=1.0" },
    { "foo~=1.4.2", "foo~=1.4.2" },
    { "foo!=1.5.*,==1.*", "foo!=1.5.*,==1.*" },
    { "foo===1.0-custom", "foo===1.0-custom" },
    { "foo==1.0+local.7", "foo==1.0+local.7" },
    { "foo==2!1.0rc1.post2.dev3", "foo==2!1.0rc1.post2.dev3" },
    { "foo>=1.0a1", "foo>=1.0a1" },
    { "foo==1.0-1", "foo==1.0-1" },
    /* parenthesised specifiers */
    { "foo (>=1.0)", "foo>=1.0" },
    { "foo(>=1.0,<2)", "foo<2,>=1.0" },
    { "foo ( < 2 , >= 1.0 )", "foo<2,>=1.0" },
    { "Foo[Bar] (>=1)", "foo[bar]>=1" },
    /* markers: spacing, quotes, parentheses, legacy names, extra values */
    { "uvicorn[standard]>=0.20; python_version >= \"3.8\"",
      "uvicorn[standard]>=0.20; python_version >= \"3.8\"" },
    { "uvicorn[standard] >= 0.20 ;python_version>='3.8'",
      "uvicorn[standard]>=0.20; python_version >= \"3.8\"" },
    { "foo ; sys_platform  ==  'win32'", "foo; sys_platform == \"win32\"" },
    { "foo;os_name=='nt'and(python_version<'3.8'or platform_machine=='x86_64')",
      "foo; os_name == \"nt\" and (python_version < \"3.8\" or platform_machine == \"x86_64\")" },
    { "foo; ( python_version < '3' )", "foo; (python_version < \"3\")" },
    { "foo; 'linux' in sys_platform", "foo; \"linux\" in sys_platform" },
    { "foo; platform_machine not  in 'x86_64 AMD64'",
      "foo; platform_machine not in \"x86_64 AMD64\"" },
    { "foo; os.name == 'posix'", "foo; os_name == \"posix\"" },
    { "foo; python_implementation == 'CPython'",
      "foo; platform_python_implementation == \"CPython\"" },
    { "foo; extra == 'Foo_Bar'", "foo; extra == \"foo-bar\"" },
    { "foo; 'Foo.Bar' == extra", "foo; \"foo-bar\" == extra" },
    { "foo==1; implementation_name == 'cpython'",
      "foo==1; implementation_name == \"cpython\"" },
    { "foo (>=1) ; python_full_version >= '3.8.1'",
      "foo>=1; python_full_version >= \"3.8.1\"" },
};

Test(req, canonical_lines_table)
{
    for (size_t i = 0; i < sizeof CANON / sizeof CANON[0]; i++) {
        pt_error err = { 0 };
        char *c = canon(CANON[i].in, &err);
        cr_expect(c != NULL, "rejected '%s': %s", CANON[i].in, err.msg);
        if (c) {
            cr_expect_str_eq(c, CANON[i].out, "input '%s'", CANON[i].in);
            /* the canonical form is a fixed point */
            char *again = canon(c, &err);
            cr_expect(again && strcmp(again, c) == 0, "not a fixed point: '%s'", c);
            free(again);
        }
        free(c);
    }
}

Test(req, fields)
{
    const char *line = "Uvicorn [Standard, a_B] (< 1 , >= 0.20) ; python_version>='3.8'";
    pt_req r;
    pt_error err = { 0 };
    cr_assert_eq(pt_req_parse(line, strlen(line), 3, &r, &err), 0, "%s", err.msg);
    cr_expect_str_eq(r.name, "uvicorn");
    cr_assert_eq(r.n_extras, 2);
    cr_expect_str_eq(r.extras[0], "a-b");
    cr_expect_str_eq(r.extras[1], "standard");
    cr_expect_str_eq(r.specifier, "<1,>=0.20");
    cr_expect_str_eq(r.marker, "python_version >= \"3.8\"");
    cr_expect_str_eq(r.canonical, "uvicorn[a-b,standard]<1,>=0.20; python_version >= \"3.8\"");
    pt_req_free(&r);
    pt_req_free(&r); /* idempotent */

    cr_assert_eq(pt_req_parse("flask", 5, 1, &r, NULL), 0);
    cr_expect_eq(r.n_extras, 0);
    cr_expect_null(r.extras);
    cr_expect_str_eq(r.specifier, "");
    cr_expect_str_eq(r.marker, "");
    pt_req_free(&r);

    /* len is honoured: no NUL terminator needed, bytes past len ignored */
    cr_assert_eq(pt_req_parse("requests==2.31XXXX", 14, 1, &r, NULL), 0);
    cr_expect_str_eq(r.canonical, "requests==2.31");
    pt_req_free(&r);
}

/* ------------------------------------------------------------------ */
/* rejections: line number and reason                                 */

static const struct { const char *text; const char *reason; } REJECT[] = {
    { "flask && rm -rf /", "'flask && rm -rf /': unexpected '&' after the name" },
    { "flask; rm -rf /", "unknown marker variable 'rm'" },
    { "flask || true", "unexpected '|' after the name" },
    { "flask | x", "unexpected '|'" },
    { "$(curl evil)", "unexpected '$' at the start" },
    { "`id`", "unexpected '`' at the start" },
    { "flask==1.0 > /tmp/x", "unexpected '>' after the version specifier" },
    { "flask > out.txt", "invalid version specifier '>out.txt'" },
    { "flask ${HOME}", "environment variable references" },
    { "flask==${VERSION}", "environment variable references" },
    { "-r other.txt", "includes ('-r', '-c') are not supported" },
    { "--requirement=other.txt", "includes ('-r', '-c') are not supported" },
    { "-c constraints.txt", "includes ('-r', '-c') are not supported" },
    { "-e .", "editable installs ('-e') are not supported" },
    { "-e git+https://github.com/x/y#egg=y", "editable installs" },
    { "--find-links ./wheels", "--find-links: local paths and file: URLs are refused" },
    { "-f ./wheels", "--find-links: local paths and file: URLs are refused" },
    { "--index-url file:///srv/simple", "local paths and file: URLs are refused" },
    { "--index-url", "--index-url needs a URL" },
    { "--index-url https://a/simple https://b/simple", "takes one URL, and nothing after it" },
    { "--extra-index-url https://user:tok@host/simple", "credentials in a README's URL are refused (the line is not shown" },
    { "--extra-index-url ftp://host/simple", "expected an http:// or https:// URL" },
    { "--index-url https://x/$(id)", "a character that URLs do not" },
    { "--no-index", "--no-index and --trusted-host are pactown settings" },
    { "--trusted-host example.com", "pactown settings" },
    { "--no-binary :all:", "options ('--no-binary') are not supported" },
    { "flask==3.0 --hash=sha256:0123abcd", "--hash needs sha256:, sha384: or sha512: and that many hex digits" },
    { "flask==3.0 --hash=md5:0123456789abcdef0123456789abcdef", "--hash needs sha256:" },
    { "flask==3.0 --hash=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef --pre",
      "only --hash options may follow" },
    { "--hash=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      "--hash follows the requirement it pins" },
    { "flask --config-settings=x=y", "per-requirement options ('--config-settings') are not supported" },
    { "flask @ file:///tmp/flask.whl", "direct reference: local paths and file: URLs are refused" },
    { "flask @ ", "'@' needs a URL after it" },
    { "flask @ https://u:p@example.com/flask.whl", "credentials in a README's URL are refused" },
    { "flask @ git+ssh://git@example.com/flask", "expected an http://, https:// or git+https:// URL" },
    { "flask @ https://example.com/f.whl >=1", "unexpected '>' after the URL" },
    { "flask @ https://example.com/f\\.whl", "a character that URLs do not" },
    { "git+https://github.com/pallets/flask", "or end the URL with #egg=name" },
    { "git+ssh://git@github.com/pallets/flask#egg=flask", "expected an http://, https:// or git+https:// URL" },
    { "https://example.com/flask-3.0.tar.gz", "a bare URL" },
    { "file:///tmp/pkg", "a bare URL" },
    { "./pkg", "local paths are not supported" },
    { "../pkg", "local paths are not supported" },
    { "/abs/pkg", "local paths are not supported" },
    { "~/pkg", "local paths are not supported" },
    { "flask-3.0.tar.gz", "looks like a local archive" },
    { "flask-3.0-py3-none-any.whl", "looks like a local archive" },
    { "flask-", "must end with a letter or digit" },
    { "_flask", "unexpected '_' at the start, expected a package name" },
    { "fla sk", "unexpected 's' after the name" },
    { "flask[", "unexpected end of line in the extras" },
    { "flask[a,]", "unexpected ']' in the extras" },
    { "flask[a b]", "unexpected 'b' in the extras, expected ',' or ']'" },
    { "flask>=", "unexpected end of line after the version operator, expected a version" },
    { "flask>=1,", "unexpected end of line in the version specifier" },
    { "flask=1.0", "unexpected '=' after the name" },
    { "flask>=1.*", "invalid version specifier '>=1.*'" },
    { "flask~=1", "invalid version specifier '~=1'" },
    { "flask>=1.0+local", "invalid version specifier" },
    { "flask (>=1", "expected ',' or ')'" },
    { "flask;", "unexpected end of line in the marker" },
    { "flask; python_version", "expected a comparison operator" },
    { "flask; python_version >= 3.8", "values must be quoted" },
    { "flask; python_version >= '3.8", "unterminated string in the marker" },
    { "flask; Python_Version >= '3.8'", "unknown marker variable 'Python_Version'" },
    { "flask; python_version >= '3.8' and", "unexpected end of line in the marker" },
    { "flask; (python_version >= '3.8'", "expected 'and', 'or' or ')'" },
    { "flask; python_version >= '3.8')", "unexpected ')' in the marker" },
    { "flask; os_name = 'nt'", "unexpected '='" },
    { "flask; os_name not 'nt'", "after 'not' in the marker, expected 'in'" },
    { "flask; os_name == 'a;b'", "shell metacharacter ';' is not allowed in a marker string" },
    { "flask; os_name == '$(id)'", "shell metacharacter '$'" },
    { "flask; os_name == 'a\"b'", "quotes inside a marker string" },
    { "flask; os_name == 'x --global-option=y'", "' -' is not allowed in a marker string" },
    { "flask#egg", "unexpected '#' after the name" },
    { "fl\x01" "ask", "unexpected byte \\x01 after the name" },
    { "caf\xc3\xa9", "unexpected byte \\xc3 after the name" },
};

Test(req, rejected_lines_name_line_and_reason)
{
    for (size_t i = 0; i < sizeof REJECT / sizeof REJECT[0]; i++) {
        /* surround the bad line with good lines, starting at line 10 */
        char text[512];
        snprintf(text, sizeof text, "fastapi\n# comment\n\n%s\nuvicorn\n", REJECT[i].text);
        pt_reqset s;
        pt_reqset_init(&s);
        pt_error err = { 0 };
        int rc = pt_reqset_add_text(&s, text, strlen(text), 10, &err);
        cr_expect_eq(rc, -EINVAL, "'%s' accepted", REJECT[i].text);
        cr_expect_eq(err.code, -EINVAL, "'%s'", REJECT[i].text);
        cr_expect_eq(err.line, 13, "'%s': line %u", REJECT[i].text, err.line);
        cr_expect(strncmp(err.msg, "line 13: ", 9) == 0, "'%s': msg '%s'", REJECT[i].text, err.msg);
        cr_expect(strstr(err.msg, REJECT[i].reason) != NULL, "'%s': msg '%s' lacks '%s'",
                  REJECT[i].text, err.msg, REJECT[i].reason);
        cr_expect_eq(s.n, 0, "'%s': set not rolled back", REJECT[i].text);
        pt_reqset_free(&s);
    }
}

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

Test(req, direct_references_hashes_and_local_versions)
{
    static const struct { const char *in, *out; } T[] = {
        /* the URL exactly as written (case, @rev, #fragment), never lower-cased */
        { "Flask @ https://Example.com/Flask-3.0-py3-none-any.whl",
          "flask @ https://Example.com/Flask-3.0-py3-none-any.whl" },
        { "My_Pkg[B,a] @ git+https://github.com/Org/Repo.git@v1.2#egg=my_pkg",
          "my-pkg[a,b] @ git+https://github.com/Org/Repo.git@v1.2#egg=my_pkg" },
        { "x@https://h/x.whl", "x @ https://h/x.whl" },
        /* pip's older form: URL#egg=name */
        { "git+https://github.com/Org/Repo.git@v2#egg=Repo_Pkg", "repo-pkg @ git+https://github.com/Org/Repo.git@v2#egg=Repo_Pkg" },
        { "x @ https://h/x.whl ; python_version>='3.8'", "x @ https://h/x.whl ; python_version >= \"3.8\"" },
        /* hashes: kept, sorted, unique, lower-case hex; both spellings */
        { "flask==3.0 --hash=sha256:" H64 " --hash sha256:" H64, "flask==3.0 --hash=sha256:" H64 },
        { "flask==3.0 --hash=sha256:FFFF" H64 "" , NULL },
        { "torch==2.1.0+cpu", "torch==2.1.0+cpu" },
        { "torch==2.1.0+CPU.1", "torch==2.1.0+CPU.1" },
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        pt_req r;
        pt_error err = { 0 };
        int rc = pt_req_parse(T[i].in, strlen(T[i].in), 1, &r, &err);
        if (!T[i].out) {
            cr_expect_eq(rc, -EINVAL, "'%s' accepted", T[i].in);
            continue;
        }
        cr_assert_eq(rc, 0, "'%s': %s", T[i].in, err.msg);
        cr_expect_str_eq(r.canonical, T[i].out);
        /* canonical lines parse to themselves */
        pt_req again;
        cr_assert_eq(pt_req_parse(r.canonical, strlen(r.canonical), 1, &again, &err), 0, "%s", err.msg);
        cr_expect_str_eq(again.canonical, r.canonical);
        pt_req_free(&again);
        pt_req_free(&r);
    }
    pt_req r;
    cr_assert_eq(pt_req_parse("flask==3.0 --hash=sha256:" H64, strlen("flask==3.0 --hash=sha256:" H64), 1, &r, NULL), 0);
    cr_expect_str_eq(r.hashes, "--hash=sha256:" H64);
    cr_expect_str_eq(r.url, "");
    cr_expect_str_eq(r.specifier, "==3.0");
    pt_req_free(&r);
}

Test(reqset, index_options_are_lines_of_the_set)
{
    static const char text[] = "--extra-index-url=https://download.pytorch.org/whl/cpu\n"
                               "-i https://Pypi.Example/simple\n"
                               "torch==2.1.0+cpu\n"
                               "-f https://h/wheels/\n"
                               "--index-url https://Pypi.Example/simple\n";
    pt_reqset s;
    pt_reqset_init(&s);
    pt_error err = { 0 };
    cr_assert_eq(pt_reqset_add_text(&s, text, strlen(text), 1, &err), 0, "%s", err.msg);
    pt_reqset_finish(&s);
    cr_assert_eq(s.n, 4);
    cr_expect_str_eq(s.lines[0], "--extra-index-url https://download.pytorch.org/whl/cpu");
    cr_expect_str_eq(s.lines[1], "--find-links https://h/wheels/");
    cr_expect_str_eq(s.lines[2], "--index-url https://Pypi.Example/simple");
    cr_expect_str_eq(s.lines[3], "torch==2.1.0+cpu");
    static const char two[] = "--index-url https://Pypi.Example/simple\n--index-url https://b/simple\n";
    cr_expect_eq(pt_reqset_add_text(&s, two, strlen(two), 7, &err), -EINVAL);
    cr_expect_eq(err.line, 8);
    cr_expect(strstr(err.msg, "a second --index-url") != NULL, "%s", err.msg);
    cr_expect_eq(s.n, 4, "rolled back");
    pt_reqset_free(&s);
}

Test(req, rejection_keeps_earlier_calls)
{
    pt_reqset s;
    pt_reqset_init(&s);
    cr_assert_eq(pt_reqset_add_text(&s, "a\nb\n", 4, 1, NULL), 0);
    pt_error err = { 0 };
    cr_assert_eq(pt_reqset_add_text(&s, "c\nd e\n", 6, 1, &err), -EINVAL);
    cr_expect_eq(err.line, 2);
    cr_assert_eq(s.n, 2);
    cr_expect_str_eq(s.lines[0], "a");
    cr_expect_str_eq(s.lines[1], "b");
    pt_reqset_free(&s);
}

Test(req, message_truncates_long_text)
{
    char line[400];
    memset(line, 'a', 300);
    strcpy(line + 300, " && x");
    pt_error err = { 0 };
    pt_req r;
    cr_assert_eq(pt_req_parse(line, strlen(line), 5, &r, &err), -EINVAL);
    cr_expect_eq(err.line, 5);
    cr_expect(strstr(err.msg, "...': unexpected '&' after the name") != NULL, "%s", err.msg);
    cr_expect(strlen(err.msg) < 400, "%s", err.msg);
}

Test(req, empty_and_null)
{
    pt_req r;
    pt_error err = { 0 };
    cr_expect_eq(pt_req_parse("", 0, 4, &r, &err), -EINVAL);
    cr_expect_eq(err.line, 4);
    cr_expect(strstr(err.msg, "empty requirement") != NULL, "%s", err.msg);
    cr_expect_eq(pt_req_parse("   ", 3, 4, &r, &err), -EINVAL);
    cr_expect_eq(pt_req_parse(NULL, 0, 4, &r, &err), -EINVAL);
    cr_expect_eq(pt_req_parse("x", 1, 4, NULL, &err), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* requirement-file text                                              */

static void expect_lines(const pt_reqset *s, const char *const *want, size_t n)
{
    cr_assert_eq(s->n, n, "got %zu lines, want %zu", s->n, n);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(s->lines[i], want[i], "line %zu", i);
}

Test(reqset, comments_blank_crlf_continuation)
{
    const char text[] =
        "# a comment\r\n"
        "\r\n"
        "FastAPI==0.110   # pinned\r\n"
        "   \t  \n"
        "uvicorn[standard] \\\n"
        "  >=0.20\n"
        "  # indented comment\n"
        "requests#not-a-comment-without-space\n";
    pt_reqset s;
    pt_reqset_init(&s);
    pt_error err = { 0 };
    /* '#' glued to the name is not a comment (pip), so the last line fails */
    cr_assert_eq(pt_reqset_add_text(&s, text, strlen(text), 1, &err), -EINVAL);
    cr_expect_eq(err.line, 8);
    cr_expect_eq(s.n, 0);

    size_t good = strlen(text) - strlen("requests#not-a-comment-without-space\n");
    cr_assert_eq(pt_reqset_add_text(&s, text, good, 1, &err), 0, "%s", err.msg);
    const char *want[] = { "fastapi==0.110", "uvicorn[standard]>=0.20" };
    expect_lines(&s, want, 2);
    pt_reqset_free(&s);
}

Test(reqset, continuation_rules_follow_pip)
{
    pt_reqset s;
    pt_reqset_init(&s);
    pt_error err = { 0 };
    /* continued line reports its first line; last line may end in '\' */
    const char t1[] = "a\nb \\\n  c\n";
    cr_assert_eq(pt_reqset_add_text(&s, t1, strlen(t1), 1, &err), -EINVAL);
    cr_expect_eq(err.line, 2);
    cr_expect(strstr(err.msg, "'b   c'") != NULL, "%s", err.msg);

    const char t2[] = "foo\\\n>=1\\\n,<2\\\n";
    cr_assert_eq(pt_reqset_add_text(&s, t2, strlen(t2), 1, &err), 0, "%s", err.msg);
    /* a full-line comment ends the continuation and is dropped */
    const char t3[] = "bar\\\n# comment\nbaz\n";
    cr_assert_eq(pt_reqset_add_text(&s, t3, strlen(t3), 1, &err), 0, "%s", err.msg);
    /* pip: a line with an inline comment still continues, and the comment
     * then swallows the next line */
    const char t4[] = "qux # note \\\nswallowed\n";
    cr_assert_eq(pt_reqset_add_text(&s, t4, strlen(t4), 1, &err), 0, "%s", err.msg);
    const char *want[] = { "foo<2,>=1", "bar", "baz", "qux" };
    expect_lines(&s, want, 4);
    pt_reqset_free(&s);
}

Test(reqset, first_line_offsets_errors)
{
    pt_reqset s;
    pt_reqset_init(&s);
    pt_error err = { 0 };
    const char t[] = "ok\n\nbad line\n";
    cr_assert_eq(pt_reqset_add_text(&s, t, strlen(t), 41, &err), -EINVAL);
    cr_expect_eq(err.line, 43);
    cr_expect(strncmp(err.msg, "line 43: 'bad line': ", 21) == 0, "%s", err.msg);
    pt_reqset_free(&s);
}

Test(reqset, add_line)
{
    pt_reqset s;
    pt_reqset_init(&s);
    pt_error err = { 0 };
    cr_expect_eq(pt_reqset_add_line(&s, "Flask >= 3 # web", 1, &err), 0);
    cr_expect_eq(pt_reqset_add_line(&s, "", 2, &err), 0);
    cr_expect_eq(pt_reqset_add_line(&s, "   # only a comment", 3, &err), 0);
    cr_expect_eq(s.n, 1);
    cr_expect_str_eq(s.lines[0], "flask>=3");
    cr_expect_eq(pt_reqset_add_line(&s, "a\nb", 7, &err), -EINVAL);
    cr_expect_eq(err.line, 7);
    cr_expect(strstr(err.msg, "newline") != NULL, "%s", err.msg);
    cr_expect_eq(pt_reqset_add_line(&s, "-e .", 8, &err), -EINVAL);
    cr_expect_eq(err.line, 8);
    cr_expect_eq(s.n, 1);
    pt_reqset_free(&s);
    cr_expect_eq(s.n, 0);
    cr_expect_null(s.lines);
}

Test(reqset, finish_sorts_and_dedups)
{
    const char t[] = "uvicorn\nFastAPI\nfastapi\nfast_api\nUvicorn  # again\nanyio\n";
    pt_reqset s;
    pt_reqset_init(&s);
    cr_assert_eq(pt_reqset_add_text(&s, t, strlen(t), 1, NULL), 0);
    cr_expect_eq(s.n, 6);
    pt_reqset_finish(&s);
    const char *want[] = { "anyio", "fast-api", "fastapi", "uvicorn" };
    expect_lines(&s, want, 4);
    pt_reqset_finish(&s); /* idempotent */
    expect_lines(&s, want, 4);
    pt_reqset_free(&s);
}

/* ------------------------------------------------------------------ */
/* limits and hostile input                                           */

Test(reqset, nul_bytes_and_long_lines)
{
    pt_reqset s;
    pt_reqset_init(&s);
    pt_error err = { 0 };
    const char t[] = "a\nb\0c\n";
    cr_expect_eq(pt_reqset_add_text(&s, t, sizeof t - 1, 1, &err), -EINVAL);
    cr_expect_eq(err.line, 2);
    cr_expect(strstr(err.msg, "NUL byte") != NULL, "%s", err.msg);
    /* a NUL inside a comment is still rejected */
    const char t2[] = "a # x\0y\n";
    cr_expect_eq(pt_reqset_add_text(&s, t2, sizeof t2 - 1, 1, &err), -EINVAL);

    char *big = malloc(8192);
    cr_assert_not_null(big);
    memset(big, 'a', PT_REQ_MAX_LINE);   /* a 4096-character name is fine */
    big[PT_REQ_MAX_LINE] = '\n';
    cr_expect_eq(pt_reqset_add_text(&s, big, PT_REQ_MAX_LINE + 1, 1, &err), 0, "%s", err.msg);
    memset(big, 'a', PT_REQ_MAX_LINE + 1); /* 4097 is not */
    cr_expect_eq(pt_reqset_add_text(&s, big, PT_REQ_MAX_LINE + 1, 9, &err), -EINVAL);
    cr_expect_eq(err.line, 9);
    cr_expect(strstr(err.msg, "longer than 4096 bytes") != NULL, "%s", err.msg);
    cr_expect(strlen(err.msg) < 200, "message not truncated: %zu", strlen(err.msg));
    /* continuation cannot build a longer line either */
    memset(big, 'a', 3000);
    memcpy(big + 3000, "\\\n", 2);
    memset(big + 3002, 'b', 3000);
    cr_expect_eq(pt_reqset_add_text(&s, big, 6002, 1, &err), -EINVAL);
    cr_expect_eq(err.line, 1);
    cr_expect(strstr(err.msg, "continued line is longer") != NULL, "%s", err.msg);
    free(big);
    cr_expect_eq(s.n, 1);
    pt_reqset_free(&s);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(reqset, ten_thousand_lines_fast)
{
    enum { N = 10000 };
    size_t cap = (size_t)N * 96;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "Package_%05d[Extra_B,extra-a] >= 1.%d , < 2 ; python_version >= '3.8'  # c\n",
                                (N - 1) - i, i % 7);
    pt_reqset s;
    pt_reqset_init(&s);
    pt_error err = { 0 };
    double t0 = now_s();
    int rc = pt_reqset_add_text(&s, text, len, 1, &err);
    pt_reqset_finish(&s);
    double dt = now_s() - t0;
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_expect_eq(s.n, N);
    cr_expect_str_eq(s.lines[0], "package-00000[extra-a,extra-b]<2,>=1.3; python_version >= \"3.8\"");
    cr_expect_str_eq(s.lines[N - 1], "package-09999[extra-a,extra-b]<2,>=1.0; python_version >= \"3.8\"");
    cr_expect(dt < 0.5, "10,000 lines took %.3f s", dt);
    pt_reqset_free(&s);
    free(text);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random bytes, and random strings over the grammar's own alphabet: must never
 * crash or overread (run under ASan/UBSan too); every accepted line must
 * canonicalize to a fixed point. */
Test(reqset, garbage_input)
{
    static const char alpha[] = "aZ09_-.[](),;<>=!~*+ \t'\"#\\\n\r@$`|&{}/:xorandnotin";
    static const char *const frags[] = { "python_version", " and ", " or ", " not in ", " in ", "extra",
                                         "==", ">=", "~=", "===", "1.0", ".*", "'3.8'", "\"x\"", "; ",
                                         "(", ")", "[", "]", ",", "#", "\\\n", "pkg", "os.name", "+l" };
    size_t accepted = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(rng() % 200);
        char *buf = malloc(n ? n : 1); /* exact size: ASan catches any overread */
        cr_assert_not_null(buf);
        int mode = round % 3;
        size_t k = 0;
        while (k < n) {
            if (mode == 0) {
                buf[k++] = (char)(rng() & 0xff);
            } else if (mode == 1) {
                buf[k++] = alpha[rng() % (sizeof alpha - 1)];
            } else {
                const char *f = frags[rng() % (sizeof frags / sizeof frags[0])];
                for (; *f && k < n; f++)
                    buf[k++] = *f;
            }
        }
        pt_reqset s;
        pt_reqset_init(&s);
        pt_error err = { 0 };
        int rc = pt_reqset_add_text(&s, buf, n, 1, &err);
        cr_assert(rc == 0 || rc == -EINVAL, "rc %d", rc);
        if (rc) {
            cr_assert(err.line >= 1, "line %u", err.line);
            cr_assert(strlen(err.msg) > 0);
        }
        for (size_t i = 0; i < s.n; i++) {
            pt_req r;
            cr_assert_eq(pt_req_parse(s.lines[i], strlen(s.lines[i]), 1, &r, &err), 0,
                         "canonical '%s' rejected: %s", s.lines[i], err.msg);
            cr_assert_str_eq(r.canonical, s.lines[i]);
            pt_req_free(&r);
            accepted++;
        }
        pt_reqset_free(&s);
        free(buf);
    }
    cr_expect(accepted > 0, "the generator never produced a valid line");
}
