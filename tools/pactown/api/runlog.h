/* runlog.h — the lines of one API request's run, as they happen: kept for
 * the answer's logs[] and streamed by /run/stream (internal to
 * tools/pactown/api). Reference-counted: the run and a stream's response
 * each hold one. Its mutex is a leaf, held only to copy lines. */
#ifndef PACTOWN_API_RUNLOG_H
#define PACTOWN_API_RUNLOG_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

struct runlog;

/* A new log with one reference; NULL when out of memory. */
struct runlog *runlog_new(void);
void runlog_unref(struct runlog *lg);

/* struct cli's say: one line (error: an error message, also kept as the
 * last error; else a note or progress). ctx is the runlog. */
void runlog_say(void *ctx, bool error, const char *line);

/* Copies (new references): every line, the error lines, the other lines. */
json_t *runlog_lines(struct runlog *lg);
json_t *runlog_errors(struct runlog *lg);
json_t *runlog_notes(struct runlog *lg);

/* The last error line, "" if none; valid until the next line. */
const char *runlog_last_error(struct runlog *lg);

/* The run ended with result (a RunResponse, stolen; may be NULL). */
void runlog_finish(struct runlog *lg, json_t *result);

/* An NDJSON response that sends {"type":"log","message":…} for each line
 * as it comes, then {"type":"result","result":…} once finished (it takes a
 * reference of its own). NULL when out of memory. */
struct MHD_Response *runlog_response(struct runlog *lg);

#endif
