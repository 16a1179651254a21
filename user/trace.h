/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Trace files (-w/-r): the decoded, kernel-independent event stream, as it
 * entered the classifier.  Format in man/rstwatch-trace.5.  The reader treats
 * every file as untrusted: every failure is one message with a byte offset.
 */
#ifndef RSTWATCH_TRACE_H
#define RSTWATCH_TRACE_H

#include <stdio.h>

#include "event.h"

#define RW_TRACE_MAGIC "RSTWATCH"
/* 2: an event's sk is the socket's cookie (1: its address), and the address
 * is appended to the event */
#define RW_TRACE_VERSION 2
#define RW_TRACE_MAX_RECORD 65536

struct rw_trace_header {
	uint16_t version;
	int64_t boot_to_real_ns;
	uint64_t created_ns;		/* CLOCK_REALTIME when recording started */
	char kernel_release[65];
	char hostname[65];
};

enum rw_trace_rec {
	RW_TRACE_EVENT = 1,	/* one struct rw_event */
	RW_TRACE_TICK = 2,	/* the live run told the classifier the time */
	RW_TRACE_END = 3,	/* the live run's counters at the end */
};

/* An endpoint holding TIME_WAIT sockets, as the kernel counts them. */
struct rw_tw_endpoint {
	uint8_t family;		/* 4 or 6 */
	uint32_t netns;
	uint8_t laddr[16], raddr[16];	/* network order; IPv4 in the first 4 bytes */
	uint16_t rport;
	uint32_t count;
};

#define RW_TW_TOP 5	/* endpoints -c/-i list, most TIME_WAIT sockets first */

/* The live run's kernel counters at a summary point: what the kernel counts
 * instead of sending records (TIME_WAIT entries and ends, the endpoints
 * holding most TIME_WAIT sockets); a replay prints the same summaries. */
struct rw_trace_end {
	uint64_t produced, lost;
	/* appended: 0 in traces of older rstwatch */
	uint64_t tw_entered, tw_expired, tw_reused, tw_ended;
	uint32_t ntop;
	struct rw_tw_endpoint top[RW_TW_TOP];
	/* appended after the endpoints: program runs the kernel skipped (and
	 * counted), sockets whose close no program saw (struct
	 * rw_tracer_counters) */
	uint64_t missed, close_unseen;
};

/* What the reader found; kind RW_TRACE_EVENT fills ev, TICK tick_ns, END end. */
struct rw_trace_item {
	enum rw_trace_rec kind;
	struct rw_event ev;
	uint64_t tick_ns;
	struct rw_trace_end end;
};

int rw_trace_write_header(FILE *f, const struct rw_trace_header *h);
int rw_trace_write_event(FILE *f, const struct rw_event *ev);
int rw_trace_write_tick(FILE *f, uint64_t now_ns);
int rw_trace_write_end(FILE *f, const struct rw_trace_end *end);

struct rw_trace_reader {
	FILE *f;
	uint16_t version;	/* the header's, set by rw_trace_read_header() */
	uint64_t offset;	/* bytes consumed so far */
	char err[192];		/* why the last call failed */
};

/* 0 ok; -1 with r->err set ("truncated header at byte 12", ...). */
int rw_trace_read_header(struct rw_trace_reader *r, struct rw_trace_header *h);
/* 1 an item, 0 clean end of file, -1 error with r->err set. */
int rw_trace_read(struct rw_trace_reader *r, struct rw_trace_item *it);

#endif /* RSTWATCH_TRACE_H */
