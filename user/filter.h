/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Filters in userspace: --class on verdicts (live and replay), and on
 * replay the filters the kernel applies live (-p, --port, --netns, -4/-6,
 * --cgroup), on decoded events with the kernel's semantics
 * (bpf/rstwatch.bpf.c wanted()).
 */
#ifndef RSTWATCH_FILTER_H
#define RSTWATCH_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict.h"

#define RW_ALL_CLASSES ((1u << RW_CL_COUNT) - 1)

struct rw_filter {
	uint32_t pid;		/* owner, 0 any */
	uint16_t port;		/* either end, 0 any */
	uint8_t family;		/* 4 or 6, 0 any */
	uint32_t netns;		/* inode, 0 any */
	char cgroup[RW_CGROUP_MAX];	/* a cgroup path and what lies below it, "" any */
	uint32_t classes;	/* --class: a bit per enum rw_class shown */
	uint64_t *selected;	/* sockets that passed once, by identity (replay) */
};

/*
 * A list of classes -> a bit per class.  opt names the option in messages;
 * with exclude, an item may start with '^' or "no-" to take a class out
 * (of the listed ones, or of all if none is listed).  0, or -1 with a
 * one-line reason in err.
 */
int rw_parse_classes(const char *opt, const char *list, bool exclude, uint32_t *mask, char *err,
		     size_t errlen);
/* A cgroup path as the cgroup field prints it: '/'-separated, no "." or
 * "..", no trailing '/' ("/" the root).  0, or -1 if it is not one. */
int rw_cgroup_normalize(const char *in, char *out, size_t len);
/* Whether path (an owner's, as recorded) is cgroup or below it. */
bool rw_cgroup_below(const char *path, const char *cgroup);

/* Whether f filters events at all (set up f->selected first: rw_filter_init). */
bool rw_filter_events_on(const struct rw_filter *f);
/* For events: 0, or -1 out of memory. */
int rw_filter_init(struct rw_filter *f);
void rw_filter_free(struct rw_filter *f);
/* Whether the event passes, as the kernel would have let its record through. */
bool rw_filter_event(struct rw_filter *f, const struct rw_event *ev);

#endif /* RSTWATCH_FILTER_H */
