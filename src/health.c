/* health.c — TCP/HTTP probes, listening-port discovery via /proc, and the
 * wait-until-healthy loop used by the run helper.
 *
 * libcurl is loaded with dlopen(3) on the first HTTP request, not linked: it
 * and its dependencies (TLS, Kerberos, LDAP, …: 30 libraries here) cost
 * 11 ms of every process start, and most runs of pactown (a --prepare hit,
 * ps, stop, the daemon, the builder) send no HTTP request at all
 * (docs/BENCHMARKS.md). Only its header is used at build time. */
#include "pactown/health.h"
#include "pactown/proc.h"
#include "pactown/warm.h"
#include "pactown/ports.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* other listening ports of the service: looked for after this long, then this often */
#define DISCOVER_AFTER_MS 1000
#define DISCOVER_EVERY_MS 250

#define NS_PER_MS 1000000LL
#define PT_PROBE_CAP_MS 1000

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Milliseconds left until deadline, rounded up, >= 0. */
static int ms_left(int64_t deadline)
{
    int64_t d = deadline - now_ns();
    if (d <= 0)
        return 0;
    d = (d + NS_PER_MS - 1) / NS_PER_MS;
    return d > INT32_MAX ? INT32_MAX : (int)d;
}

/* Parse a numeric address; 0 or -EINVAL. */
static int make_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *sl)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *sl = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *sl = sizeof *a6;
        return 0;
    }
    return -EINVAL;
}

static bool host_ok(const char *host)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    return host && (strcmp(host, "localhost") == 0 || make_addr(host, 1, &ss, &sl) == 0);
}

static int connect_one(const struct sockaddr_storage *ss, socklen_t sl, int64_t deadline)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, (const struct sockaddr *)ss, sl) == 0)
        goto out;
    if (errno != EINPROGRESS && errno != EINTR) {
        rc = -errno;
        goto out;
    }
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        int r = poll(&pfd, 1, ms_left(deadline));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (r == 0) {
            if (now_ns() >= deadline) {
                rc = -ETIMEDOUT;
                goto out;
            }
            continue;
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
            rc = -errno;
        else
            rc = -soerr;
        goto out;
    }
out:
    close(fd);
    return rc;
}

int pt_tcp_probe(const char *host, int port, int timeout_ms)
{
    if (!host || port < 1 || port > 65535 || timeout_ms < 0)
        return -EINVAL;
    int64_t deadline = now_ns() + (int64_t)timeout_ms * NS_PER_MS;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (strcmp(host, "localhost") == 0) {
        make_addr("127.0.0.1", port, &ss, &sl);
        int e1 = connect_one(&ss, sl, deadline);
        if (e1 == 0 || e1 == -ETIMEDOUT)
            return e1;
        make_addr("::1", port, &ss, &sl);
        return connect_one(&ss, sl, deadline) == 0 ? 0 : e1;
    }
    if (make_addr(host, port, &ss, &sl) < 0)
        return -EINVAL;
    return connect_one(&ss, sl, deadline);
}

#define LIBCURL "libcurl.so.4"

/* The few functions of libcurl used here, resolved once (curl_load). */
static struct {
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_perform) *easy_perform;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
} lc;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_rc = -EIO;        /* 0 once loaded and curl_global_init passed */
static char curl_why[512];        /* why it could not be loaded */

