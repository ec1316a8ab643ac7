/* cli.c — settings, index and key helpers shared by the subcommands. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pactown/clock.h"
#include "pactown/fsutil.h"
#include "pactown/url.h"

static void cli_vmsg(const struct cli *cli, bool error, const char *prefix, const char *fmt, va_list ap)
{
    char line[4096];
    vsnprintf(line, sizeof line, fmt, ap);
    if (cli->say)
        cli->say(cli->say_ctx, error, line);
    else
        fprintf(stderr, "%s: %s\n", prefix, line);
}

void cli_err(const struct cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vmsg(cli, true, cli->prog, fmt, ap);
    va_end(ap);
}

void cli_note(const struct cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vmsg(cli, false, cli->prog, fmt, ap);
    va_end(ap);
}

void cli_say(const struct cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vmsg(cli, false, "pactown", fmt, ap);
    va_end(ap);
}

/* Remember "key=value" (key NULL: value is already key=value). */
static int add_set(struct cli *cli, const char *key, const char *value)
{
    if (cli->n_sets >= (int)(sizeof cli->sets / sizeof cli->sets[0]))
        return -1;
    size_t n = (key ? strlen(key) + 1 : 0) + strlen(value) + 1;
    char *kv = malloc(n);
    if (!kv)
        return -1;
    snprintf(kv, n, "%s%s%s", key ? key : "", key ? "=" : "", value);
    cli->sets[cli->n_sets++] = kv;
    return 0;
}

int cli_common_opt(struct cli *cli, int c, const char *arg)
{
    switch (c) {
    case OPT_CONFIG: setenv("PACTOWN_CONFIG", arg, 1); return 0;
    case OPT_SET: return add_set(cli, NULL, arg);
    case OPT_CACHE_DIR: return add_set(cli, "cache_dir", arg);
    case OPT_MOUNT: return add_set(cli, "mountpoint", arg);
    case OPT_SANDBOX_ROOT: return add_set(cli, "sandbox_root", arg);
    case OPT_PYTHON: return add_set(cli, "python", arg);
    case 'h': return 1;
    default: return -1;
    }
}

int cli_setup(struct cli *cli)
{
    pt_error err = { 0 };
    if (pt_config_load(&cli->cfg, &err) != 0) {
        cli_err(cli, "%s", err.msg);
        return EXIT_ERROR;
    }
    for (int i = 0; i < cli->n_sets; i++) {
        if (pt_config_set_kv(&cli->cfg, cli->sets[i], &err) != 0) {
            cli_err(cli, "%s", err.msg);
            return EXIT_USAGE;
        }
        const char *eq = strchr(cli->sets[i], '=');
        if (eq && pt_url_has_userinfo(eq + 1))
            cli_err(cli, "warning: --set %.*s carries credentials, and every user can read a command line (ps); "
                         "set it in the config file (mode 0600) or in the environment instead",
                    (int)(eq - cli->sets[i]), cli->sets[i]);
    }
    return 0;
}

int cli_open_index(struct cli *cli)
{
    char dir[PATH_MAX];
    pt_error err = { 0 };
    if (pt_config_cache_path(&cli->cfg, "index", NULL, dir, sizeof dir) != 0) {
        cli_err(cli, "cache_dir is too long");
        return EXIT_ERROR;
    }
    int rc = pt_index_open(dir, &cli->idx, &err);
    if (rc == -EACCES || rc == -EPERM) {
        struct stat st;
        struct passwd *pw = stat(dir, &st) == 0 ? getpwuid(st.st_uid) : NULL;
        cli_err(cli, "cannot open the index %s: %s. The cache belongs to %s: run this command as that user (or"
                     " root), or use a cache of your own (--cache-dir DIR, served by a pactownfs of your own)",
                dir, strerror(-rc), pw ? pw->pw_name : "another user");
        return EXIT_ERROR;
    }
    if (rc != 0) {
        cli_err(cli, "%s", err.msg);
        return EXIT_ERROR;
    }
    return 0;
}

int cli_key_of(struct cli *cli, const pt_reqset *set, char key[PT_KEY_HEX + 1], char **canonical, size_t *len)
{
    pt_interp interp;
    pt_error err = { 0 };
    if (pt_interp_resolve(cli->cfg.python, cli->idx, 0, &interp, &err) != 0) {
        cli_err(cli, "%s", err.msg);
        return EXIT_ERROR;
    }
    pt_source src = { .index_url = cli->cfg.index_url, .find_links = cli->cfg.find_links,
                      .no_index = cli->cfg.no_index };
    int rc = pt_canonical_text(set, &interp.tag, &src, canonical, len);
    if (rc) {
        cli_err(cli, "cannot build the canonical requirement set: %s%s", strerror(-rc),
                rc == -EINVAL ? " (index_url and find_links may not contain spaces)" : "");
        return rc == -EINVAL ? EXIT_USAGE : EXIT_ERROR;
    }
    pt_key_hex(*canonical, *len, key);
    return 0;
}

void cli_free(struct cli *cli)
{
    for (int i = 0; i < cli->n_sets; i++)
        free(cli->sets[i]);
    if (cli->borrowed)
        return;
    pt_index_close(cli->idx);
    pt_config_free(&cli->cfg);
}

void cli_input_err(const struct cli *cli, const char *file, const pt_error *err)
{
    /* parsers start their reasons with "line N: "; say it once, as FILE:N: */
    const char *msg = err->msg;
    unsigned n;
    int used = 0;
    if (sscanf(msg, "line %u: %n", &n, &used) == 1 && used > 0)
        msg += used;
    if (err->line)
        cli_err(cli, "%s:%u: %s", file, err->line, msg);
    else
        cli_err(cli, "%s: %s", file, msg);
}

