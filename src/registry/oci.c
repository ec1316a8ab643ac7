/* oci.c — a client of one repository of an OCI distribution registry
 * (pactown/oci.h): libcurl for HTTP, OpenSSL's libcrypto for sha256 and
 * base64, jansson for the credentials file and token answers. */
#include "pactown/oci.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pactown/ociref.h"
#include "pactown/vec.h"

#define MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define SMALL_MAX (4u << 20) /* manifests, token answers, tag lists, error bodies */

struct pt_oci {
    pt_ociref ref;
    char base[600];   /* scheme://host/v2/repository */
    char name[520];   /* host/repository */
    char *user, *pass;/* from registry_auth; NULL = anonymous */
    char *authz;      /* the Authorization header that worked last, NULL none */
    char scope[8];    /* the actions authz's token was asked for: "" | "pull" | "push" */
    long timeout;
    CURL *curl;
};

/* ---- small helpers ---- */

void pt_digest_format(const unsigned char sha256[32], char *out)
{
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", sha256[i]);
}

void pt_sha256_digest(const void *data, size_t len, char *out)
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    pt_digest_format(md, out);
}

bool pt_digest_valid(const char *s)
{
    if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != PT_DIGEST_LEN)
        return false;
    for (const char *p = s + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static void md_hex(EVP_MD_CTX *md, char *out)
{
    unsigned char h[32];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md, h, &n);
    pt_digest_format(h, out);
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* ---- credentials ---- */

/* auths' keys are written "host", "host:port", or as a URL ("https://host/v1/") */
static bool auth_key_matches(const char *k, const char *host)
{
    if (strncmp(k, "https://", 8) == 0)
        k += 8;
    else if (strncmp(k, "http://", 7) == 0)
        k += 7;
    size_t n = strcspn(k, "/");
    return strlen(host) == n && strncmp(k, host, n) == 0;
}

static int load_auth(pt_oci *c, const char *file, pt_error *err)
{
    if (!file || !*file)
        return 0;
    struct stat st;
    if (stat(file, &st) != 0)
        return pt_error_set(err, -errno, 0, "registry_auth %s: %s", file, strerror(errno));
    if (st.st_mode & 077)
        return pt_error_set(err, -EACCES, 0,
                            "registry_auth %s: readable by group or others (mode %04o); chmod 600 it",
                            file, (unsigned)(st.st_mode & 07777));
    json_error_t je;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return pt_error_set(err, -EPROTO, (unsigned)je.line, "registry_auth %s:%d: %s", file, je.line, je.text);
    int rc = 0;
    json_t *auths = json_object_get(root, "auths");
    if (auths && !json_is_object(auths))
        rc = pt_error_set(err, -EPROTO, 0, "registry_auth %s: \"auths\" is not an object", file);
    const char *k;
    json_t *v;
    json_object_foreach(rc ? NULL : auths, k, v) {
        if (!auth_key_matches(k, c->ref.host) || !json_is_object(v))
            continue;
        const char *b64 = json_string_value(json_object_get(v, "auth"));
        const char *u = json_string_value(json_object_get(v, "username"));
        const char *p = json_string_value(json_object_get(v, "password"));
        if (b64 && *b64) {
            size_t n = strlen(b64);
            unsigned char *dec = calloc(1, n + 4);
            int m = dec ? EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n) : -1;
            while (m > 0 && n > 0 && b64[n - 1] == '=') {
                m--;
                n--;
            }
            char *colon = m > 0 ? memchr(dec, ':', (size_t)m) : NULL;
            if (colon) {
                dec[m] = '\0';
                *colon = '\0';
                c->user = strdup((char *)dec);
                c->pass = strdup(colon + 1);
            }
            if (dec) {
                explicit_bzero(dec, n + 4);
                free(dec);
            }
            if (!colon)
                rc = pt_error_set(err, -EPROTO, 0, "registry_auth %s: the \"auth\" of %s is not base64 of user:password",
                                  file, k);
        } else if (u && p) {
            c->user = strdup(u);
            c->pass = strdup(p);
        }
        break;
    }
    json_decref(root);
    if (!rc && c->user && (!c->user || !c->pass))
        rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
    return rc;
}

