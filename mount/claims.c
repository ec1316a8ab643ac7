/* claims.c — per-key claims: at most one exclusive operation (a build or an
 * eviction) runs on a key at a time, and FUSE requests wait on it without
 * holding a worker thread.
 *
 * A readlink of a key that must be built either takes the key's claim (and
 * starts the build) or joins the waiters of the claim in flight; in both
 * cases the operation handler returns at once and the request is answered
 * later, by pt_claim_release from whichever thread ends the operation. A
 * waiter whose process is interrupted (any signal, SIGKILL included: the
 * kernel then sends FUSE_INTERRUPT) is taken out and answered EINTR at once;
 * the operation goes on for the others.
 *
 * Who answers a waiter: exactly one of (a) pt_claim_release, (b) the interrupt
 * callback, (c) the thread that registered it. While a waiter is being
 * registered (`registering`), libfuse may call the interrupt callback from
 * inside fuse_req_interrupt_func with the request's own lock held, and
 * another thread that answered the request could free it under that call;
 * so a registering waiter is never answered by (a) or (b): they take it out,
 * record its result, and (c) answers it when fuse_req_interrupt_func has
 * returned. Outside registration, (b) runs with libfuse holding a reference
 * to the request (find_interrupted), so answering there is safe.
 *
 * Locking: claims_mu protects the claim list, every claim's waiters and
 * fields, n_waiting, build_threads and stopping. Nothing is replied, read
 * from disk or written to the index under it; kill(2) is the one system call
 * made under it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pactown/key.h"
#include "pactownfs.h"

struct pt_waiter {
    fuse_req_t req;
    pt_answer_fn answer;
    bool registering;       /* see above: only its own thread answers it */
    bool finished;          /* taken out while registering: rc and again are its result */
    bool again;
    int rc;
    struct pt_waiter *next;
    char key[PT_KEY_HEX + 1];
};

struct pt_claim {
    char key[PT_KEY_HEX + 1];
    enum pt_claim_kind kind;
    pid_t pid;              /* the builder process once started, else 0 */
    struct pt_waiter *waiters;
    struct pt_claim *next;
};

