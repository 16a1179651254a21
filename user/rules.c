// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The classifier's rules: pure functions of one event (and, where the
 * classifier passes it, one fact it remembers of the connection), each with
 * the kernel's reason for it.  user/classify.c keeps the machinery around
 * them (connections, pending verdicts, linking); tests/unit/test_rules.c
 * tests them directly.
 */
#include <errno.h>

#include "classify.h"
#include "rules.h"

/*
 * tcp_write_err() is the only path that gives up on a connection by timer: it
 * sets sk_err to the soft error an ICMP message left, or ETIMEDOUT.  While
 * connecting, tcp_v[46]_err() also closes the socket on a hard ICMP error,
 * and its earlier ICMPs (those that arrived while connect() held the socket)
 * left the same errno as the soft error: the socket cannot tell the two
 * apart, so in SYN_SENT/SYN_RECV only ETIMEDOUT is a timeout.
 */
bool rw_connecting(enum rw_state from)
{
	return from == RW_ST_SYN_SENT || from == RW_ST_SYN_RECV;
}

bool rw_is_timeout(enum rw_state from, int err, int soft)
{
	if (err == ETIMEDOUT)
		return true;
	if (rw_connecting(from))
		return false;
	return soft && err == soft;
}

/*
 * Which timer gave up.  The keepalive timer sends an RST first (seen before
 * the CLOSE); TCP_USER_TIMEOUT, when set, bounds both the retransmission and
 * the zero-window probe timers; the probe timer (tcp_probe_timer()) runs
 * with nothing in flight and counts icsk_probes_out.
 */
enum rw_subtype rw_timeout_subtype(const struct rw_event *ev, enum rw_state from, bool keepalive_rst)
{
	if (rw_connecting(from))
		return RW_SUB_SYN;
	if (keepalive_rst)
		return RW_SUB_KEEPALIVE;
	if (ev->user_timeout_ms)
		return RW_SUB_USER_TIMEOUT;
	if (ev->probes_out > 0 && ev->inflight == 0)
		return RW_SUB_ZERO_WINDOW;
	return RW_SUB_RETRANSMIT;
}

uint32_t rw_unread_bytes(const struct rw_event *ev)
{
	/* the peer's FIN occupies one sequence number until the reader sees EOF */
	if ((ev->flags & RW_EVF_FIN_RCVD) && ev->unread > 0)
		return ev->unread - 1;
	return ev->unread;
}

/*
 * Whether an active reset came with no reason that says why: before 6.10 the
 * tracepoint has none; 6.10 and 6.11 pass NOT_SPECIFIED from every active
 * path (tcp_send_active_reset() got its specific reasons in 6.12).
 */
bool rw_no_reason(const struct rw_event *ev)
{
	return ev->reason == RW_RSN_NONE || ev->reason == RW_RSN_NOT_SPECIFIED;
}

/*
 * An RST from a full socket's own path (reasons first; where there is none,
 * the snapshot decides).  prev: the state before CLOSE.
 */
