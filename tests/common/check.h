/*
 * CHECK() reports the failing expression with its line and counts it; a
 * test exits non-zero if any failed (CHECK_DONE()).
 */
#ifndef CM_TEST_CHECK_H
#define CM_TEST_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
		check_failures++;					\
	}								\
} while (0)

#define CHECK_DONE() (check_failures == 0 ? 0 :			\
	(fprintf(stderr, "%d failure(s)\n", check_failures), 1))

#endif
