/* control.c — the address of the daemon's control socket (pactown/control.h). */
#include "pactown/control.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

socklen_t pt_socket_addr(int dirfd, const char *name, struct sockaddr_un *a)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    /* at most 14 + 10 + 1 + the name's bytes: fits sun_path for our names */
    snprintf(a->sun_path, sizeof a->sun_path, "/proc/self/fd/%d/%s", dirfd, name);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

socklen_t pt_control_addr(int dirfd, struct sockaddr_un *a)
{
    return pt_socket_addr(dirfd, PT_CONTROL_SOCKET, a);
}
