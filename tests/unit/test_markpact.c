/* test_markpact.c — markpact README parser. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pactown/markpact.h"

/* Parse a copy of s[0..n) held in an exact-size heap buffer (no NUL after
 * it, so ASan catches any overread), freed before returning (so a block
 * pointing into the input would be caught as use-after-free). */
static int parse_n(const char *s, size_t n, pt_markpact *mp, pt_error *e)
{
    char *buf = malloc(n ? n : 1);
    cr_assert_not_null(buf);
    memcpy(buf, s, n);
    int rc = pt_markpact_parse(buf, n, mp, e);
    free(buf);
    return rc;
}

#define PARSE(lit, mp, e) parse_n((lit), sizeof(lit) - 1, (mp), (e))

/* Parse s[0..n) (as parse_n) and assert it succeeds, failing with the
 * parser's message otherwise. PARSE_OK does so for a string literal. */
static void parse_ok(const char *s, size_t n, pt_markpact *mp)
{
    pt_error e;
    cr_assert_eq(parse_n(s, n, mp, &e), 0, "%s", e.msg);
}

#define PARSE_OK(lit, mp) parse_ok((lit), sizeof(lit) - 1, (mp))

static void assert_empty(const pt_markpact *mp)
{
    cr_assert_null(mp->deps);
    cr_assert_eq(mp->n_deps, 0);
    cr_assert_null(mp->files);
    cr_assert_eq(mp->n_files, 0);
    cr_assert_null(mp->run);
    cr_assert_null(mp->tests);
    cr_assert_eq(mp->n_tests, 0);
    cr_assert_eq(mp->n_unknown, 0);
    cr_assert_eq(mp->first_unknown_line, 0);
}

/* Expect -EINVAL at line `line`, with msg containing `needle`, *out empty. */
#define EXPECT_ERR(lit, line_, needle)                                                  \
    do {                                                                                \
        pt_markpact mp_;                                                                \
        pt_error e_;                                                                    \
        memset(&mp_, 0x5a, sizeof mp_);                                                 \
        int rc_ = PARSE(lit, &mp_, &e_);                                                \
        cr_assert_eq(rc_, -EINVAL, "rc %d, expected -EINVAL", rc_);                     \
        cr_assert_eq(e_.code, -EINVAL);                                                 \
        cr_assert_eq(e_.line, (unsigned)(line_), "line %u, expected %u (msg: %s)",      \
                     e_.line, (unsigned)(line_), e_.msg);                               \
        cr_assert(strstr(e_.msg, needle) != NULL, "msg '%s' lacks '%s'", e_.msg, needle); \
        assert_empty(&mp_);                                                             \
    } while (0)

