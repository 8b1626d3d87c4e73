/*
 * common/clock: milliseconds on the monotonic clock — never backwards, and
 * it moves with real time (a wait of 30 ms shows as at least 30 ms; no upper
 * bound is asserted, a busy machine may take longer).
 */
#include <time.h>

#include "../check.h"
#include "clock.h"

int
main(void)
{
	struct timespec ts, pause = { 0, 30 * 1000000L };
	uint64_t a, b, prev;

	a = cm_now_ms();
	prev = a;
	for (int i = 0; i < 100000; i++) {
		b = cm_now_ms();
		CHECK(b >= prev);
		prev = b;
	}
	/* the same clock as CLOCK_MONOTONIC, in ms */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	b = cm_now_ms();
	CHECK(b >= (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
	a = cm_now_ms();
	while (nanosleep(&pause, &pause) == -1)
		;
	CHECK(cm_now_ms() - a >= 30);
	return CHECK_DONE();
}
