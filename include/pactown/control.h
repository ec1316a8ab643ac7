/* pactown/control.h — the daemon's control socket, shared by pactownfs
 * (mount/control.c, the server) and `pactown cache gc|rm|stale` (the client).
 *
 * A Unix stream socket, <cache_dir>/control.sock, mode 0600 (root's or the
 * daemon owner's): only the daemon can tell the kernel to drop what it caches
 * of the mount, so evictions go through it. Its address is always short
 * enough for sun_path (108 bytes, unix(7)), whatever the length of
 * cache_dir: both sides open cache_dir and name the socket through
 * /proc/self/fd/<fd>/control.sock (proc(5)).
 *
 * Protocol: one JSON object per connection, on one line; one JSON answer.
 *   {"op":"gc", "dry_run":bool, "now":epoch_s?}
 *        -> {"ok":true, "dry_run":bool, "victims":[{key, reason, size, last_access}], "limits":{...}}
 *   {"op":"rm", "key":K, "force":bool}
 *        -> {"ok":true} | {"ok":true, "cleared":true} (a failed build forgotten)
 *   {"op":"stale", "key":K, "pid":P?}  the venv looked unusable to the client
 *        (pactown/venv.h): the daemon checks, and evicts it if so (leases of
 *        P, the client, do not count) -> {"ok":true, "stale":bool}
 *   {"op":"flush"}  write the access times and hits the daemon holds in
 *        memory to the index (before `pactown cache stats|ls|show` read it)
 *        -> {"ok":true}
 * Errors: {"ok":false, "error":text, "errno":N} with N an errno value
 * (EINVAL bad request, EBUSY leased or being built, ENOENT not built).
 */
#ifndef PACTOWN_CONTROL_H
#define PACTOWN_CONTROL_H

#include <sys/socket.h>
#include <sys/un.h>

#define PT_CONTROL_SOCKET "control.sock"
/* <cache_dir>/uses.sock, mode 0600: a datagram socket (unix(7) SOCK_DGRAM)
 * on which `pactown run --prepare` tells a cache hit without waiting for an
 * answer: one datagram "use KEY" (KEY: 32 hex digits). The daemon counts the
 * hit and the access time in memory, with the lookups' access times, and
 * writes them before each eviction run, on "flush" and at unmount: a hit
 * costs no index commit (fdatasync). */
#define PT_USES_SOCKET "uses.sock"
#define PT_CONTROL_REQUEST_MAX 65536 /* bytes of one request */

/* Fill a with the address of the control socket in the directory open as
 * dirfd (O_PATH is enough). Returns the address length for bind(2) or
 * connect(2). */
socklen_t pt_control_addr(int dirfd, struct sockaddr_un *a);
/* The same for the socket name (PT_USES_SOCKET, …; at most 64 bytes). */
socklen_t pt_socket_addr(int dirfd, const char *name, struct sockaddr_un *a);

#endif