int cli_read_reqs(struct cli *cli, const char *file, char **args, int n, pt_reqset *set)
{
    pt_error err = { 0 };
    if (file) {
        char *text = NULL;
        size_t len = 0;
        int rc = pt_read_file(strcmp(file, "-") ? file : "/dev/stdin", 64u << 20, &text, &len);
        if (rc) {
            cli_err(cli, "%s: %s", file, strerror(-rc));
            return EXIT_BAD_INPUT;
        }
        rc = pt_reqset_add_text(set, text, len, 1, &err);
        free(text);
        if (rc) {
            cli_input_err(cli, file, &err);
            return EXIT_BAD_INPUT;
        }
    } else {
        for (int i = 0; i < n; i++)
            if (pt_reqset_add_line(set, args[i], (unsigned)(i + 1), &err) != 0) {
                err.line = 0;
                cli_input_err(cli, "argument", &err);
                return EXIT_BAD_INPUT;
            }
    }
    pt_reqset_finish(set);
    return 0;
}

static int count_use(pt_entry *e, void *arg)
{
    (void)arg;
    e->hits++;
    e->last_access_ms = pt_wall_ms();
    return 0;
}

void cli_note_use(struct cli *cli, const char *key)
{
    if (cli_tell_use(cli, key) == 0)
        return;
    static const char *const counters[] = { "hits", NULL };
    int rc = pt_index_update(cli->idx, key, count_use, NULL, counters);
    if (rc)
        cli_err(cli, "warning: cannot count the use of %s in the index: %s (its access time is not updated)", key,
                strerror(-rc));
}

#define SHOWN_MATCHES 10

struct key_prefix {
    const char *prefix;
    size_t n;
    char keys[SHOWN_MATCHES][PT_KEY_HEX + 1]; /* the first matches */
    unsigned matches;
};

static int match_prefix(const char *key, const pt_entry *e, void *arg)
{
    (void)e;
    struct key_prefix *q = arg;
    if (strncmp(key, q->prefix, q->n) == 0 && q->matches++ < SHOWN_MATCHES)
        snprintf(q->keys[q->matches - 1], sizeof q->keys[0], "%s", key);
    return 0;
}

int cli_find_key(struct cli *cli, const char *arg, char key[PT_KEY_HEX + 1])
{
    char low[PT_KEY_HEX + 1];
    size_t n = strlen(arg);
    bool hex = n >= 8 && n <= PT_KEY_HEX;
    for (size_t i = 0; hex && i < n; i++) {
        low[i] = (char)tolower((unsigned char)arg[i]);
        hex = isxdigit((unsigned char)low[i]);
    }
    if (!hex) {
        cli_err(cli, "'%s' is not a key: 8 to 32 hex digits, a whole key or a unique prefix (see `pactown cache ls`)",
                arg);
        return EXIT_USAGE;
    }
    low[n] = '\0';
    struct key_prefix q = { .prefix = low, .n = n };
    if (n == PT_KEY_HEX) {
        char *spec = NULL;
        size_t len;
        int rc = pt_index_spec(cli->idx, low, &spec, &len);
        free(spec);
        if (rc == 0) {
            memcpy(key, low, sizeof low);
            return 0;
        }
    } else if (pt_index_each_entry(cli->idx, match_prefix, &q) != 0) {
        cli_err(cli, "cannot read the index");
        return EXIT_ERROR;
    }
    if (q.matches == 1) {
        memcpy(key, q.keys[0], PT_KEY_HEX + 1);
        return 0;
    }
    if (q.matches > 1) {
        cli_err(cli, "the key prefix '%s' is ambiguous: %u requirement sets match; give more digits:", low, q.matches);
        for (unsigned i = 0; i < q.matches && i < SHOWN_MATCHES; i++)
            fprintf(stderr, "  %s\n", q.keys[i]);
        if (q.matches > SHOWN_MATCHES)
            fprintf(stderr, "  (and %u more)\n", q.matches - SHOWN_MATCHES);
        return EXIT_USAGE;
    }
    cli_err(cli, "no requirement set with key '%s' (see `pactown cache ls`)", arg);
    return EXIT_NOT_FOUND;
}

int cli_parse_simple(struct cli *cli, int argc, char **argv, int nargs, const char *help, bool *json,
                        int *timeout_s)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, OPT_JSON }, { "timeout", required_argument, NULL, 't' },
        CLI_COMMON_LONGOPTS, { 0 } };
    int c, r;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_JSON && json) {
            *json = true;
        } else if (c == 't' && timeout_s) {
            char *end;
            *timeout_s = (int)strtol(optarg, &end, 10);
            if (*end || *timeout_s < 0) {
                cli_err(cli, "--timeout %s: expected whole seconds", optarg);
                return EXIT_USAGE;
            }
        } else if ((r = cli_common_opt(cli, c, optarg)) != 0) {
            fputs(help, r == 1 ? stdout : stderr);
            fputs("\n" CLI_COMMON_HELP, r == 1 ? stdout : stderr);
            return r == 1 ? EXIT_OK : EXIT_USAGE;
        }
    }
    if (argc - optind != nargs) {
        fputs(help, stderr);
        return EXIT_USAGE;
    }
    return -1;
}

int cli_other_opt(struct cli *cli, int c, const char *arg, void (*usage)(FILE *))
{
    int r = cli_common_opt(cli, c, arg);
    if (r == 0)
        return -1;
    usage(r == 1 ? stdout : stderr);
    cli_free(cli);
    return r == 1 ? EXIT_OK : EXIT_USAGE;
}
