// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Verdict names and hints: the user-facing contract of each class. */
#include <stddef.h>
#include <string.h>

#include "verdict.h"

static const char *const class_names[RW_CL_COUNT] = {
	[RW_CL_LINGER0] = "linger0",
	[RW_CL_UNREAD_DATA] = "unread_data",
	[RW_CL_TIMEOUT] = "timeout",
	[RW_CL_KILLED] = "killed",
	[RW_CL_REFUSED] = "refused",
	[RW_CL_HALF_OPEN] = "half_open",
	[RW_CL_TIME_WAIT_RST] = "time_wait_rst",
	[RW_CL_PEER_RESET] = "peer_reset",
	[RW_CL_TIME_WAIT] = "time_wait",
	[RW_CL_DATA_AFTER_CLOSE] = "data_after_close",
	[RW_CL_LINGER2] = "linger2",
	[RW_CL_MEMORY] = "memory",
	[RW_CL_BAD_ACK] = "bad_ack",
	[RW_CL_LISTEN_OVERFLOW] = "listen_overflow",
	[RW_CL_TIME_WAIT_OVERFLOW] = "time_wait_overflow",
	[RW_CL_CLOSE_WAIT] = "close_wait",
	[RW_CL_PORT_PRESSURE] = "port_pressure",
	[RW_CL_MIDDLEBOX_RESET] = "middlebox_reset",
	[RW_CL_CHALLENGED_RST] = "challenged_rst",
	[RW_CL_UNCLASSIFIED] = "unclassified",
};

static const char *const subtype_names[RW_SUB_COUNT] = {
	[RW_SUB_NONE] = NULL,
	[RW_SUB_RETRANSMIT] = "retransmit",
	[RW_SUB_SYN] = "syn",
	[RW_SUB_KEEPALIVE] = "keepalive",
	[RW_SUB_USER_TIMEOUT] = "user_timeout",
	[RW_SUB_ZERO_WINDOW] = "zero_window",
	[RW_SUB_EXPIRED] = "expired",
	[RW_SUB_REUSED] = "reused",
	[RW_SUB_KILLED] = "killed",
	[RW_SUB_STUCK] = "stuck",
	[RW_SUB_CLOSED] = "closed",
	[RW_SUB_IN_WINDOW] = "in_window",
	[RW_SUB_OUT_OF_WINDOW] = "out_of_window",
};

static const char *const origin_names[] = {
	[RW_OR_LOCAL] = "local",
	[RW_OR_REPLY] = "reply",
	[RW_OR_PEER] = "peer",
	[RW_OR_LIFECYCLE] = "lifecycle",
};

const char *rw_class_name(enum rw_class c)
{
	return (unsigned)c < RW_CL_COUNT ? class_names[c] : "unclassified";
}

enum rw_class rw_class_from_name(const char *name)
{
	for (int i = 0; i < RW_CL_COUNT; i++)
		if (strcmp(class_names[i], name) == 0)
			return i;
	return RW_CL_COUNT;
}

const char *rw_subtype_name(enum rw_subtype s)
{
	return (unsigned)s < RW_SUB_COUNT ? subtype_names[s] : NULL;
}

const char *rw_origin_name(enum rw_origin o)
{
	return (unsigned)o < RW_OR_COUNT ? origin_names[o] : "local";
}