int pt_oci_open(const char *url, const char *auth_file, long timeout_s, pt_oci **out, pt_error *err)
{
    *out = NULL;
    pt_oci *c = calloc(1, sizeof *c);
    if (!c)
        return pt_error_set(err, -ENOMEM, 0, "out of memory");
    int rc = pt_ociref_parse(url, &c->ref, err);
    if (rc == 0)
        rc = load_auth(c, auth_file, err);
    if (rc == 0) {
        snprintf(c->base, sizeof c->base, "%s://%s/v2/%s", c->ref.https ? "https" : "http", c->ref.host,
                 c->ref.repository);
        snprintf(c->name, sizeof c->name, "%s/%s", c->ref.host, c->ref.repository);
        c->timeout = timeout_s > 0 ? timeout_s : 1;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (!(c->curl = curl_easy_init()))
            rc = pt_error_set(err, -ENOMEM, 0, "curl_easy_init failed");
    }
    if (rc) {
        pt_oci_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

pt_oci *pt_oci_dup(const pt_oci *c)
{
    pt_oci *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    *d = *c;
    d->user = c->user ? strdup(c->user) : NULL;
    d->pass = c->pass ? strdup(c->pass) : NULL;
    d->authz = c->authz ? strdup(c->authz) : NULL;
    d->curl = curl_easy_init();
    if (!d->curl || (c->user && !d->user) || (c->pass && !d->pass) || (c->authz && !d->authz)) {
        pt_oci_close(d);
        return NULL;
    }
    return d;
}

void pt_oci_close(pt_oci *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    wipe_free(c->user);
    wipe_free(c->pass);
    wipe_free(c->authz);
    free(c);
}

const char *pt_oci_name(const pt_oci *c)
{
    return c->name;
}

/* ---- one HTTP exchange ---- */

struct body_in {          /* what a PUT sends */
    const char *data;     /* in memory, or */
    int fd;               /* a file, read with pread; -1 */
    uint64_t size, off;
};

struct body_out {         /* where a 2xx answer's body goes */
    int fd;               /* -1: memory */
    char *buf;
    size_t len, cap;
    uint64_t max;         /* longer is -EFBIG (memory) or -EBADMSG (a blob of a known size) */
    EVP_MD_CTX *md;       /* hash of what came */
    uint64_t got;
    int err;
    long code;            /* the status of the response being received */
    char errbody[512];    /* the start of a non-2xx body */
    size_t errlen;
};

struct headers {
    char www_auth[1024];
    char location[2048];
    char link[1024];
    char content_type[256];
};

struct exchange {
    const char *method;   /* GET, HEAD, PUT, POST */
    const char *url;
    const char *accept;
    const char *content_type;
    struct body_in *in;
    struct body_out *out;
    bool small;           /* a total time limit */
    long code;
    bool foreign;         /* the answer came from another origin (a redirect was followed) */
    struct headers h;
};

static size_t on_header(char *b, size_t size, size_t nmemb, void *arg)
{
    struct headers *h = arg;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(b, "HTTP/", 5) == 0) { /* a new response (after a redirect): its own headers */
        memset(h, 0, sizeof *h);
        return n;
    }
    static const struct { const char *name; size_t off, cap; } want[] = {
        { "www-authenticate:", offsetof(struct headers, www_auth), sizeof ((struct headers *)0)->www_auth },
        { "location:", offsetof(struct headers, location), sizeof ((struct headers *)0)->location },
        { "link:", offsetof(struct headers, link), sizeof ((struct headers *)0)->link },
        { "content-type:", offsetof(struct headers, content_type), sizeof ((struct headers *)0)->content_type },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t l = strlen(want[i].name);
        if (n > l && strncasecmp(b, want[i].name, l) == 0) {
            const char *v = b + l;
            size_t vn = n - l;
            while (vn > 0 && (*v == ' ' || *v == '\t'))
                v++, vn--;
            while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
                vn--;
            char *dst = (char *)h + want[i].off;
            if (vn < want[i].cap) {
                memcpy(dst, v, vn);
                dst[vn] = '\0';
            }
        }
    }
    return n;
}

static size_t on_body(char *b, size_t size, size_t nmemb, void *arg)
{
    struct exchange *x = arg;
    struct body_out *o = x->out;
    size_t n = size * nmemb;
    long code = o->code; /* of this response (on_header_status): only a 2xx body is the content */
    if (code < 200 || code >= 300) {
        size_t room = sizeof o->errbody - 1 - o->errlen;
        size_t k = n < room ? n : room;
        memcpy(o->errbody + o->errlen, b, k);
        o->errlen += k;
        o->errbody[o->errlen] = '\0';
        return n;
    }
    if (o->got + n > o->max) {
        o->err = o->fd >= 0 ? -EBADMSG : -EFBIG;
        return 0;
    }
    if (o->md)
        EVP_DigestUpdate(o->md, b, n);
    o->got += n;
    if (o->fd >= 0) {
        for (size_t done = 0; done < n;) {
            ssize_t w = write(o->fd, b + done, n - done);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                o->err = -errno;
                return 0;
            }
            done += (size_t)w;
        }
        return n;
    }
    if (pt_buf_append(&o->buf, &o->len, &o->cap, b, n) != 0) {
        o->err = -ENOMEM;
        return 0;
    }
    return n;
}

