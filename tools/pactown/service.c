/* service.c — what `pactown run` and `pactown test` share about a service:
 * its environment, the files of its sandbox's .pactown/ directory, and who
 * holds its port. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "pactown/cgroup.h"
#include "pactown/fsutil.h"
#include "pactown/ports.h"
#include "pactown/spawn.h"
#include "pactown/proc.h"
#include "pactown/sandbox.h"

char **cli_service_env(int port, const char *host, const char *venv, const char *sandbox, char *const *envs,
                       int n_envs, bool clean)
{
    /* a user's service gets nothing of the runner's environment but the locale and the time zone */
    static const char *const all[] = { "", NULL }, *const locale[] = { "LANG=", "LC_", "TZ=", "TERM=", NULL };
    static const char *const ours[] = { "PORT=", "MARKPACT_PORT=", "HOST=", "VIRTUAL_ENV=", "PATH=", "PYTHONHOME=",
                                        "PWD=", NULL };
    const char *path = getenv("PATH");
    char **add = calloc((size_t)n_envs + 7, sizeof *add);
    if (!add)
        return NULL;
    size_t k = 0;
    bool bad = asprintf(&add[k++], "PORT=%d", port) < 0 || asprintf(&add[k++], "MARKPACT_PORT=%d", port) < 0 ||
               asprintf(&add[k++], "HOST=%s", host) < 0 || asprintf(&add[k++], "VIRTUAL_ENV=%s", venv) < 0 ||
               asprintf(&add[k++], "PATH=%s/bin:%s", venv, path && !clean ? path : "/usr/local/bin:/usr/bin:/bin") < 0 ||
               asprintf(&add[k++], "PWD=%s", sandbox) < 0;
    if (bad)
        add[k - 1] = NULL; /* asprintf leaves it undefined */
    for (int i = 0; !bad && i < n_envs; i++)
        add[k++] = envs[i]; /* --env: last, so they win */
    char **env = bad ? NULL : pt_env_new(NULL, clean ? all : ours, clean ? locale : NULL, (const char *const *)add);
    for (size_t i = 0; i < 6; i++)
        free(add[i]);
    free(add);
    return env;
}

int cli_dotdir_open(int dirfd, const char *name, int flags, mode_t mode)
{
    /* owner only: service output and test output may show the service's secrets */
    if (mkdirat(dirfd, ".pactown", 0700) != 0 && errno != EEXIST)
        return -1;
    int d = openat(dirfd, ".pactown", O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d < 0)
        return -1;
    (void)fchmod(d, 0700); /* one made by an older pactown was 0755 */
    /* O_NONBLOCK for the open: a FIFO planted there (a user's service owns
     * its sandbox) never holds the runner up; only a regular file is taken */
    int fd = openat(d, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
    int e = errno;
    close(d);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
        e = EINVAL;
    }
    if (fd >= 0 && !(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    errno = e;
    return fd;
}

void cli_print_clean(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        fputc(c < 0x20 && c != '\t' ? '?' : c == 0x7f ? '?' : c, out);
    }
}

void cli_print_tail(const char *path, int lines, const char *indent, bool header)
{
    /* the last 64 KiB are plenty for `lines` lines, however long the file */
    enum { TAIL_MAX = 64 << 10 };
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd < 0)
        return;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return;
    }
    off_t from = st.st_size > TAIL_MAX ? st.st_size - TAIL_MAX : 0;
    char *text = malloc(TAIL_MAX + 1);
    ssize_t len = text ? pread(fd, text, TAIL_MAX, from) : -1;
    close(fd);
    if (len < 0) {
        free(text);
        return;
    }
    size_t start = (size_t)len, seen = 0;
    while (start > 0 && seen <= (size_t)lines)
        if (text[--start] == '\n')
            seen++;
    if (start > 0)
        start++; /* past the newline that ends the line before */
    if (header)
        fprintf(stderr, "--- last lines of %s ---\n", path);
    for (char *p = text + start; p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        fputs(indent, stderr);
        cli_print_clean(stderr, p, n); /* no terminal escapes from the service's output */
        fputc('\n', stderr);
        p += n + 1;
    }
    free(text);
}

