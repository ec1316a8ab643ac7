/* http.c — the API's request handling: the body (bounded by api_max_body),
 * the token, the routes, and the JSON answers (api.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "pactown/vec.h"
#include "pactown/ports.h"
#include <sys/socket.h>
#include "http.h"

/* What libmicrohttpd keeps for one request between its calls. */
struct pending {
    char *body;
    size_t len, cap;
    bool refused;           /* answered already (401, 413) */
    bool unauthorized;      /* no valid token: the body is read and dropped, then 401 */
    size_t discarded;       /* bytes dropped past api_max_body, or of an unauthorized request */
};

#define UNAUTHORIZED_TEXT "a valid runner token is required (header X-Runner-Token, or Authorization: Bearer)"

#define DISCARD_MAX ((size_t)16 << 20)

/* Compare the given token with ours in time that depends only on our
 * token's length, so that the answer's timing says nothing about how much
 * of a guess was right. */
static bool token_ok(const char *ours, const char *given)
{
    if (!given)
        return false;
    size_t n = strlen(ours), g = strlen(given);
    unsigned char diff = n != g;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(ours[i] ^ (i < g ? given[i] : 0));
    return diff == 0;
}

/* A connection from a user's service (a uid of user_uid_min..user_uid_max)
 * over loopback TCP: it never gets the runner without a token, or any user
 * could run as root or as another user. */
static bool from_users_uid(struct api *api, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    uid_t uid;
    if (!ci || !ci->client_addr ||
        (ci->client_addr->sa_family != AF_INET && ci->client_addr->sa_family != AF_INET6))
        return false; /* the Unix socket: its mode (0660) decides */
    /* the server's own end of this connection: the client's socket is the one connected to it */
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct sockaddr_storage here;
    socklen_t hl = sizeof here;
    bool have_here = fi && getsockname(fi->connect_fd, (struct sockaddr *)&here, &hl) == 0;
    if (pt_tcp_socket_uid(ci->client_addr, have_here ? (struct sockaddr *)&here : NULL, &uid) != 0)
        return true; /* not a local socket we can see: treated as a user's */
    return (long)uid >= api->cli.cfg.user_uid_min && (long)uid <= api->cli.cfg.user_uid_max;
}

static bool authorized(struct api *api, struct MHD_Connection *conn)
{
    if (!api->token)
        return !from_users_uid(api, conn);
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Runner-Token");
    if (h && token_ok(api->token, h))
        return true;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *t = auth + 7;
        while (*t == ' ')
            t++;
        return token_ok(api->token, t);
    }
    return false;
}

void api_fail(struct api_answer *ans, unsigned status, const char *field, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_decref(ans->body);
    ans->status = status;
    /* pactown's RunResult reads message, logs and error_category of any answer */
    const char *cat = status == 400 || status == 413 ? "validation" : status == 401 || status == 403 ? "permission"
                    : status == 503 ? "environment" : "unknown";
    ans->body = json_pack("{s:b, s:o, s:o, s:o, s:[], s:s}", "success", 0, "error", api_text(msg, strlen(msg)),
                          "detail", api_text(msg, strlen(msg)), "message", api_text(msg, strlen(msg)), "logs",
                          "error_category", cat);
    if (ans->body && field)
        json_object_set_new(ans->body, "field", json_string(field));
}

static enum MHD_Result send_answer(struct MHD_Connection *conn, struct api_answer *ans)
{
    char *text = ans->body ? json_dumps(ans->body, JSON_COMPACT) : NULL;
    json_decref(ans->body);
    ans->body = NULL;
    size_t n = text ? strlen(text) : 0;
    if (!text) {
        ans->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        text = strdup("{\"success\":false,\"error\":\"out of memory\"}");
        n = text ? strlen(text) : 0;
    }
    char *with_nl = text ? realloc(text, n + 2) : NULL;
    if (with_nl) {
        with_nl[n++] = '\n';
        with_nl[n] = '\0';
        text = with_nl;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(conn, ans->status, r);
    MHD_destroy_response(r);
    return rc;
}

/* "/runner/x" and "/x" are the same route: a proxy in front adds /runner. */
static const char *route_path(const char *url)
{
    if (strncmp(url, "/runner", 7) == 0 && (url[7] == '/' || url[7] == '\0'))
        return url[7] ? url + 7 : "/";
    return url;
}

/* "/status/ID" -> "ID" when path starts with prefix and the rest has no '/'. */
static const char *tail_of(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0 || !path[n] || strchr(path + n, '/'))
        return NULL;
    return path + n;
}

