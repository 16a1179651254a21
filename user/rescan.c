// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The pace of file-system walks (rescan.h). */
#include <time.h>

#include "rescan.h"

#define MIN_RESCAN_NS 10000000ull	/* 10 ms */
#define RESCAN_FACTOR 10

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool rw_rescan_begin(struct rw_rescan *r)
{
	uint64_t now = mono_ns();

	if (now < r->next_ns)
		return false;
	r->start_ns = now;
	return true;
}

void rw_rescan_end(struct rw_rescan *r)
{
	uint64_t now = mono_ns(), took = now - r->start_ns;

	r->next_ns = now + (took * RESCAN_FACTOR > MIN_RESCAN_NS ? took * RESCAN_FACTOR : MIN_RESCAN_NS);
}