/* libcurl calls the header callback before the body: the status is known by then */
static size_t on_header_status(char *b, size_t size, size_t nmemb, void *arg)
{
    struct exchange *x = arg;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(b, "HTTP/", 5) == 0 && x->out) {
        const char *sp = memchr(b, ' ', n);
        x->out->code = sp ? strtol(sp + 1, NULL, 10) : 0;
    }
    return on_header(b, size, nmemb, &x->h);
}

static size_t on_read(char *b, size_t size, size_t nmemb, void *arg)
{
    struct body_in *in = arg;
    size_t want = size * nmemb;
    uint64_t left = in->size - in->off;
    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (in->data) {
        memcpy(b, in->data + in->off, want);
    } else {
        ssize_t r;
        do
            r = pread(in->fd, b, want, (off_t)in->off);
        while (r < 0 && errno == EINTR);
        if (r <= 0)
            return CURL_READFUNC_ABORT;
        want = (size_t)r;
    }
    in->off += want;
    return want;
}

static int curl_errno(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return -EHOSTUNREACH;
    case CURLE_OUT_OF_MEMORY: return -ENOMEM;
    default: return -EPROTO;
    }
}

/* One request with the current Authorization. 0 with x->code set, or the transport's -errno. */
static int perform(pt_oci *c, struct exchange *x, const char *authz, pt_error *err)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = NULL;
    char line[4200];
    if (authz) {
        snprintf(line, sizeof line, "Authorization: %s", authz);
        hdr = curl_slist_append(hdr, line);
        explicit_bzero(line, sizeof line);
    }
    if (x->accept) {
        snprintf(line, sizeof line, "Accept: %s", x->accept);
        hdr = curl_slist_append(hdr, line);
    }
    if (x->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", x->content_type);
        hdr = curl_slist_append(hdr, line);
    }
    hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
    memset(&x->h, 0, sizeof x->h);
    curl_easy_setopt(h, CURLOPT_URL, x->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pactown-fs/0.1");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->ref.https ? "https" : "http");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, c->ref.https ? "https" : "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, strcmp(x->method, "GET") == 0 || strcmp(x->method, "HEAD") == 0 ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->timeout);
    if (x->small)
        curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_status);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (strcmp(x->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(x->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, x->in);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(x->in ? x->in->size : 0));
        if (x->in)
            x->in->off = 0;
    } else if (strcmp(x->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    CURLcode cc = curl_easy_perform(h);
    if (authz && hdr)
        explicit_bzero(hdr->data, strlen(hdr->data)); /* the Authorization line is the list's first */
    curl_slist_free_all(hdr);
    if (cc != CURLE_OK) {
        if (x->out && x->out->err)
            return pt_error_set(err, x->out->err, 0, "%s %s: %s", x->method, x->url,
                                x->out->err == -EBADMSG ? "longer than the manifest says" :
                                x->out->err == -EFBIG ? "answer too large" : strerror(-x->out->err));
        return pt_error_set(err, curl_errno(cc), 0, "%s %s: %s", x->method, x->url, *errbuf ? errbuf : curl_easy_strerror(cc));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->code);
    char *eff = NULL;
    size_t origin = (size_t)(strstr(c->base, "/v2/") - c->base);
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
    x->foreign = !eff || strncmp(eff, c->base, origin) != 0 || (eff[origin] != '/' && eff[origin] != '\0');
    return 0;
}

/* the value of param (realm, service, scope) in a challenge's text into out */
static bool challenge_param(const char *ch, const char *param, char *out, size_t n)
{
    size_t pl = strlen(param);
    for (const char *p = ch; (p = strcasestr(p, param)) != NULL; p += pl) {
        if (p != ch && p[-1] != ' ' && p[-1] != ',')
            continue;
        const char *v = p + pl;
        if (*v != '=')
            continue;
        v++;
        size_t k = 0;
        if (*v == '"') {
            v++;
            while (*v && *v != '"' && k + 1 < n)
                out[k++] = *v++;
        } else {
            while (*v && *v != ',' && *v != ' ' && k + 1 < n)
                out[k++] = *v++;
        }
        out[k] = '\0';
        return k > 0;
    }
    return false;
}

static char *basic_header(const pt_oci *c)
{
    size_t n = strlen(c->user) + 1 + strlen(c->pass);
    char *plain = malloc(n + 1);
    char *h = malloc(6 + 4 * ((n + 2) / 3) + 1);
    if (!plain || !h) {
        free(plain);
        free(h);
        return NULL;
    }
    snprintf(plain, n + 1, "%s:%s", c->user, c->pass);
    memcpy(h, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)h + 6, (unsigned char *)plain, (int)n);
    explicit_bzero(plain, n);
    free(plain);
    return h;
}

