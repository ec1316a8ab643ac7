/* test_secrets.c — credentials in URLs (pactown/url.h) and their redaction
 * from text and streams (pactown/redact.h). */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pactown/redact.h"
#include "pactown/url.h"

static void split(const char *url, const char *want_public, const char *want_userinfo)
{
    char *pub = NULL, *info = NULL;
    cr_assert_eq(pt_url_split_userinfo(url, &pub, &info), 0);
    cr_assert_str_eq(pub, want_public, "public part of %s", url);
    if (want_userinfo)
        cr_assert_str_eq(info, want_userinfo, "userinfo of %s", url);
    else
        cr_assert_null(info, "userinfo of %s", url);
    cr_assert_eq(pt_url_has_userinfo(url), want_userinfo != NULL);
    free(pub);
    free(info);
}

Test(url, userinfo_split_off)
{
    split("https://bob:s3cret@pypi.example.org/simple/", "https://pypi.example.org/simple/", "bob:s3cret");
    split("https://tok3n@pypi.example.org/simple", "https://pypi.example.org/simple", "tok3n");
    split("http://u:p%40ss@127.0.0.1:8080/simple/", "http://127.0.0.1:8080/simple/", "u:p%40ss");
    /* the last '@' of the authority ends the userinfo (RFC 3986 3.2.1); one in the path does not count */
    split("https://a@b:c@host/x@y", "https://host/x@y", "a@b:c");
}

Test(url, no_userinfo_kept_as_written)
{
    split("HTTPS://Example.org:443/simple", "HTTPS://Example.org:443/simple", NULL);
    split("/opt/wheels", "/opt/wheels", NULL);
    split("file:///opt/wheels", "file:///opt/wheels", NULL);
    split("https://host/path/with@at", "https://host/path/with@at", NULL);
}

Test(url, secrets_include_decoded_password)
{
    char *s[8] = { 0 };
    size_t n = 0;
    cr_assert_eq(pt_url_secrets("https://bob:p%40ss@host/simple", s, 8, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(s[0], "bob:p%40ss");
    cr_assert_str_eq(s[1], "p%40ss");
    cr_assert_str_eq(s[2], "p@ss");
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    n = 0;
    cr_assert_eq(pt_url_secrets("https://host/simple", s, 8, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(pt_url_secrets(NULL, s, 8, &n), 0);
    cr_assert_eq(n, 0);
}

Test(redact, text)
{
    const char *secrets[] = { "bob:s3cret", "s3cret", NULL };
    char *r = pt_redact("GET https://bob:s3cret@host/ then s3cret again; s3cre is not it", secrets);
    cr_assert_str_eq(r, "GET https://***@host/ then *** again; s3cre is not it");
    free(r);
    r = pt_redact("nothing here", NULL);
    cr_assert_str_eq(r, "nothing here");
    free(r);
}

/* a secret split across writes into the pipe is still caught */
Test(redact, stream_across_reads)
{
    int in[2], out[2];
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    const char *secrets[] = { "TOKEN-1234567890", NULL };
    /* small pieces, each written before the copy starts: the pipe holds them */
    const char *pieces[] = { "error for https://u:TOKEN-12", "34567890@host/x\n", "and TOKEN-", "1234567890", " end\n", NULL };
    for (const char **p = pieces; *p; p++)
        cr_assert_eq(write(in[1], *p, strlen(*p)), (ssize_t)strlen(*p));
    close(in[1]);
    cr_assert_eq(pt_redact_copy(in[0], out[1], secrets), 0);
    close(out[1]);
    char buf[256] = { 0 };
    ssize_t n = read(out[0], buf, sizeof buf - 1);
    cr_assert_gt(n, 0);
    cr_assert_str_eq(buf, "error for https://u:***@host/x\nand *** end\n");
    close(in[0]);
    close(out[0]);
}
