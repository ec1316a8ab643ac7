/* pactown/ports.h — who listens on a TCP port: listening sockets from
 * proc(5) (/proc/net/tcp, /proc/net/tcp6) and the processes that hold them
 * (the "socket:[INODE]" links in /proc/PID/fd).
 *
 * Everything here reads the caller's network namespace and sees only the
 * processes whose fds the caller may read (all of them as root); processes
 * that vanish mid-scan are skipped.  Conventions: 0 or -errno (errno(3)).
 * Man: proc(5) (/proc/net/tcp, /proc/pid/stat, /proc/pid/fd, /proc/pid/cmdline).
 */
#ifndef PACTOWN_PORTS_H
#define PACTOWN_PORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* TCP ports in LISTEN state (st 0A) held by any process whose process group
 * id is pgid.
 * ports: caller-owned array of max ints; receives the unique ports in
 *   ascending order, the smallest max of them when there are more.
 * n: out, number of ports stored (<= max).
 * Errors: -EINVAL (pgid <= 0, n NULL, ports NULL with max > 0), -ENOMEM,
 *   -errno of opening /proc/net/tcp or /proc. */
int pt_listening_ports(pid_t pgid, int *ports, size_t max, size_t *n);

typedef struct pt_port_holder {
    pid_t pid;          /* a process with a listening socket of the port open */
    pid_t pgid;         /* its process group (proc(5) stat field 5) */
    char cmd[160];      /* its command line, arguments joined by spaces, control bytes as '?',
                           cut to fit; "[comm]" when the command line is empty (kernel threads) */
} pt_port_holder;

/* Whether a member of process group pgid holds a listening TCP socket bound
 * to port on any local address: process pid's fds are looked at first (the
 * service's first process, which holds it most often), the group's other
 * members only when it does not (one stat read per process of the host).
 * Returns 1 held, 0 not (also: held only by processes the caller cannot see),
 * -EINVAL (port outside 1..65535, pid or pgid <= 0), -ENOMEM, -errno of
 * opening /proc. */
int pt_port_held(int port, pid_t pid, pid_t pgid);

/* The processes that hold a listening TCP socket bound to port on any local
 * address, IPv4 or IPv6.
 * pgid: 0 = look at every process; > 0 = only at members of that process
 *   group (cheap: one stat read per process, fds only of the members).
 * out: caller-owned array of max holders, in /proc order (ascending pid);
 *   a process holding several such sockets is listed once.
 * n: out, holders stored.  sockets: out (may be NULL), listening sockets on
 *   the port found in /proc/net: > 0 with *n == 0 means held by a process
 *   the caller cannot see (another user's, another pid namespace's).
 * Errors: -EINVAL (port outside 1..65535, n NULL, out NULL with max > 0,
 *   pgid < 0), -ENOMEM, -errno of opening /proc/net/tcp or /proc. */
int pt_port_holders(int port, pid_t pgid, pt_port_holder *out, size_t max, size_t *n, size_t *sockets);

/* The uid that owns the TCP socket bound to the address local and
 * connected to remote (a peer's address and the server's own, as a server
 * sees a connection: on loopback, the client's own socket), from the uid
 * column of /proc/net/tcp or /proc/net/tcp6. Sockets in TIME_WAIT (owned by
 * nobody: uid 0 there) never match, nor does one connected elsewhere: an
 * earlier connection from the same local port is not this one. remote may
 * be NULL (the local address alone). -ENOENT when there is no such socket
 * in this network namespace, -EINVAL for another family. Man: proc(5). */
struct sockaddr;
int pt_tcp_socket_uid(const struct sockaddr *local, const struct sockaddr *remote, uid_t *uid);

#endif
