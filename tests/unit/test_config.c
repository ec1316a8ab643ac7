/* test_config.c — settings: defaults, config file, environment, flags, errors.
 * Each test runs in its own process (Criterion) and its own mkdtemp directory,
 * so setenv/unsetenv here do not leak into other tests. */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pactown/config.h"
#include "testutil.h"

static char tmpdir[PATH_MAX];
static char conf[PATH_MAX];
static pt_config cfg;
static pt_error err;

static const char *const setting_envs[] = {
    "PACTOWN_MOUNTPOINT", "PACTOWN_CACHE_DIR", "PACTOWN_SANDBOX_ROOT", "PACTOWN_PYTHON",
    "PACTOWN_INSTALLER", "PACTOWN_UV", "PACTOWN_UV_CACHE_DIR", "PACTOWN_INDEX_URL",
    "PACTOWN_FIND_LINKS", "PACTOWN_NO_INDEX", "PACTOWN_OFFLINE", "PACTOWN_FAILURE_TTL",
    "PACTOWN_BUILD_TIMEOUT", "PACTOWN_ENTRY_TIMEOUT", "PACTOWN_CONFIG",
};

static void setup(void)
{
    for (size_t i = 0; i < sizeof setting_envs / sizeof setting_envs[0]; i++)
        unsetenv(setting_envs[i]);
    tu_tmpdir(tmpdir, "config");
    FMT(conf, "%s/pactown.conf", tmpdir);
    memset(&cfg, 0, sizeof cfg);
    pt_error_clear(&err);
}

static void teardown(void)
{
    pt_config_free(&cfg);
    tu_rmtree(tmpdir);
}

TestSuite(config, .init = setup, .fini = teardown);

static void write_conf(const char *text)
{
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f, "fopen %s: %s", conf, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(setenv("PACTOWN_CONFIG", conf, 1), 0);
}

Test(config, defaults)
{
    pt_config_defaults(&cfg);
    cr_assert_str_eq(cfg.mountpoint, "/mnt/pactown");
    cr_assert_str_eq(cfg.cache_dir, "/var/cache/pactown");
    cr_assert_str_eq(cfg.sandbox_root, "/var/lib/pactown/sandboxes");
    cr_assert_str_eq(cfg.python, "python3");
    cr_assert_str_eq(cfg.installer, "auto");
    cr_assert_str_eq(cfg.uv, "uv");
    cr_assert_str_eq(cfg.uv_cache_dir, "");
    cr_assert_str_eq(cfg.index_url, "");
    cr_assert_str_eq(cfg.find_links, "");
    cr_assert_eq(cfg.no_index, false);
    cr_assert_eq(cfg.offline, false);
    cr_assert_eq(cfg.failure_ttl, 60);
    cr_assert_eq(cfg.build_timeout, 1800);
    cr_assert_eq(cfg.entry_timeout, 3600);
}

Test(config, file_overrides_defaults_with_section)
{
    write_conf("; comment\n"
               "[pactown]\n"
               "cache_dir = /srv/cache\n"
               "python = /opt/py/bin/python3.12\n"
               "failure_ttl = 5\n"
               "offline = yes\n"
               "no_index = true\n");
    int rc = pt_config_load(&cfg, &err);
    cr_assert_eq(rc, 0, "load: %d %s", rc, err.msg);
    cr_assert_str_eq(cfg.cache_dir, "/srv/cache");
    cr_assert_str_eq(cfg.python, "/opt/py/bin/python3.12");
    cr_assert_eq(cfg.failure_ttl, 5);
    cr_assert_eq(cfg.offline, true);
    cr_assert_eq(cfg.no_index, true);
    /* untouched keys keep their defaults */
    cr_assert_str_eq(cfg.mountpoint, "/mnt/pactown");
    cr_assert_str_eq(cfg.installer, "auto");
    cr_assert_eq(cfg.build_timeout, 1800);
}

Test(config, file_without_section)
{
    write_conf("mountpoint = /mnt/other\ninstaller = pip\n");
    int rc = pt_config_load(&cfg, &err);
    cr_assert_eq(rc, 0, "load: %d %s", rc, err.msg);
    cr_assert_str_eq(cfg.mountpoint, "/mnt/other");
    cr_assert_str_eq(cfg.installer, "pip");
}

Test(config, environment_overrides_file)
{
    write_conf("[pactown]\ncache_dir = /from/file\nsandbox_root = /file/sb\n");
    cr_assert_eq(setenv("PACTOWN_CACHE_DIR", "/from/env", 1), 0);
    cr_assert_eq(setenv("PACTOWN_FAILURE_TTL", "7", 1), 0);
    int rc = pt_config_load(&cfg, &err);
    cr_assert_eq(rc, 0, "load: %d %s", rc, err.msg);
    cr_assert_str_eq(cfg.cache_dir, "/from/env");
    cr_assert_eq(cfg.failure_ttl, 7);
    cr_assert_str_eq(cfg.sandbox_root, "/file/sb"); /* file value kept where env is silent */
}

