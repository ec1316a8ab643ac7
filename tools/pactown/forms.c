/* forms.c — the README forms pactown accepts beyond the plain blocks
 * (../shared/markpact.md): includes, an inferred run command, uvicorn and
 * gunicorn added to the deps, template files, .env and .env.example, and
 * the markpact:build step. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "forms.h"
#include "pactown/fsutil.h"
#include "pactown/readme.h"
#include "pactown/spawn.h"

#define README_MAX ((size_t)128 << 20)

static pt_mp_block *file_block(const pt_markpact *mp, const char *path)
{
    for (size_t i = 0; i < mp->n_files; i++)
        if (strcmp(mp->files[i].path, path) == 0)
            return &mp->files[i];
    return NULL;
}

/* The framework a markpact:target block names (`framework: fastapi`, YAML;
 * quotes dropped, lower-cased) into out, or "" . */
static void target_framework(const pt_markpact *mp, char *out, size_t n)
{
    out[0] = '\0';
    for (const char *p = mp->target ? mp->target->body : ""; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *s = p;
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        if (len > 10 && strncmp(s, "framework:", 10) == 0) {
            s += 10, len -= 10;
            while (len && strchr(" \t\"'", *s))
                s++, len--;
            size_t k = 0;
            while (k < len && k + 1 < n && (isalnum((unsigned char)s[k]) || s[k] == '-' || s[k] == '_')) {
                out[k] = (char)tolower((unsigned char)s[k]);
                k++;
            }
            out[k] = '\0';
            return;
        }
        p = nl ? nl + 1 : p + len;
    }
}

static int set_run(struct cli *cli, pt_markpact *mp, const char *cmd)
{
    pt_mp_block *b = calloc(1, sizeof *b);
    if (!b || asprintf(&b->body, "%s\n", cmd) < 0 || !(b->info = strdup("markpact:run"))) {
        free(b);
        cli_err(cli, "out of memory");
        return EXIT_ERROR;
    }
    b->len = strlen(b->body);
    mp->run = b;
    return 0;
}

/* No run block: as pactown, the markpact:target framework's default
 * command, else python main.py or python app.py, by the files present. */
static int infer_run(struct cli *cli, const char *readme, pt_markpact *mp)
{
    static const char *const mains[] = { "main.py", "app.py", NULL };
    const char *main_file = NULL;
    for (size_t i = 0; mains[i] && !main_file; i++)
        if (file_block(mp, mains[i]))
            main_file = mains[i];
    char fw[32], cmd[256];
    target_framework(mp, fw, sizeof fw);
    const char *mod = main_file && strcmp(main_file, "app.py") == 0 ? "app" : "main";
    const char *file = main_file ? main_file : "main.py";
    cmd[0] = '\0';
    bool by_fw = true;
    if (strcmp(fw, "fastapi") == 0 || strcmp(fw, "starlette") == 0)
        snprintf(cmd, sizeof cmd, "uvicorn %s:app --host \"$HOST\" --port \"$PORT\"", mod);
    else if (strcmp(fw, "flask") == 0)
        snprintf(cmd, sizeof cmd, "flask --app %s run --host \"$HOST\" --port \"$PORT\"", mod);
    else if (strcmp(fw, "streamlit") == 0)
        snprintf(cmd, sizeof cmd, "streamlit run %s --server.address \"$HOST\" --server.port \"$PORT\"", file);
    else if (main_file && (by_fw = false, true))
        snprintf(cmd, sizeof cmd, "python %s", main_file);
    if (cmd[0]) {
        int rc = set_run(cli, mp, cmd);
        if (rc == 0)
            cli_note(cli, "note: %s has no markpact:run block: running `%s`%s%s%s, as pactown does",
                    readme, cmd, by_fw ? " (markpact:target framework " : "", by_fw ? fw : "",
                    by_fw ? ")" : "");
        return rc;
    }
    if (!mp->n_deps && !mp->n_files && !mp->n_tests && !mp->n_unknown && !mp->build)
        cli_err(cli, "%s: no markpact blocks at all (a markpact README has fenced blocks such as"
                     " ```python markpact:file path=main.py and ```bash markpact:run)", readme);
    else
        cli_err(cli, "%s: no markpact:run block, and no main.py or app.py to run: nothing to start", readme);
    return EXIT_BAD_INPUT;
}

