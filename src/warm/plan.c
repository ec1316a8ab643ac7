/* plan.c — is a run command a Python entry point a forked interpreter can
 * run exactly, and what would a cold start have given it (pactown/warm.h). */
#include "pactown/warm.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wordexp.h>
#include <xxhash.h>

#include "pactown/clock.h"

extern char **environ;

/* PYTHON* variables a warm process started with the same value behaves
 * the same under; any other (PYTHONPATH's relative entries resolve against
 * the cwd at start, PYTHONSTARTUP, PYTHONHOME, ...) starts cold */
static const char *const python_ok[] = { "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
                                         "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONWARNINGS", "PYTHONOPTIMIZE",
                                         "PYTHONFAULTHANDLER", "PYTHONDEVMODE", "PYTHONNODEBUGRANGES", NULL };

/* dash's builtins and keywords: never a program of the venv */
static const char *const builtins[] = { ".", ":", "[", "alias", "bg", "break", "case", "cd", "command", "continue",
                                        "eval", "exec", "exit", "export", "false", "fg", "for", "getopts", "hash",
                                        "if", "jobs", "kill", "local", "printf", "pwd", "read", "readonly",
                                        "return", "set", "shift", "test", "times", "trap", "true", "type",
                                        "ulimit", "umask", "unalias", "unset", "until", "wait", "while", "echo",
                                        "!", "{", "}", NULL };

static bool in_list(const char *s, size_t n, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strlen(list[i]) == n && strncmp(list[i], s, n) == 0)
            return true;
    return false;
}

/* a variable the interpreter reads at its start */
static bool startup_var(const char *kv)
{
    return strncmp(kv, "PYTHON", 6) == 0 || strncmp(kv, "LANG=", 5) == 0 || strncmp(kv, "LC_", 3) == 0 ||
           strncmp(kv, "TZ=", 3) == 0;
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cold(pt_warm_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cold(pt_warm_plan *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
    p->kind = PT_WARM_COLD;
    return 0;
}

/* The words of body as /bin/sh would make them (wordexp(3), WRDE_NOCMD), in
 * a child with env and cwd. Returns the wordexp code (0, WRDE_BADCHAR,
 * WRDE_CMDSUB, WRDE_SYNTAX, ...) with *words malloc'd NUL-separated text and
 * *n words, or -errno. */
static int expand(const char *body, const char *cwd, char *const *env, char **words, size_t *n, size_t *len)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(fds[0]);
        close(fds[1]);
        return e;
    }
    if (pid == 0) {
        close(fds[0]);
        int rc = chdir(cwd) == 0 ? 0 : WRDE_NOSPACE;
        wordexp_t we = { 0 };
        environ = (char **)env;
        if (rc == 0)
            rc = wordexp(body, &we, WRDE_NOCMD);
        char head[2 * sizeof(size_t)];
        size_t count = rc == 0 ? we.we_wordc : 0, r = (size_t)rc;
        memcpy(head, &r, sizeof r);
        memcpy(head + sizeof r, &count, sizeof count);
        if (write(fds[1], head, sizeof head) != (ssize_t)sizeof head)
            _exit(1);
        for (size_t i = 0; i < count; i++)
            if (write(fds[1], we.we_wordv[i], strlen(we.we_wordv[i]) + 1) < 0)
                _exit(1);
        _exit(0);
    }
    close(fds[1]);
    char *buf = NULL;
    size_t have = 0, cap = 0;
    int rc = 0;
    uint64_t deadline = pt_mono_ns() + 2000000000ull;
    for (;;) {
        if (have + 4096 > cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
        }
        struct pollfd pf = { .fd = fds[0], .events = POLLIN };
        int64_t left = (int64_t)(deadline - pt_mono_ns()) / 1000000;
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        ssize_t r = read(fds[0], buf + have, cap - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        if (have > (1u << 20)) {
            rc = -E2BIG;
            break;
        }
    }
    close(fds[0]);
    if (rc)
        kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && (have < 2 * sizeof(size_t) || !WIFEXITED(st) || WEXITSTATUS(st) != 0))
        rc = -EIO;
    if (rc) {
        free(buf);
        return rc;
    }
    size_t code, count;
    memcpy(&code, buf, sizeof code);
    memcpy(&count, buf + sizeof code, sizeof count);
    *len = have - 2 * sizeof(size_t);
    memmove(buf, buf + 2 * sizeof(size_t), *len);
    *words = buf;
    *n = count;
    return (int)code;
}

