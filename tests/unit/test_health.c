/* test_health.c — probes, port discovery and pt_health_wait against forked
 * children that run in their own process groups.  Every child is killed
 * (whole group) and reaped in .fini, even after a failed assertion. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pactown/health.h"
#include "pactown/ports.h"

#define MAX_CHILDREN 8

static struct {
    pid_t pid;
    int reaped; /* pt_health_wait already reaped it: do not signal the (maybe reused) pid */
} kids[MAX_CHILDREN];
static int nkids;
static int blocker = -1; /* bound, never listening: a port that refuses connections */
static int blocker_port;

static void setup(void)
{
    nkids = 0;
    blocker = -1;
    signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
    for (int i = 0; i < nkids; i++) {
        if (kids[i].reaped)
            continue;
        kill(-kids[i].pid, SIGKILL);
        kill(kids[i].pid, SIGKILL);
        while (waitpid(kids[i].pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    nkids = 0;
    if (blocker >= 0)
        close(blocker);
    blocker = -1;
}

TestSuite(health, .init = setup, .fini = teardown);

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A loopback port nobody listens on, held (bound, not listening) until .fini. */
static int closed_port(void)
{
    blocker = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(blocker, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(blocker, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    cr_assert_eq(getsockname(blocker, (struct sockaddr *)&a, &l), 0);
    blocker_port = ntohs(a.sin_port);
    return blocker_port;
}

enum child_kind { CHILD_HTTP, CHILD_LISTEN_ONLY, CHILD_EXIT7, CHILD_IDLE, CHILD_ROUTER };

/* CHILD_ROUTER's answers, by request: what a markpact:test http line and the
 * pactown-style probe (/health, then /) meet in real services. */
static const char *route(const char *req)
{
    if (strncmp(req, "GET /health ", 12) == 0)
        return "HTTP/1.0 404 Not Found\r\n\r\n";
    if (strncmp(req, "GET / ", 6) == 0)
        return "HTTP/1.0 200 OK\r\n\r\nhome";
    if (strncmp(req, "GET /old ", 9) == 0)
        return "HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n";
    if (strncmp(req, "POST /items ", 12) == 0)
        return strstr(req, "\r\nContent-Type: application/json\r\n") && strstr(req, "\r\n\r\n{\"title\": \"x\"}")
                   ? "HTTP/1.0 201 Created\r\n\r\n"
                   : "HTTP/1.0 422 Unprocessable\r\n\r\n";
    if (strncmp(req, "DELETE /items/1 ", 16) == 0)
        return "HTTP/1.0 204 No Content\r\n\r\n";
    return "HTTP/1.0 400 Bad Request\r\n\r\n";
}

static void child_main(enum child_kind kind, const char *response, int wfd)
{
    if (kind == CHILD_EXIT7)
        _exit(7);
    if (kind == CHILD_IDLE) {
        int zero = 0;
        if (write(wfd, &zero, sizeof zero) != sizeof zero)
            _exit(98);
        for (;;)
            pause();
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &l) < 0)
        _exit(99);
    int port = ntohs(a.sin_port);
    if (write(wfd, &port, sizeof port) != sizeof port)
        _exit(98);
    close(wfd);
    if (kind == CHILD_LISTEN_ONLY)
        for (;;)
            pause();
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        char buf[4096];
        size_t got = 0;
        for (;;) {
            ssize_t r = read(c, buf + got, sizeof buf - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = '\0';
            char *hdr_end = strstr(buf, "\r\n\r\n");
            if (got == sizeof buf - 1)
                break;
            if (hdr_end) {
                const char *cl = strstr(buf, "Content-Length: ");
                size_t want = (size_t)(hdr_end + 4 - buf) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
                if (got >= want)
                    break;
            }
        }
        const char *ans = kind == CHILD_ROUTER ? route(buf) : response;
        if (got > 0)
            (void)!send(c, ans, strlen(ans), MSG_NOSIGNAL);
        close(c);
    }
}

/* Fork a child in its own process group; returns its pid, *port = the port it
 * listens on (0 for kinds that do not listen), read from a pipe with a deadline. */
static pid_t spawn(enum child_kind kind, const char *response, int *port)
{
    cr_assert_lt(nkids, MAX_CHILDREN);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        close(pfd[0]);
        child_main(kind, response, pfd[1]);
        _exit(97);
    }
    kids[nkids].pid = pid;
    kids[nkids].reaped = 0;
    nkids++;
    setpgid(pid, pid); /* both sides, so the group exists before we use it */
    close(pfd[1]);
    int p = 0;
    if (kind != CHILD_EXIT7) {
        struct pollfd q = { .fd = pfd[0], .events = POLLIN };
        cr_assert_eq(poll(&q, 1, 5000), 1, "child did not report its port within 5 s");
        cr_assert_eq(read(pfd[0], &p, sizeof p), (ssize_t)sizeof p);
    }
    close(pfd[0]);
    if (port)
        *port = p;
    return pid;
}

static void mark_reaped(pid_t pid)
{
    for (int i = 0; i < nkids; i++)
        if (kids[i].pid == pid)
            kids[i].reaped = 1;
}

/* Options for pt_health_wait on a child from spawn (its own group leader):
 * probe 127.0.0.1:port (path NULL = TCP only) every 25 ms for timeout_ms. */
static pt_health_opts service_opts(pid_t pid, int port, const char *path, int timeout_ms)
{
    pt_health_opts o = { .pid = pid, .pgid = pid, .host = "127.0.0.1", .port = port, .path = path,
                         .timeout_ms = timeout_ms, .poll_ms = 25 };
    return o;
}

static const char OK200[] = "HTTP/1.0 200 OK\r\n\r\nok";
static const char ERR500[] = "HTTP/1.0 500 Internal Server Error\r\n\r\nboom";

Test(health, tcp_probe_closed_open_and_bad_args)
{
    int cp = closed_port();
    cr_assert_eq(pt_tcp_probe("127.0.0.1", cp, 1000), -ECONNREFUSED);
    cr_assert_eq(pt_tcp_probe("localhost", cp, 1000), -ECONNREFUSED);
    int port;
    spawn(CHILD_LISTEN_ONLY, NULL, &port);
    cr_assert_eq(pt_tcp_probe("127.0.0.1", port, 1000), 0);
    cr_assert_eq(pt_tcp_probe("localhost", port, 1000), 0);
    cr_assert_eq(pt_tcp_probe("example.com", port, 1000), -EINVAL);
    cr_assert_eq(pt_tcp_probe(NULL, port, 1000), -EINVAL);
    cr_assert_eq(pt_tcp_probe("127.0.0.1", 0, 1000), -EINVAL);
    cr_assert_eq(pt_tcp_probe("127.0.0.1", 65536, 1000), -EINVAL);
    cr_assert_eq(pt_tcp_probe("127.0.0.1", port, -1), -EINVAL);
}

Test(health, http_probe_status_refused_timeout)
{
    int port, silent;
    spawn(CHILD_HTTP, OK200, &port);
    long st = -1;
    cr_assert_eq(pt_http_probe("127.0.0.1", port, "/", 2000, &st), 0);
    cr_assert_eq(st, 200);
    st = -1;
    cr_assert_eq(pt_http_probe("localhost", port, "/health?x=1", 2000, &st), 0);
    cr_assert_eq(st, 200);

    int cp = closed_port();
    st = -1;
    cr_assert_eq(pt_http_probe("127.0.0.1", cp, "/", 2000, &st), -ECONNREFUSED);
    cr_assert_eq(st, 0);

    /* listens (the kernel completes the handshake) but never answers */
    spawn(CHILD_LISTEN_ONLY, NULL, &silent);
    long t0 = mono_ms();
    cr_assert_eq(pt_http_probe("127.0.0.1", silent, "/", 200, &st), -ETIMEDOUT);
    long dt = mono_ms() - t0;
    cr_assert_geq(dt, 190);
    cr_assert_lt(dt, 2000);

    cr_assert_eq(pt_http_probe("127.0.0.1", port, "no-slash", 1000, &st), -EINVAL);
    cr_assert_eq(pt_http_probe("127.0.0.1", port, "/a b", 1000, &st), -EINVAL);
    cr_assert_eq(pt_http_probe("127.0.0.1", port, "/", 0, &st), -EINVAL);
}

Test(health, listening_ports_of_group)
{
    int port, none;
    pid_t pid = spawn(CHILD_LISTEN_ONLY, NULL, &port);
    int ports[8];
    size_t n = 99;
    cr_assert_eq(pt_listening_ports(pid, ports, 8, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(ports[0], port);

    n = 99;
    cr_assert_eq(pt_listening_ports(pid, ports, 0, &n), 0);
    cr_assert_eq(n, 0);

    pid_t idle = spawn(CHILD_IDLE, NULL, &none);
    n = 99;
    cr_assert_eq(pt_listening_ports(idle, ports, 8, &n), 0);
    cr_assert_eq(n, 0);

    cr_assert_eq(pt_listening_ports(0, ports, 8, &n), -EINVAL);
    cr_assert_eq(pt_listening_ports(pid, NULL, 8, &n), -EINVAL);
}

Test(health, wait_ok_http_200)
{
    int port;
    pid_t pid = spawn(CHILD_HTTP, OK200, &port);
    pt_health_opts o = service_opts(pid, port, "/", 5000);
    pt_health_result r;
    cr_assert_eq(pt_health_wait(&o, &r), 0);
    cr_assert_eq(r.status, PT_HEALTH_OK);
    cr_assert_eq(r.port, port);
    cr_assert_eq(r.http_status, 200);
    cr_assert_geq(r.elapsed_ms, 0);
    cr_assert_lt(r.elapsed_ms, 5000);
}

Test(health, wait_ok_tcp_only)
{
    int port;
    pid_t pid = spawn(CHILD_LISTEN_ONLY, NULL, &port);
    pt_health_opts o = service_opts(pid, port, NULL, 5000);
    pt_health_result r;
    cr_assert_eq(pt_health_wait(&o, &r), 0);
    cr_assert_eq(r.status, PT_HEALTH_OK);
    cr_assert_eq(r.port, port);
    cr_assert_eq(r.http_status, 0);
}

Test(health, wait_finds_other_port)
{
    int port;
    int asked = closed_port();
    pid_t pid = spawn(CHILD_HTTP, OK200, &port);
    cr_assert_neq(port, asked);
    pt_health_opts o = service_opts(pid, asked, "/", 5000);
    pt_health_result r;
    cr_assert_eq(pt_health_wait(&o, &r), 0);
    cr_assert_eq(r.status, PT_HEALTH_OK);
    cr_assert_eq(r.port, port);
    cr_assert_eq(r.http_status, 200);
}

Test(health, wait_exited_with_code)
{
    pid_t pid = spawn(CHILD_EXIT7, NULL, NULL);
    pt_health_opts o = service_opts(pid, closed_port(), "/", 5000);
    pt_health_result r;
    int rc = pt_health_wait(&o, &r);
    if (rc == 0 && r.status == PT_HEALTH_EXITED)
        mark_reaped(pid);
    cr_assert_eq(rc, 0);
    cr_assert_eq(r.status, PT_HEALTH_EXITED);
    cr_assert(WIFEXITED(r.wait_status));
    cr_assert_eq(WEXITSTATUS(r.wait_status), 7);
    cr_assert_lt(r.elapsed_ms, 5000);
}

Test(health, wait_timeout_when_never_listening)
{
    int none;
    pid_t pid = spawn(CHILD_IDLE, NULL, &none);
    pt_health_opts o = service_opts(pid, closed_port(), "/", 300);
    pt_health_result r;
    long t0 = mono_ms();
    cr_assert_eq(pt_health_wait(&o, &r), 0);
    long dt = mono_ms() - t0;
    cr_assert_eq(r.status, PT_HEALTH_TIMEOUT);
    cr_assert_geq(r.elapsed_ms, 300);
    cr_assert_lt(r.elapsed_ms, 300 + 500);
    cr_assert_geq(dt, 300);
    cr_assert_lt(dt, 300 + 500);
    cr_assert_eq(r.port, 0);
    cr_assert_eq(r.http_status, 0);
    cr_assert_eq(kill(pid, 0), 0, "the service must not be touched on timeout");
}

Test(health, wait_timeout_on_http_500)
{
    int port;
    pid_t pid = spawn(CHILD_HTTP, ERR500, &port);
    pt_health_opts o = service_opts(pid, port, "/", 300);
    pt_health_result r;
    cr_assert_eq(pt_health_wait(&o, &r), 0);
    cr_assert_eq(r.status, PT_HEALTH_TIMEOUT);
    cr_assert_eq(r.port, port);
    cr_assert_eq(r.http_status, 500);
    cr_assert_lt(r.elapsed_ms, 300 + 500);
}

Test(health, wait_bad_options)
{
    pt_health_result r;
    pt_health_opts o = { .pid = getpid(), .pgid = getpgrp(), .host = "127.0.0.1", .port = 80, .path = "/",
                         .timeout_ms = 100, .poll_ms = 25 };
    o.host = "not-an-ip";
    cr_assert_eq(pt_health_wait(&o, &r), -EINVAL);
    o.host = "127.0.0.1";
    o.path = "x";
    cr_assert_eq(pt_health_wait(&o, &r), -EINVAL);
    o.path = "/";
    o.port = 70000;
    cr_assert_eq(pt_health_wait(&o, &r), -EINVAL);
    o.port = 80;
    o.pid = 0;
    cr_assert_eq(pt_health_wait(&o, &r), -EINVAL);
    /* not our child */
    o.pid = getpid();
    cr_assert_eq(pt_health_wait(&o, &r), -ECHILD);
    cr_assert_eq(pt_health_wait(NULL, &r), -EINVAL);
}

Test(health, http_request_methods_body_no_redirects)
{
    int port;
    spawn(CHILD_ROUTER, NULL, &port);
    static const char body[] = "{\"title\": \"x\"}";
    pt_http_req rq = { .host = "127.0.0.1", .port = port, .method = "POST", .path = "/items", .body = body,
                       .body_len = strlen(body), .timeout_ms = 2000 };
    long st = 0;
    cr_assert_eq(pt_http_request(&rq, &st), 0);
    cr_assert_eq(st, 201, "POST with a JSON body: %ld", st);
    rq.body_len = 3; /* a cut body is another body */
    cr_assert_eq(pt_http_request(&rq, &st), 0);
    cr_assert_eq(st, 422);
    pt_http_req del = { .host = "127.0.0.1", .port = port, .method = "DELETE", .path = "/items/1", .timeout_ms = 2000 };
    cr_assert_eq(pt_http_request(&del, &st), 0);
    cr_assert_eq(st, 204);
    pt_http_req old = { .host = "127.0.0.1", .port = port, .path = "/old", .timeout_ms = 2000 };
    cr_assert_eq(pt_http_request(&old, &st), 0);
    cr_assert_eq(st, 302, "a redirect is the answer, not followed: %ld", st);
    pt_http_req bad = { .host = "127.0.0.1", .port = port, .method = "get", .path = "/", .timeout_ms = 2000 };
    cr_assert_eq(pt_http_request(&bad, &st), -EINVAL);
    bad.method = "GET;rm";
    cr_assert_eq(pt_http_request(&bad, &st), -EINVAL);
}

Test(health, wait_auto_path_falls_back_from_404_health)
{
    int port;
    pid_t pid = spawn(CHILD_ROUTER, NULL, &port);
    pt_health_opts o = service_opts(pid, port, NULL, 5000);
    o.auto_path = true;
    pt_health_result r;
    cr_assert_eq(pt_health_wait(&o, &r), 0);
    cr_assert_eq(r.status, PT_HEALTH_OK);
    cr_assert_eq(r.http_status, 200);
    cr_assert_str_eq(r.path, "/");
    cr_assert_not(r.foreign);
}

Test(health, wait_auto_path_takes_health_and_retries_5xx)
{
    int port, port5;
    pid_t pid = spawn(CHILD_HTTP, OK200, &port);
    pt_health_opts o = service_opts(pid, port, NULL, 5000);
    o.auto_path = true;
    pt_health_result r;
    cr_assert_eq(pt_health_wait(&o, &r), 0);
    cr_assert_eq(r.status, PT_HEALTH_OK);
    cr_assert_str_eq(r.path, "/health");

    pid_t p5 = spawn(CHILD_HTTP, ERR500, &port5);
    o = service_opts(p5, port5, NULL, 600);
    o.auto_path = true;
    cr_assert_eq(pt_health_wait(&o, &r), 0);
    cr_assert_eq(r.status, PT_HEALTH_TIMEOUT);
    cr_assert_eq(r.http_status, 500);
    cr_assert(strcmp(r.path, "/") == 0 || strcmp(r.path, "/health") == 0, "path %s", r.path);
    cr_assert_geq(r.status_since_ms, 400, "500 answers for %ld of %ld ms", r.status_since_ms, r.elapsed_ms);
    cr_assert_leq(r.status_since_ms, r.elapsed_ms);
}

Test(health, port_held_by_another_group_is_never_healthy)
{
    int port, none;
    spawn(CHILD_HTTP, OK200, &port); /* another program, answering 200 on the port */
    pid_t svc = spawn(CHILD_IDLE, NULL, &none);
    pt_health_opts o = service_opts(svc, port, "/", 600);
    pt_health_result r;
    cr_assert_eq(pt_health_wait(&o, &r), 0);
    cr_assert_eq(r.status, PT_HEALTH_TIMEOUT);
    cr_assert(r.foreign);
    cr_assert_eq(r.http_status, 0);
}

Test(health, port_holders_and_port_free)
{
    int port, none;
    pid_t pid = spawn(CHILD_LISTEN_ONLY, NULL, &port);
    pid_t idle = spawn(CHILD_IDLE, NULL, &none);
    pt_port_holder h[4];
    size_t n = 99, socks = 99;
    cr_assert_eq(pt_port_holders(port, 0, h, 4, &n, &socks), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(socks, 1);
    cr_assert_eq(h[0].pid, pid);
    cr_assert_eq(h[0].pgid, pid);
    /* the child's command line is ours (forked, no exec) */
    char self[64] = "";
    FILE *f = fopen("/proc/self/cmdline", "re");
    cr_assert(f && fgets(self, sizeof self, f));
    fclose(f);
    cr_assert(self[0] && strncmp(h[0].cmd, self, strlen(self)) == 0, "command '%s', ours '%s'", h[0].cmd, self);
    cr_assert_eq(pt_port_holders(port, pid, h, 4, &n, NULL), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(pt_port_holders(port, idle, h, 4, &n, &socks), 0);
    cr_assert_eq(n, 0, "no member of that group holds it");
    cr_assert_eq(socks, 1);
    cr_assert_eq(pt_port_holders(0, 0, h, 4, &n, NULL), -EINVAL);
    /* held: by the process asked about; by another member of its group; not by a group without it */
    cr_assert_eq(pt_port_held(port, pid, pid), 1);
    cr_assert_eq(pt_port_held(port, idle, pid), 1, "a member of group %d other than the one asked about", (int)pid);
    cr_assert_eq(pt_port_held(port, idle, idle), 0);
    cr_assert_eq(pt_port_held(port, pid, idle), 0, "pid %d holds it but is not of group %d", (int)pid, (int)idle);
    cr_assert_eq(pt_port_held(0, pid, pid), -EINVAL);
    cr_assert_eq(pt_port_held(port, 0, pid), -EINVAL);

    cr_assert_eq(pt_port_free("127.0.0.1", port), -EADDRINUSE);
    cr_assert_eq(pt_port_free("localhost", port), -EADDRINUSE);
    int cp = closed_port();
    close(blocker); /* nobody has it now */
    blocker = -1;
    cr_assert_eq(pt_port_free("127.0.0.1", cp), 0);
    cr_assert_eq(pt_port_holders(cp, 0, h, 4, &n, &socks), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(socks, 0);
    cr_assert_eq(pt_port_held(cp, pid, pid), 0, "no socket listens on port %d", cp);
    cr_assert_eq(pt_port_free("example.com", cp), -EINVAL);
}

/* Whether /proc/self/maps maps a file whose name holds name. */
static bool mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

/* libcurl is not linked: a process maps it only once it sends an HTTP
 * request (a --prepare hit, the daemon and the builder never do) */
Test(health, libcurl_loaded_on_the_first_request_only)
{
    int port;
    spawn(CHILD_LISTEN_ONLY, NULL, &port);
    cr_assert_eq(pt_tcp_probe("127.0.0.1", port, 1000), 0);
    cr_assert(!mapped("libcurl"), "libcurl is mapped before any HTTP request");
    cr_assert(!mapped("libssl") && !mapped("libgnutls"), "a TLS library is mapped before any HTTP request");
    int hp;
    spawn(CHILD_HTTP, OK200, &hp);
    long st = 0;
    cr_assert_eq(pt_http_probe("127.0.0.1", hp, "/", 2000, &st), 0);
    cr_assert_eq(st, 200);
    cr_assert(mapped("libcurl"), "the request did not load libcurl");
    cr_assert_eq(pt_http_load(), 0, "a second load returns the first one's result");
}

Test(health, http_strerror_messages)
{
    cr_assert_str_eq(pt_http_strerror(-EIO), "not an HTTP response");
    cr_assert_str_eq(pt_http_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
    cr_assert_str_eq(pt_http_strerror(-ETIMEDOUT), strerror(ETIMEDOUT));
    /* loaded fine here: -ELIBACC still names the library */
    cr_assert_eq(pt_http_load(), 0);
    cr_assert_not_null(strstr(pt_http_strerror(-ELIBACC), "libcurl"), "%s", pt_http_strerror(-ELIBACC));
}

/* the uid of a connection's client socket, as the API asks it: the socket
 * connected to the server's end, never an earlier one from the same local
 * port (TIME_WAIT sockets show uid 0 in /proc/net/tcp) */
Test(health, tcp_socket_uid_of_a_connection)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(ls, 4), 0);
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    int s = accept(ls, NULL, NULL);
    cr_assert(s >= 0);
    struct sockaddr_in peer, here;
    socklen_t pl = sizeof peer, hl = sizeof here;
    cr_assert_eq(getpeername(s, (struct sockaddr *)&peer, &pl), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&here, &hl), 0);
    uid_t uid = 12345;
    cr_assert_eq(pt_tcp_socket_uid((struct sockaddr *)&peer, (struct sockaddr *)&here, &uid), 0);
    cr_assert_eq(uid, geteuid());
    cr_assert_eq(pt_tcp_socket_uid((struct sockaddr *)&peer, NULL, &uid), 0, "the local address alone");
    struct sockaddr_in elsewhere = here;
    elsewhere.sin_port = htons(ntohs(here.sin_port) == 65535 ? 65534 : ntohs(here.sin_port) + 1);
    cr_assert_eq(pt_tcp_socket_uid((struct sockaddr *)&peer, (struct sockaddr *)&elsewhere, &uid), -ENOENT,
                 "a socket connected elsewhere is not this connection");
    /* the client closes first: its socket goes to TIME_WAIT, which must never answer */
    close(c);
    char b;
    cr_assert_eq(read(s, &b, 1), 0);
    close(s);
    /* wait (2 s at most) until /proc/net/tcp shows the client's socket in TIME_WAIT */
    char key[32], line[512];
    snprintf(key, sizeof key, "%08X:%04X", (unsigned)peer.sin_addr.s_addr, (unsigned)ntohs(peer.sin_port));
    bool tw = false;
    for (int i = 0; i < 2000 && !tw; i++) {
        FILE *f = fopen("/proc/net/tcp", "r");
        cr_assert(f);
        while (!tw && fgets(line, sizeof line, f)) {
            char laddr[64];
            unsigned st;
            tw = sscanf(line, " %*s %63s %*s %x", laddr, &st) == 2 && strcmp(laddr, key) == 0 && st == 0x06;
        }
        fclose(f);
        if (!tw)
            poll(NULL, 0, 1);
    }
    cr_assert(tw, "the client's socket never reached TIME_WAIT");
    cr_assert_eq(pt_tcp_socket_uid((struct sockaddr *)&peer, (struct sockaddr *)&here, &uid), -ENOENT,
                 "a TIME_WAIT socket matched (uid %u)", (unsigned)uid);
    close(ls);
}
