/* url.c — userinfo in URLs (RFC 3986 section 3.2.1): the text between
 * "scheme://" and the last '@' of the authority. Sliced by hand: libcurl's
 * URL API would do it too, but linking it into the daemon loads libcurl and
 * some thirty libraries it depends on, 6 MiB of RSS for a string cut. */
#include "pactown/url.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* the userinfo as written: between "//" and the last '@' of the authority */
static char *raw_userinfo(const char *url)
{
    const char *s = strstr(url, "://");
    if (!s)
        return NULL;
    s += 3;
    size_t auth = strcspn(s, "/?#");
    const char *at = NULL;
    for (const char *p = s; p < s + auth; p++)
        if (*p == '@')
            at = p;
    return at ? strndup(s, (size_t)(at - s)) : NULL;
}

bool pt_url_has_userinfo(const char *url)
{
    char *u = url ? raw_userinfo(url) : NULL;
    bool has = u != NULL;
    free(u);
    return has;
}

int pt_url_split_userinfo(const char *url, char **public_url, char **userinfo)
{
    *public_url = NULL;
    if (userinfo)
        *userinfo = NULL;
    char *info = raw_userinfo(url);
    if (!info) {
        *public_url = strdup(url);
        return *public_url ? 0 : -ENOMEM;
    }
    /* scheme "://" userinfo "@" rest: keep scheme "://" rest */
    const char *after = strstr(url, "://") + 3;
    size_t pre = (size_t)(after - url), skip = strlen(info) + 1;
    char *out = malloc(strlen(url) - skip + 1);
    if (!out) {
        free(info);
        return -ENOMEM;
    }
    memcpy(out, url, pre);
    strcpy(out + pre, after + skip);
    *public_url = out;
    if (userinfo)
        *userinfo = info;
    else
        free(info);
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* s with its %XX escapes decoded (RFC 3986 section 2.1); malloc'd */
static char *pct_decode(const char *s)
{
    char *out = malloc(strlen(s) + 1), *w = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        int hi, lo;
        if (s[0] == '%' && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
            *w++ = (char)(hi * 16 + lo);
            s += 2;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return out;
}

static int push(char **out, size_t max, size_t *n, char *s)
{
    if (!s)
        return -ENOMEM;
    if (!*s || *n >= max) {
        free(s);
        return 0;
    }
    for (size_t i = 0; i < *n; i++)
        if (strcmp(out[i], s) == 0) {
            free(s);
            return 0;
        }
    out[(*n)++] = s;
    return 0;
}

int pt_url_secrets(const char *url, char **out, size_t max, size_t *n)
{
    char *info = url ? raw_userinfo(url) : NULL;
    if (!info)
        return 0;
    int rc = push(out, max, n, strdup(info));
    char *colon = strchr(info, ':');
    if (rc == 0 && colon)
        rc = push(out, max, n, strdup(colon + 1));
    if (rc == 0 && colon)
        rc = push(out, max, n, pct_decode(colon + 1));
    if (rc == 0 && !colon) /* a token given as the user name */
        rc = push(out, max, n, strdup(info));
    free(info);
    return rc;
}