static bool python_name(const char *base)
{
    if (strncmp(base, "python", 6) != 0)
        return false;
    const char *s = base + 6;
    if (!*s)
        return true;
    if (*s++ != '3')
        return false;
    if (!*s)
        return true;
    if (*s++ != '.' || !isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s))
        s++;
    return !*s;
}

/* the directory of path (a copy), realpath'd: equal to the venv's bin */
static bool in_venv_bin(const char *path, const char *venv_bin_real)
{
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return false;
    *slash = '\0';
    return realpath(*dir ? dir : "/", real) && strcmp(real, venv_bin_real) == 0;
}

static bool executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

static const char *env_get(char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

/* PATH search as the shell does it: "dir/word" for the first dir of PATH
 * (an empty entry: the cwd) holding an executable regular file */
static bool path_search(const char *word, char *const *env, const char *cwd, char *out, size_t n)
{
    const char *path = env_get(env, "PATH");
    if (!path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const char *p = path;;) {
        size_t len = strcspn(p, ":");
        char cand[PATH_MAX], abs[PATH_MAX * 2];
        if (len == 0)
            snprintf(cand, sizeof cand, "%s", word);
        else
            snprintf(cand, sizeof cand, "%.*s/%s", (int)len, p, word);
        snprintf(abs, sizeof abs, "%s%s%s", cand[0] == '/' ? "" : cwd, cand[0] == '/' ? "" : "/", cand);
        if (executable_file(abs)) {
            snprintf(out, n, "%s", cand);
            return true;
        }
        if (!p[len])
            return false;
        p += len + 1;
    }
}

/* src into dst (n bytes): false when it does not fit */
static bool put(char *dst, size_t n, const char *src)
{
    size_t l = strlen(src);
    if (l >= n)
        return false;
    memcpy(dst, src, l + 1);
    return true;
}

static char *dup_or_fail(const char *s, bool *oom)
{
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

uint64_t pt_warm_env_sig(char *const *env)
{
    size_t nenv = 0, ns = 0;
    while (env && env[nenv])
        nenv++;
    const char **sig = calloc(nenv + 1, sizeof *sig);
    XXH64_state_t *h = sig ? XXH64_createState() : NULL;
    if (!h) {
        free(sig);
        return 0;
    }
    for (size_t i = 0; i < nenv; i++)
        if (startup_var(env[i]))
            sig[ns++] = env[i];
    qsort(sig, ns, sizeof *sig, by_str);
    XXH64_reset(h, 0);
    for (size_t i = 0; i < ns; i++)
        XXH64_update(h, sig[i], strlen(sig[i]) + 1);
    uint64_t d = XXH64_digest(h);
    XXH64_freeState(h);
    free(sig);
    return d ? d : 1; /* 0 says out of memory */
}

/* expand in this process (single-threaded callers only): environ and the cwd
 * swapped for wordexp and put back */
static int expand_here(const char *body, const char *cwd, char *const *env, char **words, size_t *n, size_t *len)
{
    int back = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (back < 0)
        return -errno;
    if (chdir(cwd) != 0) {
        int e = -errno;
        close(back);
        return e;
    }
    char **saved = environ;
    environ = (char **)env;
    wordexp_t we = { 0 };
    int rc = wordexp(body, &we, WRDE_NOCMD);
    environ = saved;
    int brc = fchdir(back);
    close(back);
    if (brc != 0) {
        if (rc == 0)
            wordfree(&we);
        return -errno;
    }
    if (rc != 0)
        return rc == WRDE_NOSPACE ? -ENOMEM : rc;
    size_t total = 0;
    for (size_t i = 0; i < we.we_wordc; i++)
        total += strlen(we.we_wordv[i]) + 1;
    char *buf = malloc(total + 1);
    if (!buf) {
        wordfree(&we);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < we.we_wordc; i++) {
        size_t l = strlen(we.we_wordv[i]) + 1;
        memcpy(buf + k, we.we_wordv[i], l);
        k += l;
    }
    *words = buf;
    *n = we.we_wordc;
    *len = k;
    wordfree(&we);
    return 0;
}

int pt_warm_plan_make(const char *body, const char *venv, const char *cwd, char *const *env, bool single_threaded,
                      pt_warm_plan *p)
{
    memset(p, 0, sizeof *p);
    /* the variables of the interpreter's start: taken as they are, or cold */
    for (size_t i = 0; env && env[i]; i++) {
        size_t nl = strcspn(env[i], "=");
        if (startup_var(env[i]) && strncmp(env[i], "PYTHON", 6) == 0 && !in_list(env[i], nl, python_ok))
            return cold(p, "the service's environment sets %.*s, which a warm interpreter cannot take as a cold start"
                           " would", (int)nl, env[i]);
    }
    if ((p->env_sig = pt_warm_env_sig(env)) == 0)
        return -ENOMEM;

    size_t bl = strlen(body);
    while (bl && (body[bl - 1] == '\n' || body[bl - 1] == ' ' || body[bl - 1] == '\t'))
        bl--;
    if (memchr(body, '\n', bl))
        return cold(p, "the run command has more than one line");
    char *line = strndup(body, bl);
    if (!line)
        return -ENOMEM;
    char *words = NULL;
    size_t nw = 0, wlen = 0;
    int rc = single_threaded ? expand_here(line, cwd, env, &words, &nw, &wlen)
                             : expand(line, cwd, env, &words, &nw, &wlen);
    free(line);
    if (rc < 0)
        return rc == -ENOMEM ? rc : cold(p, "the run command could not be expanded (%s)", strerror(-rc));
    if (rc != 0) {
        cold(p, "%s", rc == WRDE_BADCHAR ? "the run command uses the shell (a pipe, a list, a redirection, "
                                                  "a subshell or braces)"
                             : rc == WRDE_CMDSUB ? "the run command has a command substitution"
                             : rc == WRDE_SYNTAX ? "the run command's shell syntax is incomplete"
                                                 : "the run command could not be expanded");
        free(words);
        return 0;
    }
    const char *w[PT_WARM_ARGS + 1];
    size_t k = 0;
    for (const char *s = words; k < nw && s < words + wlen && k < PT_WARM_ARGS; s += strlen(s) + 1)
        w[k++] = s;
    if (nw == 0 || k != nw) {
        cold(p, nw ? "the run command has more than %d words" : "the run command is empty", PT_WARM_ARGS);
        free(words);
        return 0;
    }
    /* the command word */
    size_t eq = strcspn(w[0], "=/");
    if (w[0][eq] == '=' && eq > 0) {
        cold(p, "the run command starts with an assignment (%.*s=...)", (int)eq, w[0]);
        free(words);
        return 0;
    }
    if (in_list(w[0], strlen(w[0]), builtins)) {
        cold(p, "the run command starts with the shell's %s", w[0]);
        free(words);
        return 0;
    }
    char found[PATH_MAX], venv_bin[PATH_MAX], bin_real[PATH_MAX];
    snprintf(venv_bin, sizeof venv_bin, "%s/bin", venv);
    if (!realpath(venv_bin, bin_real)) {
        cold(p, "%s: %s", venv_bin, strerror(errno));
        free(words);
        return 0;
    }
    if (strchr(w[0], '/')) {
        snprintf(found, sizeof found, "%s", w[0]);
    } else if (!path_search(w[0], env, cwd, found, sizeof found)) {
        cold(p, "%s is not found in the service's PATH", w[0]);
        free(words);
        return 0;
    }
    char abs[PATH_MAX * 2];
    snprintf(abs, sizeof abs, "%s%s%s", found[0] == '/' ? "" : cwd, found[0] == '/' ? "" : "/", found);
    if (!executable_file(abs) || !in_venv_bin(abs, bin_real)) {
        cold(p, "%s is not the venv's interpreter or one of its scripts", found);
        free(words);
        return 0;
    }
    const char *base = strrchr(abs, '/') + 1;
    bool oom = false;
    size_t a = 0, o = 0;
    if (python_name(base)) {
        if (nw < 2) {
            cold(p, "the interpreter without a file or module (an interactive session)");
            free(words);
            return 0;
        }
        if (!put(p->exe, sizeof p->exe, found[0] == '/' ? found : abs)) {
            cold(p, "the interpreter's path is too long");
            free(words);
            return 0;
        }
        for (size_t i = 0; i < nw; i++)
            p->orig_argv[o++] = dup_or_fail(w[i], &oom);
        if (strcmp(w[1], "-m") == 0) {
            const char *mod = nw > 2 ? w[2] : "";
            bool ok = *mod != '\0';
            for (const char *s = mod; *s && ok; s++)
                ok = isalnum((unsigned char)*s) || *s == '_' || (*s == '.' && s[1] && s[1] != '.' && s != mod);
            if (!ok) {
                pt_warm_plan_free(p);
                cold(p, "python -m without a module name");
                free(words);
                return 0;
            }
            p->kind = PT_WARM_MODULE;
            snprintf(p->target, sizeof p->target, "%s", mod);
            if (!realpath(cwd, p->path0)) {
                pt_warm_plan_free(p);
                cold(p, "%s: %s", cwd, strerror(errno));
                free(words);
                return 0;
            }
            p->argv[a++] = dup_or_fail("-m", &oom); /* runpy puts the module's file in its place */
            for (size_t i = 3; i < nw; i++)
                p->argv[a++] = dup_or_fail(w[i], &oom);
        } else if (w[1][0] == '-') {
            pt_warm_plan_free(p);
            cold(p, "the interpreter option %s", w[1]);
            free(words);
            return 0;
        } else {
            char file[PATH_MAX * 2], real[PATH_MAX];
            snprintf(file, sizeof file, "%s%s%s", w[1][0] == '/' ? "" : cwd, w[1][0] == '/' ? "" : "/", w[1]);
            struct stat st;
            if (stat(file, &st) != 0 || !S_ISREG(st.st_mode) || !realpath(file, real)) {
                pt_warm_plan_free(p);
                cold(p, "%s is not a file", w[1]);
                free(words);
                return 0;
            }
            if (!put(p->target, sizeof p->target, file)) {
                pt_warm_plan_free(p);
                cold(p, "%s: the path is too long", w[1]);
                free(words);
                return 0;
            }
            p->kind = PT_WARM_FILE;
            char *slash = strrchr(real, '/');
            *slash = '\0';
            snprintf(p->path0, sizeof p->path0, "%s", *real ? real : "/");
            for (size_t i = 1; i < nw; i++)
                p->argv[a++] = dup_or_fail(w[i], &oom);
        }
    } else {
        /* a console script: "#!<venv>/bin/python" alone on its first line */
        char first[PATH_MAX + 3] = "";
        int fd = open(abs, O_RDONLY | O_CLOEXEC);
        ssize_t r = fd >= 0 ? read(fd, first, sizeof first - 1) : -1;
        if (fd >= 0)
            close(fd);
        first[r > 0 ? r : 0] = '\0';
        char *nl = strchr(first, '\n');
        if (strncmp(first, "#!", 2) != 0 || !nl) {
            cold(p, "%s is not a Python script", found);
            free(words);
            return 0;
        }
        *nl = '\0';
        const char *interp = first + 2;
        const char *ib = strrchr(interp, '/');
        if (interp[0] != '/' || strpbrk(interp, " \t") || !ib || !python_name(ib + 1) ||
            !in_venv_bin(interp, bin_real)) {
            cold(p, "%s is not a script of the venv's interpreter (#!%.200s)", found, interp);
            free(words);
            return 0;
        }
        char real[PATH_MAX];
        if (!realpath(abs, real)) {
            cold(p, "%s: %s", found, strerror(errno));
            free(words);
            return 0;
        }
        if (!put(p->exe, sizeof p->exe, interp) || !put(p->target, sizeof p->target, found)) {
            cold(p, "%s: the path is too long", found);
            free(words);
            return 0;
        }
        p->kind = PT_WARM_SCRIPT;
        char *slash = strrchr(real, '/');
        *slash = '\0';
        snprintf(p->path0, sizeof p->path0, "%s", *real ? real : "/");
        p->orig_argv[o++] = dup_or_fail(interp, &oom);
        p->orig_argv[o++] = dup_or_fail(found, &oom);
        p->argv[a++] = dup_or_fail(found, &oom);
        for (size_t i = 1; i < nw; i++) {
            p->orig_argv[o++] = dup_or_fail(w[i], &oom);
            p->argv[a++] = dup_or_fail(w[i], &oom);
        }
    }
    free(words);
    if (oom) {
        pt_warm_plan_free(p);
        return -ENOMEM;
    }
    return 0;
}

void pt_warm_plan_free(pt_warm_plan *p)
{
    for (size_t i = 0; i < PT_WARM_ARGS + 1; i++) {
        free(p->argv[i]);
        p->argv[i] = NULL;
    }
    for (size_t i = 0; i < PT_WARM_ARGS + 3; i++) {
        free(p->orig_argv[i]);
        p->orig_argv[i] = NULL;
    }
}

void pt_warm_id(const char *key, uid_t uid, uint64_t env_sig, char *out, size_t n)
{
    snprintf(out, n, "%s-%u-%016llx", key, (unsigned)uid, (unsigned long long)env_sig);
}