/* the pactown service whose process group is pgid, if one is */
struct owner {
    pid_t pgid;
    char id[PT_SERVICE_ID_MAX + 1];
};

static int find_owner(const pt_service *s, void *arg)
{
    struct owner *o = arg;
    if (s->pid != o->pgid || !pt_holder_alive(s->pid, s->pid_start))
        return 0;
    snprintf(o->id, sizeof o->id, "%s", s->id);
    return 1;
}

void cli_say_port_holders(const struct cli *cli, int port, pid_t not_pgid)
{
    pt_port_holder h[4];
    size_t n = 0, socks = 0;
    if (pt_port_holders(port, 0, h, 4, &n, &socks) != 0)
        return;
    size_t said = 0;
    for (size_t i = 0; i < n; i++) {
        if (not_pgid > 0 && h[i].pgid == not_pgid)
            continue;
        struct owner o = { .pgid = h[i].pgid };
        if (cli->idx)
            pt_index_each_service(cli->idx, find_owner, &o);
        cli_err(cli, "port %d is held by pid %d (%s)%s%s", port, (int)h[i].pid, h[i].cmd,
                o.id[0] ? ", of the pactown service " : "", o.id);
        said++;
    }
    if (said == 0 && socks > n)
        cli_err(cli, "port %d is held by a process this user cannot see (another user's, or another namespace's)",
                port);
}

int cli_env_opt(const struct cli *cli, char *arg, char **envs, int *n, int max)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        cli_err(cli, "--env %s: expected KEY=VALUE", eq ? "=..." : arg);
        return EXIT_USAGE;
    }
    if (strpbrk(eq + 1, "\n\r")) {
        /* it would be two lines of the sandbox's .env */
        cli_err(cli, "--env %.*s=...: a value with a line break cannot be written to .env", (int)(eq - arg), arg);
        return EXIT_USAGE;
    }
    if (*n >= max) {
        /* the value may be a secret: only the name is said */
        cli_err(cli, "--env %.*s=...: at most %d --env options", (int)(eq - arg), arg, max);
        return EXIT_USAGE;
    }
    envs[(*n)++] = arg;
    return 0;
}

int cli_sandbox_parent(const pt_config *cfg, const char *user, char *out, size_t n)
{
    /* "@": no service id starts so, so a user's directory is never a service's sandbox */
    int k = user && *user ? snprintf(out, n, "%s/@%s", cfg->sandbox_root, user) : snprintf(out, n, "%s", cfg->sandbox_root);
    return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

int cli_sandbox_path(const pt_config *cfg, pt_index *idx, const char *id, char *out, size_t n,
                     char user[PT_SERVICE_ID_MAX + 1])
{
    pt_service s;
    char who[PT_SERVICE_ID_MAX + 1] = "";
    if (idx && pt_index_service_get(idx, id, &s) == 0 && pt_service_id_valid(s.user_id))
        snprintf(who, sizeof who, "%s", s.user_id);
    if (user)
        snprintf(user, PT_SERVICE_ID_MAX + 1, "%s", who);
    char parent[PATH_MAX];
    if (cli_sandbox_parent(cfg, who, parent, sizeof parent) != 0)
        return -ENAMETOOLONG;
    int k = snprintf(out, n, "%s/%s", parent, id);
    return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

void cli_cgroups(const struct cli *cli, pt_cg_host *cg)
{
    pt_cgroup_detect(cg);
    /* one pactown-fs per cache_dir: their services' cgroups never meet */
    char inst[PT_KEY_HEX + 1];
    pt_key_hex(cli->cfg.cache_dir, strlen(cli->cfg.cache_dir), inst);
    for (int c = 0; c < PT_CG_N; c++) {
        size_t n = strlen(cg->base[c]);
        if (n && snprintf(cg->base[c] + n, sizeof cg->base[c] - n, "-%.8s", inst) >= (int)(sizeof cg->base[c] - n))
            cg->base[c][0] = '\0';
    }
}
