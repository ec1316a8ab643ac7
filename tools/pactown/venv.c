/* venv.c — reaching a venv through the mount: is pactownfs there, and
 * resolve <mount>/by-deps/<key> (the daemon builds it on a miss), showing
 * the build log while it builds. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "pactown/store.h"
#include "pactown/venv.h"
#include "cli.h"

#define FUSE_SUPER_MAGIC 0x65735546


int cli_check_mount(struct cli *cli)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/by-deps", cli->cfg.mountpoint);
    struct statfs sf;
    int rc = statfs(path, &sf) == 0 ? 0 : errno;
    if (rc || sf.f_type != FUSE_SUPER_MAGIC) {
        cli_err(cli, "pactownfs is not mounted at %s (%s); start it with: pactownfs %s (setting mountpoint)",
                cli->cfg.mountpoint,
                rc == ENOTCONN ? "the daemon is gone: Transport endpoint is not connected"
                               : (rc && rc != ENOENT ? strerror(rc) : "no pactown tree there"),
                cli->cfg.mountpoint);
        return EXIT_NOT_MOUNTED;
    }
    /* the daemon names its cache in the mount's source, pactownfs@<cache_dir>:
     * a CLI with another cache_dir would register sets the daemon never sees,
     * or read another cache's state, logs and leases */
    char mnt[PATH_MAX], src[PATH_MAX + 16], mine[PATH_MAX];
    if (realpath(cli->cfg.mountpoint, mnt) && pt_mount_source(mnt, "fuse.pactown", src, sizeof src) == 0 &&
        strncmp(src, "pactownfs@", 10) == 0) {
        const char *theirs = src + 10;
        if (!realpath(cli->cfg.cache_dir, mine) || strcmp(mine, theirs) != 0) {
            cli_err(cli, "pactownfs at %s serves cache_dir %s, but this command uses cache_dir %s: give both the same"
                         " one (the cache_dir setting, e.g. PACTOWN_CACHE_DIR or --cache-dir)",
                    cli->cfg.mountpoint, theirs, cli->cfg.cache_dir);
            return EXIT_ERROR;
        }
    }
    return 0;
}

/* Progress while the daemon builds: copy new lines of the build log to
 * stderr ("  | " before each), or line by line to cli->say. */
struct tail {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;
    bool mid_line;           /* stderr: the last byte copied was not a newline */
    const struct cli *cli;
    char line[1024];         /* cli->say: the line being gathered */
    size_t len;
    char path[PATH_MAX];
};

static void tail_copy(struct tail *t, int fd)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (!t->cli->say) {
                if (!t->mid_line)
                    fputs("  | ", stderr);
                fputc(buf[i], stderr);
                t->mid_line = buf[i] != '\n';
                continue;
            }
            if (buf[i] != '\n' && t->len + 1 < sizeof t->line) {
                t->line[t->len++] = buf[i] >= 0x20 || buf[i] == '\t' || (buf[i] & 0x80) ? buf[i] : '?';
                continue;
            }
            t->line[t->len] = '\0';
            char line[sizeof t->line + 8];
            snprintf(line, sizeof line, "  | %s", t->line);
            t->cli->say(t->cli->say_ctx, false, line);
            t->len = 0;
        }
    }
}

static void *tail_main(void *arg)
{
    struct tail *t = arg;
    int fd = -1;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (fd < 0)
            fd = open(t->path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            tail_copy(t, fd);
        if (t->stop)
            break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->cond, &t->mu, &until);
    }
    pthread_mutex_unlock(&t->mu);
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* The venv behind link is built but unusable (its base interpreter is gone,
 * pactown/venv.h): ask the daemon to evict it so that it is built again.
 * True if it did. This process's own lease on it does not count. */
static bool venv_gone_stale(struct cli *cli, const char *key, const char *link)
{
    char target[PATH_MAX], why[PATH_MAX];
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0)
        return false;
    target[len] = '\0';
    if (pt_venv_check(target, why, sizeof why) != -ESTALE)
        return false;
    cli_say(cli, "the venv %.12s is unusable: %s; asking pactownfs to build it again", key, why);
    json_t *req = json_pack("{s:s, s:s, s:I}", "op", "stale", "key", key, "pid", (json_int_t)gettid()), *resp = NULL;
    int ret = req ? cli_control(cli, req, &resp) : EXIT_ERROR;
    json_decref(req);
    bool evicted = ret == 0 && json_is_true(json_object_get(resp, "stale"));
    if (ret == 0 && !json_is_true(json_object_get(resp, "ok")))
        cli_err(cli, "%s: %s", key, json_string_value(json_object_get(resp, "error")));
    json_decref(resp);
    return evicted;
}

int cli_resolve_venv(struct cli *cli, const char *key, bool show_progress, char *venv, size_t n)
{
    char link[PATH_MAX], python[PATH_MAX];
    if (snprintf(link, sizeof link, "%s/by-deps/%s", cli->cfg.mountpoint, key) >= (int)sizeof link ||
        snprintf(python, sizeof python, "%s/bin/python", link) >= (int)sizeof python) {
        cli_err(cli, "mountpoint %s: path too long", cli->cfg.mountpoint);
        return EXIT_ERROR;
    }
    struct tail t = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .cli = cli };
    snprintf(t.path, sizeof t.path, "%s/logs/%s.log", cli->cfg.mountpoint, key);
    bool tailing = show_progress && pthread_create(&t.thread, NULL, tail_main, &t) == 0;
    struct stat st;
    int rc = stat(python, &st) == 0 ? 0 : -errno;
    if (rc == -ENOENT && lstat(link, &st) == 0 && venv_gone_stale(cli, key, link))
        rc = stat(python, &st) == 0 ? 0 : -errno; /* evicted: this walk rebuilds it */
    if (tailing) {
        pthread_mutex_lock(&t.mu);
        t.stop = true;
        pthread_cond_signal(&t.cond);
        pthread_mutex_unlock(&t.mu);
        pthread_join(t.thread, NULL);
    }
    if (rc) {
        if (rc == -EIO)
            cli_err(cli, "building the venv %s failed; the build log is %s/logs/%s.log", key, cli->cfg.mountpoint, key);
        else if (rc == -ENOENT && lstat(link, &st) != 0)
            cli_err(cli, "pactownfs at %s does not know the requirement set %s that this command registered in %s:"
                    " the daemon and the CLI use different cache_dir settings; give both the same one"
                    " (e.g. PACTOWN_CACHE_DIR)", cli->cfg.mountpoint, key, cli->cfg.cache_dir);
        else
            cli_err(cli, "%s: %s", python, strerror(-rc));
        return rc == -EIO ? EXIT_BUILD : EXIT_ERROR;
    }
    ssize_t len = readlink(link, venv, n - 1);
    if (len <= 0) {
        cli_err(cli, "%s: %s", link, strerror(errno));
        return EXIT_ERROR;
    }
    venv[len] = '\0';
    return 0;
}

