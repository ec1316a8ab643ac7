/* pactown/health.h — is a started service up?  TCP and HTTP probes, discovery
 * of the ports a process group listens on, and a wait loop with a deadline.
 *
 * Conventions: 0 on success, -errno on failure (errno(3)).  Times are in
 * milliseconds; deadlines use CLOCK_MONOTONIC (clock_gettime(2)).
 */
#ifndef PACTOWN_HEALTH_H
#define PACTOWN_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* 0 if a TCP connect to host:port completes within timeout_ms, else -errno.
 * host: numeric IPv4 ("127.0.0.1") or IPv6 ("::1") address, or "localhost"
 *   (tries 127.0.0.1, then ::1, without a resolver).  port: 1..65535.
 * timeout_ms: >= 0, shared by all addresses tried; 0 = only a connect that
 *   completes at once counts.  The socket is closed again straight away.
 * Errors: -EINVAL (bad host/port/timeout), -ECONNREFUSED, -ETIMEDOUT,
 *   -ENETUNREACH, ... (the SO_ERROR of the connect).  With "localhost" the
 *   error of the first address is returned when both fail.
 * Man: socket(2), connect(2) (EINPROGRESS), poll(2), getsockopt(2) SO_ERROR,
 *   inet_pton(3). */
int pt_tcp_probe(const char *host, int port, int timeout_ms);

/* One HTTP request, as a markpact:test http line or a health probe sends it. */
typedef struct pt_http_req {
    const char *host;         /* as for pt_tcp_probe (IPv6 literals are bracketed in the URL) */
    int port;                 /* 1..65535 */
    const char *method;       /* "GET" (NULL), "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", ...:
                                 upper-case letters only, at most 16 */
    const char *path;         /* starts with '/', may hold a query; no bytes <= 0x20 or 0x7f */
    const char *body;         /* request body (body_len bytes, need not be NUL-terminated), NULL = none */
    size_t body_len;
    const char *content_type; /* of the body; NULL = "application/json" */
    int timeout_ms;           /* > 0: connect + request + response */
} pt_http_req;

/* Send rq over http with libcurl: redirects not followed (a 302 is the
 * answer), no proxy (CURLOPT_NOPROXY "*"), the response body discarded,
 * only the http scheme allowed, CURLOPT_NOSIGNAL set (thread-safe).
 * libcurl is not linked: the first request of a process loads it
 * (pt_http_load), so that processes that send none never map it.
 * status: out, the HTTP status code (e.g. 200, 404, 503) when 0 is returned;
 *   set to 0 otherwise.
 * Returns 0 on any HTTP response (the status may be an error status),
 *   -ECONNREFUSED when the connection fails, -ETIMEDOUT on timeout,
 *   -EINVAL on bad arguments, -ENOMEM, -ELIBACC when libcurl cannot be
 *   loaded or initialised (pt_http_strerror says why), -EIO for anything
 *   else (no or a garbled response: not an HTTP server).
 * Man: libcurl-easy(3), CURLOPT_CUSTOMREQUEST(3), CURLOPT_POSTFIELDS(3),
 *   CURLOPT_TIMEOUT_MS(3), CURLOPT_NOPROXY(3), CURLINFO_RESPONSE_CODE(3). */
int pt_http_request(const pt_http_req *rq, long *status);

/* pt_http_request of GET host:port/path without a body. */
int pt_http_probe(const char *host, int port, const char *path, int timeout_ms, long *status);

/* Load libcurl ("libcurl.so.4", dlopen(3) RTLD_NOW | RTLD_LOCAL, never
 * closed), resolve the functions pt_http_request uses and run
 * curl_global_init(CURL_GLOBAL_DEFAULT): once per process (pthread_once),
 * later calls return the first call's result. pt_http_request calls it;
 * nothing else needs to. Returns 0, or -ELIBACC when the library is missing,
 * lacks a function or does not initialise (pt_http_strerror(-ELIBACC) says
 * which, naming the library). Man: dlopen(3), dlsym(3), curl_global_init(3). */
int pt_http_load(void);

/* A message for an error of pt_http_request: "not an HTTP response" for
 * -EIO, why libcurl could not be loaded for -ELIBACC ("cannot load libcurl,
 * which HTTP requests need: libcurl.so.4: cannot open shared object file:
 * …"), else strerror(-rc). A static string: not to be freed. */
const char *pt_http_strerror(int rc);

/* Whether a server could listen on host:port now: bind(2) a TCP socket
 * there with SO_REUSEADDR (as servers do, so connections in TIME_WAIT do
 * not count) and close it.  host: numeric IPv4/IPv6 address or "localhost"
 * (127.0.0.1).  Returns 0 when free, -EADDRINUSE when something listens
 * there (or on the wildcard address), -EACCES for a port < 1024 without
 * the privilege, -EINVAL for a bad host or port, other -errno of socket(2)
 * or bind(2).  Man: bind(2), socket(7) SO_REUSEADDR. */
