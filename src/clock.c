/* clock.c — monotonic and wall-clock time. */
#include "pactown/clock.h"

#include <stdlib.h>
#include <time.h>

uint64_t pt_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t pt_wall_ms(void)
{
    const char *fake = getenv("PACTOWN_FAKE_NOW");
    if (fake && *fake)
        return strtoll(fake, NULL, 10) * 1000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pt_wall_s(void)
{
    const char *fake = getenv("PACTOWN_FAKE_NOW");
    if (fake && *fake)
        return strtoll(fake, NULL, 10);
    return (int64_t)time(NULL);
}