/* The normalized name at the start of a canonical requirement line. */
static bool line_names(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncmp(line, name, n) == 0 && strchr("[<>=!~;@ (", line[n]) != NULL;
}

/* A run command that starts uvicorn or gunicorn while the deps lack it gets
 * it added, as pactown does (it is part of the key). */
static int add_server(struct cli *cli, const char *readme, const pt_markpact *mp, pt_reqset *set)
{
    static const char *const servers[] = { "uvicorn", "gunicorn", NULL };
    const char *cmd = mp->run->body;
    for (size_t s = 0; servers[s]; s++) {
        size_t n = strlen(servers[s]);
        bool used = false;
        for (const char *p = cmd; !used && (p = strstr(p, servers[s])) != NULL; p += n)
            used = (p == cmd || strchr(" \t\n;&|(", p[-1])) && strchr(" \t\n;&|)", p[n] ? p[n] : ' ');
        if (!used)
            continue;
        bool have = false;
        for (size_t i = 0; i < set->n && !have; i++)
            have = line_names(set->lines[i], servers[s]);
        if (have)
            continue;
        pt_error err = { 0 };
        if (pt_reqset_add_text(set, servers[s], n, 0, &err) != 0) {
            cli_err(cli, "%s", err.msg);
            return EXIT_ERROR;
        }
        cli_note(cli, "note: %s: the run command uses %s and the deps lack it: added %s (part of the key)",
                 readme, servers[s], servers[s]);
    }
    return 0;
}

/* What a README read from a file and one posted to the API share once parsed. */
static int readme_finish(struct cli *cli, const char *path, pt_markpact *mp, pt_reqset *set)
{
    pt_error err = { 0 };
    int rc;
    for (size_t i = 0; i < mp->n_warnings; i++) {
        /* "line N: rest" is the top README's: FILE:N: rest, as errors read */
        unsigned line = 0;
        int used = 0;
        if (sscanf(mp->warnings[i], "line %u: %n", &line, &used) == 1 && used > 0)
            cli_note(cli, "warning: %s:%u: %s", path, line, mp->warnings[i] + used);
        else
            cli_note(cli, "warning: %s", mp->warnings[i]);
    }
    if (mp->n_unknown)
        cli_note(cli, "note: %u markpact block(s) of kinds pactown does not use were skipped (first at line %u)",
                 mp->n_unknown, mp->first_unknown_line);
    if (!mp->run && (rc = infer_run(cli, path, mp)) != 0)
        return rc;
    for (size_t i = 0; i < mp->n_deps; i++)
        if (pt_reqset_add_text(set, mp->deps[i].body, mp->deps[i].len, mp->deps[i].line, &err) != 0) {
            cli_input_err(cli, mp->deps[i].source ? mp->deps[i].source : path, &err);
            return EXIT_BAD_INPUT;
        }
    if ((rc = add_server(cli, path, mp, set)) != 0)
        return rc;
    pt_reqset_finish(set);
    return 0;
}

int cli_readme_load(struct cli *cli, const char *path, pt_markpact *mp, pt_reqset *set)
{
    pt_error err = { 0 };
    char *efile = NULL;
    int rc = pt_readme_load(path, README_MAX, mp, &err, &efile);
    if (rc) {
        if (err.line)
            cli_input_err(cli, efile ? efile : path, &err);
        else
            cli_err(cli, "%s: %s", efile ? efile : path, err.msg);
        free(efile);
        return rc == -ENOMEM ? EXIT_ERROR : EXIT_BAD_INPUT;
    }
    return readme_finish(cli, path, mp, set);
}

