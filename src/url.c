/* url.c — userinfo in URLs, with libcurl's URL API (curl_url(3)). */
#include "pactown/url.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* parse url; NULL if it is not an absolute URL libcurl understands */
static CURLU *parse(const char *url)
{
    CURLU *h = curl_url();
    if (!h)
        return NULL;
    if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        curl_url_cleanup(h);
        return NULL;
    }
    return h;
}

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
    CURLU *h = info ? parse(url) : NULL;
    if (!h) {
        /* no credentials (or not a URL libcurl parses: then drop the text
         * before '@' by hand, never keep it) */
        if (!info) {
            *public_url = strdup(url);
            return *public_url ? 0 : -ENOMEM;
        }
        const char *s = strstr(url, "://") + 3;
        size_t pre = (size_t)(s - url), skip = strlen(info) + 1;
        char *out = malloc(strlen(url) - skip + 1);
        if (!out) {
            free(info);
            return -ENOMEM;
        }
        memcpy(out, url, pre);
        strcpy(out + pre, s + skip);
        *public_url = out;
    } else {
        char *text = NULL;
        if (curl_url_set(h, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
            curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_URL, &text, 0) != CURLUE_OK) {
            curl_url_cleanup(h);
            free(info);
            return -ENOMEM;
        }
        curl_url_cleanup(h);
        *public_url = strdup(text);
        curl_free(text);
        if (!*public_url) {
            free(info);
            return -ENOMEM;
        }
    }
    if (userinfo)
        *userinfo = info;
    else
        free(info);
    return 0;
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
    CURLU *h = parse(url);
    char *pw = NULL;
    if (rc == 0 && h && curl_url_get(h, CURLUPART_PASSWORD, &pw, CURLU_URLDECODE) == CURLUE_OK && pw) {
        rc = push(out, max, n, strdup(pw));
        curl_free(pw);
    }
    if (h)
        curl_url_cleanup(h);
    if (rc == 0 && !colon) /* a token given as the user name */
        rc = push(out, max, n, strdup(info));
    free(info);
    return rc;
}