/* The token flow: GET realm?service=…&scope=…, with the credentials when there are any. */
static int fetch_token(pt_oci *c, const char *challenge, const char *actions, pt_error *err)
{
    char realm[1024], service[256] = "", scope[512];
    if (!challenge_param(challenge, "realm", realm, sizeof realm))
        return pt_error_set(err, -EPROTO, 0, "%s: a Bearer challenge without a realm", c->name);
    challenge_param(challenge, "service", service, sizeof service);
    snprintf(scope, sizeof scope, "repository:%s:%s", c->ref.repository, actions);
    /* the credentials go there: plain http only for a loopback registry's loopback realm */
    if (strncmp(realm, "https://", 8) != 0 && !(!c->ref.https && pt_ociref_http_loopback(realm)))
        return pt_error_set(err, -EPROTO, 0, "%s: the token realm %s is not https (plain http only to a loopback host)",
                            c->name, realm);
    char *es = curl_easy_escape(c->curl, service, 0), *sc = curl_easy_escape(c->curl, scope, 0);
    char url[2048];
    snprintf(url, sizeof url, "%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?", es ? es : "",
             sc ? sc : "");
    curl_free(es);
    curl_free(sc);
    struct body_out o = { .fd = -1, .max = SMALL_MAX };
    struct exchange x = { .method = "GET", .url = url, .out = &o, .small = true };
    char *basic = c->user ? basic_header(c) : NULL;
    int rc = perform(c, &x, basic, err);
    wipe_free(basic);
    if (rc == 0 && x.code != 200)
        rc = pt_error_set(err, x.code == 401 || x.code == 403 ? -EACCES : -EPROTO, 0,
                          "%s: the token service %s answered %ld%s", c->name, realm, x.code,
                          x.code == 401 && !c->user ? " (no credentials for this host in registry_auth)"
                          : x.code == 401 ? " (credentials refused)" : "");
    json_t *j = rc == 0 ? json_loadb(o.buf ? o.buf : "", o.len, 0, NULL) : NULL;
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (!tok)
        tok = json_string_value(json_object_get(j, "access_token"));
    if (rc == 0 && (!tok || !*tok))
        rc = pt_error_set(err, -EPROTO, 0, "%s: the token service %s gave no token", c->name, realm);
    if (rc == 0) {
        wipe_free(c->authz);
        if (asprintf(&c->authz, "Bearer %s", tok) < 0) {
            c->authz = NULL;
            rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
        }
        snprintf(c->scope, sizeof c->scope, "%s", strchr(actions, ',') ? "push" : "pull");
    }
    json_decref(j);
    if (o.buf) {
        explicit_bzero(o.buf, o.len);
        free(o.buf);
    }
    return rc;
}

