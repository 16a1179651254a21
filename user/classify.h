/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The classifier: a pure function of the event stream.  It reads no clock and
 * does no I/O; time comes from the events (and from rw_classify_tick(), whose
 * argument the caller chooses), so a replayed stream gives the same verdicts.
 */
#ifndef RSTWATCH_CLASSIFY_H
#define RSTWATCH_CLASSIFY_H

#include <stddef.h>

#include "verdict.h"

struct rw_classifier;

typedef void (*rw_emit_fn)(const struct rw_verdict *v, void *arg);

struct rw_classify_stats {
	uint64_t events;
	uint64_t verdicts;
	uint64_t evictions;	/* connections dropped from the full state table */
	uint64_t cw_dropped;	/* CLOSE_WAIT sockets no longer watched: too many at once */
	/* gauges, now: */
	uint64_t time_wait;	/* connections in TIME_WAIT (entered, end not yet seen) */
	uint64_t close_wait_stuck;	/* reported close_wait/stuck and still in CLOSE_WAIT */
};

/* capacity: connections tracked at once; NULL on allocation failure. */
struct rw_classifier *rw_classifier_new(size_t capacity, rw_emit_fn emit, void *arg);
void rw_classifier_free(struct rw_classifier *c);
/* --close-wait and --port-pressure: report a socket in CLOSE_WAIT longer than
 * close_wait_ns; an endpoint whose TIME_WAIT sockets reach pressure_pct percent
 * of the ephemeral port range. */
void rw_classifier_set(struct rw_classifier *c, uint64_t close_wait_ns, unsigned int pressure_pct);
#define RW_CLOSE_WAIT_DEFAULT_NS (10ull * 1000 * 1000 * 1000)
#define RW_PRESSURE_DEFAULT_PCT 50

void rw_classify(struct rw_classifier *c, const struct rw_event *ev);
/* Time has reached now_ns: settle verdicts that waited for a follow-up event. */
void rw_classify_tick(struct rw_classifier *c, uint64_t now_ns);
/* Whether a verdict is waiting for a follow-up event (a tick could emit it). */
bool rw_classify_pending(const struct rw_classifier *c);
/* End of stream: settle everything still pending. */
void rw_classify_flush(struct rw_classifier *c);
void rw_classify_stats(const struct rw_classifier *c, struct rw_classify_stats *out);

/* How long a verdict may wait for the event that would change it. */
#define RW_PENDING_NS (100ull * 1000 * 1000)
/* How long an error reported before CLOSE still explains that CLOSE: the two
 * come from one kernel call chain, microseconds apart. */
#define RW_ERR_FRESH_NS (10ull * 1000 * 1000)
/* How long a connection whose verdict is out stays known with no event:
 * every event of one abort comes within microseconds of the others. */
#define RW_CONN_AGE_NS (1000ull * 1000 * 1000)
/* peer_reset's middlebox hints (idle_fit()): a silence of at least
 * RW_IDLE_MIN_MS, a round number when within RW_IDLE_SLACK_MS of a multiple
 * of RW_IDLE_ROUND_MS (idle timeouts are set in such numbers: 60, 300, 350 s);
 * "just sent" within RW_IDLE_SLACK_MS (a LAN's round trip and a jiffy or two) */
#define RW_IDLE_MIN_MS 5000u
#define RW_IDLE_ROUND_MS 5000u
#define RW_IDLE_SLACK_MS 250u

#endif /* RSTWATCH_CLASSIFY_H */
