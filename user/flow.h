/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A connection's identity both ends agree on, on different hosts and
 * through address translation: its two initial sequence numbers.
 */
#ifndef RSTWATCH_FLOW_H
#define RSTWATCH_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#include "event.h"

#define RW_FLOW_STR 17	/* 16 hex digits */

/* This side's initial sequence number and the peer's, from the event's
 * snapshot; false where the event cannot tell (no full socket, unknown
 * side, not synchronized). */
bool rw_flow_isns(const struct rw_event *ev, uint32_t *snd_isn, uint32_t *rcv_isn);
/* The flow id of the event's connection, 0 none: the same at both ends. */
uint64_t rw_flow_id(const struct rw_event *ev);

#endif /* RSTWATCH_FLOW_H */
