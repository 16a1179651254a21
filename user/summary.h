/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Counts of verdicts per class and subtype, for -c and -i. */
#ifndef RSTWATCH_SUMMARY_H
#define RSTWATCH_SUMMARY_H

#include <stdio.h>

#include "trace.h"
#include "verdict.h"

struct rw_summary {
	uint64_t n[RW_CL_COUNT][RW_SUB_COUNT];
};

/* What the summary reports besides the verdicts: every loss counter. */
struct rw_summary_losses {
	uint64_t events;	/* produced by the kernel (live) or recorded (replay) */
	uint64_t lost;		/* ring buffer full */
	uint64_t evictions;	/* connections dropped from the full state table */
	uint64_t bad_records;	/* malformed records from the kernel */
	uint64_t missed;	/* program runs the kernel skipped and counted */
	uint64_t close_unseen;	/* sockets whose close no program saw */
};

static inline void rw_summary_add(struct rw_summary *s, const struct rw_verdict *v)
{
	if ((unsigned)v->cls < RW_CL_COUNT && (unsigned)v->sub < RW_SUB_COUNT)
		s->n[v->cls][v->sub]++;
}

/* What the kernel counted of TIME_WAIT over the period (no verdict each):
 * entries and ends by expiry and by reuse; in it at the end; the endpoints
 * holding most of them then. */
struct rw_summary_tw {
	uint64_t entered, expired, reused, now;
	uint32_t ntop;
	const struct rw_tw_endpoint *top;
};

/*
 * Print one summary: a table, or with json one line
 * {"summary":"interval"|"total","time":...,"counts":[{"class","subtype","count"}...],
 *  "events":N,"lost":N,"evictions":N,"bad_records":N,
 *  "time_wait":{"entered":N,"expired":N,"reused":N,"now":N,
 *               "top":[{"family","laddr","raddr","rport","netns","count"}...]},
 *  "missed":N,"closes_unseen":N}.
 * time_ns is the end of the period summarised.
 */
void rw_summary_print(FILE *f, bool json, bool interval, uint64_t time_ns,
		      const struct rw_summary *s, const struct rw_summary_losses *l,
		      const struct rw_summary_tw *tw);

#endif /* RSTWATCH_SUMMARY_H */
