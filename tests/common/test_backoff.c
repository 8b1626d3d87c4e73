/*
 * common/backoff: the bound doubles from min to max without overflowing and
 * each wait lies in [bound/2, bound] — the rules barevlink's redials and the
 * component's reconnects rely on (BAREV.md §2's jittered redial).
 */
#include "backoff.h"
#include "../check.h"

static void
test_next(void)
{
	unsigned b = 0;

	b = cm_backoff_next(b, 1000, 300000);
	CHECK(b == 1000);
	CHECK(cm_backoff_next(b, 1000, 300000) == 2000);
	/* below the minimum (a config change) starts over at the minimum */
	CHECK(cm_backoff_next(10, 1000, 300000) == 1000);
	for (int i = 0; i < 40; i++)
		b = cm_backoff_next(b, 1000, 300000);
	CHECK(b == 300000);
	/* 1000 * 2^n would overshoot 300000: capped, not 512000 */
	CHECK(cm_backoff_next(256000, 1000, 300000) == 300000);
	CHECK(cm_backoff_next(0xffffffffu, 1000, 0xffffffffu) == 0xffffffffu);
	CHECK(cm_backoff_next(0x80000000u, 1, 0xffffffffu) == 0xffffffffu);
	CHECK(cm_backoff_next(0, 5000, 5000) == 5000);
	CHECK(cm_backoff_next(5000, 5000, 5000) == 5000);
}

static void
test_jitter(void)
{
	for (unsigned i = 0; i < 1000; i++) {
		unsigned d = cm_backoff_jitter(1000, i * 2654435761u);

		CHECK(d >= 500 && d <= 1000);
	}
	CHECK(cm_backoff_jitter(1000, 0) == 500);
	CHECK(cm_backoff_jitter(1000, 500) == 1000);
	CHECK(cm_backoff_jitter(1000, 501) == 500);
	CHECK(cm_backoff_jitter(0, 12345) == 0);
	CHECK(cm_backoff_jitter(1, 1) == 1);
	CHECK(cm_backoff_jitter(0xffffffffu, 0xffffffffu) <= 0xffffffffu);
	CHECK(cm_backoff_jitter(0xffffffffu, 0) == 0x7fffffffu);
}

/* the real random source: a run of steps stays in its moving window and
 * actually varies (a constant "jitter" would not spread peers out) */
static void
test_step(void)
{
	unsigned bound = 0, prev = 0, d, seen_low = 0, seen_high = 0;

	for (int i = 0; i < 12; i++) {
		d = cm_backoff_step(&bound, 100, 3000);
		CHECK(bound == (prev == 0 ? 100 : prev >= 1500 ? 3000 :
		    prev * 2));
		CHECK(d >= bound / 2 && d <= bound);
		prev = bound;
	}
	CHECK(bound == 3000);
	for (int i = 0; i < 2000; i++) {
		d = cm_backoff_step(&bound, 100, 3000);
		seen_low |= d < 2250;
		seen_high |= d >= 2250;
	}
	CHECK(seen_low && seen_high);
	bound = 0;		/* a reset starts at the minimum again */
	d = cm_backoff_step(&bound, 100, 3000);
	CHECK(bound == 100 && d >= 50 && d <= 100);
}

int
main(void)
{
	test_next();
	test_jitter();
	test_step();
	return CHECK_DONE();
}
