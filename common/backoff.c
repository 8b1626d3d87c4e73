/*
 * backoff — jittered exponential backoff (backoff.h).  Pure but for
 * cm_backoff_step's random number, so the unit test can pin every value.
 */
#include "backoff.h"
#include "rng.h"

unsigned
cm_backoff_next(unsigned bound, unsigned min, unsigned max)
{
	if (bound == 0 || bound < min)
		return min;
	if (bound >= max / 2)
		return max;
	return bound * 2;
}

unsigned
cm_backoff_jitter(unsigned bound, uint32_t rnd)
{
	unsigned half = bound / 2;

	/* bound - half + 1 >= 1 for every bound, UINT_MAX included */
	return half + rnd % (bound - half + 1);
}

unsigned
cm_backoff_step(unsigned *bound, unsigned min, unsigned max)
{
	*bound = cm_backoff_next(*bound, min, max);
	return cm_backoff_jitter(*bound, cm_random_u32());
}
