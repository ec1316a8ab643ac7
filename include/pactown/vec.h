/* pactown/vec.h — growing an array by doubling. */
#ifndef PACTOWN_VEC_H
#define PACTOWN_VEC_H

#include <stddef.h>

/* Room for one more element in the array v of n elements of size bytes each
 * (*cap allocated): when n == *cap, realloc(3) to twice *cap (16 the first
 * time) and update *cap. Returns the array to use from now on (v itself when
 * there was room), or NULL when out of memory (v and *cap are then left as
 * they were). v may be NULL with *cap 0. */
void *pt_grow(void *v, size_t *cap, size_t n, size_t size);

/* Append n bytes of data to the text *buf of *len bytes (*cap allocated),
 * growing it to twice what is needed when it is too small, and keep it
 * NUL-terminated. *buf may be NULL with *len and *cap 0. Returns 0, or
 * -ENOMEM (the buffer is then left as it was). */
int pt_buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n);

#endif