/* A request with authentication: on 401, the challenge is answered (once
 * per kind) and the request sent again. push: the token is asked for
 * pull and push. */
static int call(pt_oci *c, struct exchange *x, bool push, pt_error *err)
{
    bool tried_basic = false, tried_token = false;
    for (;;) {
        if (x->out) {
            x->out->len = 0;
            x->out->got = 0;
            x->out->errlen = 0;
            x->out->err = 0;
            if (x->out->md)
                EVP_DigestInit_ex(x->out->md, EVP_sha256(), NULL);
        }
        int rc = perform(c, x, c->authz, err);
        if (rc)
            return rc;
        if (x->code != 401)
            return 0;
        if (x->foreign) /* a redirect's host (a storage backend) asking for credentials: never given */
            return pt_error_set(err, -EACCES, 0, "%s: 401 Unauthorized from another host after a redirect: no credentials "
                                "are sent there", c->name);
        const char *ch = x->h.www_auth;
        if (strncasecmp(ch, "Basic", 5) == 0) {
            if (!c->user)
                return pt_error_set(err, -EACCES, 0, "%s: 401 Unauthorized, and registry_auth has no credentials for %s",
                                    c->name, c->ref.host);
            if (tried_basic)
                return pt_error_set(err, -EACCES, 0, "%s: 401 Unauthorized: the credentials of registry_auth were refused",
                                    c->name);
            tried_basic = true;
            wipe_free(c->authz);
            if (!(c->authz = basic_header(c)))
                return pt_error_set(err, -ENOMEM, 0, "out of memory");
        } else if (strncasecmp(ch, "Bearer", 6) == 0) {
            if (tried_token)
                return pt_error_set(err, -EACCES, 0, "%s: 401 Unauthorized with a fresh token%s", c->name,
                                    c->user ? "" : " (registry_auth has no credentials for this host)");
            tried_token = true;
            if ((rc = fetch_token(c, ch, push ? "pull,push" : "pull", err)) != 0)
                return rc;
        } else {
            return pt_error_set(err, -EACCES, 0, "%s: 401 Unauthorized, with no challenge this client answers", c->name);
        }
    }
}

static int status_error(pt_oci *c, const struct exchange *x, const char *what, pt_error *err)
{
    int e = x->code == 404 ? -ENOENT : x->code == 401 || x->code == 403 ? -EACCES : -EPROTO;
    const char *body = x->out && x->out->errlen ? x->out->errbody : "";
    char shown[200];
    size_t k = 0;
    for (const char *p = body; *p && k + 1 < sizeof shown; p++)
        shown[k++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    shown[k] = '\0';
    return pt_error_set(err, e, 0, "%s: %s: HTTP %ld%s%s", c->name, what, x->code, *shown ? ": " : "", shown);
}

/* ---- the operations ---- */

int pt_oci_manifest_get(pt_oci *c, const char *ref, char **body, size_t *len, char *digest, pt_error *err)
{
    *body = NULL;
    *len = 0;
    char url[1024];
    snprintf(url, sizeof url, "%s/manifests/%s", c->base, ref);
    struct body_out o = { .fd = -1, .max = SMALL_MAX, .md = EVP_MD_CTX_new() };
    struct exchange x = { .method = "GET", .url = url, .accept = MANIFEST_TYPE, .out = &o, .small = true };
    int rc = o.md ? call(c, &x, false, err) : pt_error_set(err, -ENOMEM, 0, "out of memory");
    if (rc == 0 && x.code != 200)
        rc = status_error(c, &x, ref, err);
    if (rc == 0 && strncmp(x.h.content_type, MANIFEST_TYPE, strlen(MANIFEST_TYPE)) != 0)
        rc = pt_error_set(err, -EPROTO, 0, "%s: manifest %s is of type '%s', not an OCI image manifest", c->name, ref,
                          x.h.content_type);
    if (rc == 0 && !o.buf)
        rc = pt_error_set(err, -EPROTO, 0, "%s: manifest %s is empty", c->name, ref);
    if (rc == 0 && digest)
        md_hex(o.md, digest);
    EVP_MD_CTX_free(o.md);
    if (rc) {
        free(o.buf);
        return rc;
    }
    *body = o.buf;
    *len = o.len;
    return 0;
}

int pt_oci_manifest_put(pt_oci *c, const char *tag, const char *body, size_t len, pt_error *err)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/manifests/%s", c->base, tag);
    struct body_in in = { .data = body, .fd = -1, .size = len };
    struct body_out o = { .fd = -1, .max = SMALL_MAX };
    struct exchange x = { .method = "PUT", .url = url, .content_type = MANIFEST_TYPE, .in = &in, .out = &o, .small = true };
    int rc = call(c, &x, true, err);
    if (rc == 0 && x.code != 201 && x.code != 200)
        rc = status_error(c, &x, "PUT manifest", err);
    free(o.buf);
    return rc;
}

