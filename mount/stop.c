/* stop.c — stopping the daemon: SIGINT, SIGTERM and SIGHUP.
 *
 * A stop must finish what is in flight while the session still answers
 * requests: an eviction's kernel notifications (notify_inval_entry needs the
 * by-deps directory lock, which a lookup the kernel is waiting on holds), and
 * the answers to requests waiting on builds. libfuse's own handlers end the
 * session loop first, after which nothing reads /dev/fuse. So the handlers
 * here only write the signal to a pipe; the stopper thread then stops new
 * claims, the eviction and control threads, and the builders (their waiters
 * are answered), and only then ends the session loop: fuse_session_exit and
 * a SIGUSR1 to the main thread, whose sem_wait(3) or read(2) it interrupts
 * (the handler is installed without SA_RESTART).
 * An unmount ends the session loop itself (the kernel ends the connection);
 * main() then runs the same stop sequence, which is idempotent.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pactownfs.h"

static int stop_pipe[2] = { -1, -1 };
static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP };

static void on_stop_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    (void)!write(stop_pipe[1], &b, 1);
    errno = saved;
}

static void on_wake(int sig)
{
    (void)sig; /* only interrupts the main thread's wait */
}

void pt_fs_stop(struct pt_fs *fs)
{
    pthread_mutex_lock(&fs->stop_mu);
    pt_claims_begin_stop(fs);
    pt_fs_evict_stop(fs);
    pt_fs_control_stop(fs);
    pt_fs_uses_stop(fs);
    if (!pt_claims_stop(fs))
        fs->threads_left = true;
    pthread_mutex_unlock(&fs->stop_mu);
}

static void *stopper_main(void *arg)
{
    struct pt_fs *fs = arg;
    unsigned char b;
    ssize_t r;
    do
        r = read(stop_pipe[0], &b, 1);
    while (r < 0 && errno == EINTR);
    if (r != 1 || b == 0)
        return NULL; /* pt_fs_stopper_end: the session ended by itself */
    fprintf(stderr, "pactownfs: %s: stopping\n", strsignal(b));
    pt_fs_stop(fs);
    fuse_session_exit(fs->se);
    /* The main thread checks the exit flag, then waits: a SIGUSR1 that comes
     * between the two is lost. So it is sent again every 20 ms until the
     * main thread says it has left the loop. */
    for (int i = 0; i < 500 && !atomic_load(&fs->loop_left); i++) {
        pthread_kill(fs->main_thread, SIGUSR1);
        struct timespec t = { 0, 20 * 1000000L };
        nanosleep(&t, NULL);
    }
    if (!atomic_load(&fs->loop_left))
        fprintf(stderr, "pactownfs: warning: the session loop did not end within 10 s of the stop\n");
    return NULL;
}

int pt_fs_signals_install(void)
{
    if (pipe2(stop_pipe, O_CLOEXEC) != 0)
        return -errno;
    /* as libfuse's own handlers do: a write to a gone peer (the control
     * socket, /dev/fuse after an unmount) is an error, not a death */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction wake = { .sa_handler = on_wake }; /* no SA_RESTART */
    sigemptyset(&wake.sa_mask);
    if (sigaction(SIGUSR1, &wake, NULL) != 0)
        return -errno;
    /* installed even when started ignored: a shell starts background jobs
     * with SIGINT ignored, and SIGINT/SIGTERM/SIGHUP must stop the daemon;
     * a signal that comes before the stopper thread waits in the pipe */
    struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        if (sigaction(stop_signals[i], &sa, NULL) != 0)
            return -errno;
    return 0;
}

int pt_fs_stopper_start(struct pt_fs *fs)
{
    fs->main_thread = pthread_self();
    int rc = pthread_create(&fs->stopper_thread, NULL, stopper_main, fs);
    if (rc)
        return -rc;
    fs->stopper_running = true;
    return 0;
}

void pt_fs_stopper_end(struct pt_fs *fs)
{
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        signal(stop_signals[i], SIG_DFL);
    if (fs->stopper_running) {
        unsigned char quit = 0;
        (void)!write(stop_pipe[1], &quit, 1); /* ignored if a signal came first */
        pthread_join(fs->stopper_thread, NULL);
        fs->stopper_running = false;
    }
    if (stop_pipe[0] >= 0) {
        close(stop_pipe[0]);
        close(stop_pipe[1]);
    }
    stop_pipe[0] = stop_pipe[1] = -1;
}
