/* ports.c — listening TCP sockets (sock_diag(7), else proc(5)
 * /proc/net/tcp, tcp6) and the processes that hold them (/proc/PID/fd links
 * "socket:[INODE]"). */
#include "pactown/ports.h"
#include "pactown/proc.h"
#include "pactown/vec.h"

#include <dirent.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

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

static int add_sock(sock_vec *sv, unsigned long ino, int port)
{
    sock_ent *nv = pt_grow(sv->v, &sv->cap, sv->n, sizeof *nv);
    if (!nv)
        return -ENOMEM;
    sv->v = nv;
    sv->v[sv->n].ino = ino;
    sv->v[sv->n].port = port;
    sv->n++;
    return 0;
}

/* Append the LISTEN sockets of one /proc/net/tcp* file (only those on port
 * when port > 0).  -ENOENT when the file is absent. */
static int read_net_tcp(const char *file, int only_port, sock_vec *sv)
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
        if (state != 0x0A || ino == 0 || port == 0 || port > 65535 || (only_port > 0 && (int)port != only_port))
            continue;
        if ((rc = add_sock(sv, ino, (int)port)) != 0)
            break;
    }
    free(line);
    fclose(f);
    return rc;
}

/* The LISTEN sockets of one family from the kernel's sock_diag(7)
 * (SOCK_DIAG_BY_FAMILY, a dump of TCP sockets in state LISTEN only: the
 * listening hash, where /proc/net/tcp walks every bucket of the established
 * one too, milliseconds a read). -errno when netlink cannot answer. */
static int diag_listen(int family, int only_port, sock_vec *sv)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -errno;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req = { .nlh = { .nlmsg_len = sizeof req, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
              .r = { .sdiag_family = (unsigned char)family, .sdiag_protocol = IPPROTO_TCP,
                     .idiag_states = 1u << 10 /* TCP_LISTEN */ } };
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
    int rc = sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
    static _Thread_local char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
    bool done = false;
    while (rc == 0 && !done) {
        ssize_t len = recv(fd, buf, sizeof buf, 0);
        if (len < 0 && errno == EINTR)
            continue;
        if (len <= 0) {
            rc = len < 0 ? -errno : -EIO;
            break;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                done = true;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                rc = e->error ? e->error : -EIO;
                break;
            }
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            int port = ntohs(m->id.idiag_sport);
            if (m->idiag_state == 10 && m->idiag_inode && port && (only_port <= 0 || port == only_port) &&
                (rc = add_sock(sv, m->idiag_inode, port)) != 0)
                break;
        }
    }
    close(fd);
    return rc;
}

/* Every listening socket (on only_port when > 0), sorted by inode. */
static int listen_sockets(int only_port, sock_vec *sv)
{
    int rc = diag_listen(AF_INET, only_port, sv);
    if (rc == 0)
        rc = diag_listen(AF_INET6, only_port, sv);
    if (rc == 0) {
        if (sv->n > 1)
            qsort(sv->v, sv->n, sizeof *sv->v, cmp_ino);
        return 0;
    }
    sv->n = 0; /* no sock_diag here (a kernel without it, a seccomp filter): proc(5) */
    rc = read_net_tcp("/proc/net/tcp", only_port, sv);
    if (rc == 0) {
        int r6 = read_net_tcp("/proc/net/tcp6", only_port, sv);
        if (r6 != 0 && r6 != -ENOENT)
            rc = r6;
    }
    if (rc == 0 && sv->n > 1)
        qsort(sv->v, sv->n, sizeof *sv->v, cmp_ino);
    return rc;
}

/* Called once per listening socket of sv found open in a process. */
typedef void (*match_fn)(void *arg, const char *pid, pid_t pgrp, const sock_ent *e);

/* Look through the fds of process nm (a /proc entry; process group pg) for
 * the sockets of sv; fn for each one found. Returns how many were found. */
