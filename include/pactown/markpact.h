/* pactown/markpact.h — parser for markpact READMEs.
 *
 * A markpact README is Markdown in which some fenced code blocks carry a
 * `markpact:KIND` token in their info string:
 *
 *     ```text markpact:deps python        requirements, one per line (python only)
 *     ```python markpact:file path=a/b.py a file of the sandbox
 *     ```bash markpact:run                the command that starts the service
 *     ```http markpact:test http          tests, kept for later use
 *
 * Fences follow CommonMark fenced code blocks: a run of 3+ '`' or '~',
 * indented by at most 3 spaces, an optional info string (for '`' fences the
 * info string may not contain '`'), closed by a run of the same character at
 * least as long, indented at most 3 spaces and followed only by spaces/tabs.
 * Up to the opening fence's indentation is removed from each body line.
 * Line endings are LF or CRLF (a lone CR is content); a UTF-8 BOM at the start
 * is ignored. Container blocks (block quotes, list items) and HTML blocks are
 * not interpreted: only fences at the start of a line (after <= 3 spaces) count.
 */
#ifndef PACTOWN_MARKPACT_H
#define PACTOWN_MARKPACT_H

#include <stdbool.h>
#include <stddef.h>

#include "pactown/error.h"

/* Longest accepted markpact:file path and path component, in bytes. */
#define PT_MP_PATH_MAX 4096
#define PT_MP_NAME_MAX 255

typedef struct pt_mp_block {
    char *body;        /* block content, malloc'd, NUL-terminated, exactly the lines between
                          the fences, each ending in "\n" (CRLF -> "\n"); "" for an empty block */
    size_t len;        /* strlen-equivalent length of body (bodies never contain NUL) */
    unsigned line;     /* 1-based README line of the first body line (fence line + 1) */
    unsigned fence_line; /* 1-based line of the opening fence */
    char *path;        /* markpact:file only: the path= value (unquoted, checked by
                          pt_markpact_check_path), malloc'd; else NULL */
    char *lang;        /* first info-string word if it is not the markpact token
                          (e.g. "python", "text", "bash"), malloc'd; else NULL */
    char *info;        /* the whole info string, leading/trailing blanks removed, malloc'd
                          (e.g. "text markpact:test http"); never NULL */
    bool template;     /* markpact:file only: template=true (placeholders to fill, pactown/readme.h) */
    char *source;      /* the README the block came from when it was included from another file
                          (pactown/readme.h), malloc'd; NULL for the top README */
} pt_mp_block;

typedef struct pt_mp_include {
    unsigned line;     /* 1-based line of the <!-- markpact:include path=... --> comment */
    char *path;        /* its path= value as written (unquoted), malloc'd */
} pt_mp_include;

typedef struct pt_markpact {
    pt_mp_block *deps;  size_t n_deps;    /* markpact:deps blocks (python), in README order */
    pt_mp_block *files; size_t n_files;   /* markpact:file blocks, in README order, distinct paths */
    pt_mp_block *run;                      /* the one markpact:run block, NULL if none */
    pt_mp_block *tests; size_t n_tests;   /* markpact:test blocks (e.g. "markpact:test http"),
                                             in README order (pactown/mptest.h reads them) */
    pt_mp_block *build;                    /* the markpact:build block (a command run once in the
                                             sandbox before the first start), NULL if none */
    pt_mp_block *target;                   /* the markpact:target block (a YAML deployment hint:
                                             `framework: fastapi` picks the run command when
                                             there is no run block), NULL if none or blank */
    char **warnings; size_t n_warnings;   /* "line N: ..." for what was accepted but is worth saying
                                             (a later block replacing an earlier one), malloc'd */
    pt_mp_include *includes; size_t n_includes; /* include comments, in README order */
    unsigned n_unknown; unsigned first_unknown_line; /* other markpact:* kinds (e.g.
                                             markpact:bootstrap): skipped, counted; fence line
                                             of the first one, 0 if none */
} pt_markpact;

/* Parse README text into *out.
 *
 * text: len bytes, need not be NUL-terminated, may contain NUL or invalid
 * UTF-8 bytes (text may be NULL when len == 0). *out is overwritten without
 * being freed first; on success the caller owns it and releases it with
 * pt_markpact_free(). err may be NULL.
 *
 * Block selection: a fenced block counts when one info-string word starts with
 * "markpact:"; the rest of the word is the kind. All other blocks are skipped
 * (their content is never read as fences).
 *   deps: optional ecosystem word right after the token; absent or "python"
 *         -> python deps; anything else is an error, and so is a Node.js
 *         (javascript, js, node, nodejs, npm, typescript, ts, yarn, pnpm) or
 *         Go/Rust lang word: pactown-fs builds Python venvs only.
 *   file: path=VALUE (or path="VALUE" / path='VALUE') after the token;
 *         without one the file is main.py (as pactown); leading "./" is
 *         dropped; template=true sets template.  A later block for the same
 *         path replaces the earlier one (as pactown), with a warning.
 *   run, build: non-blank body; a second block replaces the first, with a
 *         warning.  target: the same, but a blank one is dropped.
 *   test: any arguments, kept as is.
 *   other kinds: counted in n_unknown, content ignored.
 * Outside fenced blocks, a line `<!-- markpact:include path=FILE -->` (up
 * to 3 spaces before it) is recorded in includes; pactown/readme.h reads
 * the included files.
 *
 * Returns 0, or on error -EINVAL (malformed README) / -ENOMEM, with err->code,
 * err->line (1-based README line) and err->msg ("line N: reason") set and *out
 * left empty (all pointers NULL, counts 0). -EINVAL cases, in README order:
 *   a markpact block (any kind) reaching EOF unclosed (line of its fence);
 *   a NUL byte in a markpact block's fence line or body (line of the NUL);
 *   more than one markpact: word in one info string (fence line);
 *   deps for an ecosystem other than python (fence line);
 *   file block with an unterminated quote or text after the closing quote,
 *   with two path= words, or with a path rejected by pt_markpact_check_path
 *   (fence line);
 *   a run or build block with an empty or blank body (fence line);
 *   an include comment without path= or without its closing "-->" (its line);
 *   more than UINT_MAX - 1 lines (line 0).
 * Runs in time linear in len; memory proportional to the blocks kept.
 */
int  pt_markpact_parse(const char *text, size_t len, pt_markpact *out, pt_error *err);

/* Free what block b owns (body, path, lang, info, source) and zero it; not
 * b itself. b may be NULL. */
void pt_mp_block_free(pt_mp_block *b);

/* Free everything pt_markpact_parse() stored in *mp and reset it to empty.
 * mp may be NULL; an already empty (zeroed) pt_markpact is fine. */
void pt_markpact_free(pt_markpact *mp);

/* Check a markpact:file path (NUL-terminated). Accepted: a relative path of
 * valid UTF-8 (no overlong forms, surrogates or code points > U+10FFFF), at
 * most PT_MP_PATH_MAX (4096) bytes, components separated by single '/', each
 * component 1..PT_MP_NAME_MAX (255) bytes. Rejected: "" (empty), a leading
 * '/', an empty component ("a//b", trailing '/'), "." or ".." components,
 * control bytes 0x01-0x1f and 0x7f, backslash, and ".venv" / ".pactown" as
 * first component (reserved by pactown for the sandbox's environment).
 * path may be NULL (rejected as empty).
 *
 * Returns 0, or -EINVAL with err->code/err->msg set (msg starts with
 * "line N: " when line != 0) and err->line = line.
 */
int  pt_markpact_check_path(const char *path, unsigned line, pt_error *err);

#endif
