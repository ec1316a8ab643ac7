/* pactownfs — mounts the pactown tree: by-deps/<key> resolves to a cached
 * venv, built on a miss. See docs/ARCHITECTURE.md.
 *
 * usage: pactownfs [-f] [-d] [-s] [-o opt[,opt…]] [MOUNTPOINT]
 *   -o SETTING=VALUE   any pactown setting (see `pactown config`)
 *   other -o options and -f/-d/-s are libfuse's.
 * Exit: 0 after a clean unmount; 1 on a start-up error (the message says why).
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "pactown/fsutil.h"
#include "pactown/key.h"
#include "pactown/scripts.h"
#include "pactown/store.h"
#include "pactown/url.h"
#include "pactownfs.h"

static void usage(const char *prog)
{
    printf("usage: %s [options] [MOUNTPOINT]\n"
           "\n"
           "Mounts the pactown tree (default mountpoint: the `mountpoint` setting, /mnt/pactown):\n"
           "  by-deps/<key>     symlink to the venv of requirement set <key>, built on first lookup\n"
           "  by-service/<id>   symlink to the venv of a sandbox\n"
           "  logs/<key>.log    build logs\n"
           "  stats             cache figures as JSON\n"
           "\n"
           "pactown settings (also from $PACTOWN_CONFIG or /etc/pactown/pactown.conf, and PACTOWN_* variables):\n"
           "  -o cache_dir=DIR -o python=PY -o installer=auto|uv|pip -o uv=UV -o uv_cache_dir=DIR\n"
           "  -o index_url=URL -o find_links=DIR|URL -o no_index=yes|no -o offline=yes|no\n"
           "  -o failure_ttl=S -o build_timeout=S -o entry_timeout=S\n"
           "  -o max_entries=N -o max_age_hours=H -o max_bytes=B -o min_idle_seconds=S\n"
           "  -o evict_interval=S -o atime_throttle=S -o evict_grace_ms=MS\n"
           "\n"
           "libfuse options:\n", prog);
    fuse_cmdline_help();
    fuse_lowlevel_help();
}

struct opt_ctx {
    pt_config *cfg;
    int bad;
    bool saw_mountpoint;
};

/* -o key=value pairs that name a pactown setting are ours; the rest go to libfuse */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)outargs;
    struct opt_ctx *ctx = data;
    if (key == FUSE_OPT_KEY_NONOPT && !ctx->saw_mountpoint) {
        /* the mountpoint: libfuse resolves it with realpath(3) before we see
         * it again, so a missing one is created here */
        ctx->saw_mountpoint = true;
        if (access(arg, F_OK) != 0 && errno == ENOENT && pt_mkdir_p(arg, 0755) != 0)
            fprintf(stderr, "pactownfs: cannot create the mountpoint %s: %s\n", arg, strerror(errno));
        return 1;
    }
    if (key != FUSE_OPT_KEY_OPT)
        return 1;
    const char *eq = strchr(arg, '=');
    char name[64];
    if (!eq || (size_t)(eq - arg) >= sizeof name)
        return 1;
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    if (!pt_config_has_key(name))
        return 1;
    pt_error err = { 0 };
    if (pt_url_has_userinfo(eq + 1))
        fprintf(stderr, "pactownfs: warning: -o %s carries credentials, and every user can read a command line (ps);"
                        " set it in the config file (mode 0600) or in PACTOWN_%s instead\n",
                name, strcmp(name, "index_url") == 0 ? "INDEX_URL" : "FIND_LINKS");
    if (pt_config_set(ctx->cfg, name, eq + 1, &err) != 0) {
        fprintf(stderr, "pactownfs: -o %s: %s\n", arg, err.msg);
        ctx->bad = 1;
    }
    return 0;
}

/* A FUSE mount whose daemon died answers ENOTCONN: detach it. statfs(2) is
 * asked because it always reaches the daemon (stat may be answered from the
 * kernel's attribute cache). A live mount is an error: we never stack. */
