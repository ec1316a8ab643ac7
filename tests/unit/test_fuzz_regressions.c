/* test_fuzz_regressions.c — inputs the libFuzzer targets (tests/fuzz,
 * docs/FUZZING.md) found to break an invariant, byte for byte, each with the
 * behaviour that is correct for it. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pactown/key.h"
#include "pactown/markpact.h"
#include "pactown/req.h"

/* fuzz_req: an extra name in a marker is normalized like a package name, so
 * ' _' or ' .' inside it became ' -', which pip reads as the start of an
 * option when the builder hands it the canonical line (and which the parser
 * itself refuses in a marker string, so the canonical line did not parse
 * again). Such a line is now refused. */
Test(fuzz_regressions, extra_name_normalized_to_space_dash)
{
    static const uint8_t input[] = { 'f', 'o', 'o', ';', ' ', 'e', 'x', 't', 'r', 'a', ' ', '=', '=',
                                     ' ', '\'', 'F', '-', ' ', '_', 'B', 'a', 'r', '\'' };
    pt_req r;
    pt_error err;
    int rc = pt_req_parse((const char *)input, sizeof input, 1, &r, &err);
    cr_assert_eq(rc, -EINVAL, "accepted, canonical '%s'", rc ? "" : r.canonical);
    cr_expect_eq(err.line, 1);
    cr_expect(strstr(err.msg, "extra name") != NULL, "%s", err.msg);

    /* the same with '.' and the string on the left */
    rc = pt_req_parse("foo; 'a .b' == extra", 20, 1, &r, &err);
    cr_expect_eq(rc, -EINVAL);
    /* a space alone is kept (it is not a valid extra, but harmless) */
    rc = pt_req_parse("foo; extra == 'a b'", 19, 1, &r, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_expect_str_eq(r.canonical, "foo; extra == \"a b\"");
    pt_req_free(&r);
}

/* fuzz_req: a line of exactly 4096 bytes, "NAME@ URL", is accepted, and its
 * canonical form "NAME @ URL" is 4097 bytes: longer than a line may be, so
 * the key's text did not parse again. Such a line is now refused. */
Test(fuzz_regressions, canonical_form_longer_than_a_line)
{
    char line[PT_REQ_MAX_LINE + 1];
    const char *url = "@ https://ap";
    size_t name = 3000;
    memset(line, 'x', sizeof line);
    memcpy(line + name - 2, "as", 2);
    memcpy(line + name, url, strlen(url));
    line[PT_REQ_MAX_LINE] = '\0';
    cr_assert_eq(strlen(line), PT_REQ_MAX_LINE);
    pt_req r;
    pt_error err;
    int rc = pt_req_parse(line, strlen(line), 1, &r, &err);
    cr_assert_eq(rc, -EINVAL, "accepted, canonical of %zu bytes", rc ? 0 : strlen(r.canonical));
    cr_expect(strstr(err.msg, "longer than 4096 bytes once written canonically") != NULL, "%s", err.msg);
    /* one byte shorter: the canonical form fits, and parses back to itself */
    line[PT_REQ_MAX_LINE - 1] = '\0';
    cr_assert_eq(pt_req_parse(line, strlen(line), 1, &r, &err), 0, "%s", err.msg);
    pt_req again;
    cr_assert_eq(pt_req_parse(r.canonical, strlen(r.canonical), 1, &again, &err), 0, "%s", err.msg);
    cr_expect_str_eq(again.canonical, r.canonical);
    pt_req_free(&again);
    pt_req_free(&r);
}
