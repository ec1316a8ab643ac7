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
 * Errors: {"ok":false, "error":text, "errno":N} with N an errno value
 * (EINVAL bad request, EBUSY leased or being built, ENOENT not built).
 */
#ifndef PACTOWN_CONTROL_H
#define PACTOWN_CONTROL_H

#include <sys/socket.h>
#include <sys/un.h>

#define PT_CONTROL_SOCKET "control.sock"
#define PT_CONTROL_REQUEST_MAX 65536 /* bytes of one request */

/* Fill a with the address of the control socket in the directory open as
 * dirfd (O_PATH is enough). Returns the address length for bind(2) or
 * connect(2). */
socklen_t pt_control_addr(int dirfd, struct sockaddr_un *a);

#endif
