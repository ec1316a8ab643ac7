/* redact.c — replace secrets by "***" in text and in streams. */
#include "pactown/redact.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pactown/fsutil.h"

#define MASK "***"

/* length of the secret that starts at s (within n bytes), 0 if none; longest first */
static size_t match_at(const char *s, size_t n, const char *const *secrets)
{
    size_t best = 0;
    for (const char *const *p = secrets; p && *p; p++) {
        size_t len = strlen(*p);
        if (len && len <= n && len > best && memcmp(s, *p, len) == 0)
            best = len;
    }
    return best;
}

/* could a secret start at s and run past the n bytes we have? */
static bool partial_at(const char *s, size_t n, const char *const *secrets)
{
    for (const char *const *p = secrets; p && *p; p++) {
        size_t len = strlen(*p);
        if (len > n && memcmp(s, *p, n) == 0)
            return true;
    }
    return false;
}

char *pt_redact(const char *s, const char *const *secrets)
{
    size_t n = strlen(s), cap = n + 1, used = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t m = match_at(s + i, n - i, secrets);
        const char *piece = m ? MASK : s + i;
        size_t plen = m ? strlen(MASK) : 1;
        if (used + plen + 1 > cap) {
            cap = (used + plen + 1) * 2;
            char *p = realloc(out, cap);
            if (!p) {
                free(out);
                return NULL;
            }
            out = p;
        }
        memcpy(out + used, piece, plen);
        used += plen;
        i += m ? m : 1;
    }
    out[used] = '\0';
    return out;
}

int pt_redact_copy(int in, int out, const char *const *secrets)
{
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(in, buf + have, sizeof buf - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        bool eof = r == 0;
        have += (size_t)r;
        /* write what cannot be the start of a secret any more */
        size_t i = 0, start = 0;
        while (i < have) {
            size_t m = match_at(buf + i, have - i, secrets);
            if (m) {
                int rc = pt_write_all(out, buf + start, i - start);
                if (rc == 0)
                    rc = pt_write_all(out, MASK, strlen(MASK));
                if (rc)
                    return rc;
                i += m;
                start = i;
            } else if (!eof && partial_at(buf + i, have - i, secrets)) {
                break; /* wait for more bytes */
            } else {
                i++;
            }
        }
        int rc = pt_write_all(out, buf + start, i - start);
        if (rc)
            return rc;
        memmove(buf, buf + i, have - i);
        have -= i;
        if (eof)
            return 0;
        if (have == sizeof buf) { /* a secret longer than the buffer: give up holding */
            if ((rc = pt_write_all(out, buf, have)) != 0)
                return rc;
            have = 0;
        }
    }
}