static char *read_shared(const char *name, size_t *len)
{
    const char *dir = getenv("PACTOWN_SHARED");
    cr_assert_not_null(dir, "PACTOWN_SHARED is not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/realworld/%s", dir, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert(n > 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* 1-based line number of the first line equal to `line` (without "\n"). */
static unsigned line_of(const char *text, const char *line)
{
    unsigned no = 1;
    size_t ll = strlen(line);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n == ll && memcmp(p, line, n) == 0)
            return no;
        if (!nl)
            break;
        p = nl + 1;
        no++;
    }
    cr_assert_fail("line '%s' not found", line);
    return 0;
}

/* ---- the real READMEs ----------------------------------------------------- */

Test(markpact, realworld_fastapi_todo)
{
    size_t len;
    char *text = read_shared("markpact-fastapi-todo.md", &len);
    pt_markpact mp;
    parse_ok(text, len, &mp);

    cr_assert_eq(mp.n_deps, 1);
    cr_assert_str_eq(mp.deps[0].body, "fastapi\nuvicorn\nsqlalchemy\npydantic\n");
    cr_assert_eq(mp.deps[0].len, strlen("fastapi\nuvicorn\nsqlalchemy\npydantic\n"));
    unsigned fence = line_of(text, "```text markpact:deps python");
    cr_assert_eq(fence, 23);
    cr_assert_eq(mp.deps[0].fence_line, fence);
    cr_assert_eq(mp.deps[0].line, fence + 1);
    cr_assert_eq(mp.deps[0].line, line_of(text, "fastapi"));
    cr_assert_str_eq(mp.deps[0].lang, "text");
    cr_assert_str_eq(mp.deps[0].info, "text markpact:deps python");
    cr_assert_null(mp.deps[0].path);

    const char *paths[] = { "app/database.py", "app/models.py", "app/schemas.py", "app/main.py" };
    const unsigned fences[] = { 30, 48, 61, 82 };
    cr_assert_eq(mp.n_files, 4);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(mp.files[i].path, paths[i]);
        cr_assert_eq(mp.files[i].fence_line, fences[i], "file %zu", i);
        cr_assert_eq(mp.files[i].line, fences[i] + 1);
        cr_assert_str_eq(mp.files[i].lang, "python");
        cr_assert_eq(strlen(mp.files[i].body), mp.files[i].len);
    }
    cr_assert_eq(strncmp(mp.files[0].body, "from sqlalchemy import create_engine\n", 37), 0);
    const char *tail = "    finally:\n        db.close()\n";
    cr_assert_str_eq(mp.files[0].body + mp.files[0].len - strlen(tail), tail);
    /* models.py keeps its whitespace-only line "    \n" (README line 54). */
    cr_assert_not_null(strstr(mp.files[1].body, "\"todos\"\n    \n    id = Column"));

    cr_assert_not_null(mp.run);
    cr_assert_eq(strncmp(mp.run->body, "uvicorn app.main:app", 20), 0);
    cr_assert_str_eq(mp.run->body,
                     "uvicorn app.main:app --host 0.0.0.0 --port ${MARKPACT_PORT:-8001} --reload\n");
    cr_assert_eq(mp.run->fence_line, 133);
    cr_assert_str_eq(mp.run->lang, "bash");
    cr_assert_eq(mp.n_tests, 0);
    cr_assert_eq(mp.n_unknown, 0);
    pt_markpact_free(&mp);
    assert_empty(&mp);
    free(text);
}

