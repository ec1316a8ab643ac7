/* vec.c — growing an array by doubling (pactown/vec.h). */
#include "pactown/vec.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *pt_grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    size_t nc = *cap ? *cap * 2 : 16;
    if (size == 0 || nc > SIZE_MAX / size)
        return NULL;
    void *nv = realloc(v, nc * size);
    if (nv)
        *cap = nc;
    return nv;
}

int pt_buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (n > SIZE_MAX / 2 - *len - 1)
        return -ENOMEM;
    if (*len + n + 1 > *cap) {
        size_t nc = (*len + n + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}
