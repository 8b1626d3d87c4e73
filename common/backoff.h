/*
 * backoff — the one jittered exponential backoff (component reconnects,
 * Barev redials, listener rebinds).  The bound starts at a minimum and
 * doubles up to a maximum; each wait is drawn in [bound/2, bound] ("equal
 * jitter": half fixed so retries do not come too fast, half random so many
 * peers that failed together do not retry together).
 */
#ifndef CM_BACKOFF_H
#define CM_BACKOFF_H

#include <stdint.h>

/* the next bound: min first (also after a reset to 0), then doubling, max
 * at most (no overflow) */
unsigned cm_backoff_next(unsigned bound, unsigned min, unsigned max);

/* a wait in [bound/2, bound] from the random number rnd */
unsigned cm_backoff_jitter(unsigned bound, uint32_t rnd);

/* both steps with a fresh random number: advances *bound, returns the wait */
unsigned cm_backoff_step(unsigned *bound, unsigned min, unsigned max);

#endif
