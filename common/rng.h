/*
 * rng — the one source of random numbers: the kernel's (getrandom(2)).
 * Used for ids other parties must not guess (file URLs, SI stream ids, ad-hoc
 * sessions, iq ids) and for backoff jitter alike, so there is no second,
 * weaker generator to pick by mistake (random() was never seeded).
 */
#ifndef CM_RNG_H
#define CM_RNG_H

#include <stddef.h>
#include <stdint.h>

/* n random bytes; aborts if the kernel has none to give (it always does on
 * Linux >= 3.17 once booted: there is nothing sensible to fall back to) */
void cm_random_bytes(void *buf, size_t n);

uint32_t cm_random_u32(void);

/* nbytes random bytes as 2*nbytes lowercase hex digits + NUL in out, which
 * holds outlen bytes; -1 (out untouched) if it does not fit */
int cm_random_hex(char *out, size_t outlen, size_t nbytes);

#endif
