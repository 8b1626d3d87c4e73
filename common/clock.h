/*
 * clock — the one monotonic clock of the daemon.  Timers, ages and
 * deadlines are measured on it, never on the wall clock (which an operator
 * or NTP may step).
 */
#ifndef CM_CLOCK_H
#define CM_CLOCK_H

#include <stdint.h>

/* milliseconds on CLOCK_MONOTONIC (arbitrary origin, never steps back) */
uint64_t cm_now_ms(void);

/* seconds since the epoch on the wall clock: for what is stored and
 * compared across restarts (the store's timestamps, TTLs of rows), never
 * for timers */
int64_t cm_wall_s(void);

#endif