static int clear_stale_mount(const char *mnt)
{
    struct statfs sf;
    if (statfs(mnt, &sf) == 0) {
        if (pt_is_mountpoint(mnt) && sf.f_type == 0x65735546 /* FUSE_SUPER_MAGIC */) {
            fprintf(stderr, "pactownfs: %s is already mounted by a running FUSE daemon; unmount it first (fusermount3 -u %s)\n",
                    mnt, mnt);
            return -1;
        }
        return 0;
    }
    if (errno != ENOTCONN)
        return 0;
    fprintf(stderr, "pactownfs: %s is a stale mount (Transport endpoint is not connected); unmounting it\n", mnt);
    if (umount2(mnt, MNT_DETACH) != 0) {
        fprintf(stderr, "pactownfs: umount %s: %s\n", mnt, strerror(errno));
        return -1;
    }
    return 0;
}

static int resolve_paths(struct pt_fs *fs, const char *argv0)
{
    int rc = pt_mkdir_p(fs->cfg.cache_dir, 0755);
    if (rc) {
        fprintf(stderr, "pactownfs: cache_dir %s: %s\n", fs->cfg.cache_dir, strerror(-rc));
        return -1;
    }
    char real[PATH_MAX];
    if (!realpath(fs->cfg.cache_dir, real)) {
        fprintf(stderr, "pactownfs: cache_dir %s: %s\n", fs->cfg.cache_dir, strerror(errno));
        return -1;
    }
    /* every script of a venv starts with "#!<store>/<key>/bin/python3.NN":
     * it must fit the kernel's shebang line (pactown/scripts.h) and hold no
     * whitespace, which the kernel would take for the end of the path */
    size_t longest = strlen(real) + strlen("/store/") + PT_KEY_HEX + PT_VENV_PYTHON_SUFFIX_MAX;
    if (longest > PT_SHEBANG_PATH_MAX) {
        fprintf(stderr, "pactownfs: cache_dir %s is too long: the scripts of its venvs would start with a shebang"
                        " line of up to %zu bytes, and Linux reads at most 255 (BINPRM_BUF_SIZE); choose a"
                        " cache_dir of at most %zu bytes\n",
                real, longest + 3, strlen(real) - (longest - PT_SHEBANG_PATH_MAX));
        return -1;
    }
    if (strpbrk(real, " \t\n\"'\\")) {
        fprintf(stderr, "pactownfs: cache_dir '%s' holds whitespace, a quote or a backslash: the shebang lines of its"
                        " venvs' scripts cannot; choose another cache_dir\n", real);
        return -1;
    }
    snprintf(fs->cache_dir, sizeof fs->cache_dir, "%s", real);
    snprintf(fs->store, sizeof fs->store, "%s/store", real);
    snprintf(fs->logs, sizeof fs->logs, "%s/logs", real);
    snprintf(fs->tmp, sizeof fs->tmp, "%s/tmp", real);
    const char *dirs[] = { fs->store, fs->logs, fs->tmp };
    for (size_t i = 0; i < 3; i++)
        if ((rc = pt_mkdir_p(dirs[i], 0755)) != 0) {
            fprintf(stderr, "pactownfs: %s: %s\n", dirs[i], strerror(-rc));
            return -1;
        }
    /* each venv in a block group of its own choosing (pt_dir_spread_subdirs: a pull creates every inode) */
    if ((rc = pt_dir_spread_subdirs(fs->store)) != 0)
        fprintf(stderr, "pactownfs: %s: cannot set the directory's top-of-hierarchy flag: %s (venvs are made as "
                        "before)\n", fs->store, strerror(-rc));
    /* the builder lives beside this executable */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "pactownfs: cannot find my own executable (%s)\n", argv0);
        return -1;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    snprintf(fs->builder, sizeof fs->builder, "%.4000s/pactown-build", self);
    if (access(fs->builder, X_OK) != 0) {
        fprintf(stderr, "pactownfs: %s: %s (install pactown-build beside pactownfs)\n", fs->builder, strerror(errno));
        return -1;
    }
    /* the fetch before a build and the push after it (pactown/registry.h), with registry set */
    if (*fs->cfg.registry &&
        pt_find_helper("pactown-registry", pt_helper_dirs, fs->registry_helper, sizeof fs->registry_helper) != 0) {
        fprintf(stderr, "pactownfs: pactown-registry is not installed (not beside pactownfs, nor in %s): "
                        "install it, or set registry = \"\"\n", pt_helper_dirs[1]);
        return -1;
    }
    return 0;
}

