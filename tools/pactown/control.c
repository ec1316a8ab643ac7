/* control.c — the client side of the daemon's control socket
 * (<cache_dir>/control.sock; protocol in mount/control.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

int cli_control(struct cli *cli, json_t *req, json_t **resp)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (snprintf(a.sun_path, sizeof a.sun_path, "%s/control.sock", cli->cfg.cache_dir) >= (int)sizeof a.sun_path) {
        cli_err(cli, "%s/control.sock: path too long for a socket", cli->cfg.cache_dir);
        return EXIT_ERROR;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        cli_err(cli, "cannot reach pactownfs through %s: %s (is the daemon running with cache_dir %s?)", a.sun_path,
                strerror(e), cli->cfg.cache_dir);
        return EXIT_NOT_MOUNTED;
    }
    char *text = json_dumps(req, JSON_COMPACT);
    size_t len = text ? strlen(text) : 0, off = 0;
    while (text && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(text);
    if (off != len || write(fd, "\n", 1) != 1) {
        close(fd);
        cli_err(cli, "sending to pactownfs failed");
        return EXIT_ERROR;
    }
    json_error_t jerr;
    *resp = json_loadfd(fd, JSON_DISABLE_EOF_CHECK, &jerr);
    close(fd);
    if (!*resp) {
        cli_err(cli, "no answer from pactownfs: %s", jerr.text);
        return EXIT_ERROR;
    }
    return 0;
}
