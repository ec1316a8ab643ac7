/* health.c — TCP/HTTP probes, listening-port discovery via /proc, and the
 * wait-until-healthy loop used by the run helper. */
#include "pactown/health.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
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

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

int pt_http_probe(const char *host, int port, const char *path, int timeout_ms, long *status)
{
    if (status)
        *status = 0;
    if (!status || !host_ok(host) || port < 1 || port > 65535 || timeout_ms <= 0 || !path || path[0] != '/')
        return -EINVAL;
    for (const char *s = path; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return -EINVAL;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return -EIO;

    size_t ul = strlen(host) + strlen(path) + 32;
    char *url = malloc(ul);
    if (!url)
        return -ENOMEM;
    if (strchr(host, ':'))
        snprintf(url, ul, "http://[%s]:%d%s", host, port, path);
    else
        snprintf(url, ul, "http://%s:%d%s", host, port, path);

    CURL *h = curl_easy_init();
    if (!h) {
        free(url);
        return -ENOMEM;
    }
    int rc = -EIO;
    if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, "pactown-health") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK)
        goto out;

    CURLcode cc = curl_easy_perform(h);
    switch (cc) {
    case CURLE_OK: {
        long code = 0;
        if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code > 0) {
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
    curl_easy_cleanup(h);
    free(url);
    return rc;
}

typedef struct {
    unsigned long ino;
    int port;
} sock_ent;

typedef struct {
    sock_ent *v;
    size_t n, cap;
} sock_vec;

static int cmp_ino(const void *a, const void *b)
{
    unsigned long x = ((const sock_ent *)a)->ino, y = ((const sock_ent *)b)->ino;
    return (x > y) - (x < y);
}

/* Append LISTEN sockets of one /proc/net/tcp* file.  -ENOENT when absent. */
static int read_net_tcp(const char *file, sock_vec *sv)
{
    FILE *f = fopen(file, "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    bool header = true;
    while (getline(&line, &cap, f) >= 0) {
        if (header) {
            header = false;
            continue;
        }
        unsigned port, state;
        unsigned long ino;
        /* sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu",
                   &port, &state, &ino) != 3)
            continue;
        if (state != 0x0A || ino == 0 || port == 0 || port > 65535)
            continue;
        if (sv->n == sv->cap) {
            size_t nc = sv->cap ? sv->cap * 2 : 64;
            sock_ent *nv = realloc(sv->v, nc * sizeof *nv);
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            sv->v = nv;
            sv->cap = nc;
        }
        sv->v[sv->n].ino = ino;
        sv->v[sv->n].port = (int)port;
        sv->n++;
    }
    free(line);
    fclose(f);
    return rc;
}

/* pgrp of /proc/<pid>, or -errno. */
static int proc_pgrp(int procfd, const char *pid, pid_t *pgrp)
{
    char p[300];
    snprintf(p, sizeof p, "%s/stat", pid);
    int fd = openat(procfd, p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[1024];
    ssize_t r;
    do
        r = read(fd, buf, sizeof buf - 1);
    while (r < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (r < 0)
        return -e;
    buf[r] = '\0';
    char *rp = strrchr(buf, ')');
    int ppid, pg;
    char st;
    if (!rp || sscanf(rp + 1, " %c %d %d", &st, &ppid, &pg) != 3)
        return -EIO;
    *pgrp = pg;
    return 0;
}

int pt_listening_ports(pid_t pgid, int *ports, size_t max, size_t *n)
{
    if (pgid <= 0 || !n || (!ports && max > 0))
        return -EINVAL;
    *n = 0;

    sock_vec sv = { 0 };
    int rc = read_net_tcp("/proc/net/tcp", &sv);
    if (rc == 0) {
        int r6 = read_net_tcp("/proc/net/tcp6", &sv);
        if (r6 != 0 && r6 != -ENOENT)
            rc = r6;
    }
    if (rc || sv.n == 0) {
        free(sv.v);
        return rc;
    }
    qsort(sv.v, sv.n, sizeof *sv.v, cmp_ino);

    DIR *pd = opendir("/proc");
    if (!pd) {
        rc = -errno;
        free(sv.v);
        return rc;
    }
    uint8_t *seen = calloc(65536 / 8, 1);
    if (!seen) {
        closedir(pd);
        free(sv.v);
        return -ENOMEM;
    }
    int procfd = dirfd(pd);
    struct dirent *de;
    while ((de = readdir(pd)) != NULL) {
        const char *nm = de->d_name;
        if (nm[0] < '1' || nm[0] > '9' || strspn(nm, "0123456789") != strlen(nm))
            continue;
        pid_t pg = 0;
        if (proc_pgrp(procfd, nm, &pg) < 0 || pg != pgid)
            continue; /* vanished, unreadable, or another group */
        char p[300];
        snprintf(p, sizeof p, "%s/fd", nm);
        int ffd = openat(procfd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ffd < 0)
            continue; /* vanished (ENOENT) or not ours (EACCES) */
        DIR *fdd = fdopendir(ffd);
        if (!fdd) {
            close(ffd);
            continue;
        }
        struct dirent *fe;
        while ((fe = readdir(fdd)) != NULL) {
            if (fe->d_name[0] == '.')
                continue;
            char link[64];
            ssize_t l = readlinkat(dirfd(fdd), fe->d_name, link, sizeof link - 1);
            if (l <= 0)
                continue;
            link[l] = '\0';
            unsigned long ino;
            char close_br;
            if (sscanf(link, "socket:[%lu%c", &ino, &close_br) != 2 || close_br != ']')
                continue;
            sock_ent key = { .ino = ino };
            sock_ent *hit = bsearch(&key, sv.v, sv.n, sizeof *sv.v, cmp_ino);
            if (!hit)
                continue;
            /* several sockets can share an inode entry (v4 and v6 files); mark all */
            while (hit > sv.v && hit[-1].ino == ino)
                hit--;
            for (; hit < sv.v + sv.n && hit->ino == ino; hit++)
                seen[hit->port >> 3] |= (uint8_t)(1u << (hit->port & 7));
        }
        closedir(fdd);
    }
    closedir(pd);
    size_t k = 0;
    for (int port = 1; port < 65536 && k < max; port++)
        if (seen[port >> 3] & (1u << (port & 7)))
            ports[k++] = port;
    *n = k;
    free(seen);
    free(sv.v);
    return 0;
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

int pt_health_wait(const pt_health_opts *opts, pt_health_result *res)
{
    if (!opts || !res || opts->pid <= 0 || opts->pgid <= 0 || !host_ok(opts->host) || opts->port < 0 ||
        opts->port > 65535 || opts->timeout_ms < 0)
        return -EINVAL;
    if (opts->path) {
        if (opts->path[0] != '/')
            return -EINVAL;
        for (const char *s = opts->path; *s; s++)
            if ((unsigned char)*s <= 0x20 || *s == 0x7f)
                return -EINVAL;
    }
    int poll_ms = opts->poll_ms > 0 ? opts->poll_ms : 25;
    memset(res, 0, sizeof *res);

    int64_t start = now_ns();
    int64_t deadline = start + (int64_t)opts->timeout_ms * NS_PER_MS;
    /* looking for other ports reads /proc/net/tcp*, which costs the kernel
     * milliseconds a time (docs/BENCHMARKS.md): only when the asked port has
     * not answered for a while, and then seldom */
    int64_t next_discovery = start + (opts->port > 0 ? (int64_t)DISCOVER_AFTER_MS * NS_PER_MS : 0);
    for (;;) {
        int64_t round = now_ns();
        int ws = 0;
        pid_t w = waitpid(opts->pid, &ws, WNOHANG);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
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
        if (opts->port > 0 && pt_tcp_probe(opts->host, opts->port, probe_cap(deadline)) == 0)
            port = opts->port;
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
            if (!opts->path) {
                res->status = PT_HEALTH_OK;
                break;
            }
            int left = probe_cap(deadline);
            long code = 0;
            if (left > 0 && pt_http_probe(opts->host, port, opts->path, left, &code) == 0) {
                res->http_status = code;
                if (code < 500) {
                    res->status = PT_HEALTH_OK;
                    break;
                }
            }
        }
        int64_t next = round + (int64_t)poll_ms * NS_PER_MS;
        sleep_until(next < deadline ? next : deadline);
    }
    res->elapsed_ms = (long)((now_ns() - start) / NS_PER_MS);
    return 0;
}