const char *rw_hint(const struct rw_verdict *v)
{
	switch (v->cls) {
	case RW_CL_LINGER0:
		return "the application closed with SO_LINGER {1,0}, which resets instead of "
		       "closing; drop the linger-0 option unless the abort is intended";
	case RW_CL_UNREAD_DATA:
		return "the application closed with unread bytes in its receive queue, so the "
		       "kernel reset the connection; read the request fully, or shutdown(SHUT_WR) "
		       "and drain, before close()";
	case RW_CL_DATA_AFTER_CLOSE:
		return "the peer kept sending after this side had closed, so the kernel reset it; "
		       "agree on who closes first (the peer should stop writing once it reads EOF), "
		       "or shutdown(SHUT_WR) and drain before close()";
	case RW_CL_LINGER2:
		return "TCP_LINGER2 < 0 makes close() in FIN_WAIT2 reset instead of waiting for "
		       "the peer's FIN; drop that option unless the abort is intended";
	case RW_CL_MEMORY:
		return "the kernel killed an orphaned socket: too many orphans or TCP memory "
		       "pressure; raise net.ipv4.tcp_max_orphans / tcp_mem, or close connections "
		       "sooner";
	case RW_CL_TIMEOUT:
		switch (v->sub) {
		case RW_SUB_SYN:
			return "no answer to SYN: the peer is down, unreachable or a firewall drops "
			       "the SYN; check the route, the peer's listener and filtering";
		case RW_SUB_KEEPALIVE:
			return "keepalive probes went unanswered: the peer or a middlebox (NAT, "
			       "conntrack, load balancer) forgot the connection; check the path "
			       "and idle timeouts";
		case RW_SUB_USER_TIMEOUT:
			return "data stayed unacknowledged longer than the application's "
			       "TCP_USER_TIMEOUT; the path or the peer stalled, or the timeout is "
			       "too short for it";
		case RW_SUB_ZERO_WINDOW:
			return "the peer advertised a zero window and then stopped answering window "
			       "probes; the peer application stopped reading, or the peer went away";
		default:
			return "data stayed unacknowledged through every retransmission: the path "
			       "or the peer went away; check connectivity, MTU and tcp_retries2";
		}
	case RW_CL_KILLED:
		return "the socket was destroyed from outside the application (ss -K, "
		       "SOCK_DESTROY, connect(AF_UNSPEC)); find who did it in the evidence";
	case RW_CL_REFUSED:
		return "a SYN arrived for a port with no listener; start the service or fix "
		       "the client's port";
	case RW_CL_HALF_OPEN:
		return "a segment arrived for a connection this host does not have (restart, "
		       "NAT/conntrack expiry, silent local abort); the peer must reconnect, "
		       "check idle timeouts on the path";
	case RW_CL_TIME_WAIT_RST:
		return "a segment hit a TIME_WAIT socket and was answered with RST; usually a "
		       "delayed segment or a peer reusing the 4-tuple too early";
	case RW_CL_BAD_ACK:
		return "a connecting socket got an ACK for something it never sent, usually "
		       "because the peer still holds an older connection on the same 4-tuple; "
		       "the retried SYN normally recovers, avoid reusing ports too fast";
	case RW_CL_LISTEN_OVERFLOW:
		return "the listener's accept queue was full and tcp_abort_on_overflow=1 reset "
		       "the new connection; accept faster or raise the backlog (listen(), "
		       "net.core.somaxconn)";
	case RW_CL_PEER_RESET:
		switch (v->idle) {
		case RW_IDLE_ROUND:
			return "the connection was reset after a silence of a round number of "
			       "seconds (evidence.last_ack_ms): typical of a firewall, NAT or load "
			       "balancer idle timeout; enable keepalives shorter than it, or raise it";
		case RW_IDLE_WOKE:
			return "the reset answered the first segment sent after a long silence "
			       "(evidence.last_ack_ms): a NAT, conntrack or load balancer that "
			       "forgot the idle connection, or a peer that restarted; keepalives "
			       "shorter than the path's idle timeout prevent it";
		default:
			return "the peer reset the connection; look at the peer's own verdict (or "
			       "its logs) for why it aborted";
		}
	case RW_CL_MIDDLEBOX_RESET:
		return "neither end sent this RST: the other end's socket on this host sent none "
		       "and is still open; a firewall (REJECT with tcp-reset), a NAT or load "
		       "balancer that dropped the flow, or an attacker injected it; check the path";
	case RW_CL_CHALLENGED_RST:
		return v->sub == RW_SUB_IN_WINDOW ?
		       "an RST in the window but not at the expected sequence number was refused "
		       "and answered with a challenge ACK (RFC 5961); one is a stale or "
		       "misbehaving peer, a burst is a blind reset attack or a broken middlebox" :
		       "an RST outside the receive window was dropped; one is a late RST from an "
		       "older connection, a burst is a blind reset attack or a broken middlebox";
	case RW_CL_TIME_WAIT:
		switch (v->sub) {
		case RW_SUB_REUSED:
			return "a new connection took over this TIME_WAIT 4-tuple (tcp_tw_reuse or a "
			       "new SYN); normal under heavy connection churn";
		case RW_SUB_KILLED:
			return "TIME_WAIT ended early: an RST from the peer (TIME_WAIT "
			       "assassination; net.ipv4.tcp_rfc1337=1 ignores it) or ss -K";
		case RW_SUB_EXPIRED:
			return "the TIME_WAIT period ran out normally; nothing to do";
		default:
			return "this side closed first and holds TIME_WAIT for 60 s; normal, but many "
			       "of them to one peer can exhaust ephemeral ports (reuse connections)";
		}
	case RW_CL_TIME_WAIT_OVERFLOW:
		return "net.ipv4.tcp_max_tw_buckets was reached, so the connection skipped "
		       "TIME_WAIT; raise the limit or reuse connections (late segments can now "
		       "hit a new connection)";
	case RW_CL_CLOSE_WAIT:
		return "the peer closed but the application has not called close() on its "
		       "socket; find the code path that forgets to close (a leak)";
	case RW_CL_PORT_PRESSURE:
		return "TIME_WAIT sockets to one endpoint use much of the ephemeral port range: "
		       "connect() may soon fail with EADDRNOTAVAIL; reuse connections (keep-alive, "
		       "pooling), widen ip_local_port_range or enable tcp_tw_reuse";
	default:
		return "an RST rstwatch cannot classify yet; the kernel's reason and the state "
		       "are the best evidence";
	}
}
