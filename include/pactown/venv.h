/* pactown/venv.h — is a built venv still usable?
 *
 * A venv in the store is complete when its `.pactown-key` marker exists (the
 * builder writes it last), and usable while its base interpreter is there: a
 * venv's bin/python is a link to the interpreter named by `home` in its
 * pyvenv.cfg (PEP 405), so a moved or deleted base interpreter leaves a venv
 * that only fails at start with "No such file or directory" (uv#1640). Such
 * a venv is never served: it is rebuilt.
 */
#ifndef PACTOWN_VENV_H
#define PACTOWN_VENV_H

#include <stddef.h>

/* Check the venv directory dir. Returns 0 usable; -ENOENT incomplete or
 * missing (no marker); -ESTALE its base interpreter is gone (pyvenv.cfg
 * missing or without `home`, `home` not a directory, or bin/python not
 * resolving), with why (n bytes) saying which; other -errno from stat(2). */
int pt_venv_check(const char *dir, char *why, size_t n);

#endif