int pt_port_free(const char *host, int port);

typedef enum { PT_HEALTH_OK = 0, PT_HEALTH_EXITED = 1, PT_HEALTH_TIMEOUT = 2 } pt_health_status;

typedef struct pt_health_opts {
    pid_t pid;          /* service leader, a child of the caller (waitpid WNOHANG is used to notice it exit; the exit status is stored) */
    pid_t pgid;         /* its process group */
    int exit_fd;        /* > 0: a warm start's (pactown/warm.h): pid is not the caller's child, its exit
                         * status arrives on exit_fd (pt_warm_wait); 0: waitpid as above */
    const char *host;   /* address to probe, e.g. "127.0.0.1" */
    int port;           /* port the service was asked to use */
    const char *path;   /* HTTP path, e.g. "/"; NULL = TCP only (unless auto_path) */
    bool auto_path;     /* probe as pactown does (path ignored): GET /health, and when that does not
                           pass, GET /; any answer < 500 passes except a 404 on /health */
    int timeout_ms;     /* overall deadline */
    int poll_ms;        /* interval between probes, e.g. 25 */
    /* how an HTTP request is sent: NULL = pt_http_probe (libcurl, loaded by a thread of its own as the
     * wait begins); else probe(probe_arg, ...) with pt_http_probe's arguments and returns (a warm
     * start's: its warm process sends it, pactown/warm.h pt_warm_probe) */
    int (*probe)(void *probe_arg, const char *host, int port, const char *path, int timeout_ms, long *status);
    void *probe_arg;
} pt_health_opts;

typedef struct pt_health_result {
    pt_health_status status;
    int port;           /* port that answered: opts.port, or — when the service listens elsewhere (the README ignores $PORT) — the port found with pt_listening_ports */
    long http_status;   /* the last HTTP answer's status, 0 if none (TCP only, or no answer yet) */
    const char *path;   /* the path of that answer: opts.path, "/health" or "/" (static); NULL if none */
    long status_since_ms; /* how long the answers have had status http_status, up to the end:
                             "/ -> 503 for 60 s" */
    int probe_error;    /* -errno of the last HTTP probe that got no answer (-EIO: the port does not
                           speak HTTP), 0 when the last probe was answered */
    bool foreign;       /* opts.port accepted connections but, when last looked at, no listening socket
                           on it belonged to process group pgid: another program holds the port */
    int wait_status;    /* waitpid status when EXITED */
    long elapsed_ms;
} pt_health_result;

/* Wait until the service is healthy: a TCP connect to opts->port succeeds
 * and a listening socket on that port belongs to a process of group
 * opts->pgid (pt_port_holders; looked at every 250 ms until it does, so a
 * port held by another program never passes: res->foreign), then (if
 * opts->path or opts->auto_path) an HTTP GET gets a response with status
 * < 500 (any 2xx-4xx counts as up; the status is reported; 5xx answers are
 * retried until the deadline).  If opts->port has not
 * accepted for 1 s, the process group opts->pgid's other listening TCP ports
 * (pt_listening_ports; looked up every 250 ms, since reading /proc/net/tcp
 * is costly) are probed in ascending order and the first that accepts is
 * used and reported in res->port.
 *
 * Returns as soon as the leader exits (EXITED: it is reaped with
 * waitpid(WNOHANG), res->wait_status holds the status for WIFEXITED etc.;
 * do not wait for it again) or the deadline passes (TIMEOUT).  A single probe
 * is bounded by min(time left, 1000 ms), so the deadline is not overrun and an
 * exit is noticed at most ~1 s late even against a peer that never answers
 * (with several discovered ports, ~1 s per silent port).  Between rounds
 * it sleeps until poll_ms after the round started (clock_nanosleep,
 * CLOCK_MONOTONIC, absolute).
 *
 * opts: pid > 0, pgid > 0, host as for pt_tcp_probe, port 1..65535 (0 =
 *   only ports found by discovery), path NULL or as for pt_http_probe,
 *   timeout_ms >= 0, poll_ms > 0 (<= 0 means 25).  Not retained.
 * res: out, always filled when 0 is returned.  On TIMEOUT, res->port and
 *   res->http_status hold the last port that accepted TCP and the last HTTP
 *   status seen (e.g. 503), or 0.  elapsed_ms is measured from the call.
 * Returns 0 when res->status says what happened; -EINVAL for bad options,
 *   -ECHILD (or another waitpid errno) when pid is not a waitable child,
 *   -ELIBACC as soon as an HTTP probe is due and libcurl cannot be loaded
 *   (pt_http_strerror; the service is left as it is, the caller stops it).
 * Man: waitpid(2), clock_gettime(2), clock_nanosleep(2). */
int pt_health_wait(const pt_health_opts *opts, pt_health_result *res);

#endif