/* "/sandbox/ID/files" -> ID into id when it matches. */
static bool sandbox_path(const char *path, const char *what, char *id, size_t n)
{
    if (strncmp(path, "/sandbox/", 9) != 0)
        return false;
    const char *s = path + 9, *slash = strchr(s, '/');
    if (!slash || strcmp(slash + 1, what) != 0 || (size_t)(slash - s) >= n || slash == s)
        return false;
    snprintf(id, n, "%.*s", (int)(slash - s), s);
    return true;
}

static void dispatch(struct api_call *c, struct api_answer *ans)
{
    const char *p = c->path, *m = c->method, *id;
    char sid[PT_SERVICE_ID_MAX + 2];
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0, post = strcmp(m, "POST") == 0;
    bool known = true, method_ok = true;
    if (strcmp(p, "/health") == 0 || strcmp(p, "/") == 0)
        get ? api_route_health(c, ans) : (void)(method_ok = false);
    else if (strcmp(p, "/validate") == 0)
        post ? api_route_validate(c, ans) : (void)(method_ok = false);
    else if (strcmp(p, "/run") == 0)
        post ? api_route_run(c, ans, false) : (void)(method_ok = false);
    else if (strcmp(p, "/run/stream") == 0)
        post ? api_route_run(c, ans, true) : (void)(method_ok = false);
    else if (strcmp(p, "/stop") == 0)
        post ? api_route_stop(c, ans) : (void)(method_ok = false);
    else if (strcmp(p, "/status") == 0)
        get ? api_route_status(c, ans, NULL) : (void)(method_ok = false);
    else if ((id = tail_of(p, "/status/")))
        get ? api_route_status(c, ans, id) : (void)(method_ok = false);
    else if ((id = tail_of(p, "/logs/")))
        get ? api_route_logs(c, ans, id) : (void)(method_ok = false);
    else if ((id = tail_of(p, "/services/")))
        strcmp(m, "DELETE") == 0 ? api_route_delete(c, ans, id) : (void)(method_ok = false);
    else if ((id = tail_of(p, "/test/")))
        get ? api_route_test(c, ans, id) : (void)(method_ok = false);
    else if (strcmp(p, "/cache/stats") == 0)
        get ? api_route_cache_stats(c, ans) : (void)(method_ok = false);
    else if (strcmp(p, "/cache/venv") == 0)
        post ? api_route_cache_venv(c, ans) : (void)(method_ok = false);
    else if (strcmp(p, "/sandbox/prepare") == 0)
        post ? api_route_prepare(c, ans) : (void)(method_ok = false);
    else if (sandbox_path(p, "files", sid, sizeof sid))
        get ? api_route_files(c, ans, sid) : (void)(method_ok = false);
    else if (sandbox_path(p, "file", sid, sizeof sid))
        get || strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0 ? api_route_file(c, ans, sid)
                                                                 : (void)(method_ok = false);
    else
        known = false;
    if (!known)
        api_fail(ans, MHD_HTTP_NOT_FOUND, NULL, "no route %s %s (see docs/API.md)", m, p);
    else if (!method_ok)
        api_fail(ans, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, "%s is not allowed on %s", m, p);
}

static enum MHD_Result too_large(struct api *api, struct MHD_Connection *conn)
{
    struct api_answer ans = { 0 };
    api_fail(&ans, MHD_HTTP_CONTENT_TOO_LARGE, NULL, "the request body is larger than %ld bytes (api_max_body)",
             api->cli.cfg.api_max_body);
    return send_answer(conn, &ans);
}

size_t api_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    size_t n = MHD_http_unescape(s);
    /* %00 would cut an id or a path short where it is read as a C string
     * ("victim%00x" as "victim"): it becomes DEL, which no id and no
     * sandbox path may hold, so the request is refused instead */
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0')
            s[i] = 0x7f;
    return n;
}

