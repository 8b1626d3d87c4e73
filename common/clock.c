/*
 * clock — CLOCK_MONOTONIC in milliseconds (clock.h).  component/, barevlink/
 * and gateway/ each had their own copy of these four lines.
 */
#include <time.h>

#include "clock.h"

uint64_t
cm_now_ms(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t
cm_wall_s(void)
{
	return (int64_t)time(NULL);
}
