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

const char *pt_quote(char *buf, size_t cap, const char *p, size_t n)
{
    size_t o = 0;
    const size_t limit = 60;
    buf[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (i >= limit || o + 8 >= cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"')
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