enum MHD_Result api_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct api *api = cls;
    struct pending *pd = *con_cls;
    struct api_answer ans = { 0 };
    if (!pd) {
        pd = calloc(1, sizeof *pd);
        if (!pd)
            return MHD_NO;
        *con_cls = pd;
        /* The token with the headers, before a byte of the body is kept.
         * A body of up to DISCARD_MAX is still read and dropped before the
         * 401: answered while the client still sends, the connection's close
         * with unread bytes resets it (RFC 9112 9.6), and the client loses
         * the answer; a client that sent Expect: 100-continue waits, and
         * gets the 401 at once. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (strcmp(route_path(url), "/health") != 0 && !authorized(api, conn)) {
            pd->unauthorized = true;
            const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            bool waits = expect && strcasecmp(expect, "100-continue") == 0; /* sends no body before our answer */
            if (!waits && (!cl || strtoull(cl, NULL, 10) <= (unsigned long long)DISCARD_MAX))
                return MHD_YES;
            pd->refused = true;
            api_fail(&ans, MHD_HTTP_UNAUTHORIZED, NULL, UNAUTHORIZED_TEXT);
            return send_answer(conn, &ans);
        }
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)api->cli.cfg.api_max_body) {
            pd->refused = true; /* before 100 Continue: the client need not send it */
            return too_large(api, conn);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (pd->refused)
            return MHD_YES;
        if (pd->unauthorized) {
            pd->discarded += n;
            if (pd->discarded <= DISCARD_MAX)
                return MHD_YES;
            pd->refused = true;
            api_fail(&ans, MHD_HTTP_UNAUTHORIZED, NULL, UNAUTHORIZED_TEXT);
            return send_answer(conn, &ans);
        }
        if (pd->len + n > (size_t)api->cli.cfg.api_max_body) {
            /* chunked, without a length: the rest is read and dropped, so
             * that the client, still sending, gets the 413 at the end; past
             * DISCARD_MAX more the connection is cut with it */
            pd->discarded += n;
            if (pd->discarded <= DISCARD_MAX)
                return MHD_YES;
            pd->refused = true;
            return too_large(api, conn);
        }
        return pt_buf_append(&pd->body, &pd->len, &pd->cap, upload, n) == 0 ? MHD_YES : MHD_NO;
    }
    if (pd->refused)
        return MHD_YES;
    if (pd->unauthorized) {
        pd->refused = true;
        api_fail(&ans, MHD_HTTP_UNAUTHORIZED, NULL, UNAUTHORIZED_TEXT);
        return send_answer(conn, &ans);
    }
    if (pd->discarded)
        return too_large(api, conn);
    struct api_call c = { .api = api, .conn = conn, .method = method, .path = route_path(url),
                          .body = pd->body ? pd->body : "", .len = pd->len };
    dispatch(&c, &ans);
    if (c.stream) {
        enum MHD_Result rc = MHD_queue_response(conn, ans.status, c.stream);
        MHD_destroy_response(c.stream);
        json_decref(ans.body);
        return rc;
    }
    return send_answer(conn, &ans);
}

void api_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    struct pending *pd = *con_cls;
    if (pd) {
        free(pd->body);
        free(pd);
        *con_cls = NULL;
    }
}

