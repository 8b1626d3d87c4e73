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

#endif