Test(markpact, realworld_flask_blog)
{
    size_t len;
    char *text = read_shared("markpact-flask-blog.md", &len);
    pt_markpact mp;
    parse_ok(text, len, &mp);

    cr_assert_eq(mp.n_deps, 1);
    cr_assert_str_eq(mp.deps[0].body, "flask\n");
    cr_assert_eq(mp.deps[0].len, 6);
    cr_assert_eq(mp.deps[0].line, line_of(text, "flask"));
    cr_assert_eq(mp.deps[0].line, 23);

    const char *paths[] = { "app.py", "templates/base.html", "templates/index.html",
                            "templates/post.html", "templates/new.html" };
    cr_assert_eq(mp.n_files, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(mp.files[i].path, paths[i]);
    cr_assert_str_eq(mp.files[1].lang, "html");
    cr_assert_eq(mp.files[1].fence_line, 87);
    cr_assert_eq(strncmp(mp.files[1].body, "<!DOCTYPE html>\n", 16), 0);
    cr_assert_not_null(strstr(mp.files[1].body, "<strong>\xf0\x9f\x93\x9d Markpact Blog</strong>"));
    cr_assert_str_eq(mp.files[1].body + mp.files[1].len - 8, "</html>\n");
    /* the ''' quotes inside app.py are content */
    cr_assert_not_null(strstr(mp.files[0].body, "        ''')\n        db.commit()\n"));

    cr_assert_not_null(mp.run);
    cr_assert_str_eq(mp.run->body, "python app.py\n");
    cr_assert_eq(mp.run->fence_line, 162);
    cr_assert_eq(mp.n_tests, 0);
    cr_assert_eq(mp.n_unknown, 0);
    pt_markpact_free(&mp);
    free(text);
}

/* ---- block forms ----------------------------------------------------------- */

Test(markpact, deps_forms)
{
    pt_markpact mp;
    PARSE_OK("# x\n"
             "```python markpact:deps\n"
             "requests==2.31.0\n"
             "```\n"
             "```markpact:deps\n"
             "flask\n"
             "```\n"
             "```markpact:deps python\n"
             "```\n"
             "```text markpact:deps python\n"
             "numpy\n"
             "```\n",
             &mp);
    cr_assert_eq(mp.n_deps, 4);
    cr_assert_str_eq(mp.deps[0].body, "requests==2.31.0\n");
    cr_assert_str_eq(mp.deps[0].lang, "python");
    cr_assert_eq(mp.deps[0].fence_line, 2);
    cr_assert_eq(mp.deps[0].line, 3);
    cr_assert_str_eq(mp.deps[1].body, "flask\n");
    cr_assert_null(mp.deps[1].lang);
    cr_assert_str_eq(mp.deps[2].body, "");
    cr_assert_eq(mp.deps[2].len, 0);
    cr_assert_eq(mp.deps[2].line, 9);
    cr_assert_str_eq(mp.deps[3].body, "numpy\n");
    cr_assert_str_eq(mp.deps[3].lang, "text");
    pt_markpact_free(&mp);
}

Test(markpact, deps_other_ecosystem)
{
    EXPECT_ERR("a\n\n```markpact:deps node\nexpress\n```\n", 3, "for Node.js (\"node\") are not supported yet");
    EXPECT_ERR("```text markpact:deps npm\nx\n```\n", 1, "\"npm\"");
    /* the Node.js forms pactown accepts, by lang word: refused, never read as Python */
    EXPECT_ERR("```javascript markpact:deps\nexpress\n```\n", 1, "Python venvs only");
    EXPECT_ERR("```js markpact:deps\nexpress\n```\n", 1, "Node.js (\"js\")");
    EXPECT_ERR("```npm markpact:deps\nexpress\n```\n", 1, "Node.js");
    EXPECT_ERR("```go markpact:deps\ngithub.com/x/y\n```\n", 1, "markpact:deps for \"go\" are not supported");
    EXPECT_ERR("```markpact:deps rust\nserde\n```\n", 1, "only python deps are supported");
}

Test(markpact, tests_and_unknown_kinds)
{
    pt_markpact mp;
    PARSE_OK("```markpact:bootstrap python\n"
             "print(1)\n"
             "```\n"
             "```http markpact:test http\n"
             "GET /todos EXPECT 200\n"
             "```\n"
             "```markpact:whatever\n"
             "```\n",
             &mp);
    cr_assert_eq(mp.n_tests, 1);
    cr_assert_str_eq(mp.tests[0].body, "GET /todos EXPECT 200\n");
    cr_assert_str_eq(mp.tests[0].info, "http markpact:test http");
    cr_assert_str_eq(mp.tests[0].lang, "http");
    cr_assert_eq(mp.tests[0].fence_line, 4);
    cr_assert_eq(mp.n_unknown, 2);
    cr_assert_eq(mp.first_unknown_line, 1);
    cr_assert_eq(mp.n_files + mp.n_deps, 0);
    cr_assert_null(mp.run);
    pt_markpact_free(&mp);
}

Test(markpact, quoted_paths)
{
    pt_markpact mp;
    PARSE_OK("```python markpact:file path=\"a b.py\"\nx\n```\n"
             "```python markpact:file   path='c d/e.py'  \ny\n```\n"
             "```markpact:file path=\"plain.txt\" mode=0644\n```\n",
             &mp);
    cr_assert_eq(mp.n_files, 3);
    cr_assert_str_eq(mp.files[0].path, "a b.py");
    cr_assert_str_eq(mp.files[1].path, "c d/e.py");
    cr_assert_str_eq(mp.files[2].path, "plain.txt");
    cr_assert_str_eq(mp.files[2].body, "");
    pt_markpact_free(&mp);

    EXPECT_ERR("x\n```markpact:file path=\"a b.py\ny\n```\n", 2, "unterminated quote");
    EXPECT_ERR("```markpact:file path=\"a\"b\ny\n```\n", 1, "after the closing quote");
}

/* ---- fences ---------------------------------------------------------------- */

Test(markpact, tilde_fences)
{
    pt_markpact mp;
    PARSE_OK("~~~ markpact:file path=doc.md\n"
             "```python\n"
             "x = 1\n"
             "```\n"
             "~~\n"
             "~~~\n"
             "~~~~ markpact:run\n"
             "```\n"
             "~~~\n"
             "run me\n"
             "~~~~~~   \n",
             &mp);
    cr_assert_eq(mp.n_files, 1);
    cr_assert_str_eq(mp.files[0].body, "```python\nx = 1\n```\n~~\n");
    cr_assert_null(mp.files[0].lang);
    cr_assert_not_null(mp.run);
    cr_assert_str_eq(mp.run->body, "```\n~~~\nrun me\n");
    cr_assert_eq(mp.run->fence_line, 7);
    pt_markpact_free(&mp);
}

Test(markpact, nested_longer_fences)
{
    pt_markpact mp;
    PARSE_OK("````markdown markpact:file path=README.md\n"
             "# inner\n"
             "```python markpact:file path=inner.py\n"
             "print(1)\n"
             "```\n"
             "```` trailing words mean this is not a closing fence\n"
             "`````\n"
             "```markpact:run\n"
             "go\n"
             "```\n",
             &mp);
    cr_assert_eq(mp.n_files, 1);
    cr_assert_str_eq(mp.files[0].path, "README.md");
    cr_assert_str_eq(mp.files[0].body,
                     "# inner\n```python markpact:file path=inner.py\nprint(1)\n```\n"
                     "```` trailing words mean this is not a closing fence\n");
    cr_assert_str_eq(mp.files[0].lang, "markdown");
    cr_assert_str_eq(mp.run->body, "go\n");
    cr_assert_eq(mp.run->line, 9);
    pt_markpact_free(&mp);
}

Test(markpact, skipped_blocks_hide_their_content)
{
    pt_markpact mp;
    /* A ``` inside a ~~~~ block is content, including markpact-looking ones;
     * a plain ```bash block with "markpact" but no markpact: token is skipped. */
    PARSE_OK("```bash\n"
             "markpact examples/fastapi-todo/README.md\n"
             "```\n"
             "~~~~\n"
             "```python markpact:file path=evil.py\n"
             "x\n"
             "```\n"
             "```markpact:run\n"
             "```\n"
             "~~~~\n"
             "````\n"
             "~~~~ markpact:run\n"
             "```\n"
             "````\n"
             "```markpact:run\n"
             "real\n"
             "```\n",
             &mp);
    cr_assert_eq(mp.n_files, 0);
    cr_assert_not_null(mp.run);
    cr_assert_str_eq(mp.run->body, "real\n");
    cr_assert_eq(mp.run->fence_line, 15);
    pt_markpact_free(&mp);
}

Test(markpact, unclosed_plain_fence_is_not_an_error)
{
    pt_markpact mp;
    /* CommonMark closes it at EOF, so the markpact-looking lines are content. */
    PARSE_OK("```markpact:run\nok\n```\n"
             "```\n"
             "```python markpact:file path=a.py\n"
             "x\n",
             &mp);
    /* line 4 opens a plain block, line 5 (has an info string) cannot close it */
    cr_assert_eq(mp.n_files, 0);
    cr_assert_str_eq(mp.run->body, "ok\n");
    pt_markpact_free(&mp);
}

Test(markpact, indentation)
{
    pt_markpact mp;
    PARSE_OK("  ```markpact:file path=a.py\n"
             "    x = 1\n"
             " y\n"
             "z\n"
             "     ```\n"      /* 5 spaces: content, not a closing fence */
             "   ```\n"
             "    ```markpact:file path=b.py\n" /* 4 spaces: indented code */
             "\t```markpact:file path=c.py\n"   /* tab = 4 columns */
             "```markpact:run\n"
             "r\n"
             "```\n",
             &mp);
    cr_assert_eq(mp.n_files, 1);
    cr_assert_str_eq(mp.files[0].path, "a.py");
    cr_assert_str_eq(mp.files[0].body, "  x = 1\ny\nz\n   ```\n");
    cr_assert_str_eq(mp.run->body, "r\n");
    pt_markpact_free(&mp);
}

Test(markpact, backtick_in_info_is_not_a_fence)
{
    pt_markpact mp;
    PARSE_OK("```markpact:file path=`x`\nnot code\n"
             "~~~markpact:file path=ok`.py\nbody\n~~~\n",
             &mp);
    cr_assert_eq(mp.n_files, 1);
    cr_assert_str_eq(mp.files[0].path, "ok`.py");
    cr_assert_str_eq(mp.files[0].body, "body\n");
    pt_markpact_free(&mp);
}

Test(markpact, crlf_and_missing_final_newline)
{
    pt_markpact mp;
    PARSE_OK("# t\r\n"
             "\r\n"
             "```text markpact:deps python\r\n"
             "flask\r\n"
             "requests\r\n"
             "```\r\n"
             "```python markpact:file path=app.py\r\n"
             "a = 'x\\r'\r\n"
             "\r\n"
             "```   \r\n"
             "```bash markpact:run\r\n"
             "python app.py\r\n"
             "```",
             &mp);
    cr_assert_str_eq(mp.deps[0].body, "flask\nrequests\n");
    cr_assert_eq(mp.deps[0].line, 4);
    cr_assert_str_eq(mp.deps[0].lang, "text");
    cr_assert_str_eq(mp.deps[0].info, "text markpact:deps python");
    cr_assert_str_eq(mp.files[0].path, "app.py");
    cr_assert_str_eq(mp.files[0].body, "a = 'x\\r'\n\n");
    cr_assert_str_eq(mp.run->body, "python app.py\n");
    cr_assert_eq(mp.run->fence_line, 11);
    pt_markpact_free(&mp);

    /* last body line without newline is still a line */
    PARSE_OK("```markpact:run\npython x.py\n```\r", &mp);
    cr_assert_str_eq(mp.run->body, "python x.py\n");
    pt_markpact_free(&mp);

    /* a lone CR is content, not a line ending */
    PARSE_OK("```markpact:file path=x\na\rb\r\r\n```\n", &mp);
    cr_assert_str_eq(mp.files[0].body, "a\rb\r\n");
    pt_markpact_free(&mp);
    /* ... so a CR in a path is a control character */
    EXPECT_ERR("```markpact:file path=x\ra\n```\n", 1, "control");
}

Test(markpact, bom_and_empty_input)
{
    pt_markpact mp;
    pt_error e;
    PARSE_OK("\xef\xbb\xbf```markpact:run\nx\n```\n", &mp);
    cr_assert_str_eq(mp.run->body, "x\n");
    cr_assert_eq(mp.run->fence_line, 1);
    pt_markpact_free(&mp);

    cr_assert_eq(pt_markpact_parse(NULL, 0, &mp, &e), 0);
    assert_empty(&mp);
    cr_assert_eq(e.code, 0);
    cr_assert_eq(PARSE("", &mp, &e), 0);
    assert_empty(&mp);
    cr_assert_eq(PARSE("just text\nno blocks", &mp, &e), 0);
    assert_empty(&mp);
    cr_assert_eq(pt_markpact_parse(NULL, 5, &mp, &e), -EINVAL);
    pt_markpact_free(&mp);
    pt_markpact_free(&mp);
    pt_markpact_free(NULL);
}

Test(markpact, invalid_bytes_and_nul)
{
    pt_markpact mp;
    /* invalid UTF-8 in a body is kept as is; NUL outside markpact blocks is fine */
    PARSE_OK("a\0b\n```\nx\0y\n```\n```markpact:file path=bin.dat\n\xff\xfe\x80\n```\n", &mp);
    cr_assert_eq(mp.n_files, 1);
    cr_assert_str_eq(mp.files[0].body, "\xff\xfe\x80\n");
    pt_markpact_free(&mp);

    EXPECT_ERR("x\n```markpact:file path=a.py\nok\nbad\0here\n```\n", 4, "NUL byte");
    EXPECT_ERR("```markpact:run\n\0\n```\n", 2, "NUL byte");
    EXPECT_ERR("x\n```markpact:file path=a\0b.py\n```\n", 2, "NUL byte");
    /* unknown kinds are markpact blocks too */
    EXPECT_ERR("```markpact:other\n\0\n```\n", 2, "NUL byte");
}

/* ---- malformed READMEs ----------------------------------------------------- */

Test(markpact, unclosed_markpact_block)
{
    pt_markpact mp;
    pt_error e;
    const char text[] = "# T\n\n```text markpact:deps python\nflask\n```\n\n"
                        "para\n\nmore\n\nand\n```python markpact:file path=app.py\nimport x\n";
    int rc = PARSE(text, &mp, &e);
    cr_assert_eq(rc, -EINVAL);
    cr_assert_eq(e.line, 12);
    cr_assert_str_eq(e.msg, "line 12: markpact:file block opened here is never closed");
    assert_empty(&mp);

    EXPECT_ERR("```markpact:run\npython x.py", 1, "markpact:run block opened here is never closed");
    EXPECT_ERR("\n\n~~~ markpact:deps\nflask\n```\n", 3, "markpact:deps block opened here");
    EXPECT_ERR("````markpact:file path=a\n```\n", 1, "never closed");
    EXPECT_ERR("```markpact:bootstrap\n", 1, "never closed");
    EXPECT_ERR("```markpact:file path=a\n", 1, "never closed");
}

Test(markpact, file_without_path_is_main_py_and_dot_slash_dropped)
{
    pt_markpact mp;
    PARSE_OK("x\ny\n```python markpact:file\nprint(1)\n```\n"
             "```python markpact:file path=./pkg/util.py\nU = 1\n```\n"
             "```text markpact:file path=./notes.txt template=true\n${env:X}\n```\n",
             &mp);
    cr_assert_eq(mp.n_files, 3);
    cr_assert_str_eq(mp.files[0].path, "main.py");
    cr_assert_not(mp.files[0].template);
    cr_assert_str_eq(mp.files[1].path, "pkg/util.py");
    cr_assert_str_eq(mp.files[2].path, "notes.txt");
    cr_assert(mp.files[2].template);
    cr_assert_eq(mp.n_warnings, 0);
    pt_markpact_free(&mp);
    EXPECT_ERR("```markpact:file path=a.py path=b.py\n```\n", 1, "more than one path=");
    EXPECT_ERR("```markpact:file path=./../x\n```\n", 1, "\"..\"");
}

Test(markpact, file_with_bad_path)
{
    EXPECT_ERR("\n```markpact:file path=/etc/passwd\nroot\n```\n", 2, "absolute");
    EXPECT_ERR("\n\n```markpact:file path=../x\n```\n", 3, "\"..\"");
    EXPECT_ERR("```markpact:file path=.venv/bin/python\n```\n", 1, "reserved");
    EXPECT_ERR("```markpact:file path=\"\"\n```\n", 1, "empty");
    EXPECT_ERR("```markpact:file path=\n```\n", 1, "empty");
    EXPECT_ERR("```markpact:file path=a\\b\n```\n", 1, "backslash");
    EXPECT_ERR("```markpact:file path=a\x01" "b\n```\n", 1, "control");
}

Test(markpact, later_file_and_run_blocks_win_with_a_warning)
{
    pt_markpact mp;
    PARSE_OK("```markpact:file path=app/main.py\na\n```\n"   /* 1 */
             "```markpact:file path=app/other.py\nb\n```\n"  /* 4 */
             "```markpact:file path=\"app/main.py\"\nc\n```\n" /* 7 */
             "```markpact:run\nfirst\n```\n"                 /* 10 */
             "```bash markpact:run\nsecond\n```\n"           /* 13 */
             "```bash markpact:build\npython -m compileall .\n```\n" /* 16 */
             "```yaml markpact:target\nframework: flask\n```\n"    /* 19 */
             "```yaml markpact:target\n\n```\n",                   /* 22: blank, dropped */
             &mp);
    cr_assert_str_eq(mp.target->body, "framework: flask\n");
    cr_assert_eq(mp.target->fence_line, 19);
    cr_assert_eq(mp.n_unknown, 0, "a target block is a known kind");
    cr_assert_eq(mp.n_files, 2);
    cr_assert_str_eq(mp.files[0].path, "app/other.py");
    cr_assert_str_eq(mp.files[0].body, "b\n");
    cr_assert_str_eq(mp.files[1].path, "app/main.py");
    cr_assert_str_eq(mp.files[1].body, "c\n", "the later block wins");
    cr_assert_eq(mp.files[1].fence_line, 7);
    cr_assert_str_eq(mp.run->body, "second\n");
    cr_assert_eq(mp.run->fence_line, 13);
    cr_assert_str_eq(mp.build->body, "python -m compileall .\n");
    cr_assert_eq(mp.n_warnings, 2);
    cr_assert_str_eq(mp.warnings[0], "line 7: markpact:file \"app/main.py\" again: this block replaces the one at line 1");
    cr_assert_str_eq(mp.warnings[1], "line 13: second markpact:run block: it replaces the one at line 10");
    pt_markpact_free(&mp);
}

Test(markpact, include_comments)
{
    pt_markpact mp;
    PARSE_OK("# top\n"
             "<!-- markpact:include path=parts/deps.md -->\n"
             "```text\n<!-- markpact:include path=not-this.md -->\n```\n"
             "   <!-- markpact:include path=\"b.md\" -->\n",
             &mp);
    cr_assert_eq(mp.n_includes, 2, "an include inside a code block is text");
    cr_assert_eq(mp.includes[0].line, 2);
    cr_assert_str_eq(mp.includes[0].path, "parts/deps.md");
    cr_assert_eq(mp.includes[1].line, 6);
    cr_assert_str_eq(mp.includes[1].path, "b.md");
    pt_markpact_free(&mp);
    EXPECT_ERR("x\n<!-- markpact:include -->\n", 2, "needs the form");
    EXPECT_ERR("<!-- markpact:include path=a.md\n", 1, "needs the form");
}

Test(markpact, empty_run_block)
{
    EXPECT_ERR("x\n```markpact:run\n```\n", 2, "markpact:run block is empty");
    EXPECT_ERR("```bash markpact:run\n   \n\t\n\n```\n", 1, "empty");
}

Test(markpact, two_markpact_words)
{
    EXPECT_ERR("\n```markpact:file markpact:run path=a\nx\n```\n", 2, "more than one markpact:");
}

Test(markpact, error_after_good_blocks_frees_everything)
{
    /* deps, files, tests and run already collected, then an error: *out empty
     * and (under ASan/LSan) nothing leaks. */
    EXPECT_ERR("```markpact:deps\nflask\n```\n"
               "```markpact:file path=a\nA\n```\n"
               "```markpact:test http\nGET /\n```\n"
               "```markpact:run\nr\n```\n"
               "```markpact:bootstrap\n```\n"
               "```markpact:build\nmake\n```\n"
               "```markpact:file path=a\nB\n```\n"
               "```markpact:file path=/abs\nB\n```\n",
               21, "absolute");
}

/* ---- pt_markpact_check_path ------------------------------------------------ */

Test(markpact, check_path_hostile)
{
    char long_path[4098];
    memset(long_path, 'a', 4097);
    for (size_t i = 200; i < 4097; i += 201)
        long_path[i] = '/';
    long_path[4097] = '\0';
    char long_comp[300];
    memset(long_comp, 'b', 256);
    long_comp[256] = '\0';

    const char *bad[] = {
        "/etc/passwd", "../x", "a/../../x", "a/./b", "a\x01" "b", "a\x7f", "a\x1f",
        ".venv/bin/python", ".venv", ".pactown", ".pactown/x", "", ".", "..", "./a",
        "a/..", "a//b", "a/", "/", "a\\b", "\xff", "a\xc0\xaf", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xe2\x82", long_path, long_comp,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pt_error e;
        pt_error_clear(&e);
        int rc = pt_markpact_check_path(bad[i], 42, &e);
        cr_assert_eq(rc, -EINVAL, "accepted bad path #%zu", i);
        cr_assert_eq(e.code, -EINVAL);
        cr_assert_eq(e.line, 42);
        cr_assert_eq(strncmp(e.msg, "line 42: ", 9), 0, "%s", e.msg);
    }
    pt_error e;
    cr_assert_eq(pt_markpact_check_path(NULL, 0, &e), -EINVAL);
    cr_assert_eq(e.line, 0);
    cr_assert(strstr(e.msg, "empty") != NULL);
    cr_assert_eq(pt_markpact_check_path("a\x01" "b", 0, NULL), -EINVAL);

    long_path[4096] = '\0'; /* exactly 4096 bytes, components of 200 */
    const char *good[] = {
        "app/main.py", "a", "a b.py", "templates/index.html", "x/.venv", "x/.pactown/y",
        ".venvx", ".venv.bak/a", "...", "a/...b", ".hidden", "za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87.txt",
        "\xf0\x9f\x93\x9d.md", "a\"b", long_path,
    };
    long_comp[255] = '\0';
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int rc = pt_markpact_check_path(good[i], 1, &e);
        cr_assert_eq(rc, 0, "rejected good path #%zu: %s", i, e.msg);
    }
    cr_assert_eq(pt_markpact_check_path(long_comp, 1, &e), 0, "%s", e.msg);
}