int cli_readme_text(struct cli *cli, const char *name, const char *text, size_t len, pt_markpact *mp,
                    pt_reqset *set)
{
    pt_error err = { 0 };
    int rc = pt_markpact_parse(text, len, mp, &err);
    if (rc) {
        cli_input_err(cli, name, &err);
        return rc == -ENOMEM ? EXIT_ERROR : EXIT_BAD_INPUT;
    }
    if (mp->n_includes) {
        cli_err(cli, "%s:%u: markpact:include %s: posted content has no directory to include from; put the"
                     " included file's blocks in the README itself", name, mp->includes[0].line,
                mp->includes[0].path);
        return EXIT_BAD_INPUT;
    }
    return readme_finish(cli, name, mp, set);
}

/* The value of NAME in the service's environment: --env (last wins), then ours. */
static const char *env_value(const struct cli *cli, const char *name, char *const *envs, int n_envs)
{
    size_t n = strlen(name);
    for (int i = n_envs - 1; i >= 0; i--)
        if (strncmp(envs[i], name, n) == 0 && envs[i][n] == '=')
            return envs[i] + n + 1;
    return cli->api ? NULL : getenv(name); /* the server's own environment is not a request's */
}

static bool name_ok(const char *p, size_t n)
{
    if (n == 0 || (p[0] >= '0' && p[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') ||
              p[i] == '_'))
            return false;
    return true;
}

/* The value of NAME in .markpact/secrets.env beside the README (KEY=VALUE
 * lines; '#' comments; a value in matching quotes loses them), or NULL. */
static const char *secret_value(const char *name, const char *secrets)
{
    size_t n = strlen(name);
    for (const char *p = secrets; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        static char val[4096];
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            size_t vl = len - n - 1;
            const char *v = p + n + 1;
            if (vl && v[vl - 1] == '\r')
                vl--;
            if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
                v++;
                vl -= 2;
            }
            snprintf(val, sizeof val, "%.*s", (int)vl, v);
            return val;
        }
        p = nl ? nl + 1 : p + len;
    }
    return NULL;
}

/* Fill one template body: ${env:NAME}, ${env:NAME:-default}, ${NAME},
 * ${ask:Label[:-default]} (no prompt: the default, or an error). */
static int fill(struct cli *cli, const char *file, const pt_mp_block *b, char *const *envs, int n_envs,
                const char *secrets, char **out)
{
    size_t cap = b->len + 64, o = 0;
    char *r = malloc(cap);
    if (!r)
        return -ENOMEM;
    unsigned line = b->line;
    /* the end of the current line and the next '}' on it, each found once
     * (placeholders are on one line): linear in the body, however many "${" */
    const char *le = b->body, *brace = NULL;
    for (const char *p = b->body; *p;) {
        if (p >= le) {
            le = strchrnul(p, '\n');
            brace = NULL;
        }
        if (brace && brace < p)
            brace = NULL;
        if (!brace && p[0] == '$' && p[1] == '{') {
            brace = memchr(p, '}', (size_t)(le - p));
            if (!brace)
                brace = le; /* none on this line: not searched again */
        }
        const char *end = p[0] == '$' && p[1] == '{' && brace < le ? brace : NULL;
        const char *val = NULL;
        char *dflt = NULL;
        size_t vlen = 0;
        if (end) {
            const char *in = p + 2;
            size_t n = (size_t)(end - in);
            const char *dash = memmem(in, n, ":-", 2);
            size_t nn = dash ? (size_t)(dash - in) : n;
            if (dash)
                dflt = strndup(dash + 2, n - nn - 2);
            bool ask = nn >= 4 && strncmp(in, "ask:", 4) == 0, envp = nn >= 4 && strncmp(in, "env:", 4) == 0;
            const char *nm = ask || envp ? in + 4 : in;
            size_t nml = ask || envp ? nn - 4 : nn;
            if (ask) {
                if (!dash) {
                    cli_err(cli, "%s:%u: template placeholder ${ask:%.*s} has no default and pactown run asks"
                                 " nothing: give it one (${ask:%.*s:-VALUE}) or use ${env:NAME}",
                            file, line, (int)nml, nm, (int)nml, nm);
                    free(r);
                    return -EINVAL;
                }
                val = dflt;
            } else if (name_ok(nm, nml) && nml > 255) {
                cli_err(cli, "%s:%u: template variable name longer than 255 bytes", file, line);
                free(r);
                free(dflt);
                return -EINVAL;
            } else if (name_ok(nm, nml)) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)nml, nm);
                val = env_value(cli, name, envs, n_envs);
                if (!val && !envp)
                    val = secret_value(name, secrets); /* ${NAME}: the environment, then the secrets file */
                if (!val && dash)
                    val = dflt;
                if (!val) {
                    cli_note(cli, "warning: %s:%u: template variable %s is not set: left empty", file, line,
                             name);
                    val = "";
                }
            } else {
                end = NULL; /* not a placeholder: copied as it is */
            }
        }
        const char *src = end ? val : p;
        vlen = end ? strlen(val) : 1;
        if (o + vlen + 1 > cap) {
            cap = (o + vlen + 1) * 2;
            char *nr = realloc(r, cap);
            if (!nr) {
                free(r);
                free(dflt);
                return -ENOMEM;
            }
            r = nr;
        }
        memcpy(r + o, src, vlen);
        o += vlen;
        if (!end && *p == '\n')
            line++;
        p = end ? end + 1 : p + 1;
        free(dflt);
    }
    r[o] = '\0';
    *out = r;
    return 0;
}

