/* error.c — pt_error helpers. */
#include "pactown/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int pt_error_set(pt_error *err, int code, unsigned line, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        err->line = line;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void pt_error_clear(pt_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}