static size_t scan_fds(int procfd, const char *nm, pid_t pg, const sock_vec *sv, match_fn fn, void *arg)
{
    char p[300];
    snprintf(p, sizeof p, "%s/fd", nm);
    int ffd = openat(procfd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ffd < 0)
        return 0; /* vanished (ENOENT) or not ours (EACCES) */
    DIR *fdd = fdopendir(ffd);
    if (!fdd) {
        close(ffd);
        return 0;
    }
    size_t found = 0;
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
        const sock_ent *hit = bsearch(&key, sv->v, sv->n, sizeof *sv->v, cmp_ino);
        if (!hit)
            continue;
        /* the v4 and v6 files may both list one inode */
        while (hit > sv->v && hit[-1].ino == ino)
            hit--;
        for (; hit < sv->v + sv->n && hit->ino == ino; hit++, found++)
            if (fn)
                fn(arg, nm, pg, hit);
    }
    closedir(fdd);
    return found;
}

/* Look through the fds of every process (of group pgid only, when > 0) for
 * the sockets of sv; fn for each one found. */
static int scan_procs(const sock_vec *sv, pid_t pgid, match_fn fn, void *arg)
{
    DIR *pd = opendir("/proc");
    if (!pd)
        return -errno;
    struct dirent *de;
    while ((de = readdir(pd)) != NULL) {
        const char *nm = de->d_name;
        if (nm[0] < '1' || nm[0] > '9' || strspn(nm, "0123456789") != strlen(nm))
            continue;
        pid_t pg = 0;
        if (pt_proc_pgrp((pid_t)strtol(nm, NULL, 10), &pg, NULL) < 0 || (pgid > 0 && pg != pgid))
            continue; /* vanished, unreadable, or another group */
        scan_fds(dirfd(pd), nm, pg, sv, fn, arg);
    }
    closedir(pd);
    return 0;
}

static void mark_port(void *arg, const char *pid, pid_t pgrp, const sock_ent *e)
{
    (void)pid;
    (void)pgrp;
    uint8_t *seen = arg;
    seen[e->port >> 3] |= (uint8_t)(1u << (e->port & 7));
}

int pt_listening_ports(pid_t pgid, int *ports, size_t max, size_t *n)
{
    if (pgid <= 0 || !n || (!ports && max > 0))
        return -EINVAL;
    *n = 0;
    sock_vec sv = { 0 };
    int rc = listen_sockets(0, &sv);
    if (rc || sv.n == 0) {
        free(sv.v);
        return rc;
    }
    uint8_t *seen = calloc(65536 / 8, 1);
    if (!seen) {
        free(sv.v);
        return -ENOMEM;
    }
    rc = scan_procs(&sv, pgid, mark_port, seen);
    size_t k = 0;
    for (int port = 1; rc == 0 && port < 65536 && k < max; port++)
        if (seen[port >> 3] & (1u << (port & 7)))
            ports[k++] = port;
    *n = k;
    free(seen);
    free(sv.v);
    return rc;
}

/* The command line of /proc/<pid> for a message: NULs as spaces, control
 * bytes as '?', "[comm]" when empty. */
static void proc_cmd(const char *pid, char *out, size_t n)
{
    char p[300], buf[sizeof((pt_port_holder *)0)->cmd];
    snprintf(p, sizeof p, "/proc/%s/cmdline", pid);
    out[0] = '\0';
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ssize_t r = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (r > 0) {
        while (r > 0 && buf[r - 1] == '\0')
            r--;
        for (ssize_t i = 0; i < r; i++)
            buf[i] = buf[i] == '\0' ? ' ' : ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) ? '?' : buf[i];
        buf[r] = '\0';
        snprintf(out, n, "%s", buf);
    }
    if (out[0])
        return;
    snprintf(p, sizeof p, "/proc/%s/comm", pid);
    fd = open(p, O_RDONLY | O_CLOEXEC);
    r = fd >= 0 ? read(fd, buf, sizeof buf - 3) : -1;
    if (fd >= 0)
        close(fd);
    while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == '\0'))
        r--;
    if (r > 0)
        snprintf(out, n, "[%.*s]", (int)r, buf);
}

typedef struct {
    pt_port_holder *out;
    size_t max, n;
} holders;

static void add_holder(void *arg, const char *pid, pid_t pgrp, const sock_ent *e)
{
    (void)e;
    holders *h = arg;
    pid_t p = (pid_t)strtol(pid, NULL, 10);
    for (size_t i = 0; i < h->n; i++)
        if (h->out[i].pid == p)
            return; /* listed already (several sockets, or v4 and v6) */
    if (h->n >= h->max)
        return;
    pt_port_holder *o = &h->out[h->n++];
    o->pid = p;
    o->pgid = pgrp;
    proc_cmd(pid, o->cmd, sizeof o->cmd);
}

