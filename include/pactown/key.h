/* pactown/key.h — canonical text of a dependency set and its cache key.
 *
 * key = lowercase hex of XXH3-128(canonical text), where the canonical text is
 *
 *     pactown-venv/1
 *     python <impl> <version> <platform>
 *     installer index-url=<url|default> find-links=<value|none> no-index=<yes|no>
 *     <canonical requirement line>            one per line, sorted, unique
 *
 * every line ending in "\n" (see /work/shared/design.md, "Cache key").
 */
#ifndef PACTOWN_KEY_H
#define PACTOWN_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "pactown/error.h"
#include "pactown/req.h"

#define PT_KEY_HEX 32                       /* hex digits in a key */
#define PT_CANONICAL_MAGIC "pactown-venv/1" /* first line of the canonical text */

/* The interpreter a venv is built for, e.g. "cpython" "3.11.7" "linux-x86_64".
 * Each field is a NUL-terminated, non-empty word of printable ASCII without
 * spaces. */
typedef struct pt_python_tag { char impl[32]; char version[32]; char platform[64]; } pt_python_tag;

/* Installer settings that change what gets installed. NULL or "" means the
 * installer default (index_url) / none (find_links). Values must be printable
 * ASCII without spaces. */
typedef struct pt_source { const char *index_url; const char *find_links; int no_index; } pt_source;

/* Build the canonical text of a finished set (pt_reqset_finish: sorted,
 * unique) for interpreter py and installer settings src (src may be NULL =
 * all defaults):
 *     "pactown-venv/1\n"
 *     "python <impl> <version> <platform>\n"
 *     "installer index-url=<url|default> find-links=<value|none> no-index=<yes|no>\n"
 *     then each canonical requirement line + "\n".
 * *out: malloc'd, NUL-terminated, caller frees; *out_len: its length in bytes
 *   without the NUL (out_len may be NULL).
 * Returns 0, -EINVAL (set not sorted/unique, empty line or a line containing
 *   '\n'; a py field empty, unterminated or containing spaces/control bytes;
 *   a src value containing spaces/control bytes) or -ENOMEM. On failure *out
 *   is NULL. */
int  pt_canonical_text(const pt_reqset *set, const pt_python_tag *py, const pt_source *src, char **out, size_t *out_len);

/* key = lowercase hex of XXH3_128bits(canonical, len) in XXH128 canonical
 * (big-endian: high 64 bits first) byte order: PT_KEY_HEX digits + NUL
 * written to out. canonical may be NULL when len is 0. */
void pt_key_hex(const char *canonical, size_t len, char out[PT_KEY_HEX + 1]);

/* True iff s is exactly PT_KEY_HEX lowercase hex digits followed by NUL
 * (false for NULL). Use it before turning a user-supplied key into a path. */
bool pt_key_is_valid(const char *s);

/* Parse a canonical text (len bytes, need not be NUL-terminated) back, for
 * `pactown cache show` and the builder.
 * py: filled with the python tag (may be NULL).
 * reqs: set to the first requirement line inside text (text + len if there
 *   are none); the lines from there to text + len are each "\n"-terminated
 *   (may be NULL).
 * Checks the header lines, and that every requirement line is a canonical
 * requirement (pt_req_parse gives it back unchanged), in strcmp order and
 * unique, so that the builder never hands unchecked text to the installer.
 * Returns 0 or -EINVAL (err.line = 1-based line in text, err.msg the reason);
 * -ENOMEM. err may be NULL. */
int  pt_canonical_parse(const char *text, size_t len, pt_python_tag *py, const char **reqs, pt_error *err);

#endif
