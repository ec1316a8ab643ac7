/* pactown/readme.h — a README as a runner reads it: the markpact blocks of
 * the file and of the files it includes (`<!-- markpact:include path=F -->`,
 * ../shared/markpact.md), merged in document order.
 */
#ifndef PACTOWN_README_H
#define PACTOWN_README_H

#include <stddef.h>

#include "pactown/error.h"
#include "pactown/markpact.h"

/* Deepest include chain: the top README includes at depth 1. */
#define PT_README_INCLUDE_DEPTH 5
/* Most included files in all (each include comment counts, also of a file
 * included again): 30 includes in each of 5 levels would be 24 million. */
#define PT_README_MAX_FILES 64

/* Read the README at path (at most max_bytes per file) and its includes
 * into *out (release with pt_markpact_free).
 *
 * An include's path is relative to the directory of the file that includes
 * it and must stay inside the top README's directory: "..", absolute paths
 * and symlinks that lead out are refused (the file is opened with
 * openat2(2) RESOLVE_BENEATH from that directory).  Each included file's
 * blocks take the place of its include comment, kind by kind, so that a
 * later file or run block still wins (with a warning) and deps and tests are
 * kept in order; included blocks carry their file (relative to the top
 * directory) in source, warnings from included files start with it.
 * out->includes is left empty.
 *
 * Returns 0, or -errno with err filled and *err_file (malloc'd, may be NULL
 * on -ENOMEM) naming the file the error is in (path for the top README):
 * -EINVAL (a malformed file, an include that leaves the directory or is not
 * a regular file, deeper than PT_README_INCLUDE_DEPTH, more than
 * PT_README_MAX_FILES includes, or a cycle: the message names both files),
 * -ENOENT and other open/read errors, -EFBIG (larger than max_bytes),
 * -ENOMEM. */
int pt_readme_load(const char *path, size_t max_bytes, pt_markpact *out, pt_error *err, char **err_file);

#endif
