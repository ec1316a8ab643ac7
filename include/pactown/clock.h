/* pactown/clock.h — time sources.
 *
 * Durations use CLOCK_MONOTONIC (clock_gettime(2)); timestamps stored in the
 * index are wall-clock seconds since the Unix epoch (CLOCK_REALTIME).
 */
#ifndef PACTOWN_CLOCK_H
#define PACTOWN_CLOCK_H

#include <stdint.h>

/* Monotonic time in nanoseconds (for measuring durations). */
uint64_t pt_mono_ns(void);

/* Wall-clock milliseconds since the epoch (PACTOWN_FAKE_NOW, in seconds, is
 * honoured as for pt_wall_s). */
int64_t pt_wall_ms(void);

/* Wall-clock seconds since the epoch. If PACTOWN_FAKE_NOW is set in the
 * environment (tests), its value (seconds) is returned instead. */
int64_t pt_wall_s(void);

#endif