/* ---- robustness ------------------------------------------------------------ */

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n > *cap) {
        while (*len + n > *cap)
            *cap = *cap ? *cap * 2 : 4096;
        *buf = realloc(*buf, *cap);
        cr_assert_not_null(*buf);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
}

#define APPEND(s) append(&buf, &len, &cap, (s), strlen(s))

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(markpact, five_megabytes_many_blocks, .timeout = 60)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char line[128];
    size_t n_files = 0;
    APPEND("```text markpact:deps python\nflask\n```\n");
    while (len < 5u * 1024 * 1024) {
        snprintf(line, sizeof line, "```python markpact:file path=pkg%zu/mod_%zu.py\n", n_files % 97, n_files);
        APPEND(line);
        APPEND("def f():\n    return 1\n```\n\nSome prose with `code` and ~~~ tildes.\n");
        APPEND("~~~~\n```markpact:run\nnot me\n```\n~~~~\n");
        n_files++;
    }
    APPEND("```markpact:run\npython -m pkg0\n```\n");
    pt_markpact mp;
    double t0 = now();
    parse_ok(buf, len, &mp);
    double dt = now() - t0;
    cr_assert_eq(mp.n_files, n_files);
    cr_assert_str_eq(mp.files[n_files - 1].body, "def f():\n    return 1\n");
    cr_assert_eq(mp.files[0].fence_line, 4);
    cr_assert_eq(mp.files[1].fence_line, 4 + 11);
    cr_assert_str_eq(mp.run->body, "python -m pkg0\n");
    cr_assert(dt < 10.0, "5 MB took %.2f s", dt);
    pt_markpact_free(&mp);

    /* same size, one huge block with very long lines */
    len = 0;
    APPEND("````python markpact:file path=big.py\n");
    memset(line, 'x', sizeof line - 2);
    line[sizeof line - 2] = '\n';
    line[sizeof line - 1] = '\0';
    size_t body = 0;
    while (len < 5u * 1024 * 1024) {
        APPEND(line);
        body += strlen(line);
    }
    APPEND("````\n");
    t0 = now();
    parse_ok(buf, len, &mp);
    dt = now() - t0;
    cr_assert_eq(mp.files[0].len, body);
    cr_assert(dt < 10.0, "5 MB took %.2f s", dt);
    pt_markpact_free(&mp);
    free(buf);
}

