/* vec.c — growing an array by doubling (pactown/vec.h). */
#include "pactown/vec.h"

#include <stdint.h>
#include <stdlib.h>

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
