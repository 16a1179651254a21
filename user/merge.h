/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * -r FILE -r FILE...: several trace files (one per host, say) read as one
 * stream, item by item in time order.
 */
#ifndef RSTWATCH_MERGE_H
#define RSTWATCH_MERGE_H

#include <stddef.h>

#include "trace.h"

#define RW_MERGE_MAX 32	/* files at once */

struct rw_merge;

/* Open every file ("-" standard input) and read its header; created_ns: the
 * earliest recording start.  NULL with a one-line reason in err. */
struct rw_merge *rw_merge_open(const char *const *paths, size_t n, uint64_t *created_ns, char *err,
			       size_t errlen);
/* The next item of all files, the earliest first (an end record where it
 * stands in its file); *source: the file's index.  1 an item, 0 all files
 * ended, -1 a file is damaged (err names it and the byte offset). */
int rw_merge_next(struct rw_merge *m, struct rw_trace_item *it, size_t *source, char *err,
		  size_t errlen);
void rw_merge_close(struct rw_merge *m);

/* The counters of several recordings as one: sums, and the endpoints
 * holding most TIME_WAIT sockets among all of them. */
void rw_merge_ends(const struct rw_trace_end *ends, size_t n, struct rw_trace_end *sum);

#endif /* RSTWATCH_MERGE_H */
