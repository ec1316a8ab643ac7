/* test_profile.c — users' profiles, pactown's tiers, the profiles file
 * (pactown/profile.h); and the user and event databases of the index that
 * admission counts with (pactown/index.h). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pactown/fsutil.h"
#include "pactown/index.h"
#include "pactown/profile.h"

Test(profile, tiers_are_pactowns_presets)
{
    pt_profile p = { 0 };
    pt_error err = { 0 };
    cr_assert_eq(pt_profile_tier(&p, "free", &err), 0);
    cr_expect_eq(p.max_concurrent_services, 2);
    cr_expect_eq(p.max_memory_mb, 256);
    cr_expect_eq(p.max_cpu_percent, 25);
    cr_expect_eq(p.max_requests_per_minute, 20);
    cr_expect_eq(p.max_services_per_hour, 5);
    cr_assert_eq(pt_profile_tier(&p, "Enterprise", &err), 0);
    cr_expect_eq(p.max_concurrent_services, 50);
    cr_expect_eq(p.max_memory_mb, 8192);
    cr_expect_str_eq(p.tier, "enterprise");
    cr_expect_eq(pt_profile_tier(&p, "gold", &err), -EINVAL);
    cr_expect(strstr(err.msg, "free, basic, pro, enterprise or admin") != NULL, "%s", err.msg);
}

Test(profile, fields_override_and_are_checked)
{
    pt_profile p = { 0 };
    pt_error err = { 0 };
    cr_assert_eq(pt_profile_set(&p, "tier", "pro", &err), 0);
    cr_assert_eq(pt_profile_set(&p, "max_memory_mb", "64", &err), 0);
    cr_expect_eq(p.max_memory_mb, 64);
    cr_expect_eq(p.max_concurrent_services, 10); /* the rest of the preset stays */
    cr_assert_eq(pt_profile_set(&p, "allowed_ports", "8001,8002", &err), 0);
    cr_expect_eq(p.n_allowed_ports, 2);
    cr_expect(pt_profile_port_ok(&p, 8002));
    cr_expect(!pt_profile_port_ok(&p, 8003));
    cr_assert_eq(pt_profile_set(&p, "blocked", "yes", &err), 0);
    cr_expect(p.blocked);
    cr_expect_eq(pt_profile_set(&p, "allowed_ports", "80", &err), -EINVAL);
    cr_expect_eq(pt_profile_set(&p, "allowed_ports", "8001,", &err), -EINVAL);
    cr_expect_eq(pt_profile_set(&p, "max_memory_mb", "-1", &err), -EINVAL);
    cr_expect_eq(pt_profile_set(&p, "max_cpu_percent", "100001", &err), -EINVAL);
    cr_expect_eq(pt_profile_set(&p, "max_processes", "4194305", &err), -EINVAL);
    cr_expect_eq(pt_profile_set(&p, "blocked", "maybe", &err), -EINVAL);
    cr_expect_eq(pt_profile_set(&p, "colour", "red", &err), -ENOENT);
}

Test(profile, file_sections_user_then_star)
{
    char dir[] = "/tmp/pt-profile.XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/profiles.ini", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("[*]\nmax_concurrent_services = 1\n[ann]\ntier = basic\nmax_memory_mb = 100\n[bad]\nmax_memory_mb = lots\n", f);
    fclose(f);
    pt_profile p = { 0 };
    pt_error err = { 0 };
    cr_assert_eq(pt_profile_load(path, "ann", &p, &err), 0, "%s", err.msg);
    cr_expect_eq(p.max_memory_mb, 100);
    cr_expect_eq(p.max_concurrent_services, 5); /* basic's, not [*]'s: ann has her own section */
    memset(&p, 0, sizeof p);
    cr_assert_eq(pt_profile_load(path, "bob", &p, &err), 0, "%s", err.msg);
    cr_expect_eq(p.max_concurrent_services, 1);
    cr_expect(pt_profile_any(&p));
    memset(&p, 0, sizeof p);
    cr_expect_eq(pt_profile_load(path, "bad", &p, &err), -EINVAL);
    cr_expect(strstr(err.msg, "profiles.ini:7: max_memory_mb") != NULL, "%s", err.msg);
    memset(&p, 0, sizeof p);
    cr_expect_eq(pt_profile_load("/nonexistent/profiles.ini", "ann", &p, &err), 0);
    cr_expect(!pt_profile_any(&p));
    pt_rm_rf(dir);
}

static bool odd_taken(uint32_t uid, void *arg)
{
    (void)arg;
    return uid % 2 == 1;
}

Test(profile, users_get_distinct_kept_uids)
{
    char dir[] = "/tmp/pt-users.XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    pt_index *idx;
    pt_error err = { 0 };
    cr_assert_eq(pt_index_open(dir, &idx, &err), 0, "%s", err.msg);
    pt_user a, b, a2;
    bool created;
    cr_assert_eq(pt_index_user_uid(idx, "ann", 100, 104, odd_taken, NULL, &a, &created), 0);
    cr_expect(created);
    cr_expect_eq(a.uid, 100);
    cr_assert_eq(pt_index_user_uid(idx, "bob", 100, 104, odd_taken, NULL, &b, &created), 0);
    cr_expect_eq(b.uid, 102); /* 101 is taken (by /etc/passwd, say) */
    cr_assert_eq(pt_index_user_uid(idx, "ann", 100, 104, odd_taken, NULL, &a2, &created), 0);
    cr_expect(!created);
    cr_expect_eq(a2.uid, 100);
    pt_user c, d;
    cr_assert_eq(pt_index_user_uid(idx, "cat", 100, 104, odd_taken, NULL, &c, NULL), 0);
    cr_expect_eq(c.uid, 104);
    cr_expect_eq(pt_index_user_uid(idx, "dan", 100, 104, odd_taken, NULL, &d, NULL), -ENOSPC);
    cr_expect_eq(pt_index_user_get(idx, "dan", &d), -ENOENT);
    pt_index_close(idx);
    pt_rm_rf(dir);
}

Test(profile, events_count_in_a_sliding_window)
{
    char dir[] = "/tmp/pt-events.XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    pt_index *idx;
    pt_error err = { 0 };
    cr_assert_eq(pt_index_open(dir, &idx, &err), 0, "%s", err.msg);
    long n;
    bool ok;
    const int64_t s = 1000000; /* microseconds */
    cr_assert_eq(pt_index_user_event(idx, 's', "ann", 100 * s, 60 * s, 2, &n, &ok), 0);
    cr_expect(ok && n == 0);
    cr_assert_eq(pt_index_user_event(idx, 's', "ann", 100 * s, 60 * s, 2, &n, &ok), 0); /* the same microsecond */
    cr_expect(ok && n == 1);
    cr_assert_eq(pt_index_user_event(idx, 's', "ann", 130 * s, 60 * s, 2, &n, &ok), 0);
    cr_expect(!ok && n == 2, "the third in a minute: refused (%ld)", n);
    cr_assert_eq(pt_index_user_event(idx, 's', "annie", 130 * s, 60 * s, 2, &n, &ok), 0);
    cr_expect(ok && n == 0, "another user, whose name starts the same: %ld", n);
    cr_assert_eq(pt_index_user_event(idx, 'r', "ann", 130 * s, 60 * s, 2, &n, &ok), 0);
    cr_expect(ok && n == 0, "another kind");
    cr_assert_eq(pt_index_user_event(idx, 's', "ann", 161 * s, 60 * s, 2, &n, &ok), 0);
    cr_expect(ok && n == 0, "a minute later the two have left the window: %ld", n);
    pt_index_close(idx);
    pt_rm_rf(dir);
}
