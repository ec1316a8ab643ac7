/* control.c — the client side of the daemon's control socket
 * (<cache_dir>/control.sock; address and protocol in pactown/control.h). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pactown/control.h"
#include "cli.h"

int cli_tell_use(struct cli *cli, const char *key)
{
    int dirfd = open(cli->cfg.cache_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return -errno;
    struct sockaddr_un a;
    socklen_t alen = pt_socket_addr(dirfd, PT_USES_SOCKET, &a);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;
    char msg[4 + 32 + 1];
    int len = snprintf(msg, sizeof msg, "use %s", key);
    /* never waits: a full queue (EAGAIN), no daemon (ENOENT, ECONNREFUSED)
     * or no permission (EACCES: not root) sends the caller to the index */
    if (fd < 0 || sendto(fd, msg, (size_t)len, MSG_DONTWAIT, (struct sockaddr *)&a, alen) != len)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    close(dirfd);
    return rc;
}

static int control_call(struct cli *cli, json_t *req, json_t **resp, bool quiet)
{
    int dirfd = open(cli->cfg.cache_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct sockaddr_un a;
    socklen_t alen = dirfd >= 0 ? pt_control_addr(dirfd, &a) : 0;
    int fd = dirfd >= 0 ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, alen) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (dirfd >= 0)
            close(dirfd);
        if (!quiet)
            cli_err(cli, "cannot reach pactownfs through %s/%s: %s (is the daemon running with cache_dir %s?)",
                    cli->cfg.cache_dir, PT_CONTROL_SOCKET, strerror(e), cli->cfg.cache_dir);
        return EXIT_NOT_MOUNTED;
    }
    close(dirfd);
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
        if (!quiet)
            cli_err(cli, "sending to pactownfs failed");
        return EXIT_ERROR;
    }
    json_error_t jerr;
    *resp = json_loadfd(fd, JSON_DISABLE_EOF_CHECK, &jerr);
    close(fd);
    if (!*resp) {
        if (!quiet)
            cli_err(cli, "no answer from pactownfs: %s", jerr.text);
        return EXIT_ERROR;
    }
    return 0;
}

int cli_control(struct cli *cli, json_t *req, json_t **resp)
{
    return control_call(cli, req, resp, false);
}

void cli_flush_uses(struct cli *cli)
{
    json_t *req = json_pack("{s:s}", "op", "flush"), *resp = NULL;
    if (req && control_call(cli, req, &resp, true) == 0)
        json_decref(resp);
    json_decref(req);
}

int cli_evict(struct cli *cli, const char *key, bool force, unsigned quiet, bool *cleared)
{
    *cleared = false;
    json_t *req = json_pack("{s:s, s:s, s:b}", "op", "rm", "key", key, "force", force), *resp = NULL;
    int ret = req ? cli_control(cli, req, &resp) : EXIT_ERROR;
    json_decref(req);
    if (ret)
        return ret;
    if (!json_is_true(json_object_get(resp, "ok"))) {
        int e = (int)json_integer_value(json_object_get(resp, "errno"));
        if (!((quiet & CLI_QUIET_NONE) && e == ENOENT) && !((quiet & CLI_QUIET_BUSY) && e == EBUSY))
            cli_err(cli, "%s: %s", key, json_string_value(json_object_get(resp, "error")));
        json_decref(resp);
        return e == EBUSY ? EXIT_RUNNING : e == ENOENT ? EXIT_NOT_FOUND : EXIT_ERROR;
    }
    *cleared = json_is_true(json_object_get(resp, "cleared"));
    json_decref(resp);
    return 0;
}
