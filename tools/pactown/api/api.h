/* api.h — `pactown serve`, the runner API (internal to tools/pactown/api).
 *
 * An HTTP/1.1 server (libmicrohttpd, one thread per connection, so a build in
 * progress never holds up another request) on a Unix socket and, when asked,
 * a TCP address. Routes and fields are pactown's runner API
 * (../shared/runner-api.md; docs/API.md), served at / and under /runner/.
 * Each request runs the same engine as `pactown run` (engine.h) with its own
 * struct cli whose settings and index are the server's (borrowed).
 *
 * Lock order: api.mu is a leaf (the busy service ids and the reserved
 * ports); it is never held across I/O, an LMDB transaction or a wait.
 */
#ifndef PACTOWN_API_H
#define PACTOWN_API_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../cli.h"
#include "../engine.h"
#include "pactown/sandbox.h"

struct api {
    struct cli cli;             /* the server's settings and index (requests borrow them) */
    char *token;                /* the runner token, NULL when none is configured */
    pthread_mutex_t mu;         /* leaf: busy and ports */
    char (*busy)[PT_SERVICE_ID_MAX + 1]; /* service ids with a /run, /stop or file write in flight */
    size_t n_busy, cap_busy;
    int *ports;                 /* ports handed to a /run still in flight */
    size_t n_ports, cap_ports;
};

/* One route's answer: HTTP status and a JSON body (owned). */
struct api_answer {
    unsigned status;
    json_t *body;
};

/* A request as the routes see it. */
struct api_call {
    struct api *api;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;           /* without the /runner prefix, e.g. "/status/abc" */
    const char *body;           /* the request body (NUL-terminated), len bytes */
    size_t len;
    struct MHD_Response *stream; /* set by a route that answers with a stream (status in answer) */
};

/* Route handlers: fill *ans (body may be NULL when the route set stream). */
void api_route_health(struct api_call *c, struct api_answer *ans);
void api_route_validate(struct api_call *c, struct api_answer *ans);
void api_route_run(struct api_call *c, struct api_answer *ans, bool stream);
void api_route_prepare(struct api_call *c, struct api_answer *ans);
void api_route_stop(struct api_call *c, struct api_answer *ans);
void api_route_status(struct api_call *c, struct api_answer *ans, const char *id);
void api_route_logs(struct api_call *c, struct api_answer *ans, const char *id);
void api_route_delete(struct api_call *c, struct api_answer *ans, const char *id);
void api_route_test(struct api_call *c, struct api_answer *ans, const char *id);
void api_route_cache_stats(struct api_call *c, struct api_answer *ans);
void api_route_cache_venv(struct api_call *c, struct api_answer *ans);
void api_route_files(struct api_call *c, struct api_answer *ans, const char *id);
void api_route_file(struct api_call *c, struct api_answer *ans, const char *id);

/* An error answer {"success": false, "error": msg, "detail": msg} (and
 * "field": field when non-NULL) with status. */
void api_fail(struct api_answer *ans, unsigned status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The body as a JSON object; else a 400 in *ans and NULL. Caller decrefs. */
json_t *api_body_object(struct api_call *c, struct api_answer *ans);

/* Typed fields of a request object; each returns 0 (absent: *out left as it
 * is) or -1 with a 400 naming the field in *ans. */
int api_field_str(json_t *o, const char *name, bool required, size_t max, const char **out, struct api_answer *ans);
int api_field_int(json_t *o, const char *name, bool required, long long lo, long long hi, long long *out,
                  struct api_answer *ans);
int api_field_bool(json_t *o, const char *name, bool *out, struct api_answer *ans);

/* The service id of a request: service_id if given, else
 * "<project_id>-<username as a DNS label>", else "<project_id>" (pactown's
 * rule); ids with '/', '\\' or ".." or not valid (pt_service_id_valid) are
 * refused with a 400 in *ans. Returns 0 or -1. */
int api_service_id(json_t *o, char id[PT_SERVICE_ID_MAX + 1], struct api_answer *ans);

/* Mark id busy (a request on it in flight): false if it already was. */
bool api_busy_take(struct api *api, const char *id);
void api_busy_drop(struct api *api, const char *id);

/* A request's struct cli: the server's settings and index, messages to say. */
void api_cli(struct api *api, struct cli *cli, void (*say)(void *, bool, const char *), void *ctx);

/* A JSON string of s (invalid UTF-8 bytes and control bytes but tab and
 * newline as '?'). Never NULL unless out of memory. */
json_t *api_text(const char *s, size_t n);

/* The sandbox of service id, opened (O_DIRECTORY) beneath sandbox_root
 * without following a symlink: the fd, or -ENOENT (no such sandbox, or an
 * id that is not valid) or another -errno. */
int api_open_sandbox(struct api *api, const char *id);

/* openat2(2) of path beneath the sandbox fd, RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: the fd or -errno. */
int api_open_file(int sandbox, const char *path, int flags);

/* The regular files of service id's sandbox (not .venv, .pactown) as
 * [{path, size, mtime}] (at most 10,000); empty when there is none. */
json_t *api_sandbox_files(struct api *api, const char *id);

/* The last lines (at most lines, of the last 1 MiB, and from byte since
 * on) of <sandbox>/.pactown/service.log of service id as a JSON array of
 * strings, NULL if there is no log. */
json_t *api_log_tail(struct api *api, const char *id, int lines, off_t since);

/* The same of the open file fd (closed), e.g. a build log. */
json_t *api_fd_tail(int fd, int lines, off_t since);

/* The size of that log now (0 if there is none): where a run's output starts. */
off_t api_log_size(struct api *api, const char *id);

#endif
