/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * How often a table read from the file system (the cgroup tree, the pod log
 * directories) may be read again when a lookup misses: a walk waits ten
 * times as long as the last one took, and at least 10 ms, so whoever makes
 * unknown names (a container runtime, a logged-in user) costs rstwatch at
 * most a tenth of its time, while a new container's first socket still
 * finds its cgroup.
 */
#ifndef RSTWATCH_RESCAN_H
#define RSTWATCH_RESCAN_H

#include <stdbool.h>
#include <stdint.h>

struct rw_rescan {
	uint64_t start_ns;	/* CLOCK_MONOTONIC: the walk under way began */
	uint64_t next_ns;	/* no walk before this */
};

/* A walk may start now: true, and it is timed from now. */
bool rw_rescan_begin(struct rw_rescan *r);
/* The walk is over: the next one waits in proportion. */
void rw_rescan_end(struct rw_rescan *r);

#endif /* RSTWATCH_RESCAN_H */