static void curl_load(void)
{
    void *h = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL); /* never closed: a process loads it once */
    if (!h) {
        const char *e = dlerror();
        snprintf(curl_why, sizeof curl_why, "cannot load libcurl, which HTTP requests need: %s",
                 e ? e : LIBCURL ": not found");
        curl_rc = -ELIBACC;
        return;
    }
    static const struct { const char *name; size_t off; } fns[] = {
        { "curl_global_init", offsetof(__typeof__(lc), global_init) },
        { "curl_easy_init", offsetof(__typeof__(lc), easy_init) },
        { "curl_easy_setopt", offsetof(__typeof__(lc), easy_setopt) },
        { "curl_easy_perform", offsetof(__typeof__(lc), easy_perform) },
        { "curl_easy_getinfo", offsetof(__typeof__(lc), easy_getinfo) },
        { "curl_easy_cleanup", offsetof(__typeof__(lc), easy_cleanup) },
        { "curl_slist_append", offsetof(__typeof__(lc), slist_append) },
        { "curl_slist_free_all", offsetof(__typeof__(lc), slist_free_all) },
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        void *sym = dlsym(h, fns[i].name);
        if (!sym) {
            snprintf(curl_why, sizeof curl_why, "cannot use libcurl, which HTTP requests need: no %s in " LIBCURL,
                     fns[i].name);
            curl_rc = -ELIBACC;
            return;
        }
        /* a function pointer from dlsym's void *: copied as bytes (dlsym(3)) */
        memcpy((char *)&lc + fns[i].off, &sym, sizeof sym);
    }
    CURLcode cc = lc.global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        snprintf(curl_why, sizeof curl_why, "cannot use libcurl, which HTTP requests need: curl_global_init failed"
                 " (CURLcode %d)", (int)cc);
        curl_rc = -ELIBACC;
        return;
    }
    curl_rc = 0;
}

int pt_http_load(void)
{
    pthread_once(&curl_once, curl_load);
    return curl_rc;
}

static void *load_main(void *arg)
{
    (void)arg;
    pt_http_load();
    return NULL;
}

/* libcurl loaded by a thread of its own while the service starts: its ~30
 * libraries took 5-10 ms of a warm start's 45 when the first probe loaded
 * them. A later pt_http_load waits for it (pthread_once); so does the end of
 * the health wait (load_done), so that no process exits while the loader runs. */
static atomic_bool load_started;

static void load_done(void)
{
    if (atomic_load(&load_started))
        pt_http_load();
}

static void load_soon(void)
{
    if (atomic_exchange(&load_started, true))
        return;
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, load_main, NULL) != 0)
        atomic_store(&load_started, false); /* the first probe loads it */
    pthread_attr_destroy(&at);
}

const char *pt_http_strerror(int rc)
{
    if (rc == -EIO)
        return "not an HTTP response";
    if (rc == -ELIBACC) {
        pthread_once(&curl_once, curl_load);
        return curl_why[0] ? curl_why : "cannot load " LIBCURL;
    }
    return strerror(-rc);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

/* "http://host:port" + path, IPv6 literals bracketed; malloc'd or NULL. */
static char *make_url(const char *host, int port, const char *path)
{
    char *url = NULL;
    int r = strchr(host, ':') ? asprintf(&url, "http://[%s]:%d%s", host, port, path)
                              : asprintf(&url, "http://%s:%d%s", host, port, path);
    return r < 0 ? NULL : url;
}

static bool method_ok(const char *m)
{
    if (!m || !*m || strlen(m) > 16)
        return false;
    for (; *m; m++)
        if (*m < 'A' || *m > 'Z')
            return false;
    return true;
}

int pt_http_request(const pt_http_req *rq, long *status)
{
    if (status)
        *status = 0;
    if (!rq || !status || !host_ok(rq->host) || rq->port < 1 || rq->port > 65535 || rq->timeout_ms <= 0 ||
        !rq->path || rq->path[0] != '/' || (rq->method && !method_ok(rq->method)) || (!rq->body && rq->body_len))
        return -EINVAL;
    for (const char *s = rq->path; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return -EINVAL;
    const char *method = rq->method ? rq->method : "GET";

    int lrc = pt_http_load();
    if (lrc)
        return lrc;

    char *url = make_url(rq->host, rq->port, rq->path);
    CURL *h = url ? lc.easy_init() : NULL;
    if (!h) {
        free(url);
        return -ENOMEM;
    }
    struct curl_slist *hdrs = NULL;
    int rc = -EIO;
    if (lc.easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        lc.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
        lc.easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK ||
        lc.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        lc.easy_setopt(h, CURLOPT_PATH_AS_IS, 1L) != CURLE_OK || /* the path as the test wrote it: no // or ../ folding */
        lc.easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        lc.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms) != CURLE_OK ||
        lc.easy_setopt(h, CURLOPT_USERAGENT, "pactown") != CURLE_OK ||
        lc.easy_setopt(h, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK)
        goto out;
    if (rq->body) {
        char ct[160];
        snprintf(ct, sizeof ct, "Content-Type: %s", rq->content_type ? rq->content_type : "application/json");
        if (!(hdrs = lc.slist_append(NULL, ct))) {
            rc = -ENOMEM;
            goto out;
        }
        if (lc.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
            lc.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len) != CURLE_OK ||
            lc.easy_setopt(h, CURLOPT_POSTFIELDS, rq->body) != CURLE_OK)
            goto out;
    }
    /* libcurl sends GET, HEAD with NOBODY, POST with POSTFIELDS; any other
     * method (or one of those with another body) is named */
    bool head = strcmp(method, "HEAD") == 0;
    bool named = rq->body ? strcmp(method, "POST") != 0 : strcmp(method, "GET") != 0 && !head;
    if ((head && !rq->body && lc.easy_setopt(h, CURLOPT_NOBODY, 1L) != CURLE_OK) ||
        (named && lc.easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK))
        goto out;

    CURLcode cc = lc.easy_perform(h);
    switch (cc) {
    case CURLE_OK: {
        long code = 0;
        if (lc.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code > 0) {
            *status = code;
            rc = 0;
        }
        break;
    }
    case CURLE_COULDNT_CONNECT:
        rc = -ECONNREFUSED;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        rc = -ETIMEDOUT;
        break;
    case CURLE_OUT_OF_MEMORY:
        rc = -ENOMEM;
        break;
    default:
        rc = -EIO;
        break;
    }
out:
    lc.slist_free_all(hdrs);
    lc.easy_cleanup(h);
    free(url);
    return rc;
}

int pt_http_probe(const char *host, int port, const char *path, int timeout_ms, long *status)
{
    pt_http_req rq = { .host = host, .port = port, .path = path, .timeout_ms = timeout_ms };
    return pt_http_request(&rq, status);
}

int pt_port_free(const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!host || port < 1 || port > 65535 ||
        make_addr(strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, port, &ss, &sl) < 0)
        return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, rc = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (const struct sockaddr *)&ss, sl) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

