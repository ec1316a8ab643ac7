/* runlog.c — the lines of one API request's run (runlog.h). */
#include "runlog.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

struct runlog {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int refs;
    json_t *lines;           /* strings, in order */
    json_t *is_error;        /* booleans, one per line */
    char last_error[2048];
    bool done, result_sent;
    json_t *result;
    size_t sent;             /* stream: lines sent */
    char *out;               /* stream: the NDJSON line being sent, and how much of it went */
    size_t out_len, out_off;
};

struct runlog *runlog_new(void)
{
    struct runlog *lg = calloc(1, sizeof *lg);
    if (!lg)
        return NULL;
    pthread_mutex_init(&lg->mu, NULL);
    pthread_cond_init(&lg->cond, NULL);
    lg->refs = 1;
    lg->lines = json_array();
    lg->is_error = json_array();
    if (!lg->lines || !lg->is_error) {
        runlog_unref(lg);
        return NULL;
    }
    return lg;
}

void runlog_unref(struct runlog *lg)
{
    if (!lg)
        return;
    pthread_mutex_lock(&lg->mu);
    bool last = --lg->refs == 0;
    pthread_mutex_unlock(&lg->mu);
    if (!last)
        return;
    json_decref(lg->lines);
    json_decref(lg->is_error);
    json_decref(lg->result);
    free(lg->out);
    pthread_mutex_destroy(&lg->mu);
    pthread_cond_destroy(&lg->cond);
    free(lg);
}

void runlog_say(void *ctx, bool error, const char *line)
{
    struct runlog *lg = ctx;
    json_t *s = api_text(line, strlen(line));
    pthread_mutex_lock(&lg->mu);
    if (s) {
        json_array_append_new(lg->lines, s);
        json_array_append_new(lg->is_error, json_boolean(error));
    }
    if (error)
        snprintf(lg->last_error, sizeof lg->last_error, "%s", line);
    pthread_cond_broadcast(&lg->cond);
    pthread_mutex_unlock(&lg->mu);
}

static json_t *pick(struct runlog *lg, int which)
{
    json_t *r = json_array();
    pthread_mutex_lock(&lg->mu);
    for (size_t i = 0; r && i < json_array_size(lg->lines); i++) {
        bool err = json_is_true(json_array_get(lg->is_error, i));
        if (which < 0 || (which == 1) == err)
            json_array_append(r, json_array_get(lg->lines, i));
    }
    pthread_mutex_unlock(&lg->mu);
    return r;
}

json_t *runlog_lines(struct runlog *lg) { return pick(lg, -1); }
json_t *runlog_errors(struct runlog *lg) { return pick(lg, 1); }
json_t *runlog_notes(struct runlog *lg) { return pick(lg, 0); }

const char *runlog_last_error(struct runlog *lg)
{
    return lg->last_error;
}

void runlog_finish(struct runlog *lg, json_t *result)
{
    pthread_mutex_lock(&lg->mu);
    lg->result = result;
    lg->done = true;
    pthread_cond_broadcast(&lg->cond);
    pthread_mutex_unlock(&lg->mu);
}

/* The next NDJSON line into lg->out (lock held); false at the end. */
static bool next_out(struct runlog *lg)
{
    json_t *o = NULL;
    while (!o) {
        if (lg->sent < json_array_size(lg->lines)) {
            o = json_pack("{s:s, s:O}", "type", "log", "message", json_array_get(lg->lines, lg->sent++));
        } else if (lg->done && !lg->result_sent) {
            lg->result_sent = true;
            o = lg->result ? json_pack("{s:s, s:O}", "type", "result", "result", lg->result)
                           : json_pack("{s:s, s:{s:b, s:s}}", "type", "result", "result", "success", 0, "message",
                                       "out of memory");
        } else if (lg->done) {
            return false;
        } else {
            pthread_cond_wait(&lg->cond, &lg->mu); /* a connection thread of its own: it may wait */
        }
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t n = s ? strlen(s) : 0;
    free(lg->out);
    lg->out = s ? realloc(s, n + 2) : NULL;
    if (!lg->out) {
        free(s);
        return false;
    }
    lg->out[n] = '\n';
    lg->out[n + 1] = '\0';
    lg->out_len = n + 1;
    lg->out_off = 0;
    return true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct runlog *lg = cls;
    pthread_mutex_lock(&lg->mu);
    if ((!lg->out || lg->out_off == lg->out_len) && !next_out(lg)) {
        pthread_mutex_unlock(&lg->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = lg->out_len - lg->out_off;
    if (n > max)
        n = max;
    memcpy(buf, lg->out + lg->out_off, n);
    lg->out_off += n;
    pthread_mutex_unlock(&lg->mu);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    runlog_unref(cls);
}

struct MHD_Response *runlog_response(struct runlog *lg)
{
    pthread_mutex_lock(&lg->mu);
    lg->refs++;
    pthread_mutex_unlock(&lg->mu);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, lg, stream_free);
    if (!r) {
        runlog_unref(lg);
        return NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return r;
}
