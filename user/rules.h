// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The classifier's rules (user/rules.c): pure functions of an event. */
#ifndef RW_RULES_H
#define RW_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "verdict.h"

/* from is SYN_SENT or SYN_RECV: the handshake had not completed */
bool rw_connecting(enum rw_state from);
/* a move from `from` to CLOSE with sk_err err (sk_err_soft soft) is a timer
 * giving up (tcp_write_err()) */
bool rw_is_timeout(enum rw_state from, int err, int soft);
/* which timer gave up; keepalive_rst: the keepalive timer's RST came first */
enum rw_subtype rw_timeout_subtype(const struct rw_event *ev, enum rw_state from,
				   bool keepalive_rst);
/* bytes the application had not read (the peer's FIN not counted) */
uint32_t rw_unread_bytes(const struct rw_event *ev);
/* an RST this host sent with no reason that says why */
bool rw_no_reason(const struct rw_event *ev);
/* the class of an RST from a full socket's own path: prev, the state before
 * CLOSE; closing, sent from the close path; peer_reset, tcp_reset() had
 * closed the socket first (an RST arrived) */
enum rw_class rw_local_abort(const struct rw_event *ev, enum rw_state prev, bool closing,
			     bool peer_reset);
/* whether a reset received fits a middlebox's idle timer */
enum rw_idle rw_idle_fit(const struct rw_event *ev);

#endif
