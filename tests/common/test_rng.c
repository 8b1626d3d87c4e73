/*
 * common/rng: hex ids have the promised shape, refuse a buffer too small
 * (without writing to it), and do not repeat; raw bytes and u32 vary.
 */
#include <string.h>

#include "../check.h"
#include "rng.h"

static int
all_hex(const char *s)
{
	for (; *s != '\0'; s++)
		if (strchr("0123456789abcdef", *s) == NULL)
			return 0;
	return 1;
}

static void
test_hex(void)
{
	char a[33], b[33], small[32];

	CHECK(cm_random_hex(a, sizeof a, 16) == 0);
	CHECK(strlen(a) == 32 && all_hex(a));
	CHECK(cm_random_hex(b, sizeof b, 16) == 0);
	CHECK(strcmp(a, b) != 0);
	memset(small, 'x', sizeof small);
	CHECK(cm_random_hex(small, sizeof small, 16) == -1);
	CHECK(small[0] == 'x' && small[31] == 'x');
	CHECK(cm_random_hex(a, sizeof a, 0) == 0 && a[0] == '\0');
	CHECK(cm_random_hex(a, sizeof a, 100) == -1);
}

static void
test_bytes(void)
{
	static unsigned char big[1 << 20];
	size_t zeros = 0;
	uint32_t first = cm_random_u32(), or_all = 0, and_all = ~0u;
	int differs = 0;

	cm_random_bytes(big, sizeof big);
	for (size_t i = 0; i < sizeof big; i++)
		zeros += big[i] == 0;
	/* ~4096 expected; all-zero or untouched would be 1 Mi */
	CHECK(zeros < 8192);
	for (int i = 0; i < 64; i++) {
		uint32_t r = cm_random_u32();

		differs |= r != first;
		or_all |= r;
		and_all &= r;
	}
	CHECK(differs);
	CHECK(or_all == 0xffffffffu && and_all == 0);
}

int
main(void)
{
	test_hex();
	test_bytes();
	return CHECK_DONE();
}
