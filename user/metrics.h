/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * --metrics: counters of verdicts and rstwatch's own health, written in the
 * Prometheus text format (0.0.4) or OpenMetrics 1.0.  Counting a verdict is
 * an array increment (and, with owner labels, one probe of a fixed-size
 * table); everything else is read when a scrape asks for it.
 */
#ifndef RSTWATCH_METRICS_H
#define RSTWATCH_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "httpd.h"
#include "loader.h"
#include "verdict.h"

/* --metrics-labels: the per-owner labels, a bit each (names in metrics.c) */
#define RW_ML_COMM (1u << 0)
#define RW_ML_CONTAINER (1u << 1)	/* the owner's container id */
#define RW_ML_POD (1u << 2)		/* its pod's name */
#define RW_ML_NAMESPACE (1u << 3)	/* its pod's namespace */

#define RW_METRICS_SERIES_DEFAULT 1000
#define RW_METRICS_SERIES_MAX 100000	/* each client being answered holds ~150 bytes a series */

/* What a scrape shows besides the verdict counters, read when it comes. */
struct rw_metrics_health {
	uint64_t produced;	/* records the BPF programs emitted or tried to */
	uint64_t lost;		/* ... that found the ring buffer full */
	uint64_t missed;	/* program runs the kernel skipped and counted */
	uint64_t close_unseen;	/* sockets whose close no program saw */
	uint64_t bad_records;	/* malformed records ignored */
	uint64_t owner_fail;	/* owner / process-tree map updates that failed */
	uint64_t evictions;	/* connections dropped from the full state table */
	uint64_t cw_dropped;	/* CLOSE_WAIT sockets no longer watched */
	uint64_t time_wait;	/* gauge: connections in TIME_WAIT */
	uint64_t tw_entered;	/* counters the kernel keeps: TIME_WAIT entries, */
	uint64_t tw_expired;	/* ... their ends by expiry */
	uint64_t tw_reused;	/* ... and by a new connection on the 4-tuple */
	uint64_t close_wait_stuck;	/* gauge: sockets stuck in CLOSE_WAIT */
	uint64_t output_dropped;	/* verdict lines dropped at exit (stalled reader) */
	struct rw_httpd_stats http;	/* the endpoint itself */
};

struct rw_metrics;

/* labels: RW_ML_* bits; max_series: cap on per-owner series.  NULL: no memory. */
struct rw_metrics *rw_metrics_new(uint32_t labels, uint32_t max_series);
void rw_metrics_free(struct rw_metrics *m);
/* For rstwatch_build_info and rstwatch_kernel_feature: copied. */
void rw_metrics_set_build(struct rw_metrics *m, const char *version, const char *kernel,
			  const struct rw_tracer_feature *f, size_t n);
void rw_metrics_verdict(struct rw_metrics *m, const struct rw_verdict *v);
/* The whole exposition, for a scrape. */
void rw_metrics_write(FILE *f, const struct rw_metrics *m, const struct rw_metrics_health *h,
		      bool openmetrics);
/* --metrics-labels comm[,...]: 0 and *labels set, or -1 with a one-line reason. */
int rw_metrics_parse_labels(const char *list, uint32_t *labels, char *err, size_t errlen);

#endif /* RSTWATCH_METRICS_H */