int pt_oci_blob_exists(pt_oci *c, const char *digest, pt_error *err)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/blobs/%s", c->base, digest);
    struct body_out o = { .fd = -1, .max = SMALL_MAX };
    struct exchange x = { .method = "HEAD", .url = url, .out = &o, .small = true };
    int rc = call(c, &x, false, err);
    free(o.buf);
    if (rc)
        return rc;
    if (x.code == 200)
        return 1;
    if (x.code == 404)
        return 0;
    return status_error(c, &x, "HEAD blob", err);
}

static int blob_get(pt_oci *c, const char *digest, uint64_t size, struct body_out *o, pt_error *err)
{
    char url[1024], got[PT_DIGEST_LEN + 1];
    snprintf(url, sizeof url, "%s/blobs/%s", c->base, digest);
    o->max = size;
    o->md = EVP_MD_CTX_new();
    struct exchange x = { .method = "GET", .url = url, .out = o };
    int rc = o->md ? call(c, &x, false, err) : pt_error_set(err, -ENOMEM, 0, "out of memory");
    if (rc == 0 && x.code != 200)
        rc = status_error(c, &x, digest, err);
    if (rc == 0 && o->got != size)
        rc = pt_error_set(err, -EBADMSG, 0, "%s: blob %s: %llu bytes, the manifest says %llu", c->name, digest,
                          (unsigned long long)o->got, (unsigned long long)size);
    if (rc == 0) {
        md_hex(o->md, got);
        if (strcmp(got, digest) != 0)
            rc = pt_error_set(err, -EBADMSG, 0, "%s: blob %s: its content's digest is %s", c->name, digest, got);
    }
    EVP_MD_CTX_free(o->md);
    o->md = NULL;
    return rc;
}

int pt_oci_blob_get(pt_oci *c, const char *digest, uint64_t size, int fd, pt_error *err)
{
    struct body_out o = { .fd = fd };
    int rc = blob_get(c, digest, size, &o, err);
    free(o.buf);
    return rc;
}

int pt_oci_blob_get_mem(pt_oci *c, const char *digest, uint64_t size, char **out, pt_error *err)
{
    *out = NULL;
    if (size > SMALL_MAX)
        return pt_error_set(err, -EFBIG, 0, "%s: blob %s: %llu bytes is over the limit", c->name, digest,
                            (unsigned long long)size);
    struct body_out o = { .fd = -1 };
    int rc = blob_get(c, digest, size, &o, err);
    if (rc == 0 && !o.buf && !(o.buf = calloc(1, 1)))
        rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
    if (rc) {
        free(o.buf);
        return rc;
    }
    *out = o.buf;
    return 0;
}

