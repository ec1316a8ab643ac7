/* test_warm_plan.c — which run commands a warm process runs, and with the
 * sys.argv, sys.orig_argv, sys.executable and sys.path[0] a cold start
 * gives them (pactown/warm.h); the rest start cold, saying why. Each case
 * runs with the expansion in this process and in a forked child: both say
 * the same. */
#include "testutil.h"

#include "pactown/warm.h"

static char root[PATH_MAX], venv[PATH_MAX], sandbox[PATH_MAX], pathvar[PATH_MAX + 64];

static void put(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
}

static void setup(void)
{
    char p[PATH_MAX * 2], text[PATH_MAX + 64];
    tu_tmpdir(root, "warmplan");
    FMT(venv, "%s/venv", root);
    FMT(sandbox, "%s/sandbox", root);
    FMT(p, "%s/bin", venv);
    tu_mkdirs(root, "venv/bin");
    tu_mkdirs(root, "sandbox");
    FMT(p, "%s/bin/python", venv);
    cr_assert_eq(symlink("/usr/bin/python3", p), 0);
    FMT(p, "%s/bin/python3", venv);
    cr_assert_eq(symlink("python", p), 0);
    FMT(p, "%s/bin/uvicorn", venv);
    FMT(text, "#!%s/bin/python\nimport sys\n", venv);
    put(p, text, 0755);
    FMT(p, "%s/bin/shtool", venv);
    put(p, "#!/bin/sh\necho hi\n", 0755);
    FMT(p, "%s/bin/withflag", venv);
    FMT(text, "#!%s/bin/python -E\n", venv);
    put(p, text, 0755);
    FMT(p, "%s/app.py", sandbox);
    put(p, "print('app')\n", 0644);
    FMT(pathvar, "PATH=%s/bin:/usr/bin:/bin", venv);
}

static void teardown(void)
{
    tu_rmtree(root);
}

TestSuite(warm_plan, .init = setup, .fini = teardown);

