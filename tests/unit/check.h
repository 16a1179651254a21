/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Minimal assertions for the unit tests: each CHECK names what it checks and
 * prints actual vs expected on failure; a test binary exits 1 if any failed
 * and prints "N passed, M failed" for tests/unit/run to add up.
 */
#ifndef RSTWATCH_CHECK_H
#define RSTWATCH_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;
static const char *check_test = "";

#define TEST(name) (check_test = (name))

#define CHECK_INT(what, actual, expected) do {					\
	long long a_ = (long long)(actual), e_ = (long long)(expected);		\
	if (a_ == e_) { check_passed++; } else {					\
		check_failed++;							\
		fprintf(stderr, "FAIL %s: %s: got %lld, expected %lld (%s:%d)\n",	\
			check_test, (what), a_, e_, __FILE__, __LINE__);		\
	}									\
} while (0)

#define CHECK_STR(what, actual, expected) do {					\
	const char *a_ = (actual), *e_ = (expected);				\
	if ((!a_ && !e_) || (a_ && e_ && strcmp(a_, e_) == 0)) { check_passed++; } \
	else {									\
		check_failed++;							\
		fprintf(stderr, "FAIL %s: %s:\n  got      %s\n  expected %s\n  (%s:%d)\n", \
			check_test, (what), a_ ? a_ : "(null)", e_ ? e_ : "(null)",	\
			__FILE__, __LINE__);						\
	}									\
} while (0)

static inline int check_done(const char *suite)
{
	printf("%s: %d passed, %d failed\n", suite, check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