int pt_port_holders(int port, pid_t pgid, pt_port_holder *out, size_t max, size_t *n, size_t *sockets)
{
    if (port < 1 || port > 65535 || !n || (!out && max > 0) || pgid < 0)
        return -EINVAL;
    *n = 0;
    if (sockets)
        *sockets = 0;
    sock_vec sv = { 0 };
    int rc = listen_sockets(port, &sv);
    if (sockets)
        *sockets = sv.n;
    if (rc == 0 && sv.n > 0) {
        holders h = { .out = out, .max = max };
        rc = scan_procs(&sv, pgid, add_holder, &h);
        *n = h.n;
    }
    free(sv.v);
    return rc;
}

int pt_port_held(int port, pid_t pid, pid_t pgid)
{
    if (port < 1 || port > 65535 || pid <= 0 || pgid <= 0)
        return -EINVAL;
    sock_vec sv = { 0 };
    int rc = listen_sockets(port, &sv);
    if (rc == 0 && sv.n > 0) {
        /* the service's first process holds it, most often (a warm start's: the interpreter itself):
         * its fds alone, before a walk of every process's stat for the group's other members */
        char nm[24];
        snprintf(nm, sizeof nm, "%d", (int)pid);
        int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        pid_t pg = 0;
        if (procfd < 0)
            rc = -errno;
        else if (pt_proc_pgrp(pid, &pg, NULL) == 0 && pg == pgid && scan_fds(procfd, nm, pg, &sv, NULL, NULL) > 0)
            rc = 1;
        if (procfd >= 0)
            close(procfd);
    }
    size_t listening = sv.n;
    free(sv.v);
    if (rc == 0 && listening > 0) { /* not it: the group's other members (every process's stat) */
        pt_port_holder h;
        size_t n = 0;
        rc = pt_port_holders(port, pgid, &h, 1, &n, NULL);
        rc = rc < 0 ? rc : n > 0;
    }
    return rc;
}

/* /proc/net/tcp{,6} addresses are the socket's bytes printed as 32-bit words
 * in host order: for IPv4 one word, for IPv6 four. */
static void addr_hex(const struct sockaddr *sa, char *out, size_t n, int *port)
{
    const unsigned char *b;
    size_t len;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        b = (const unsigned char *)&in->sin_addr;
        len = 4;
        *port = ntohs(in->sin_port);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        b = (const unsigned char *)&in6->sin6_addr;
        len = 16;
        *port = ntohs(in6->sin6_port);
    }
    size_t k = 0;
    for (size_t w = 0; w < len; w += 4) {
        uint32_t v;
        memcpy(&v, b + w, 4);
        k += (size_t)snprintf(out + k, n - k, "%08X", v);
    }
}

int pt_tcp_socket_uid(const struct sockaddr *local, const struct sockaddr *remote, uid_t *uid)
{
    if (!local || (local->sa_family != AF_INET && local->sa_family != AF_INET6) ||
        (remote && remote->sa_family != local->sa_family))
        return -EINVAL;
    char want[40], rwant[40];
    int port, rport = 0;
    addr_hex(local, want, sizeof want, &port);
    char key[48], rkey[48] = "";
    snprintf(key, sizeof key, "%s:%04X", want, (unsigned)port);
    if (remote) {
        addr_hex(remote, rwant, sizeof rwant, &rport);
        snprintf(rkey, sizeof rkey, "%s:%04X", rwant, (unsigned)rport);
    }
    FILE *f = fopen(local->sa_family == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6", "re");
    if (!f)
        return -errno;
    char line[512];
    int rc = -ENOENT;
    while (rc == -ENOENT && fgets(line, sizeof line, f)) {
        char laddr[64], raddr[64];
        unsigned long u;
        unsigned st;
        /* sl local_address rem_address st tx:rx tr:when retrnsmt uid ... (proc(5)); st 06: TIME_WAIT */
        if (sscanf(line, " %*s %63s %63s %x %*s %*s %*s %lu", laddr, raddr, &st, &u) == 4 && st != 0x06 &&
            strcmp(laddr, key) == 0 && (!remote || strcmp(raddr, rkey) == 0)) {
            *uid = (uid_t)u;
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}