/* Random mutations of a real README: never crash, never overread (ASan),
 * result is 0 or -EINVAL, and *out is empty after an error. */
Test(markpact, mutated_readme_fuzz, .timeout = 120)
{
    size_t len;
    char *orig = read_shared("markpact-flask-blog.md", &len);
    char *text = malloc(len);
    cr_assert_not_null(text);
    static const char alphabet[] = "`~\n\r\0 \t:=\"'/.m\xff";
    unsigned long seed = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(text, orig, len);
        int edits = 1 + iter % 8;
        for (int k = 0; k < edits; k++) {
            seed = seed * 6364136223846793005ul + 1442695040888963407ul;
            size_t at = (size_t)(seed >> 17) % len;
            text[at] = alphabet[(seed >> 7) % (sizeof alphabet - 1)];
        }
        seed = seed * 6364136223846793005ul + 1442695040888963407ul;
        size_t n = (iter % 5 == 0) ? (size_t)(seed >> 20) % (len + 1) : len; /* truncations */
        pt_markpact mp;
        pt_error e;
        int rc = parse_n(text, n, &mp, &e);
        cr_assert(rc == 0 || rc == -EINVAL, "iter %d: rc %d", iter, rc);
        if (rc) {
            assert_empty(&mp);
            cr_assert(e.msg[0] != '\0');
        } else {
            for (size_t i = 0; i < mp.n_files; i++) {
                cr_assert_eq(pt_markpact_check_path(mp.files[i].path, 0, NULL), 0);
                cr_assert_eq(strlen(mp.files[i].body), mp.files[i].len);
            }
        }
        pt_markpact_free(&mp);
    }
    free(text);
    free(orig);
}
