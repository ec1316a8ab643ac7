/* pactown/pycache.h — a venv's bytecode: where it goes and what is missing.
 *
 * Python keeps a module's bytecode in __pycache__/<stem>.<cache_tag>.pyc
 * beside its source (PEP 3147), cache_tag being sys.implementation.cache_tag
 * ("cpython-311" for CPython 3.11). The builder uses these to skip its
 * bytecode step when every module already has its .pyc (all of them came
 * hard-linked from the uv cache: src/pyc_share.py).
 */
#ifndef PACTOWN_PYCACHE_H
#define PACTOWN_PYCACHE_H

#include <stddef.h>

/* The venv's site-packages, "<venv>/lib/<lib>/site-packages" for the one
 * <lib> directory there is, into out (n bytes), and CPython's cache tag for
 * it into tag (tn bytes): "python3.11" gives "cpython-311"; "" when <lib>
 * is not CPython's (PyPy's "pypy3.10": its tag is not derived from the name).
 * Returns 0, -ENOENT (no site-packages), -EMLINK (more than one
 * lib/<python>), -ENAMETOOLONG, or -errno. */
int pt_site_packages(const char *venv, char *out, size_t n, char *tag, size_t tn);

/* Count the modules (*.py, outside __pycache__) under dir whose
 * __pycache__/<stem>.<tag>.pyc does not exist or is stale (its header holds
 * another mtime or size than the source's, and it is not hash-based: a
 * wheel's own .pyc), stopping at the first when first_only. Symlinks are
 * not followed. Returns the count (>= 0) or -errno. */
long pt_pycache_missing(const char *dir, const char *tag, int first_only);

#endif
