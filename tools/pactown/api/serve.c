/* serve.c — `pactown serve`: the runner API's listeners, its token and its
 * life (api.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "http.h"
#include "pactown/cgroup.h"
#include "pactown/fsutil.h"
#include "../svcops.h"

static const char usage_text[] =
    "usage: pactown serve [--socket PATH] [--listen ADDR:PORT] [--token-file FILE] [options]\n"
    "\n"
    "The runner API (docs/API.md): pactown's routes (/run, /run/stream, /stop, /status,\n"
    "/cache/stats, /validate, /sandbox/..., /logs/ID, DELETE /services/ID), at / and under\n"
    "/runner/, with pactown's request and response fields. Each /run does what `pactown run\n"
    "--detach` does, in this process; services run in their own session and process group,\n"
    "and their records stay in the index, so a restarted server still lists and stops them.\n"
    "\n"
    "  --socket PATH        Unix socket to listen on (setting api_socket, default\n"
    "                       /run/pactown/api.sock), mode 0660; --socket '' for none\n"
    "  --listen ADDR:PORT   also listen on TCP (e.g. 127.0.0.1:8801, [::1]:8801); an address\n"
    "                       that is not loopback only with a token\n"
    "  --token-file FILE    the token, in a file of mode 0600 or stricter (setting\n"
    "                       runner_token_file); or the setting runner_token\n"
    "                       (PACTOWN_RUNNER_TOKEN). With a token every route but /health needs\n"
    "                       X-Runner-Token: TOKEN or Authorization: Bearer TOKEN\n"
    "\n"
    "Ports for `port: 0` come from port_start..port_end (default 10000-20000); bodies larger\n"
    "than api_max_body bytes are refused (413). Prints `pactown serve: listening on ...` once\n"
    "it answers; SIGTERM or SIGINT ends it (services keep running).\n"
    "exit codes: 0 stopped by a signal, 2 usage, 1 cannot listen or other error\n";

static void usage(FILE *out)
{
    fputs(usage_text, out);
    fputs("\n" CLI_COMMON_HELP, out);
}

/* The token from runner_token, else from runner_token_file (a regular file
 * that only its owner may read: a token readable by others is refused).
 * Returns 0 (api->token NULL when none is configured) or EXIT_ERROR. */
static int load_token(struct api *api)
{
    const char *t = api->cli.cfg.runner_token, *file = api->cli.cfg.runner_token_file;
    if (t && *t) {
        api->token = strdup(t);
        return api->token ? 0 : EXIT_ERROR;
    }
    if (!file || !*file)
        return 0;
    int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        cli_err(&api->cli, "runner_token_file %s: %s", file, strerror(errno));
        if (fd >= 0)
            close(fd);
        return EXIT_ERROR;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        cli_err(&api->cli, "runner_token_file %s: %s", file,
                S_ISREG(st.st_mode) ? "other users may read it: make it mode 0600 (chmod 600)" : "not a regular file");
        close(fd);
        return EXIT_ERROR;
    }
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!buf[0]) {
        cli_err(&api->cli, "runner_token_file %s: empty (one line: the token)", file);
        return EXIT_ERROR;
    }
    api->token = strdup(buf);
    explicit_bzero(buf, sizeof buf);
    return api->token ? 0 : EXIT_ERROR;
}

/* A Unix socket at path, mode 0660: a stale socket (nobody answers) is
 * replaced, a live one (another server) refused. Returns the fd or -1 (said). */
static int unix_listener(struct cli *cli, const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof a.sun_path) {
        cli_err(cli, "api_socket %s: longer than %zu bytes", path, sizeof a.sun_path - 1);
        return -1;
    }
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = pt_mkdir_p(dir, 0755);
        if (rc) {
            cli_err(cli, "api_socket %s: cannot create %s: %s", path, dir, strerror(-rc));
            return -1;
        }
    }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        cli_err(cli, "socket: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            cli_err(cli, "api_socket %s exists and is not a socket: not replacing it", path);
            close(s);
            return -1;
        }
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
            cli_err(cli, "api_socket %s: another pactown serve answers there", path);
            close(s);
            return -1;
        }
        close(s);
        unlink(path); /* nobody answers: left by a server that was killed */
        s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return -1;
    }
    mode_t old = umask(0117); /* 0660 from the start: never a moment of wider access */
    int rc = bind(s, (struct sockaddr *)&a, sizeof a);
    umask(old);
    if (rc != 0 || chmod(path, 0660) != 0 || listen(s, 128) != 0) {
        cli_err(cli, "api_socket %s: %s", path, strerror(errno));
        close(s);
        return -1;
    }
    return s;
}