static struct pt_claim *find_locked(struct pt_fs *fs, const char *key)
{
    for (struct pt_claim *c = fs->claims; c; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

static struct pt_claim *new_locked(struct pt_fs *fs, const char *key, enum pt_claim_kind kind)
{
    struct pt_claim *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    memcpy(c->key, key, PT_KEY_HEX + 1);
    c->kind = kind;
    c->next = fs->claims;
    fs->claims = c;
    return c;
}

struct pt_claim *pt_claim_take(struct pt_fs *fs, const char *key, enum pt_claim_kind kind)
{
    pthread_mutex_lock(&fs->claims_mu);
    struct pt_claim *c = fs->stopping || find_locked(fs, key) ? NULL : new_locked(fs, key, kind);
    pthread_mutex_unlock(&fs->claims_mu);
    return c;
}

static void on_interrupt(fuse_req_t req, void *data)
{
    struct pt_fs *fs = data;
    struct pt_waiter *w = NULL;
    pthread_mutex_lock(&fs->claims_mu);
    for (struct pt_claim *c = fs->claims; c && !w; c = c->next)
        for (struct pt_waiter **pp = &c->waiters; *pp; pp = &(*pp)->next)
            if ((*pp)->req == req) {
                w = *pp;
                *pp = w->next;
                fs->n_waiting--;
                break;
            }
    if (w && w->registering) {
        w->finished = true;
        w->rc = -EINTR;
        w->again = false;
        w = NULL; /* its own thread answers it */
    }
    pthread_mutex_unlock(&fs->claims_mu);
    if (w) {
        free(w);
        fuse_reply_err(req, EINTR);
    }
}

struct pt_claim *pt_claim_or_wait(struct pt_fs *fs, fuse_req_t req, const char *key, pt_answer_fn answer)
{
    struct pt_waiter *w = calloc(1, sizeof *w);
    if (!w) {
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    w->req = req;
    w->answer = answer;
    w->registering = true;
    memcpy(w->key, key, PT_KEY_HEX + 1);

    pthread_mutex_lock(&fs->claims_mu);
    if (fs->stopping) {
        pthread_mutex_unlock(&fs->claims_mu);
        free(w);
        fuse_reply_err(req, ENOTCONN);
        return NULL;
    }
    struct pt_claim *c = find_locked(fs, key), *created = NULL;
    if (!c)
        c = created = new_locked(fs, key, PT_CLAIM_BUILD);
    if (!c) {
        pthread_mutex_unlock(&fs->claims_mu);
        free(w);
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    w->next = c->waiters;
    c->waiters = w;
    fs->n_waiting++;
    pthread_mutex_unlock(&fs->claims_mu);

    /* may call on_interrupt right here (the request was interrupted already) */
    fuse_req_interrupt_func(req, on_interrupt, fs);

    pthread_mutex_lock(&fs->claims_mu);
    w->registering = false;
    bool finished = w->finished;
    pthread_mutex_unlock(&fs->claims_mu);
    if (finished) {
        /* taken out meanwhile (interrupted, or the claim in flight ended): ours to answer */
        int rc = w->rc;
        bool again = w->again;
        free(w);
        answer(fs, req, key, rc, again);
    }
    return created;
}

void pt_claim_set_pid(struct pt_fs *fs, struct pt_claim *c, pid_t pid)
{
    pthread_mutex_lock(&fs->claims_mu);
    c->pid = pid;
    bool stopping = fs->stopping;
    pthread_mutex_unlock(&fs->claims_mu);
    if (stopping && pid > 0) {
        /* the daemon began stopping before this builder was seen */
        kill(-pid, SIGTERM);
        kill(pid, SIGTERM);
    }
}

bool pt_claims_stopping(struct pt_fs *fs)
{
    pthread_mutex_lock(&fs->claims_mu);
    bool s = fs->stopping;
    pthread_mutex_unlock(&fs->claims_mu);
    return s;
}

void pt_claim_release(struct pt_fs *fs, struct pt_claim *c, int rc)
{
    bool again = c->kind == PT_CLAIM_EVICT;
    struct pt_waiter *mine = NULL;
    pthread_mutex_lock(&fs->claims_mu);
    for (struct pt_claim **pp = &fs->claims; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    struct pt_waiter *w = c->waiters, *next;
    for (; w; w = next) {
        next = w->next;
        fs->n_waiting--;
        if (w->registering) {
            w->finished = true;
            w->rc = rc;
            w->again = again;
        } else {
            w->next = mine;
            mine = w;
        }
    }
    pthread_cond_broadcast(&fs->claims_cond);
    pthread_mutex_unlock(&fs->claims_mu);
    free(c);
    for (w = mine; w; w = next) {
        next = w->next;
        fuse_req_t req = w->req;
        pt_answer_fn answer = w->answer;
        char key[PT_KEY_HEX + 1];
        memcpy(key, w->key, sizeof key);
        free(w);
        answer(fs, req, key, rc, again);
    }
}

unsigned pt_claims_waiting(struct pt_fs *fs)
{
    pthread_mutex_lock(&fs->claims_mu);
    unsigned n = fs->n_waiting;
    pthread_mutex_unlock(&fs->claims_mu);
    return n;
}

void pt_claims_thread_started(struct pt_fs *fs)
{
    pthread_mutex_lock(&fs->claims_mu);
    fs->build_threads++;
    pthread_mutex_unlock(&fs->claims_mu);
}

void pt_claims_thread_done(struct pt_fs *fs)
{
    pthread_mutex_lock(&fs->claims_mu);
    fs->build_threads--;
    pthread_cond_broadcast(&fs->claims_cond);
    pthread_mutex_unlock(&fs->claims_mu);
}

void pt_claims_begin_stop(struct pt_fs *fs)
{
    pthread_mutex_lock(&fs->claims_mu);
    fs->stopping = true;
    pthread_mutex_unlock(&fs->claims_mu);
}

bool pt_claims_pusher_add(struct pt_fs *fs, pid_t pid)
{
    pthread_mutex_lock(&fs->claims_mu);
    bool ok = !fs->stopping && fs->n_pushers < sizeof fs->pushers / sizeof fs->pushers[0];
    if (ok)
        fs->pushers[fs->n_pushers++] = pid;
    pthread_mutex_unlock(&fs->claims_mu);
    return ok;
}

void pt_claims_pusher_del(struct pt_fs *fs, pid_t pid)
{
    pthread_mutex_lock(&fs->claims_mu);
    for (unsigned i = 0; i < fs->n_pushers; i++)
        if (fs->pushers[i] == pid) {
            fs->pushers[i] = fs->pushers[--fs->n_pushers];
            break;
        }
    pthread_mutex_unlock(&fs->claims_mu);
}

/* signal every builder and pusher in flight (its process group and
 * itself); returns how many there were. kill(2) never blocks: the one
 * system call made under claims_mu. */
static unsigned signal_builders(struct pt_fs *fs, int sig)
{
    unsigned n = 0;
    pthread_mutex_lock(&fs->claims_mu);
    for (unsigned i = 0; i < fs->n_pushers; i++) {
        kill(-fs->pushers[i], sig);
        n++;
    }
    for (struct pt_claim *c = fs->claims; c; c = c->next)
        if (c->kind == PT_CLAIM_BUILD && c->pid > 0) {
            kill(-c->pid, sig);
            kill(c->pid, sig);
            n++;
        }
    pthread_mutex_unlock(&fs->claims_mu);
    return n;
}

/* wait until no build thread runs, at most ms; true if none runs */
static bool wait_threads(struct pt_fs *fs, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&fs->claims_mu);
    int r = 0;
    while (fs->build_threads > 0 && r != ETIMEDOUT)
        r = pthread_cond_timedwait(&fs->claims_cond, &fs->claims_mu, &until);
    bool none = fs->build_threads == 0;
    pthread_mutex_unlock(&fs->claims_mu);
    return none;
}

bool pt_claims_stop(struct pt_fs *fs)
{
    pt_claims_begin_stop(fs);
    if (signal_builders(fs, SIGTERM) > 0)
        fprintf(stderr, "pactownfs: stopping the builds in flight\n");
    if (wait_threads(fs, 1000))
        return true;
    signal_builders(fs, SIGKILL);
    if (wait_threads(fs, 2000))
        return true;
    fprintf(stderr, "pactownfs: warning: a build thread did not end within 3 s of the stop\n");
    return false;
}