static int choose_installer(struct pt_fs *fs)
{
    const char *want = fs->cfg.installer;
    bool have_uv = pt_which(fs->cfg.uv, fs->uv, sizeof fs->uv) == 0;
    if (strcmp(want, "uv") == 0 && !have_uv) {
        fprintf(stderr, "pactownfs: installer=uv but uv ('%s') is not found; install it (pip install uv) or set installer=pip\n",
                fs->cfg.uv);
        return -1;
    }
    if (strcmp(want, "auto") && strcmp(want, "uv") && strcmp(want, "pip")) {
        fprintf(stderr, "pactownfs: installer=%s: expected auto, uv or pip\n", want);
        return -1;
    }
    fs->installer = (strcmp(want, "pip") != 0 && have_uv) ? "uv" : "pip";
    return 0;
}

/* A uv found in PATH may be a shell shim (pyenv's): prefer the real binary
 * installed beside the interpreter, when the `uv` setting is the default. */
static void prefer_real_uv(struct pt_fs *fs)
{
    if (strcmp(fs->installer, "uv") != 0 || strcmp(fs->cfg.uv, "uv") != 0 || pt_is_elf(fs->uv))
        return;
    char beside[PATH_MAX];
    const char *slash = strrchr(fs->interp.path, '/');
    if (!slash || snprintf(beside, sizeof beside, "%.*s/uv", (int)(slash - fs->interp.path), fs->interp.path) >=
                      (int)sizeof beside)
        return;
    if (pt_is_elf(beside) && access(beside, X_OK) == 0)
        memcpy(fs->uv, beside, sizeof beside);
}

/* The mountpoint's canonical path without touching the mount on it (a dead
 * FUSE mount answers ENOTCONN): realpath of its parent, then its name. */
static int canonical_mountpoint(const char *mnt, char *out, size_t n)
{
    char copy[PATH_MAX], parent[PATH_MAX];
    if (snprintf(copy, sizeof copy, "%s", mnt) >= (int)sizeof copy)
        return -ENAMETOOLONG;
    size_t len = strlen(copy);
    while (len > 1 && copy[len - 1] == '/')
        copy[--len] = '\0';
    char *slash = strrchr(copy, '/');
    const char *name = slash ? slash + 1 : copy;
    const char *dir = slash ? (slash == copy ? "/" : copy) : ".";
    if (slash)
        *slash = '\0';
    if (!realpath(dir, parent))
        return -errno;
    int w = snprintf(out, n, "%s/%s", strcmp(parent, "/") == 0 ? "" : parent, name);
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

/* Lock the mountpoint for the daemon's life, before the long start-up, so two
 * daemons started together never stack on one directory (cvmfs#3392). The
 * lock file is named by a hash of the canonical mountpoint, under /run/pactown
 * (root) or $XDG_RUNTIME_DIR/pactown, and says who holds it. Returns its fd
 * (write_lock_owner() fills it in), or -1 after saying who holds it. */
static int lock_mountpoint(const char *mnt, char *lockpath, size_t n)
{
    char canon[PATH_MAX], dir[PATH_MAX];
    int rc = canonical_mountpoint(mnt, canon, sizeof canon);
    if (rc) {
        fprintf(stderr, "pactownfs: mountpoint %s: %s\n", mnt, strerror(-rc));
        return -1;
    }
    const char *runtime = getenv("XDG_RUNTIME_DIR");
    if (geteuid() == 0 || !runtime || !*runtime)
        snprintf(dir, sizeof dir, geteuid() == 0 ? "/run/pactown" : "/tmp/pactown-%d", (int)geteuid());
    else
        snprintf(dir, sizeof dir, "%.4000s/pactown", runtime);
    if ((rc = pt_mkdir_p(dir, geteuid() == 0 ? 0755 : 0700)) != 0) {
        fprintf(stderr, "pactownfs: %s: %s\n", dir, strerror(-rc));
        return -1;
    }
    int w = snprintf(lockpath, n, "%s/mount-%016llx.lock", dir, (unsigned long long)XXH3_64bits(canon, strlen(canon)));
    if (w < 0 || (size_t)w >= n) {
        fprintf(stderr, "pactownfs: %s: path too long\n", dir);
        return -1;
    }
    int fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "pactownfs: %s: %s\n", lockpath, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        /* a holder that is starting up writes who it is soon: give it 2 s */
        char who[512] = "";
        for (int tries = 0; tries < 100; tries++) {
            ssize_t r = pread(fd, who, sizeof who - 1, 0);
            who[r > 0 ? r : 0] = '\0';
            if (strchr(who, '\n'))
                break;
            struct timespec ts = { 0, 20 * 1000000L };
            nanosleep(&ts, NULL);
        }
        who[strcspn(who, "\n")] = '\0';
        fprintf(stderr, "pactownfs: %s is taken by another pactownfs (%s); stop it first or choose another mountpoint"
                        " (lock %s)\n", canon, *who ? who : "starting up", lockpath);
        close(fd);
        return -1;
    }
    return fd;
}