Test(config, set_kv_overrides_environment)
{
    write_conf("cache_dir = /from/file\n");
    cr_assert_eq(setenv("PACTOWN_CACHE_DIR", "/from/env", 1), 0);
    int rc = pt_config_load(&cfg, &err);
    cr_assert_eq(rc, 0, "load: %d %s", rc, err.msg);
    cr_assert_str_eq(cfg.cache_dir, "/from/env");
    rc = pt_config_set_kv(&cfg, "cache_dir=/from/flag", &err);
    cr_assert_eq(rc, 0, "set_kv: %d %s", rc, err.msg);
    cr_assert_str_eq(cfg.cache_dir, "/from/flag");
    /* a value may itself contain '=' */
    rc = pt_config_set_kv(&cfg, "index_url=https://x.test/simple?a=b", &err);
    cr_assert_eq(rc, 0, "set_kv: %d %s", rc, err.msg);
    cr_assert_str_eq(cfg.index_url, "https://x.test/simple?a=b");
}

Test(config, set_kv_errors)
{
    pt_config_defaults(&cfg);
    cr_assert_eq(pt_config_set_kv(&cfg, "no_such_key=1", &err), -ENOENT);
    cr_assert_not_null(strstr(err.msg, "no_such_key"), "msg: %s", err.msg);
    cr_assert_eq(pt_config_set_kv(&cfg, "cache_dir", &err), -EINVAL);
    cr_assert_eq(pt_config_set_kv(&cfg, "=x", &err), -ENOENT);
    cr_assert_str_eq(cfg.cache_dir, "/var/cache/pactown");
    cr_assert_eq(pt_config_has_key("cache_dir"), true);
    cr_assert_eq(pt_config_has_key("failure_ttl"), true);
    cr_assert_eq(pt_config_has_key("cache"), false);
}

Test(config, unknown_key_in_file_names_file_and_line)
{
    write_conf("[pactown]\n"
               "cache_dir = /c\n"
               "\n"
               "bogus_key = 1\n");
    int rc = pt_config_load(&cfg, &err);
    cr_assert_neq(rc, 0);
    cr_assert_eq(err.code, rc);
    cr_assert_eq(err.line, 4u);
    char want[PATH_MAX + 16];
    FMT(want, "%s:4:", conf);
    cr_assert_not_null(strstr(err.msg, want), "msg: %s (want %s)", err.msg, want);
    cr_assert_not_null(strstr(err.msg, "bogus_key"), "msg: %s", err.msg);
}

Test(config, bad_boolean_in_file)
{
    write_conf("offline = maybe\n");
    int rc = pt_config_load(&cfg, &err);
    cr_assert_eq(rc, -EINVAL, "rc %d: %s", rc, err.msg);
    cr_assert_eq(err.line, 1u);
    cr_assert_not_null(strstr(err.msg, "offline"), "msg: %s", err.msg);
    cr_assert_not_null(strstr(err.msg, conf), "msg: %s", err.msg);
}

Test(config, bad_number_in_file)
{
    write_conf("[pactown]\nbuild_timeout = 10m\n");
    int rc = pt_config_load(&cfg, &err);
    cr_assert_eq(rc, -EINVAL, "rc %d: %s", rc, err.msg);
    cr_assert_eq(err.line, 2u);
    cr_assert_not_null(strstr(err.msg, "build_timeout"), "msg: %s", err.msg);
}

Test(config, bad_values_via_set)
{
    pt_config_defaults(&cfg);
    cr_assert_eq(pt_config_set(&cfg, "no_index", "2", &err), -EINVAL);
    cr_assert_not_null(strstr(err.msg, "no_index"), "msg: %s", err.msg);
    cr_assert_eq(pt_config_set(&cfg, "failure_ttl", "-1", &err), -EINVAL);
    cr_assert_not_null(strstr(err.msg, "failure_ttl"), "msg: %s", err.msg);
    cr_assert_eq(pt_config_set(&cfg, "failure_ttl", "", &err), -EINVAL);
    cr_assert_eq(pt_config_set(&cfg, "failure_ttl", "99999999999999999999999", &err), -EINVAL);
    cr_assert_eq(cfg.failure_ttl, 60, "a refused value leaves the old one");
    cr_assert_eq(cfg.no_index, false);
    cr_assert_eq(pt_config_set(&cfg, "no_index", "ON", &err), 0);
    cr_assert_eq(cfg.no_index, true);
    cr_assert_eq(pt_config_set(&cfg, "no_index", "0", &err), 0);
    cr_assert_eq(cfg.no_index, false);
}