static int blob_put(pt_oci *c, const char *digest, struct body_in *in, pt_error *err)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/blobs/uploads/", c->base);
    struct body_out o = { .fd = -1, .max = SMALL_MAX };
    struct exchange x = { .method = "POST", .url = url, .out = &o, .small = true };
    int rc = call(c, &x, true, err);
    if (rc == 0 && x.code != 202)
        rc = status_error(c, &x, "POST blob upload", err);
    if (rc == 0 && !*x.h.location)
        rc = pt_error_set(err, -EPROTO, 0, "%s: POST blob upload: no Location", c->name);
    char put[4200];
    if (rc == 0) {
        const char *loc = x.h.location;
        size_t origin_len = (size_t)(strstr(c->base, "/v2/") - c->base);
        /* a relative Location is against the registry's origin; the credentials go to no other */
        if (loc[0] != '/' && (strncmp(loc, c->base, origin_len) != 0 || loc[origin_len] != '/')) {
            rc = pt_error_set(err, -EPROTO, 0, "%s: the upload's Location is on another host", c->name);
        } else if (loc[0] == '/') {
            size_t origin = (size_t)(strstr(c->base, "/v2/") - c->base);
            snprintf(put, sizeof put, "%.*s%s%sdigest=%s", (int)origin, c->base, loc, strchr(loc, '?') ? "&" : "?", digest);
        } else {
            snprintf(put, sizeof put, "%s%sdigest=%s", loc, strchr(loc, '?') ? "&" : "?", digest);
        }
    }
    if (rc == 0) {
        struct exchange y = { .method = "PUT", .url = put, .content_type = "application/octet-stream", .in = in,
                              .out = &o };
        o.len = 0;
        rc = call(c, &y, true, err);
        if (rc == 0 && y.code != 201)
            rc = status_error(c, &y, "PUT blob", err);
    }
    free(o.buf);
    return rc;
}

int pt_oci_blob_put(pt_oci *c, const char *digest, int fd, uint64_t size, pt_error *err)
{
    struct body_in in = { .fd = fd, .size = size };
    return blob_put(c, digest, &in, err);
}

int pt_oci_blob_put_mem(pt_oci *c, const char *digest, const void *data, size_t len, pt_error *err)
{
    struct body_in in = { .data = data, .fd = -1, .size = len };
    return blob_put(c, digest, &in, err);
}

void pt_oci_tags_free(char **tags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tags[i]);
    free(tags);
}

int pt_oci_tags(pt_oci *c, char ***tags, size_t *n, pt_error *err)
{
    *tags = NULL;
    *n = 0;
    char url[2048];
    snprintf(url, sizeof url, "%s/tags/list?n=1000", c->base);
    size_t cap = 0;
    int rc = 0;
    for (int page = 0; page < 10000 && rc == 0; page++) {
        struct body_out o = { .fd = -1, .max = SMALL_MAX };
        struct exchange x = { .method = "GET", .url = url, .accept = "application/json", .out = &o, .small = true };
        rc = call(c, &x, false, err);
        if (rc == 0 && x.code == 404) { /* no repository yet: no tags */
            free(o.buf);
            break;
        }
        if (rc == 0 && x.code != 200)
            rc = status_error(c, &x, "tags/list", err);
        json_t *j = rc == 0 ? json_loadb(o.buf ? o.buf : "", o.len, 0, NULL) : NULL;
        json_t *list = json_object_get(j, "tags");
        if (rc == 0 && list && !json_is_array(list))
            rc = pt_error_set(err, -EPROTO, 0, "%s: tags/list: \"tags\" is not an array", c->name);
        size_t i;
        json_t *t;
        json_array_foreach(rc ? NULL : list, i, t) {
            const char *s = json_string_value(t);
            if (!s)
                continue;
            char **nt = pt_grow(*tags, &cap, *n, sizeof *nt);
            if (!nt) {
                rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
                break;
            }
            *tags = nt;
            if (!((*tags)[*n] = strdup(s))) {
                rc = pt_error_set(err, -ENOMEM, 0, "out of memory");
                break;
            }
            (*n)++;
        }
        json_decref(j);
        free(o.buf);
        /* Link: </v2/<name>/tags/list?n=…&last=…>; rel="next" */
        const char *lt = strchr(x.h.link, '<'), *gt = lt ? strchr(lt, '>') : NULL;
        if (rc || !lt || !gt || !strstr(gt, "next"))
            break;
        size_t origin = (size_t)(strstr(c->base, "/v2/") - c->base);
        if (lt[1] != '/') /* the credentials go to the registry's own origin only */
            break;
        snprintf(url, sizeof url, "%.*s%.*s", (int)origin, c->base, (int)(gt - lt - 1), lt + 1);
    }
    if (rc) {
        pt_oci_tags_free(*tags, *n);
        *tags = NULL;
        *n = 0;
    }
    return rc;
}
