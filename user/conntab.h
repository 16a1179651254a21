/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Per-connection state for the classifier: a fixed-capacity hash table keyed
 * by socket identity, least recently used entry evicted when full.  All memory
 * is allocated up front; nothing is allocated per event.
 */
#ifndef RSTWATCH_CONNTAB_H
#define RSTWATCH_CONNTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RW_NO_PENDING UINT32_MAX

/*
 * One entry; the classifier keeps three tables of them, keyed differently:
 * connections (by socket address), time-wait connections (by a hash of the
 * 4-tuple and netns) and remote endpoints (port pressure).  Fields name the
 * table they serve.
 */
struct rw_conn {
	uint64_t sk;		/* the key */
	uint64_t err_time;	/* event time of err below */
	uint64_t since;		/* entered CLOSE_WAIT; time-wait: entered TIME_WAIT, 0 unknown */
	uint64_t endpoint;	/* time-wait: key of its port-pressure endpoint */
	uint64_t last_ns;	/* connection: time of its latest event */
	int32_t err, err_soft;	/* reported before CLOSE (6.1 tcp_write_err(), tcp_abort()) */
	uint32_t count;		/* endpoint: live TIME_WAIT sockets */
	uint8_t closed_from;	/* enum rw_state left for CLOSE, RW_ST_UNKNOWN if not seen */
	uint8_t rst_reason;	/* enum rw_reason of the keepalive RST */
	bool peer_reset;	/* an incoming RST was accepted */
	bool keepalive_rst;	/* the keepalive timer sent its RST */
	bool decided;		/* a verdict about its end has been emitted */
	bool close_wait;	/* in CLOSE_WAIT since `since` */
	bool reported;		/* close_wait: reported stuck; endpoint: pressure reported */
	bool history_lost;	/* first met mid-life after an eviction: maybe evicted before */
	bool await_rst;		/* closed with no time-wait socket: an RST of its own may follow,
				   after its destroy (tcp_v4_do_rcv() sends it once
				   tcp_rcv_state_process() has called tcp_done()) */
	bool destroyed;		/* its destroy was seen: forgotten once nothing more can come */
	uint32_t pending;	/* index of a verdict waiting for a follow-up, or RW_NO_PENDING */
	/* table links (indexes, UINT32_MAX = none) */
	uint32_t hnext, prev, next;
};

struct rw_conntab;

struct rw_conntab *rw_conntab_new(size_t capacity);
void rw_conntab_free(struct rw_conntab *t);
struct rw_conn *rw_conntab_get(struct rw_conntab *t, uint64_t sk);	/* marks it recently used */
struct rw_conn *rw_conntab_peek(struct rw_conntab *t, uint64_t sk);	/* leaves the LRU order */
/* Returns NULL when the table is full: the caller settles rw_conntab_oldest() and deletes it. */
struct rw_conn *rw_conntab_add(struct rw_conntab *t, uint64_t sk);
struct rw_conn *rw_conntab_oldest(struct rw_conntab *t);
void rw_conntab_del(struct rw_conntab *t, struct rw_conn *c);
size_t rw_conntab_count(const struct rw_conntab *t);

#endif /* RSTWATCH_CONNTAB_H */