json_t *api_body_object(struct api_call *c, struct api_answer *ans)
{
    json_error_t je;
    json_t *o = json_loadb(c->body, c->len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        api_fail(ans, MHD_HTTP_BAD_REQUEST, NULL, "the request body is not JSON: line %d column %d: %s", je.line,
                 je.column, je.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        api_fail(ans, MHD_HTTP_BAD_REQUEST, NULL, "the request body must be a JSON object");
        return NULL;
    }
    return o;
}

/* The value of field name: 1 (in *v), 0 absent or null, -1 absent but
 * required (a 400 in *ans). */
static int field_get(json_t *o, const char *name, bool required, json_t **v, struct api_answer *ans)
{
    *v = json_object_get(o, name);
    if (*v && !json_is_null(*v))
        return 1;
    if (!required)
        return 0;
    api_fail(ans, MHD_HTTP_BAD_REQUEST, name, "field '%s' is required", name);
    return -1;
}

int api_field_str(json_t *o, const char *name, bool required, size_t max, const char **out, struct api_answer *ans)
{
    json_t *v;
    int got = field_get(o, name, required, &v, ans);
    if (got <= 0)
        return got;
    if (!json_is_string(v)) {
        api_fail(ans, MHD_HTTP_BAD_REQUEST, name, "field '%s': expected a string", name);
        return -1;
    }
    size_t n = json_string_length(v);
    if (n > max) {
        api_fail(ans, MHD_HTTP_BAD_REQUEST, name, "field '%s': longer than %zu bytes", name, max);
        return -1;
    }
    if (strlen(json_string_value(v)) != n) {
        api_fail(ans, MHD_HTTP_BAD_REQUEST, name, "field '%s': contains a NUL character", name);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int api_field_int(json_t *o, const char *name, bool required, long long lo, long long hi, long long *out,
                  struct api_answer *ans)
{
    json_t *v;
    int got = field_get(o, name, required, &v, ans);
    if (got <= 0)
        return got;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        api_fail(ans, MHD_HTTP_BAD_REQUEST, name, "field '%s': expected an integer %lld..%lld", name, lo, hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

int api_field_bool(json_t *o, const char *name, bool *out, struct api_answer *ans)
{
    json_t *v;
    if (field_get(o, name, false, &v, ans) == 0)
        return 0;
    if (!json_is_boolean(v)) {
        api_fail(ans, MHD_HTTP_BAD_REQUEST, name, "field '%s': expected true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int api_service_id(json_t *o, char id[PT_SERVICE_ID_MAX + 1], struct api_answer *ans)
{
    const char *sid = NULL, *user = NULL;
    long long project = -1;
    if (api_field_str(o, "service_id", false, 256, &sid, ans) || api_field_str(o, "username", false, 256, &user, ans))
        return -1;
    if (!sid && api_field_int(o, "project_id", true, 0, 999999999999LL, &project, ans))
        return -1;
    if (sid) {
        if (strchr(sid, '/') || strchr(sid, '\\') || strstr(sid, "..") || !pt_service_id_valid(sid)) {
            api_fail(ans, MHD_HTTP_BAD_REQUEST, "service_id",
                     "field 'service_id': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or"
                     " digit (no '/', '\\' or '..')");
            return -1;
        }
        snprintf(id, PT_SERVICE_ID_MAX + 1, "%s", sid);
        return 0;
    }
    int k = snprintf(id, PT_SERVICE_ID_MAX + 1, "%lld", project);
    if (user && *user) {
        /* the username as a DNS label: lower case letters, digits and '-' (at most 50: the id's 64 in all) */
        char label[51];
        size_t n = 0;
        for (const char *p = user; *p && n < sizeof label - 1; p++) {
            char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
            if (ok)
                label[n++] = ch;
            else if (n && label[n - 1] != '-')
                label[n++] = '-';
        }
        while (n && label[n - 1] == '-')
            n--;
        label[n] = '\0';
        if (n)
            snprintf(id + k, (size_t)(PT_SERVICE_ID_MAX + 1 - k), "-%.50s", label);
    }
    return 0;
}

json_t *api_text(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j && !memchr(s, '\0', n)) {
        bool clean = true;
        for (size_t i = 0; i < n && clean; i++)
            clean = (unsigned char)s[i] >= 0x20 || s[i] == '\t' || s[i] == '\n';
        if (clean)
            return j;
    }
    json_decref(j);
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        c[i] = ch >= 0x80 || ch < 0x20 ? (ch == '\t' || ch == '\n' ? (char)ch : '?') : (char)ch;
    }
    c[n] = '\0';
    j = json_stringn(c, n);
    free(c);
    return j;
}

bool api_busy_take(struct api *api, const char *id)
{
    bool ok = pt_service_id_valid(id); /* never cut to fit: a longer id would lock a shorter one */
    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->n_busy && ok; i++)
        ok = strcmp(api->busy[i], id) != 0;
    void *nv = ok ? pt_grow(api->busy, &api->cap_busy, api->n_busy, sizeof *api->busy) : NULL;
    if (nv)
        api->busy = nv;
    else
        ok = false;
    if (ok)
        snprintf(api->busy[api->n_busy++], sizeof *api->busy, "%s", id);
    pthread_mutex_unlock(&api->mu);
    return ok;
}

void api_busy_drop(struct api *api, const char *id)
{
    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < api->n_busy; i++)
        if (strcmp(api->busy[i], id) == 0) {
            memcpy(api->busy[i], api->busy[--api->n_busy], sizeof *api->busy);
            break;
        }
    pthread_mutex_unlock(&api->mu);
}

void api_cli(struct api *api, struct cli *cli, void (*say)(void *, bool, const char *), void *ctx)
{
    *cli = (struct cli){ .prog = "pactown serve", .cfg = api->cli.cfg, .idx = api->cli.idx, .borrowed = true,
                         .api = true, .say = say, .say_ctx = ctx };
}