int cli_fill_templates(struct cli *cli, const char *readme, pt_markpact *mp, char *const *envs, int n_envs)
{
    char *secrets = NULL;
    bool any = false;
    for (size_t i = 0; i < mp->n_files && !any; i++)
        any = mp->files[i].template;
    if (any && !cli->api) {
        /* markpact's secrets file: <README's directory>/.markpact/secrets.env */
        char path[4096];
        const char *slash = strrchr(readme, '/');
        snprintf(path, sizeof path, "%.*s%s.markpact/secrets.env", slash ? (int)(slash - readme) : 0, readme,
                 slash ? "/" : "");
        size_t len = 0;
        if (pt_read_file(path, 1 << 20, &secrets, &len) != 0)
            secrets = NULL;
    }
    int ret = 0;
    for (size_t i = 0; i < mp->n_files && ret == 0; i++) {
        pt_mp_block *b = &mp->files[i];
        if (!b->template)
            continue;
        char *filled = NULL;
        int rc = fill(cli, b->source ? b->source : readme, b, envs, n_envs, secrets, &filled);
        if (rc) {
            ret = rc == -ENOMEM ? EXIT_ERROR : EXIT_BAD_INPUT;
            break;
        }
        free(b->body);
        b->body = filled;
        b->len = strlen(filled);
    }
    free(secrets);
    return ret;
}

int cli_check_env_example(struct cli *cli, const char *readme, const pt_markpact *mp, char *const *envs, int n_envs)
{
    const pt_mp_block *b = file_block(mp, ".env.example");
    if (!b)
        return 0;
    char missing[1024] = "";
    size_t k = 0, n = 0;
    for (const char *p = b->body; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *s = p;
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        if (len > 7 && strncmp(s, "export", 6) == 0 && (s[6] == ' ' || s[6] == '\t')) {
            s += 6, len -= 6;
            while (len && (*s == ' ' || *s == '\t'))
                s++, len--;
        }
        const char *eq = memchr(s, '=', len);
        if (len && *s != '#' && eq && name_ok(s, (size_t)(eq - s))) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(eq - s), s);
            if (!env_value(cli, name, envs, n_envs)) {
                n++;
                size_t need = strlen(name) + 2;
                if (k + need + 5 < sizeof missing)
                    k += (size_t)snprintf(missing + k, sizeof missing - k, "%s%s", n > 1 ? ", " : "", name);
                else if (k + 5 < sizeof missing && strcmp(missing + (k >= 5 ? k - 5 : 0), ", ...") != 0)
                    k += (size_t)snprintf(missing + k, sizeof missing - k, ", ..."); /* the count says how many */
            }
        }
        p = nl ? nl + 1 : p + strlen(p);
    }
    if (!n)
        return 0;
    cli_err(cli, "%s:%u: the .env.example block lists %zu variable%s the environment lacks: %s (set them, or pass"
                 " --env NAME=VALUE)", b->source ? b->source : readme, b->fence_line, n, n > 1 ? "s" : "", missing);
    return EXIT_BAD_INPUT;
}

