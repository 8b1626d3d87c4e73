/*
 * test_transfer_limits — issue 15 item 2: a peer's file offers are taken
 * only within the caps per contact and in total and within the spool
 * quota, where accepted offers reserve their whole size and served files
 * count too, with no wrap-around for huge sizes; refusal notes to the user
 * are one per contact and reason per interval however many offers come.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "transfer_limits.h"
#include "../check.h"

#define MIB ((uint64_t)1 << 20)

static void
test_caps(void)
{
	struct xl_limits lim = { 3, 32, 1024 * MIB };
	struct xl_load l = { 0, 0, 0, 0 };

	CHECK(xl_admit(&lim, &l, 100 * MIB) == XL_OK);
	l.contact_n = 2;
	l.total_n = 2;
	CHECK(xl_admit(&lim, &l, 0) == XL_OK);
	/* the 4th offer of one contact, even an empty one */
	l.contact_n = 3;
	l.total_n = 3;
	CHECK(xl_admit(&lim, &l, 0) == XL_PER_CONTACT);
	/* another contact while 32 run */
	l.contact_n = 0;
	l.total_n = 32;
	CHECK(xl_admit(&lim, &l, 1) == XL_TOTAL);
	l.total_n = 31;
	CHECK(xl_admit(&lim, &l, 1) == XL_OK);
}

static void
test_quota(void)
{
	struct xl_limits lim = { 100, 100, 1024 * MIB };
	struct xl_load l = { 0, 0, 0, 0 };

	/* 50 offers of 100 MiB (the attack): the 11th does not fit */
	for (int i = 0; i < 50; i++) {
		if (xl_admit(&lim, &l, 100 * MIB) != XL_OK) {
			CHECK(i == 10);
			CHECK(xl_admit(&lim, &l, 100 * MIB) == XL_QUOTA);
			break;
		}
		l.contact_n++;
		l.total_n++;
		l.reserved += 100 * MIB;
	}
	CHECK(l.reserved == 1000 * MIB);
	/* what is left still fits exactly, one byte more does not */
	CHECK(xl_admit(&lim, &l, 24 * MIB) == XL_OK);
	CHECK(xl_admit(&lim, &l, 24 * MIB + 1) == XL_QUOTA);
	/* served files take their share */
	l.reserved = 0;
	l.served = 1000 * MIB;
	CHECK(xl_admit(&lim, &l, 24 * MIB) == XL_OK);
	CHECK(xl_admit(&lim, &l, 25 * MIB) == XL_QUOTA);
	l.served = 1025 * MIB;		/* quota lowered on reload */
	CHECK(xl_admit(&lim, &l, 0) == XL_QUOTA);
	/* sizes near 2^64 must not wrap into "fits" */
	l.served = 0;
	l.reserved = 1;
	CHECK(xl_admit(&lim, &l, UINT64_MAX) == XL_QUOTA);
	l.reserved = UINT64_MAX - 5;
	CHECK(xl_admit(&lim, &l, 10) == XL_QUOTA);
	/* quota 0: only empty files */
	lim.quota = 0;
	l.reserved = 0;
	CHECK(xl_admit(&lim, &l, 0) == XL_OK);
	CHECK(xl_admit(&lim, &l, 1) == XL_QUOTA);
}

static void
test_notes(void)
{
	struct xl_notes n;

	memset(&n, 0, sizeof(n));
	/* a flood from contact 7: one note, then silence for the interval */
	CHECK(xl_note_due(&n, 7, 1, 1000, 60000) == 1);
	for (int i = 0; i < 100; i++)
		CHECK(xl_note_due(&n, 7, 1, 1000 + i * 100, 60000) == 0);
	/* another contact is told on its own */
	CHECK(xl_note_due(&n, 8, 1, 2000, 60000) == 1);
	/* after the interval contact 7 is told again */
	CHECK(xl_note_due(&n, 7, 1, 60999, 60000) == 0);
	CHECK(xl_note_due(&n, 7, 1, 61000, 60000) == 1);
	CHECK(xl_note_due(&n, 7, 1, 61001, 60000) == 0);
	/* more contacts than slots: the oldest is forgotten, never a crash */
	for (int64_t c = 100; c < 100 + 3 * XL_NOTE_SLOTS; c++)
		CHECK(xl_note_due(&n, c, 1, 70000 + c, 60000) == 1);
	CHECK(xl_note_due(&n, 100 + 3 * XL_NOTE_SLOTS - 1, 1, 80000, 60000) == 0);
	CHECK(xl_note_due(&n, 8, 1, 80000, 60000) == 1);	/* evicted: told again */
	/* another reason of the same contact is news */
	CHECK(xl_note_due(&n, 8, 2, 80001, 60000) == 1);
	CHECK(xl_note_due(&n, 8, 2, 80002, 60000) == 0);
	CHECK(xl_note_due(&n, 8, 1, 80003, 60000) == 0);
}

int
main(void)
{
	RUN(test_caps);
	RUN(test_quota);
	RUN(test_notes);
	return CHECK_EXIT();
}
