/* test_mptest.c — the lines of markpact:test blocks (pactown/mptest.h). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pactown/markpact.h"
#include "pactown/mptest.h"

static pt_markpact mp;
static pt_mp_tests tt;

static void teardown(void)
{
    pt_mp_tests_free(&tt);
    pt_markpact_free(&mp);
}

TestSuite(mptest, .fini = teardown);

/* Parse README text and its test blocks; returns pt_mp_tests_parse's result. */
static int parse(const char *readme, pt_error *err)
{
    cr_assert_eq(pt_markpact_parse(readme, strlen(readme), &mp, err), 0, "%s", err->msg);
    return pt_mp_tests_parse(mp.tests, mp.n_tests, &tt, err);
}

Test(mptest, http_lines_in_any_order)
{
    pt_error err;
    cr_assert_eq(parse("# svc\n"
                       "```http markpact:test http\n"
                       "# comments and blank lines are skipped\n"
                       "\n"
                       "GET /health EXPECT 200\n"
                       "post /items BODY {\"title\": \"EXPECT 1\", \"n\": [1, 2]} EXPECT 201\n"
                       "PUT /items/1 EXPECT 204 BODY [1,2]\n"
                       "  GET /old   EXPECT 302  \n"
                       "GET /\n"
                       "```\n",
                       &err),
                 0, "%s", err.msg);
    cr_assert_eq(tt.n, 5);
    cr_assert_eq(tt.v[0].kind, PT_TEST_HTTP);
    cr_assert_str_eq(tt.v[0].method, "GET");
    cr_assert_str_eq(tt.v[0].path, "/health");
    cr_assert_eq(tt.v[0].expect, 200);
    cr_assert_null(tt.v[0].body);
    cr_assert_eq(tt.v[0].line, 5);
    cr_assert_str_eq(tt.v[1].method, "POST");
    cr_assert_str_eq(tt.v[1].body, "{\"title\": \"EXPECT 1\", \"n\": [1, 2]}");
    cr_assert_eq(tt.v[1].expect, 201);
    cr_assert_eq(tt.v[1].line, 6);
    cr_assert_str_eq(tt.v[2].body, "[1,2]");
    cr_assert_eq(tt.v[2].expect, 204);
    cr_assert_eq(tt.v[3].expect, 302);
    cr_assert_str_eq(tt.v[3].path, "/old");
    cr_assert_eq(tt.v[4].expect, 0);
    cr_assert(pt_mp_test_http_passed(&tt.v[4], 200));
    cr_assert(pt_mp_test_http_passed(&tt.v[4], 399));
    cr_assert_not(pt_mp_test_http_passed(&tt.v[4], 404));
    cr_assert_not(pt_mp_test_http_passed(&tt.v[4], 199));
    cr_assert(pt_mp_test_http_passed(&tt.v[3], 302));
    cr_assert_not(pt_mp_test_http_passed(&tt.v[3], 200), "EXPECT 302 is not met by the page it points to");
}

Test(mptest, bare_token_is_http_shell_and_bash_are_shell)
{
    pt_error err;
    cr_assert_eq(parse("```markpact:test\nGET /\n```\n"
                       "```bash markpact:test\n  curl -fsS localhost:$PORT/  \n# not a test\n```\n"
                       "```text markpact:test shell\npython -c 'import sys'\n```\n",
                       &err),
                 0, "%s", err.msg);
    cr_assert_eq(tt.n, 3);
    cr_assert_eq(tt.v[0].kind, PT_TEST_HTTP);
    cr_assert_eq(tt.v[1].kind, PT_TEST_SHELL);
    cr_assert_str_eq(tt.v[1].command, "curl -fsS localhost:$PORT/");
    cr_assert_eq(tt.v[1].line, 5);
    cr_assert_eq(tt.v[2].kind, PT_TEST_SHELL);
    cr_assert_str_eq(tt.v[2].command, "python -c 'import sys'");
}

/* One bad line: -EINVAL, the README line, and the reason's key words. */
static void refused(const char *line, const char *why)
{
    char readme[512];
    snprintf(readme, sizeof readme, "intro\n```http markpact:test http\nGET /ok\n%s\n```\n", line);
    pt_error err;
    cr_assert_eq(parse(readme, &err), -EINVAL, "'%s' accepted", line);
    cr_assert_eq(err.line, 4, "'%s': line %u", line, err.line);
    cr_assert(strstr(err.msg, "line 4: markpact:test http: ") == err.msg, "%s", err.msg);
    cr_assert(strstr(err.msg, why), "'%s': %s", line, err.msg);
    cr_assert_eq(tt.n, 0);
    cr_assert_null(tt.v);
    pt_markpact_free(&mp);
}

Test(mptest, bad_lines_name_line_and_reason)
{
    refused("GET", "no path");
    refused("GET health", "must start with '/'");
    refused("G3T /", "letters");
    refused("GET / EXPECT", "needs a status");
    refused("GET / EXPECT 20", "100..599");
    refused("GET / EXPECT 700", "100..599");
    refused("GET / EXPECT 101", "can never pass");
    refused("GET / EXPECT 200 EXPECT 201", "twice");
    refused("POST / BODY {\"a\": 1", "not a JSON object or array");
    refused("POST / BODY 5", "not a JSON object or array");
    refused("POST / BODY {}x", "text right after");
    refused("POST / BODY {} BODY {}", "twice");
    refused("GET / 200", "expected BODY {json} or EXPECT status, not \"200\"");
    refused("GET / EXPECT 200 ; rm -rf /", "not \";\"");
}