Test(config, bad_environment_value_names_variable)
{
    write_conf("offline = no\n");
    cr_assert_eq(setenv("PACTOWN_OFFLINE", "perhaps", 1), 0);
    int rc = pt_config_load(&cfg, &err);
    cr_assert_eq(rc, -EINVAL, "rc %d: %s", rc, err.msg);
    cr_assert_not_null(strstr(err.msg, "PACTOWN_OFFLINE"), "msg: %s", err.msg);
}

Test(config, missing_explicit_config_is_error)
{
    char missing[PATH_MAX];
    FMT(missing, "%s/nope.conf", tmpdir);
    cr_assert_eq(setenv("PACTOWN_CONFIG", missing, 1), 0);
    int rc = pt_config_load(&cfg, &err);
    cr_assert_eq(rc, -ENOENT, "rc %d: %s", rc, err.msg);
    cr_assert_not_null(strstr(err.msg, missing), "msg: %s", err.msg);
}

Test(config, value_with_newline_rejected)
{
    pt_config_defaults(&cfg);
    cr_assert_eq(pt_config_set(&cfg, "cache_dir", "/a\n/b", &err), -EINVAL);
    cr_assert_eq(pt_config_set(&cfg, "cache_dir", "/a\r", &err), -EINVAL);
    cr_assert_eq(pt_config_set_kv(&cfg, "python=py\nthon", &err), -EINVAL);
    cr_assert_str_eq(cfg.cache_dir, "/var/cache/pactown");
    cr_assert_str_eq(cfg.python, "python3");
    /* also from the environment */
    write_conf("");
    cr_assert_eq(setenv("PACTOWN_INDEX_URL", "https://a\nb", 1), 0);
    pt_config_free(&cfg);
    cr_assert_eq(pt_config_load(&cfg, &err), -EINVAL);
}

Test(config, cache_path)
{
    pt_config_defaults(&cfg);
    cr_assert_eq(pt_config_set(&cfg, "cache_dir", "/srv/c", &err), 0);
    char buf[64];
    cr_assert_eq(pt_config_cache_path(&cfg, "index", NULL, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "/srv/c/index");
    cr_assert_eq(pt_config_cache_path(&cfg, "store", "0123abcd", buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "/srv/c/store/0123abcd");
    /* "/srv/c/logs" is 11 chars: needs 12 bytes */
    char small[12];
    cr_assert_eq(pt_config_cache_path(&cfg, "logs", NULL, small, sizeof small), 0);
    cr_assert_str_eq(small, "/srv/c/logs");
    cr_assert_eq(pt_config_cache_path(&cfg, "logs", NULL, small, 11), -ENAMETOOLONG);
    cr_assert_eq(pt_config_cache_path(&cfg, "logs", "x", small, sizeof small), -ENAMETOOLONG);
}

Test(config, print_round_trips_through_file)
{
    pt_config_defaults(&cfg);
    cr_assert_eq(pt_config_set(&cfg, "cache_dir", "/p/c", &err), 0);
    cr_assert_eq(pt_config_set(&cfg, "offline", "yes", &err), 0);
    cr_assert_eq(pt_config_set(&cfg, "entry_timeout", "12", &err), 0);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    pt_config_print(&cfg, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(setenv("PACTOWN_CONFIG", conf, 1), 0);
    pt_config loaded;
    int rc = pt_config_load(&loaded, &err);
    cr_assert_eq(rc, 0, "reload printed config: %d %s", rc, err.msg);
    cr_expect_str_eq(loaded.cache_dir, "/p/c");
    cr_expect_eq(loaded.offline, true);
    cr_expect_eq(loaded.entry_timeout, 12);
    cr_expect_str_eq(loaded.index_url, "");
    pt_config_free(&loaded);
}

/* pactown's PACTOWN_RUNNER_TOKEN sets runner_token; `pactown config` never shows it */
Test(config, runner_token_from_environment_is_never_printed)
{
    cr_assert_eq(setenv("PACTOWN_RUNNER_TOKEN", "tok-s3cret", 1), 0);
    pt_config cfg;
    pt_error err = { 0 };
    cr_assert_eq(pt_config_load(&cfg, &err), 0, "%s", err.msg);
    cr_expect_str_eq(cfg.runner_token, "tok-s3cret");
    cr_expect_eq(cfg.port_start, 10000);
    cr_expect_eq(cfg.port_end, 20000);
    cr_expect_str_eq(cfg.api_socket, "/run/pactown/api.sock");
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cr_assert_not_null(f);
    pt_config_print(&cfg, f);
    fclose(f);
    cr_expect_null(strstr(out, "tok-s3cret"), "the token was printed:\n%s", out);
    cr_expect_not_null(strstr(out, "runner_token = (set, hidden)\n"), "%s", out);
    free(out);
    pt_config_free(&cfg);
    unsetenv("PACTOWN_RUNNER_TOKEN");
}