static void sleep_until(int64_t t)
{
    struct timespec ts = { .tv_sec = (time_t)(t / 1000000000LL), .tv_nsec = (long)(t % 1000000000LL) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static int probe_cap(int64_t deadline)
{
    int left = ms_left(deadline);
    return left < PT_PROBE_CAP_MS ? left : PT_PROBE_CAP_MS;
}

#define PT_MAX_DISCOVERED 32
#define OWNER_EVERY_MS 250

/* One HTTP round on port: the paths to try, in order (pactown's: /health,
 * then / unless /health passed).  Returns true when healthy; the last
 * answer is kept in res (path, status, since when). */
static bool http_round(const pt_health_opts *o, int port, int64_t deadline, int64_t start, pt_health_result *res)
{
    static const char *const auto_paths[] = { "/health", "/", NULL };
    const char *one[] = { o->path, NULL };
    const char *const *paths = o->auto_path ? auto_paths : one;
    long code = 0;
    const char *path = NULL;
    bool ok = false;
    for (size_t i = 0; paths[i] && !ok; i++) {
        int left = probe_cap(deadline);
        if (left <= 0)
            break;
        int rc = o->probe ? o->probe(o->probe_arg, o->host, port, paths[i], left, &code)
                          : pt_http_probe(o->host, port, paths[i], left, &code);
        res->probe_error = rc;
        if (rc != 0)
            return false; /* no answer: the next round tries again */
        path = paths[i];
        ok = code < 500 && (code != 404 || !o->auto_path || paths[i + 1] == NULL);
    }
    if (!path)
        return false;
    /* the round's last answer, and since when the status has been the same
     * (a round cut short by the deadline may end on /health instead of /) */
    if (code != res->http_status)
        res->status_since_ms = (long)((now_ns() - start) / NS_PER_MS);
    res->http_status = code;
    res->path = path;
    return ok;
}

int pt_health_wait(const pt_health_opts *opts, pt_health_result *res)
{
    if (!opts || !res || opts->pid <= 0 || opts->pgid <= 0 || !host_ok(opts->host) || opts->port < 0 ||
        opts->port > 65535 || opts->timeout_ms < 0)
        return -EINVAL;
    if (opts->path && !opts->auto_path) {
        if (opts->path[0] != '/')
            return -EINVAL;
        for (const char *s = opts->path; *s; s++)
            if ((unsigned char)*s <= 0x20 || *s == 0x7f)
                return -EINVAL;
    }
    int poll_ms = opts->poll_ms > 0 ? opts->poll_ms : 25;
    memset(res, 0, sizeof *res);
    if ((opts->path || opts->auto_path) && !opts->probe)
        load_soon();

    int64_t start = now_ns();
    int64_t deadline = start + (int64_t)opts->timeout_ms * NS_PER_MS;
    /* looking for other ports reads /proc/net/tcp*, which costs the kernel
     * milliseconds a time (docs/BENCHMARKS.md): only when the asked port has
     * not answered for a while, and then seldom */
    int64_t next_discovery = start + (opts->port > 0 ? (int64_t)DISCOVER_AFTER_MS * NS_PER_MS : 0);
    /* the asked port counts only once a listening socket on it is seen to
     * belong to the service's process group: another program on that port
     * must never make the service look healthy */
    bool owned = false;
    int64_t next_owner_check = start;
    for (;;) {
        int64_t round = now_ns();
        int ws = 0;
        pid_t w;
        if (opts->exit_fd > 0) {
            int r = pt_warm_wait(opts->exit_fd, 0, &ws);
            if (r == -EPIPE && !pt_pgrp_live(opts->pgid))
                ws = 255 << 8, r = 1; /* the warm process went away: its status is lost */
            w = r == 1 ? opts->pid : 0;
        } else {
            w = waitpid(opts->pid, &ws, WNOHANG);
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = -errno;
            load_done();
            return e;
        }
        if (w == opts->pid) {
            res->status = PT_HEALTH_EXITED;
            res->wait_status = ws;
            break;
        }
        if (round >= deadline) {
            res->status = PT_HEALTH_TIMEOUT;
            break;
        }

        int port = 0;
        if (opts->port > 0 && pt_tcp_probe(opts->host, opts->port, probe_cap(deadline)) == 0) {
            if (!owned && round >= next_owner_check) {
                next_owner_check = round + (int64_t)OWNER_EVERY_MS * NS_PER_MS;
                owned = pt_port_held(opts->port, opts->pid, opts->pgid) == 1;
                res->foreign = !owned;
            }
            if (owned)
                port = opts->port;
        }
        if (!port && round >= next_discovery) {
            next_discovery = round + (int64_t)DISCOVER_EVERY_MS * NS_PER_MS;
            int found[PT_MAX_DISCOVERED];
            size_t nf = 0;
            if (pt_listening_ports(opts->pgid, found, PT_MAX_DISCOVERED, &nf) == 0) {
                for (size_t i = 0; i < nf && !port; i++)
                    if (found[i] != opts->port && ms_left(deadline) > 0 &&
                        pt_tcp_probe(opts->host, found[i], probe_cap(deadline)) == 0)
                        port = found[i];
            }
        }
        if (port) {
            res->port = port;
            if (!opts->path && !opts->auto_path) {
                res->status = PT_HEALTH_OK;
                break;
            }
            if (http_round(opts, port, deadline, start, res)) {
                res->status = PT_HEALTH_OK;
                break;
            }
            if (res->probe_error == -ELIBACC)
                return -ELIBACC; /* no libcurl: no HTTP probe can ever pass */
        }
        /* every 2 ms for the first 200 ms (a warm start listens within tens of ms), then poll_ms */
        int step = round - start < 200 * NS_PER_MS && poll_ms > 2 ? 2 : poll_ms;
        int64_t next = round + (int64_t)step * NS_PER_MS;
        sleep_until(next < deadline ? next : deadline);
    }
    load_done();
    int64_t end = now_ns();
    res->elapsed_ms = (long)((end - start) / NS_PER_MS);
    if (res->http_status)
        res->status_since_ms = res->elapsed_ms - res->status_since_ms; /* a moment -> a duration */
    return 0;
}