/* "127.0.0.1:8801", "[::1]:8801", "localhost:8801" -> a bound, listening TCP
 * socket; *loopback says whether the address is a loopback one. */
static int tcp_listener(struct cli *cli, const char *spec, bool *loopback)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || !colon[1]) {
        cli_err(cli, "--listen %s: expected ADDR:PORT (e.g. 127.0.0.1:8801)", spec);
        return -2;
    }
    size_t hl = (size_t)(colon - spec);
    if (hl >= sizeof host) {
        cli_err(cli, "--listen %s: address too long", spec);
        return -2;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535) {
        cli_err(cli, "--listen %s: port must be 1..65535", spec);
        return -2;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV | AI_PASSIVE }, *res = NULL;
    int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
    if (g != 0 || !res) {
        cli_err(cli, "--listen %s: %s", spec, gai_strerror(g));
        return -2;
    }
    *loopback = false;
    if (res->ai_family == AF_INET)
        *loopback = (ntohl(((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr) >> 24) == 127;
    else if (res->ai_family == AF_INET6)
        *loopback = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr);
    int s = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (s >= 0)
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s < 0 || bind(s, res->ai_addr, res->ai_addrlen) != 0 || listen(s, 128) != 0) {
        cli_err(cli, "--listen %s: %s", spec, strerror(errno));
        if (s >= 0)
            close(s);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return s;
}

/* Connections at most, per client address (TCP), and the seconds a
 * connection may stay silent (libmicrohttpd has no whole-request timeout). */
#define API_CONNECTIONS 1024
#define API_CONNECTIONS_PER_IP 128
#define API_IDLE_TIMEOUT_S 30

/* libmicrohttpd's messages (a connection reset, …): at most 20 a minute, so
 * that a flood of bad connections cannot fill the disk with them. */
static void api_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static time_t window;
    static int n, dropped;
    time_t now = time(NULL);
    pthread_mutex_lock(&mu);
    if (now - window >= 60) {
        if (dropped)
            fprintf(stderr, "pactown serve: (%d more libmicrohttpd messages in the last minute not shown)\n", dropped);
        window = now;
        n = dropped = 0;
    }
    bool show = n++ < 20;
    if (!show)
        dropped++;
    pthread_mutex_unlock(&mu);
    if (!show)
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    fprintf(stderr, "pactown serve: http: %s\n", line);
}

static struct MHD_Daemon *start_mhd(struct api *api, int fd, bool fd_is_tcp)
{
    return MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                                MHD_USE_ITC | MHD_USE_ERROR_LOG,
                            0, NULL, NULL, api_handle, api, MHD_OPTION_EXTERNAL_LOGGER, api_log, NULL,
                            MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, api_completed, NULL,
                            MHD_OPTION_UNESCAPE_CALLBACK, api_unescape, NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)(fd_is_tcp ? API_CONNECTIONS_PER_IP : 0), MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)API_IDLE_TIMEOUT_S, MHD_OPTION_END);
}

