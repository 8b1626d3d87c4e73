/*
 * The whole C unit-test framework, one copy for tests/common, tests/xmlstream
 * and tests/gateway: CHECK() reports the failing expression with its line
 * and counts it; a test program exits non-zero if any failed (CHECK_DONE(),
 * or CHECK_EXIT(), its other name).
 */
#ifndef BAREV_TEST_CHECK_H
#define BAREV_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
		check_failures++;					\
	}								\
} while (0)

#define CHECK_STR(got, want) do {					\
	const char *g_ = (got), *w_ = (want);				\
	if (g_ == NULL || strcmp(g_, w_) != 0) {			\
		fprintf(stderr, "%s:%d: CHECK_STR failed: %s\n"		\
		    "   got:  %s\n   want: %s\n", __FILE__, __LINE__,	\
		    #got, g_ != NULL ? g_ : "(null)", w_);		\
		check_failures++;					\
	}								\
} while (0)

#define RUN(test) do {							\
	int before_ = check_failures;					\
	test();								\
	fprintf(stderr, "%-48s %s\n", #test,				\
	    check_failures == before_ ? "ok" : "FAILED");		\
} while (0)

#define CHECK_DONE() (check_failures == 0 ? 0 :			\
	(fprintf(stderr, "%d failure(s)\n", check_failures), 1))

#define CHECK_EXIT() CHECK_DONE()

#endif
