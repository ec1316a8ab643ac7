/* probe.c — HTTP health probes sent by the warm process (pactown/warm.h).
 *
 * A warm start's health wait asks the warm process of its venv for its
 * requests: it has an HTTP client loaded already (Python's http.client, in
 * a prober process it forks once, zygote.py), where libcurl's first use
 * maps about 30 libraries, most of a warm start's CPU time
 * (docs/BENCHMARKS.md). What the answer can say is checked: a status in
 * 100..599 or one of three errors; anything else makes the prober unusable
 * and the caller probes with libcurl. */
#include "pactown/warm.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock.h"

/* the prober's own time to answer, beyond the request's */
#define PROBE_SLACK_MS 1000

int pt_warm_probe_open(const char *cache_dir, const char *id, uid_t uid, int *fd, char *why, size_t wn)
{
    struct ucred cr;
    int s;
    int rc = pt_warm_connect(cache_dir, id, uid, &s, &cr, why, wn);
    if (rc)
        return rc;
    static const char hello[] = "{\"v\":1,\"kind\":\"probe\"}";
    if (send(s, hello, sizeof hello - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof hello - 1)) {
        int e = errno;
        close(s);
        return pt_warm_why(why, wn, -EPIPE, "the warm process did not take the probe connection: %s", strerror(e));
    }
    *fd = s;
    return 0;
}

int pt_warm_probe(int fd, const char *host, int port, const char *path, int timeout_ms, long *status)
{
    *status = 0;
    if (fd < 0 || !host || !path || path[0] != '/' || port < 1 || port > 65535 || timeout_ms <= 0)
        return -EINVAL;
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c >= 0x80)
            return -EPIPE; /* not ASCII: JSON would need UTF-8, the prober ASCII; libcurl sends it as it is */
    json_t *rq = json_pack("{s:s, s:i, s:s, s:i}", "host", host, "port", port, "path", path, "timeout_ms", timeout_ms);
    char *text = rq ? json_dumps(rq, JSON_COMPACT) : NULL;
    json_decref(rq);
    if (!text)
        return -ENOMEM;
    ssize_t sent = send(fd, text, strlen(text), MSG_NOSIGNAL);
    free(text);
    if (sent < 0)
        return -EPIPE;
    char buf[512];
    ssize_t n = pt_warm_recv(fd, buf, sizeof buf, timeout_ms + PROBE_SLACK_MS);
    if (n <= 0)
        return -EPIPE; /* closed, or no answer in time: the prober is stuck or gone */
    json_t *ans = json_loadb(buf, (size_t)n, 0, NULL);
    json_t *st = ans ? json_object_get(ans, "status") : NULL;
    const char *err = ans ? json_string_value(json_object_get(ans, "error")) : NULL;
    int rc = -EPIPE;
    if (json_is_integer(st) && json_integer_value(st) >= 100 && json_integer_value(st) <= 599) {
        *status = (long)json_integer_value(st);
        rc = 0;
    } else if (err && strcmp(err, "ECONNREFUSED") == 0) {
        rc = -ECONNREFUSED;
    } else if (err && strcmp(err, "ETIMEDOUT") == 0) {
        rc = -ETIMEDOUT;
    } else if (err && strcmp(err, "EIO") == 0) {
        rc = -EIO;
    }
    json_decref(ans);
    return rc;
}