int cmd_serve(int argc, char **argv)
{
    static struct api api; /* lives until the process ends: request threads hold it */
    api.cli.prog = "pactown serve";
    pthread_mutex_init(&api.mu, NULL);
    const char *listen_on = NULL, *socket_path = NULL;
    enum { O_SOCKET = 1, O_LISTEN, O_TOKEN_FILE };
    static const struct option opts[] = { { "socket", required_argument, NULL, O_SOCKET },
                                          { "listen", required_argument, NULL, O_LISTEN },
                                          { "token-file", required_argument, NULL, O_TOKEN_FILE },
                                          CLI_COMMON_LONGOPTS, { 0 } };
    int c, ret;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_SOCKET: socket_path = optarg; break;
        case O_LISTEN: listen_on = optarg; break;
        case O_TOKEN_FILE: {
            char *kv = NULL;
            int r = asprintf(&kv, "runner_token_file=%s", optarg) < 0 ? -1 : cli_common_opt(&api.cli, OPT_SET, kv);
            free(kv);
            if (r)
                return EXIT_ERROR;
            break;
        }
        default:
            if ((ret = cli_other_opt(&api.cli, c, optarg, usage)) >= 0)
                return ret;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((ret = cli_setup(&api.cli)) != 0 || (ret = load_token(&api)) != 0 || (ret = cli_open_index(&api.cli)) != 0)
        return ret;
    /* the token is the server's: never in a service's environment, nor in
     * this process's /proc/PID/environ (the bytes of the initial
     * environment, which unsetenv leaves as they are) */
    char *in_env = getenv("PACTOWN_RUNNER_TOKEN");
    if (in_env)
        explicit_bzero(in_env, strlen(in_env));
    unsetenv("PACTOWN_RUNNER_TOKEN");
    unsetenv("PACTOWN_RUNNER_TOKEN_FILE");
    if (!socket_path)
        socket_path = api.cli.cfg.api_socket;
    if (api.cli.cfg.port_start < 1 || api.cli.cfg.port_end > 65535 || api.cli.cfg.port_start > api.cli.cfg.port_end) {
        cli_err(&api.cli, "port_start %ld .. port_end %ld: expected 1 <= port_start <= port_end <= 65535",
                api.cli.cfg.port_start, api.cli.cfg.port_end);
        return EXIT_USAGE;
    }
    if (!*socket_path && !listen_on) {
        cli_err(&api.cli, "nothing to listen on: give --listen ADDR:PORT, or keep the Unix socket");
        return EXIT_USAGE;
    }
    int tcp = -1, ux = -1;
    if (listen_on) {
        bool loopback = false;
        tcp = tcp_listener(&api.cli, listen_on, &loopback);
        if (tcp == -2)
            return EXIT_USAGE;
        if (tcp < 0)
            return EXIT_ERROR;
        if (!loopback && !api.token) {
            cli_err(&api.cli, "--listen %s is not a loopback address: configure a token first (runner_token,"
                              " PACTOWN_RUNNER_TOKEN or --token-file), or listen on 127.0.0.1", listen_on);
            close(tcp);
            return EXIT_USAGE;
        }
    }
    /* a mount of another cache_dir would fail every run: refused now; none
     * at all is said (it may be mounted later: each run checks again) */
    int mrc = cli_check_mount(&api.cli);
    if (mrc != 0 && mrc != EXIT_NOT_MOUNTED)
        return mrc;
    if (mrc == EXIT_NOT_MOUNTED)
        cli_err(&api.cli, "warning: runs will fail (503) until pactownfs is mounted at %s", api.cli.cfg.mountpoint);
    if (*socket_path && (ux = unix_listener(&api.cli, socket_path)) < 0)
        return EXIT_ERROR;
    cli_prune_services(&api.cli);

    /* signals end the server: taken by sigwait in this thread alone */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *du = ux >= 0 ? start_mhd(&api, ux, false) : NULL, *dt = tcp >= 0 ? start_mhd(&api, tcp, true) : NULL;
    if ((ux >= 0 && !du) || (tcp >= 0 && !dt)) {
        cli_err(&api.cli, "cannot start the HTTP server (libmicrohttpd)");
        if (ux >= 0)
            unlink(socket_path);
        return EXIT_ERROR;
    }
    pt_cg_host cg;
    char cgs[96];
    cli_cgroups(&api.cli, &cg);
    fprintf(stderr, "pactown serve: users' limits: %s\n", pt_cgroup_describe(&cg, cgs, sizeof cgs));
    fprintf(stderr, "pactown serve: listening on %s%s%s%s%s (token %s)\n", ux >= 0 ? "unix:" : "",
            ux >= 0 ? socket_path : "", ux >= 0 && tcp >= 0 ? ", " : "", tcp >= 0 ? "http://" : "",
            tcp >= 0 ? listen_on : "", api.token ? "required" : "not required");
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "pactown serve: %s: stopping (running services keep running; `pactown ps` lists them)\n",
            strsignal(sig));
    if (du)
        MHD_quiesce_daemon(du);
    if (dt)
        MHD_quiesce_daemon(dt);
    if (ux >= 0)
        unlink(socket_path);
    /* requests in flight end with the process: their services are in the
     * index already, or not started (a build goes on in pactownfs) */
    fflush(stderr);
    _exit(EXIT_OK);
}
