/* ociref.c — the `registry` setting parsed and checked (pactown/ociref.h). */
#include "pactown/ociref.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool component_valid(const char *s, size_t n)
{
    if (n == 0 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (lower_alnum(s[i]))
            continue;
        size_t j = i;
        while (j < n && !lower_alnum(s[j]))
            j++;
        size_t run = j - i;
        bool ok = (run == 1 && (s[i] == '.' || s[i] == '_')) || (run == 2 && s[i] == '_' && s[i + 1] == '_');
        if (!ok) { /* -+ */
            ok = true;
            for (size_t k = i; k < j; k++)
                ok &= s[k] == '-';
        }
        if (!ok)
            return false;
        i = j - 1;
    }
    return true;
}

bool pt_ociref_repository_valid(const char *s)
{
    if (!s || !*s || strlen(s) > 255)
        return false;
    for (const char *p = s;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!component_valid(p, n))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

static bool loopback(const char *host)
{
    char name[256];
    snprintf(name, sizeof name, "%s", host);
    if (name[0] == '[') {
        char *end = strchr(name, ']');
        if (end)
            *end = '\0';
        return strcmp(name + 1, "::1") == 0;
    }
    char *colon = strchr(name, ':');
    if (colon)
        *colon = '\0';
    if (strcmp(name, "localhost") == 0)
        return true;
    unsigned a, b, c, d;
    char tail;
    return sscanf(name, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 && c < 256 && d < 256;
}

bool pt_ociref_http_loopback(const char *url)
{
    if (!url || strncmp(url, "http://", 7) != 0)
        return false;
    const char *h = url + 7;
    size_t n = strcspn(h, "/?#");
    char host[256];
    if (n == 0 || n >= sizeof host || memchr(h, '@', n))
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    return loopback(host);
}

int pt_ociref_parse(const char *url, pt_ociref *out, pt_error *err)
{
    memset(out, 0, sizeof *out);
    if (!url)
        return pt_error_set(err, -EINVAL, 0, "registry: empty");
    const char *rest;
    if (strncmp(url, "https://", 8) == 0) {
        out->https = true;
        rest = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else {
        return pt_error_set(err, -EINVAL, 0, "registry '%s': expected https://HOST[:PORT]/REPOSITORY", url);
    }
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#' || *p == '\\')
            return pt_error_set(err, -EINVAL, 0, "registry '%s': no spaces, control bytes, query or fragment", url);
    const char *slash = strchr(rest, '/');
    size_t hn = slash ? (size_t)(slash - rest) : strlen(rest);
    if (memchr(rest, '@', hn))
        return pt_error_set(err, -EINVAL, 0,
                            "registry: no credentials in the URL (userinfo); put them in the registry_auth file");
    if (hn == 0 || hn >= sizeof out->host)
        return pt_error_set(err, -EINVAL, 0, "registry '%s': no host", url);
    memcpy(out->host, rest, hn);
    out->host[hn] = '\0';
    for (const char *p = out->host; *p; p++)
        if (!(lower_alnum(*p) || (*p >= 'A' && *p <= 'Z') || strchr(".-:[]", *p)))
            return pt_error_set(err, -EINVAL, 0, "registry '%s': bad host '%s'", url, out->host);
    const char *repo = slash ? slash + 1 : "";
    size_t rn = strlen(repo);
    while (rn > 0 && repo[rn - 1] == '/')
        rn--;
    if (rn == 0 || rn >= sizeof out->repository)
        return pt_error_set(err, -EINVAL, 0, "registry '%s': no repository (https://HOST/REPOSITORY)", url);
    memcpy(out->repository, repo, rn);
    out->repository[rn] = '\0';
    if (!pt_ociref_repository_valid(out->repository))
        return pt_error_set(err, -EINVAL, 0,
                            "registry '%s': '%s' is not a repository name (lower-case letters and digits, "
                            "separated by '.', '_', '__', '-' or '/')", url, out->repository);
    if (!out->https && !loopback(out->host))
        return pt_error_set(err, -EINVAL, 0,
                            "registry '%s': plain http only to a loopback host; use https for %s", url, out->host);
    return 0;
}
