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

struct rw_conn {
	uint64_t sk;
	uint64_t err_time;	/* event time of err below */
	int32_t err, err_soft;	/* reported before CLOSE (6.1 tcp_write_err(), tcp_abort()) */
	uint8_t closed_from;	/* enum rw_state left for CLOSE, RW_ST_UNKNOWN if not seen */
	uint8_t rst_reason;	/* enum rw_reason of the keepalive RST */
	bool peer_reset;	/* an incoming RST was accepted */
	bool keepalive_rst;	/* the keepalive timer sent its RST */
	bool decided;		/* a verdict about its end has been emitted */
	uint32_t pending;	/* index of a verdict waiting for a follow-up, or RW_NO_PENDING */
	/* table links (indexes, UINT32_MAX = none) */
	uint32_t hnext, prev, next;
};

struct rw_conntab;

struct rw_conntab *rw_conntab_new(size_t capacity);
void rw_conntab_free(struct rw_conntab *t);
struct rw_conn *rw_conntab_get(struct rw_conntab *t, uint64_t sk);	/* marks it recently used */
/* Returns NULL when the table is full: the caller settles rw_conntab_oldest() and deletes it. */
struct rw_conn *rw_conntab_add(struct rw_conntab *t, uint64_t sk);
struct rw_conn *rw_conntab_oldest(struct rw_conntab *t);
void rw_conntab_del(struct rw_conntab *t, struct rw_conn *c);
size_t rw_conntab_count(const struct rw_conntab *t);

#endif /* RSTWATCH_CONNTAB_H */