enum rw_class rw_local_abort(const struct rw_event *ev, enum rw_state prev, bool closing,
			     bool peer_reset)
{
	switch (ev->reason) {
	case RW_RSN_TCP_ABORT_ON_CLOSE:
		return RW_CL_UNREAD_DATA;
	case RW_RSN_TCP_ABORT_ON_DATA:
		return RW_CL_DATA_AFTER_CLOSE;
	case RW_RSN_TCP_ABORT_ON_LINGER:
		return RW_CL_LINGER2;
	case RW_RSN_TCP_ABORT_ON_MEMORY:
		return RW_CL_MEMORY;
	default:
		break;
	}
	if (ev->state == RW_ST_SYN_SENT)
		return RW_CL_BAD_ACK;
	if (rw_no_reason(ev) && closing && rw_unread_bytes(ev) > 0)
		return RW_CL_UNREAD_DATA;
	if (rw_no_reason(ev) && closing && peer_reset)
		return RW_CL_DATA_AFTER_CLOSE;	/* tcp_reset() ran first: see on_recv_reset() */
	if (rw_no_reason(ev) && closing && prev == RW_ST_FIN_WAIT2 && ev->linger2 < 0)
		return RW_CL_LINGER2;
	/* tcp_rcv_state_process(): an orphan whose FIN the peer ACKed together
	 * with new data (or a FIN past rcv_nxt) is closed by tcp_done(), and
	 * the RST answering that segment comes after its destroy */
	if (rw_no_reason(ev) && closing && (ev->flags & RW_EVF_ORPHAN) && (ev->flags & RW_EVF_SEG) &&
	    (prev == RW_ST_FIN_WAIT1 || prev == RW_ST_FIN_WAIT2))
		return RW_CL_DATA_AFTER_CLOSE;
	/* tcp_close() after sock_orphan(): tcp_check_oom() found too many
	 * orphans (or memory pressure), so CLOSE, then the RST.  No other
	 * active reset comes from an orphan already in CLOSE with no segment
	 * to answer: linger 0 and unread data reset before sock_orphan(), the
	 * linger2 abort is recognised above, and a reset for data after close
	 * answers that segment (seen on 6.1: make test-vm, memory). */
	if (rw_no_reason(ev) && closing && (ev->flags & RW_EVF_ORPHAN) &&
	    !(ev->flags & RW_EVF_SEG) && !(ev->flags & RW_EVF_LINGER))
		return RW_CL_MEMORY;
	/* tcp_disconnect(): close() with linger 0 set SHUTDOWN_MASK first;
	 * connect(AF_UNSPEC) leaves sk_shutdown alone */
	if (closing && (ev->flags & RW_EVF_LINGER) && ev->lingertime == 0 && ev->shutdown == 3)
		return RW_CL_LINGER0;
	/* tcp_abort() (ss -K): the only active reset, besides the keepalive
	 * timer's, sent before the socket left its state; 6.11+ sets
	 * ECONNABORTED only after it, older kernels before */
	if (ev->sk_err == ECONNABORTED || !closing)
		return RW_CL_KILLED;
	if (closing && ev->shutdown == 0 && !(ev->flags & RW_EVF_ORPHAN) &&
	    !rw_connecting(prev) && prev != RW_ST_UNKNOWN)
		return RW_CL_KILLED;	/* connect(AF_UNSPEC) by the owner */
	return RW_CL_UNCLASSIFIED;
}

/*
 * Whether an RST received in ESTABLISHED looks like a middlebox's, from how
 * long the connection had been silent (tcp_get_info()'s idle times).  Quiet:
 * since the peer was last heard from (data or an ACK).  A middlebox that
 * resets an idle flow when its timer runs out does it after a round number
 * of seconds of silence in both directions; one that silently dropped the
 * flow resets the first segment that comes after (this end just sent).  The
 * peer that closed first (CLOSE_WAIT) is the usual cause of the second
 * pattern instead: not there.
 */
enum rw_idle rw_idle_fit(const struct rw_event *ev)
{
	uint32_t quiet = ev->last_recv_ms < ev->last_ack_ms ? ev->last_recv_ms : ev->last_ack_ms;
	uint32_t off = quiet % RW_IDLE_ROUND_MS;

	if (ev->state != RW_ST_ESTABLISHED || quiet < RW_IDLE_MIN_MS)
		return RW_IDLE_NONE;
	if (ev->last_sent_ms + RW_IDLE_SLACK_MS >= quiet &&
	    (off <= RW_IDLE_SLACK_MS || RW_IDLE_ROUND_MS - off <= RW_IDLE_SLACK_MS))
		return RW_IDLE_ROUND;
	if (ev->last_sent_ms <= RW_IDLE_SLACK_MS)
		return RW_IDLE_WOKE;
	return RW_IDLE_NONE;
}