/* plan body with env (NULL-terminated, PATH added) both ways; the two plans must agree */
static void plan(const char *body, const char *const *extra, pt_warm_plan *p)
{
    const char *env[16] = { pathvar, "PORT=8123", "HOME=/nonexistent" };
    size_t n = 3;
    for (size_t i = 0; extra && extra[i]; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    pt_warm_plan forked;
    cr_assert_eq(pt_warm_plan_make(body, venv, sandbox, (char *const *)env, true, p), 0);
    cr_assert_eq(pt_warm_plan_make(body, venv, sandbox, (char *const *)env, false, &forked), 0);
    cr_assert_eq(p->kind, forked.kind, "%s: in process %d, forked %d", body, p->kind, forked.kind);
    cr_assert_str_eq(p->why, forked.why);
    cr_assert_str_eq(p->target, forked.target);
    for (size_t i = 0; p->argv[i] || forked.argv[i]; i++)
        cr_assert(p->argv[i] && forked.argv[i] && strcmp(p->argv[i], forked.argv[i]) == 0, "%s: argv[%zu]", body, i);
    cr_assert_eq(p->env_sig, forked.env_sig);
    pt_warm_plan_free(&forked);
}

static void argv_is(char *const *got, const char *const *want)
{
    size_t i = 0;
    for (; want[i]; i++)
        cr_assert(got[i] && strcmp(got[i], want[i]) == 0, "argv[%zu]: '%s', want '%s'", i, got[i] ? got[i] : "(none)",
                  want[i]);
    cr_assert_null(got[i], "argv[%zu] is '%s', want the end", i, got[i]);
}

Test(warm_plan, a_console_script_as_the_kernel_runs_it)
{
    pt_warm_plan p;
    plan("uvicorn app:app --host 127.0.0.1 --port ${MARKPACT_PORT:-8001}\n", NULL, &p);
    cr_assert_eq(p.kind, PT_WARM_SCRIPT, "%s", p.why);
    char script[PATH_MAX * 2], interp[PATH_MAX * 2], bin[PATH_MAX];
    FMT(script, "%s/bin/uvicorn", venv);
    FMT(interp, "%s/bin/python", venv);
    cr_assert_not_null(realpath(venv, bin));
    strcat(bin, "/bin");
    cr_assert_str_eq(p.exe, interp, "sys.executable: the shebang's interpreter");
    cr_assert_str_eq(p.target, script);
    cr_assert_str_eq(p.path0, bin, "sys.path[0]: the script's directory, resolved");
    /* ${MARKPACT_PORT:-8001} with MARKPACT_PORT unset: the default, as /bin/sh expands it */
    argv_is(p.argv, (const char *const[]){ script, "app:app", "--host", "127.0.0.1", "--port", "8001", NULL });
    argv_is(p.orig_argv, (const char *const[]){ interp, script, "app:app", "--host", "127.0.0.1", "--port", "8001", NULL });
    pt_warm_plan_free(&p);
}

Test(warm_plan, python_file_and_module)
{
    pt_warm_plan p;
    char file[PATH_MAX * 2], sb[PATH_MAX], interp[PATH_MAX * 2];
    cr_assert_not_null(realpath(sandbox, sb));
    FMT(file, "%s/app.py", sandbox);
    FMT(interp, "%s/bin/python3", venv);
    plan("python3 app.py 'two words' $PORT", NULL, &p);
    cr_assert_eq(p.kind, PT_WARM_FILE, "%s", p.why);
    cr_assert_str_eq(p.target, file, "__main__.__file__: absolute");
    cr_assert_str_eq(p.path0, sb);
    cr_assert_str_eq(p.exe, interp, "sys.executable: the PATH entry's interpreter as named");
    argv_is(p.argv, (const char *const[]){ "app.py", "two words", "8123", NULL });
    argv_is(p.orig_argv, (const char *const[]){ "python3", "app.py", "two words", "8123", NULL });
    pt_warm_plan_free(&p);

    plan("python -m http.server --bind 127.0.0.1", NULL, &p);
    cr_assert_eq(p.kind, PT_WARM_MODULE, "%s", p.why);
    cr_assert_str_eq(p.target, "http.server");
    cr_assert_str_eq(p.path0, sb, "sys.path[0] of -m: the cwd");
    argv_is(p.argv, (const char *const[]){ "-m", "--bind", "127.0.0.1", NULL });
    argv_is(p.orig_argv, (const char *const[]){ "python", "-m", "http.server", "--bind", "127.0.0.1", NULL });
    pt_warm_plan_free(&p);
}

#define COLD(body, want, ...)                                                                        \
    do {                                                                                             \
        pt_warm_plan p_;                                                                             \
        plan(body, (const char *const[]){ __VA_ARGS__ }, &p_);                                       \
        cr_assert_eq(p_.kind, PT_WARM_COLD, "%s: not cold", body);                                   \
        cr_assert(strstr(p_.why, want), "%s: why is '%s', want '%s'", body, p_.why, want);           \
        pt_warm_plan_free(&p_);                                                                      \
    } while (0)

Test(warm_plan, the_rest_starts_cold_and_says_why)
{
    COLD("cd sub && python app.py", "uses the shell", NULL);
    COLD("python app.py | tee log", "uses the shell", NULL);
    COLD("python app.py > out.log", "uses the shell", NULL);
    COLD("python $(echo app.py)", "command substitution", NULL);
    COLD("python `echo app.py`", "command substitution", NULL);
    COLD("python 'app.py", "incomplete", NULL);
    COLD("FOO=1 python app.py", "assignment", NULL);
    COLD("exec python app.py", "the shell's exec", NULL);
    COLD("python -c 'print(1)'", "interpreter option -c", NULL);
    COLD("python -u app.py", "interpreter option -u", NULL);
    COLD("python", "interactive", NULL);
    COLD("python missing.py", "is not a file", NULL);
    COLD("ls -l", "is not the venv's interpreter or one of its scripts", NULL);
    COLD("/usr/bin/python3 app.py", "is not the venv's interpreter", NULL);
    COLD("shtool", "is not a script of the venv's interpreter", NULL);
    COLD("withflag", "is not a script of the venv's interpreter", NULL);
    COLD("nosuchtool --x", "not found in the service's PATH", NULL);
    COLD("python app.py\npython app.py", "more than one line", NULL);
    COLD("python app.py", "PYTHONPATH", "PYTHONPATH=lib", NULL);
    COLD("python app.py", "PYTHONSTARTUP", "PYTHONSTARTUP=/x.py", NULL);
}

Test(warm_plan, the_interpreters_variables_choose_the_warm_process)
{
    pt_warm_plan a, b, c;
    plan("python app.py", NULL, &a);
    plan("python app.py", (const char *const[]){ "PYTHONUNBUFFERED=1", NULL }, &b);
    plan("python app.py", (const char *const[]){ "DATABASE_URL=x", NULL }, &c);
    cr_assert_eq(b.kind, PT_WARM_FILE, "PYTHONUNBUFFERED is taken as it is: %s", b.why);
    cr_assert_neq(a.env_sig, b.env_sig, "another PYTHONUNBUFFERED: another warm process");
    cr_assert_eq(a.env_sig, c.env_sig, "a variable the interpreter does not read at its start: the same one");
    char id[128];
    pt_warm_id("0123456789abcdef0123456789abcdef", 61184, 0xabcdefULL, id, sizeof id);
    cr_assert_str_eq(id, "0123456789abcdef0123456789abcdef-61184-0000000000abcdef");
    pt_warm_plan_free(&a);
    pt_warm_plan_free(&b);
    pt_warm_plan_free(&c);
}
