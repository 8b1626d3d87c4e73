/*
 * rng — random bytes from getrandom(2) (rng.h).  Chosen over libevent's
 * evutil_secure_rng (an arc4random seeded once from the same kernel source)
 * so common/ links nothing but the C library, and over random() which is
 * predictable and, unseeded, repeats the same ids after every restart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "rng.h"

void
cm_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		/* flags 0: blocks only before the pool is first seeded */
		ssize_t got = getrandom(p, n, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			/* ids and jitter without randomness would be
			 * guessable: stop rather than run insecurely */
			perror("getrandom");
			abort();
		}
		p += got;
		n -= (size_t)got;
	}
}

uint32_t
cm_random_u32(void)
{
	uint32_t r;

	cm_random_bytes(&r, sizeof r);
	return r;
}

int
cm_random_hex(char *out, size_t outlen, size_t nbytes)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char b[64];

	if (nbytes > sizeof b || outlen < 2 * nbytes + 1)
		return -1;
	cm_random_bytes(b, nbytes);
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * nbytes] = '\0';
	return 0;
}
