/* pactown/req.h — requirement lines (PEP 508) and requirement sets.
 *
 * A requirement set is the dependency list of a service. Each line is parsed
 * the way packaging tools read it (PEP 508 grammar, PEP 503 names, PEP 440
 * version specifiers) and re-emitted in one canonical form, so that two sets
 * that install the same thing produce the same text and hence the same cache
 * key (see pactown/key.h).
 *
 * Accepted: "name[extras] specifier ; marker" (PEP 508 name-based form),
 * "name[extras] @ URL ; marker" (PEP 508 direct reference: http(s) or
 * git+http(s), no credentials, kept exactly as written), each optionally
 * followed by pip's hash options "--hash=sha256:HEX" (pip "Hash-checking
 * Mode"; kept, sorted, so the installer enforces them); and, as lines of
 * their own in a requirements text, the index options --index-url/-i,
 * --extra-index-url and --find-links/-f with an http(s) URL
 * (pt_req_source_line), which become part of the set. Rejected with
 * -EINVAL and a reason naming the line: other options (-r, -c, -e,
 * --no-index, --trusted-host, ...), bare URLs, file: URLs and local paths,
 * credentials in URLs, environment variable references ("${X}"), shell
 * syntax, NUL bytes, non-ASCII bytes and lines longer than PT_REQ_MAX_LINE
 * bytes. Nothing in a canonical line is ever meant for a shell.
 *
 * Error messages (pt_error.msg) read
 *     "line N: 'OFFENDING TEXT': reason[, expected ...]"
 * with the text truncated to about 80 characters and non-printable bytes shown
 * as \xNN.
 */
#ifndef PACTOWN_REQ_H
#define PACTOWN_REQ_H

#include <stddef.h>

#include "pactown/error.h"

/* Longest accepted line, in bytes, without the line terminator. Applies to
 * every physical line of a requirements text and to a logical line joined by
 * backslash continuations. */
#define PT_REQ_MAX_LINE 4096

typedef struct pt_req {
    char *name;        /* PEP 503 normalized name: lowercase, runs of [-_.] -> "-" */
    char **extras;     /* normalized like names, sorted, unique; n_extras entries (NULL if 0) */
    size_t n_extras;
    char *specifier;   /* "" or clauses with all whitespace removed, sorted (strcmp), unique,
                          joined by "," e.g. "<2,>=1.0"; versions are kept as written */
    char *marker;      /* "" or normalized marker text: tokens separated by one space, strings
                          in double quotes, no space after "(" or before ")"; legacy variable
                          names (os.name, python_implementation, ...) replaced by their PEP 508
                          names; the string compared with `extra` normalized like a name */
    char *url;         /* "" or the direct reference's URL, exactly as written */
    char *hashes;      /* "" or "--hash=ALGO:hex ..." sorted, unique, hex lower-case */
    char *canonical;   /* the canonical line: name[extras]specifier[; marker][ hashes], or
                          name[extras] @ URL[ ; marker][ hashes]
                          e.g. "uvicorn[standard]>=0.20; python_version >= \"3.8\"" */
} pt_req;

/* PEP 503 normalization of the name s[0..n): lowercase, each run of '-',
 * '_' and '.' one '-' ("Foo__Bar.baz" -> "foo-bar-baz"). No validation: the
 * caller checks the characters. Returns a malloc'd string (caller frees), or
 * NULL when out of memory. */
char *pt_name_normalize(const char *s, size_t n);

/* An index option line of a requirements text: "--index-url URL", "-i URL",
 * "--extra-index-url URL", "--find-links URL", "-f URL" (or with '=').
 * *canonical (malloc'd): "--index-url URL" / "--extra-index-url URL" /
 * "--find-links URL", the URL exactly as written. Returns 0, 1 when line is
 * not one of these options (*canonical NULL), -EINVAL (no URL, more than
 * one word, not http(s), credentials in it: err says which line and why),
 * -ENOMEM. pip documents these options in requirements files ("Requirements
 * File Format", supported options). */
int pt_req_source_line(const char *line, size_t len, unsigned lineno, char **canonical, pt_error *err);

/* Parse one requirement (PEP 508 name-based form; PEP 503 names; PEP 440
 * specifiers; PEP 508 markers) into *out.
 *
 * line: len bytes, need not be NUL-terminated; may carry leading/trailing
 *   spaces and tabs and a trailing '\r'. Comments are NOT stripped here ('#'
 *   is an error); pt_reqset_add_text/_add_line do that.
 * lineno: 1-based line number used in error reports.
 * out: filled on success; every string is malloc'd and owned by *out, release
 *   with pt_req_free(). On failure *out is zeroed (nothing to free).
 * Returns 0, -EINVAL (malformed or unsupported line; err says which line and
 * why) or -ENOMEM. err may be NULL. */
int  pt_req_parse(const char *line, size_t len, unsigned lineno, pt_req *out, pt_error *err);

/* Free everything owned by *r and zero it. r may be NULL; safe on a zeroed
 * pt_req and idempotent. */
void pt_req_free(pt_req *r);

/* A set of canonical requirement lines (each without '\n'). lines[0..n) are
 * malloc'd and owned by the set; cap is the allocated length of lines. */
typedef struct pt_reqset { char **lines; size_t n; size_t cap; } pt_reqset;

/* Make *s an empty set (no allocation). */
void pt_reqset_init(pt_reqset *s);

/* Parse requirements-file text and append one canonical line per requirement.
 *
 * text: len bytes, need not be NUL-terminated. Lines end in "\n" or "\r\n";
 *   full-line '#' comments, inline comments ('#' at the start or after a space
 *   or tab, as pip reads them), blank lines and trailing whitespace are
 *   dropped. A line ending in '\' (and carrying no comment) continues on the
 *   next line, as in pip; errors in a continued line name its first line.
 * first_line: line number of text's first line in its source file (1 for a
 *   whole file), so that err.line points into the right file.
 * Returns 0, -EINVAL (first bad line: err.line is its number, err.msg starts
 *   with "line N: ") or -ENOMEM. On failure the set is left exactly as it was
 *   before the call. Linear in len. err may be NULL. */
int  pt_reqset_add_text(pt_reqset *s, const char *text, size_t len, unsigned first_line, pt_error *err);

/* Append one requirement given as a NUL-terminated line (no '\n'). A blank or
 * comment-only line adds nothing and returns 0; an inline comment is dropped.
 * Returns 0, -EINVAL (err.line = lineno) or -ENOMEM. err may be NULL. */
int  pt_reqset_add_line(pt_reqset *s, const char *line, unsigned lineno, pt_error *err);

/* Sort the lines (strcmp order) and drop duplicates. O(n log n). Required
 * before pt_canonical_text(). */
void pt_reqset_finish(pt_reqset *s);

/* Free all lines and the array; leaves *s as after pt_reqset_init(). */
void pt_reqset_free(pt_reqset *s);

#endif
