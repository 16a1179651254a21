/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Where verdict lines leave the program: a FILE over an fd that never blocks
 * shutdown and writes whole lines. */
#ifndef RSTWATCH_SINK_H
#define RSTWATCH_SINK_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct rw_sink {
	int fd;
	const volatile sig_atomic_t *stop;	/* set: give up writing STOP_WRITE_MS later */
	uint64_t give_up_ns;	/* CLOCK_MONOTONIC deadline, 0 until stop */
	uint64_t dropped_lines;	/* lines given up on after stop */
	bool broken;		/* the reader went away (EPIPE) */
	int err;		/* first other write error, 0 if none */
	size_t pend_len;
	char pend[4096];	/* whole lines to write together, then a line's start */
};

/*
 * A FILE whose writes go to s->fd in whole lines of at most PIPE_BUF bytes
 * (atomic on a pipe), each after poll() says there is room.  A reader that
 * stops reading blocks rstwatch (the ring buffer then fills and the kernel
 * counts the loss) until *stop is set; from then on it gets STOP_WRITE_MS,
 * after which unwritten lines are dropped and counted, so rstwatch always
 * exits.  Returns NULL on failure.
 */
FILE *rw_sink_open(struct rw_sink *s, int fd, const volatile sig_atomic_t *stop);

#endif /* RSTWATCH_SINK_H */