int cli_write_dotenv(struct cli *cli, int dirfd, const pt_markpact *mp, int port, char *const *envs, int n_envs)
{
    const pt_mp_block *own = file_block(mp, ".env");
    char *text = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&text, &tl);
    if (!f)
        return EXIT_ERROR;
    if (own)
        fputs(own->body, f); /* the README's own .env first; ours after, so ours win */
    fprintf(f, "PORT=%d\nMARKPACT_PORT=%d\n", port, port);
    for (int i = 0; i < n_envs; i++)
        fprintf(f, "%s\n", envs[i]);
    fclose(f);
    /* --env values may be secrets: 0600, written in place of the README's own */
    /* a fresh file (O_EXCL): one the README planted under the temp name keeps its own mode */
    unlinkat(dirfd, ".env.pactown-tmp", 0);
    int fd = text ? openat(dirfd, ".env.pactown-tmp", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
    int rc = fd >= 0 ? pt_write_all(fd, text, tl) : -errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    /* a user's service reads its own .env */
    if (rc == 0 && cli->run_as && fchownat(dirfd, ".env.pactown-tmp", cli->run_uid, cli->run_uid, AT_SYMLINK_NOFOLLOW) != 0)
        rc = -errno;
    if (rc == 0 && renameat(dirfd, ".env.pactown-tmp", dirfd, ".env") != 0)
        rc = -errno;
    free(text);
    if (rc) {
        unlinkat(dirfd, ".env.pactown-tmp", 0);
        cli_err(cli, "cannot write the sandbox's .env: %s", strerror(-rc));
        return EXIT_ERROR;
    }
    return 0;
}

int cli_build_step(struct cli *cli, const pt_markpact *mp, int dirfd, const char *sandbox, char *const *env)
{
    if (!mp->build)
        return 0;
    /* once per sandbox and build command: a marker holds the command it ran */
    /* read beneath the sandbox, never through a symlink, a regular file only */
    int mfd = cli_dotdir_open(dirfd, "build.done", O_RDONLY, 0);
    if (mfd >= 0) {
        char *done = malloc(mp->build->len + 2);
        ssize_t dl = done ? read(mfd, done, mp->build->len + 1) : -1;
        close(mfd);
        bool same = dl == (ssize_t)mp->build->len && memcmp(done, mp->build->body, mp->build->len) == 0;
        free(done);
        if (same)
            return 0;
    }
    cli_note(cli, "markpact:build (line %u): running it once in the sandbox", mp->build->fence_line);
    /* the API's runs have no terminal: the output goes to the service's log */
    int out = cli->api ? cli_dotdir_open(dirfd, "service.log", O_WRONLY | O_CREAT | O_APPEND, 0600) : STDERR_FILENO;
    const char *argv[] = { "/bin/sh", "-c", mp->build->body, NULL };
    pt_spawn_opts so = { .argv = argv, .envp = (const char *const *)env, .cwd = sandbox, .stdin_fd = -1,
                         .stdout_fd = out, .stderr_fd = out, .new_session = true, .set_ids = cli->run_as,
                         .uid = cli->run_uid, .gid = cli->run_uid, .cgroup_procs = cli->cg_procs,
                         .n_cgroup_procs = cli->n_cg_procs };
    pid_t pid;
    int status = 0, rc = out < 0 ? -errno : pt_spawn(&so, &pid);
    if (cli->api && out >= 0)
        close(out);
    if (rc == 0)
        rc = pt_wait(pid, &status);
    if (rc || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char how[96];
        if (rc)
            snprintf(how, sizeof how, "could not start: %s", strerror(-rc));
        else
            pt_describe_status(status, how, sizeof how);
        cli_err(cli, "markpact:build (line %u) %s: not starting the service", mp->build->fence_line, how);
        return EXIT_BUILD;
    }
    int fd = cli_dotdir_open(dirfd, "build.done", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (pt_write_all(fd, mp->build->body, mp->build->len) != 0)
            unlinkat(dirfd, ".pactown/build.done", 0);
        close(fd);
    }
    return 0;
}