/* say in the mountpoint lock who holds it: pid and cache_dir */
static void write_lock_owner(int fd, const struct pt_fs *fs)
{
    char who[PT_DIR_MAX + 64];
    int len = snprintf(who, sizeof who, "pid %d, cache_dir %s\n", (int)getpid(), fs->cache_dir);
    if (ftruncate(fd, 0) == 0 && len > 0)
        (void)!pwrite(fd, who, (size_t)len, 0);
}

static int lock_cache(struct pt_fs *fs)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/daemon.lock", fs->cache_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "pactownfs: %s: %s (is another pactownfs using this cache_dir?)\n", path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd; /* held until exit */
}

int main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts opts = { 0 };
    struct fuse_loop_config *loop = NULL;
    struct fuse_session *se = NULL;
    static struct pt_fs fs;
    pt_error err = { 0 };
    int ret = 1, lockfd = -1, mntlockfd = -1;

    if (pt_config_load(&fs.cfg, &err) != 0) {
        fprintf(stderr, "pactownfs: %s\n", err.msg);
        return 1;
    }
    struct opt_ctx ctx = { &fs.cfg, 0, false };
    if (fuse_opt_parse(&args, &ctx, NULL, opt_proc) != 0 || ctx.bad)
        goto out_args;
    if (fuse_parse_cmdline(&args, &opts) != 0)
        goto out_args;
    if (opts.show_help) {
        usage(argv[0]);
        ret = 0;
        goto out_opts;
    }
    if (opts.show_version) {
        printf("pactownfs 0.1.0\n");
        fuse_lowlevel_version();
        ret = 0;
        goto out_opts;
    }
    if (!opts.mountpoint)
        opts.mountpoint = strdup(fs.cfg.mountpoint);
    if (access(opts.mountpoint, F_OK) != 0 && errno == ENOENT && pt_mkdir_p(opts.mountpoint, 0755) != 0)
        fprintf(stderr, "pactownfs: cannot create the mountpoint %s: %s\n", opts.mountpoint, strerror(errno));
    if (resolve_paths(&fs, argv[0]) != 0)
        goto out_opts;
    char mntlock[PATH_MAX];
    if ((mntlockfd = lock_mountpoint(opts.mountpoint, mntlock, sizeof mntlock)) < 0)
        goto out_opts;
    write_lock_owner(mntlockfd, &fs);
    if (clear_stale_mount(opts.mountpoint) != 0 || choose_installer(&fs) != 0)
        goto out_lock;
    if ((lockfd = lock_cache(&fs)) < 0)
        goto out_lock;

    /* Recovery and probes before the store is sealed and before daemonizing
     * (the LMDB environment is opened again after fork; lmdb.h Caveats). */
    int n = pt_unmount_all(fs.store);
    if (n > 0)
        fprintf(stderr, "pactownfs: detached %d read-only bind(s) of %s left by an earlier daemon\n", n, fs.store);
    char idxdir[PATH_MAX];
    snprintf(idxdir, sizeof idxdir, "%s/index", fs.cache_dir);
    if (pt_index_open(idxdir, &fs.idx, &err) != 0) {
        fprintf(stderr, "pactownfs: %s\n", err.msg);
        goto out_lock;
    }
    int rc = pt_fs_recover(&fs);
    if (rc == 0 && pt_interp_resolve(fs.cfg.python, fs.idx, PT_INTERP_DAEMON | PT_INTERP_FRESH, &fs.interp, &err) != 0) {
        fprintf(stderr, "pactownfs: %s\n", err.msg);
        rc = -1;
    }
    pt_index_close(fs.idx);
    fs.idx = NULL;
    if (rc == 0)
        prefer_real_uv(&fs);
    if (rc == 0 && geteuid() == 0) {
        /* allow_other: services of every user run the venvs, and so this interpreter */
        char why[PATH_MAX + 64];
        if (!pt_others_can_exec(fs.interp.path, why, sizeof why) ||
            !pt_others_can_exec(fs.interp.found, why, sizeof why))
            fprintf(stderr, "pactownfs: warning: the interpreter %s (setting `python` = %s) is not executable by"
                            " other users (%s): services that run as another user cannot start these venvs;"
                            " set `python` to an interpreter every user can run (e.g. /usr/bin/python3)\n",
                    fs.interp.path, fs.cfg.python, why);
    }
    if (rc) {
        if (rc != -1)
            fprintf(stderr, "pactownfs: recovery failed: %s\n", strerror(-rc));
        goto out_lock;
    }
    if (pt_store_bind_readonly(fs.store, &err) == 0) {
        fs.store_bound = true;
    } else {
        fprintf(stderr,
                "pactownfs: warning: cannot make %s a read-only bind mount (%s); venvs are protected by file modes"
                " only, so a service running as their owner could change them\n",
                fs.store, err.msg);
    }
    fprintf(stderr, "pactownfs: cache %s, installer %s%s%s, python %s (%s %s %s)\n", fs.cache_dir, fs.installer,
            strcmp(fs.installer, "uv") == 0 ? " " : "", strcmp(fs.installer, "uv") == 0 ? fs.uv : "",
            fs.interp.path, fs.interp.tag.impl, fs.interp.tag.version, fs.interp.tag.platform);

    /* mount options: read-only, permissions checked by the kernel, readable
     * by other users; fsname names the cache: `pactown` compares it with its own cache_dir
     * (/proc/self/mountinfo shows it as the mount's source) */
    char *mopts = NULL, fsname[PT_DIR_MAX + 32];
    snprintf(fsname, sizeof fsname, "fsname=pactownfs@%s", fs.cache_dir);
    if (fuse_opt_add_opt(&mopts, "ro,default_permissions,subtype=pactown") != 0 ||
        fuse_opt_add_opt_escaped(&mopts, fsname) != 0) {
        fprintf(stderr, "pactownfs: out of memory\n");
        goto out_unbind;
    }
    fuse_opt_add_arg(&args, "-o");
    fuse_opt_add_arg(&args, mopts);
    free(mopts);
    if (geteuid() == 0) {
        fuse_opt_add_arg(&args, "-o");
        fuse_opt_add_arg(&args, "allow_other");
    } else {
        fprintf(stderr, "pactownfs: not root: mounting without allow_other, so only this user can read the mount\n");
    }
    pthread_mutex_init(&fs.nodes_mu, NULL);
    pthread_mutex_init(&fs.claims_mu, NULL);
    pthread_mutex_init(&fs.interp_mu, NULL);
    pthread_mutex_init(&fs.stop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&fs.claims_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&fs.evict_mu, NULL);
    pthread_mutex_init(&fs.atime_mu, NULL);
    pthread_cond_init(&fs.evict_cond, NULL);
    fs.control_fd = -1;
    fs.uses_fd = -1;
    se = fuse_session_new(&args, &pt_fs_ops, sizeof pt_fs_ops, &fs);
    if (!se)
        goto out_unbind;
    /* SIGINT/SIGTERM/SIGHUP stop the daemon through mount/stop.c, not
     * libfuse's handlers: what is in flight must end while requests are
     * still answered */
    if (pt_fs_signals_install() != 0) {
        fprintf(stderr, "pactownfs: cannot install the signal handlers: %s\n", strerror(errno));
        goto out_signals;
    }
    if (fuse_session_mount(se, opts.mountpoint) != 0)
        goto out_signals;
    fuse_daemonize(opts.foreground);
    write_lock_owner(mntlockfd, &fs); /* the pid after daemonizing */
    if (pt_index_open(idxdir, &fs.idx, &err) != 0) {
        fprintf(stderr, "pactownfs: %s\n", err.msg);
        goto out_unmount;
    }
    fs.mountpoint = opts.mountpoint;
    fs.se = se;
    if ((rc = pt_fs_stopper_start(&fs)) != 0 || (rc = pt_fs_control_start(&fs)) != 0 ||
        (rc = pt_fs_uses_start(&fs)) != 0 || (rc = pt_fs_evict_start(&fs)) != 0) {
        fprintf(stderr, "pactownfs: cannot start the %s: %s\n",
                !fs.stopper_running ? "stopper thread" : !fs.control_running ? "control socket"
                : !fs.uses_running ? "uses socket" : "eviction thread",
                strerror(-rc));
        pt_fs_uses_stop(&fs);
        pt_fs_control_stop(&fs);
        pt_index_close(fs.idx);
        goto out_unmount;
    }
    if (opts.singlethread) {
        ret = fuse_session_loop(se);
    } else {
        loop = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(loop, opts.clone_fd);
        /* UINT_MAX is "not given" (libfuse 3.14 warns on it, naming it "max threads") */
        if (opts.max_idle_threads != UINT_MAX)
            fuse_loop_cfg_set_idle_threads(loop, opts.max_idle_threads);
        /* builds block a worker thread each: allow plenty (libfuse caps at 100000) */
        unsigned max_threads = opts.max_threads;
        if (max_threads == 0 || max_threads > 100000)
            max_threads = 64;
        fuse_loop_cfg_set_max_threads(loop, max_threads);
        ret = fuse_session_loop_mt(se, loop);
        fuse_loop_cfg_destroy(loop);
    }
    ret = ret < 0 ? 1 : 0;
    atomic_store(&fs.loop_left, true);
    /* After a signal the stopper ran this before ending the loop; after an
     * unmount it runs here (idempotent): no new builds, evictions in flight
     * end, builders are stopped and their waiters answered (ENOTCONN). */
    pt_fs_stop(&fs);
    pt_fs_stopper_end(&fs);
    pt_fs_flush_atimes(&fs);
    if (!fs.threads_left)
        pt_index_close(fs.idx); /* else a build thread may still use it: the exit closes it */
out_unmount:
    /* MNT_EXPIRE fails with EBUSY, and changes nothing, if a process still
     * uses the mount (umount2(2)); libfuse then detaches it lazily */
    if (umount2(opts.mountpoint, MNT_EXPIRE) != 0 && errno == EBUSY)
        fprintf(stderr, "pactownfs: %s is busy (a process still has a file or its working directory there); "
                        "unmounting lazily: it goes when they let go\n", opts.mountpoint);
    fuse_session_unmount(se);
out_signals:
    pt_fs_stopper_end(&fs);
    if (!fs.threads_left)
        fuse_session_destroy(se);
out_unbind:
    if (fs.store_bound)
        umount2(fs.store, MNT_DETACH);
out_lock:
    if (lockfd >= 0)
        close(lockfd);
    if (mntlockfd >= 0)
        close(mntlockfd);
out_opts:
    free(opts.mountpoint);
out_args:
    fuse_opt_free_args(&args);
    if (!fs.threads_left)
        pt_config_free(&fs.cfg);
    return ret;
}
