/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A verdict: what classify.c concludes, what the outputs print. */
#ifndef RSTWATCH_VERDICT_H
#define RSTWATCH_VERDICT_H

#include "event.h"

enum rw_class {
	RW_CL_LINGER0 = 0,
	RW_CL_UNREAD_DATA,
	RW_CL_TIMEOUT,
	RW_CL_KILLED,
	RW_CL_REFUSED,
	RW_CL_HALF_OPEN,
	RW_CL_TIME_WAIT_RST,
	RW_CL_PEER_RESET,
	RW_CL_TIME_WAIT,
	RW_CL_DATA_AFTER_CLOSE,
	RW_CL_LINGER2,
	RW_CL_MEMORY,
	RW_CL_BAD_ACK,
	RW_CL_LISTEN_OVERFLOW,
	RW_CL_TIME_WAIT_OVERFLOW,
	RW_CL_CLOSE_WAIT,
	RW_CL_PORT_PRESSURE,
	RW_CL_MIDDLEBOX_RESET,	/* an RST neither end sent: both ends watched on this host */
	RW_CL_CHALLENGED_RST,	/* an RST the kernel refused (RFC 5961) */
	RW_CL_UNCLASSIFIED,	/* an RST rstwatch cannot explain yet: reported, never dropped */
	RW_CL_COUNT
};

enum rw_subtype {
	RW_SUB_NONE = 0,
	RW_SUB_RETRANSMIT,
	RW_SUB_SYN,
	RW_SUB_KEEPALIVE,
	RW_SUB_USER_TIMEOUT,	/* timeout: TCP_USER_TIMEOUT ran out */
	RW_SUB_ZERO_WINDOW,	/* timeout: zero-window probes went unanswered */
	RW_SUB_EXPIRED,		/* time_wait: the period ran out */
	RW_SUB_REUSED,		/* time_wait: a new connection took the 4-tuple */
	RW_SUB_KILLED,		/* time_wait: an RST or an administrator ended it early */
	RW_SUB_STUCK,		/* close_wait: still there after --close-wait */
	RW_SUB_CLOSED,		/* close_wait: a stuck one finally closed */
	RW_SUB_IN_WINDOW,	/* challenged_rst: in the window, answered with a challenge ACK */
	RW_SUB_OUT_OF_WINDOW,	/* challenged_rst: outside the window, dropped */
	RW_SUB_COUNT
};

enum rw_origin {
	RW_OR_LOCAL = 0,	/* this host aborted */
	RW_OR_REPLY,		/* this host answered a segment with RST */
	RW_OR_PEER,		/* the peer aborted */
	RW_OR_LIFECYCLE,	/* the connection's life, not an abort */
	RW_OR_COUNT
};

/* Why a peer_reset's hint names middleboxes (rw_verdict.idle) */
enum rw_idle {
	RW_IDLE_NONE = 0,
	RW_IDLE_ROUND,		/* reset after a silence of a round number of seconds */
	RW_IDLE_WOKE,		/* reset answering the first segment after a long silence */
};

/* rw_verdict.ev_mask: which evidence applies */
#define RW_VE_SOCKET	(1u << 0)	/* the socket snapshot fields */
#define RW_VE_SEGMENT	(1u << 1)	/* seg_flags / seg_len */
#define RW_VE_ERRNO	(1u << 2)	/* app_errno: what the application saw */
#define RW_VE_TIMEWAIT	(1u << 3)	/* closed_first, tw substate */
#define RW_VE_NO_STATE	(1u << 4)	/* evicted from the state table: less evidence */
#define RW_VE_DURATION	(1u << 5)	/* duration_ns: time in TIME_WAIT / CLOSE_WAIT */
#define RW_VE_BY	(1u << 6)	/* the current task did it (by_pid / by_comm) */
#define RW_VE_PRESSURE	(1u << 7)	/* tw_count, port range */
#define RW_VE_SEQ	(1u << 8)	/* rcv_nxt (and the RST's offset from it) */
#define RW_VE_IDLE	(1u << 9)	/* last_sent_ms, last_recv_ms, last_ack_ms */
#define RW_VE_PEER	(1u << 10)	/* peer: the other end's socket on this host */

/* The other end of a connection, a socket of this host (RW_VE_PEER). */
struct rw_peer {
	enum rw_state state;	/* when the probe found it */
	uint32_t pid;		/* owner, 0 unknown */
	char comm[RW_COMM_MAX];
	uint32_t netns;
	uint32_t snd_nxt;	/* where its own sequence space stood (RW_VE_SEQ) */
};

struct rw_verdict {
	enum rw_class cls;
	enum rw_subtype sub;
	enum rw_origin origin;
	enum rw_state state;	/* RW_ST_UNKNOWN: no socket */
	uint32_t ev_mask;
	int app_errno;		/* errno the application sees, 0 none */
	uint32_t unread_bytes;	/* unread_data: bytes discarded (FIN excluded) */
	bool closed_first_local;	/* time_wait: this side closed first */
	enum rw_state tw_substate;	/* time_wait: TIME_WAIT or still FIN_WAIT2 */
	uint64_t duration_ns;	/* RW_VE_DURATION */
	uint32_t tw_count;	/* port_pressure: TIME_WAIT sockets to the endpoint */
	uint64_t conn_id;	/* linked pair (both ends on this host): shared id, 0 none */
	enum rw_idle idle;	/* peer_reset: the idle times fit a middlebox */
	struct rw_peer peer;	/* RW_VE_PEER */
	const struct rw_verdict *link;	/* the other end's verdict while both are emitted */
	bool link_second;	/* this is the second of a linked pair to be emitted */
	char reason[RW_REASON_NAME_MAX];	/* kernel's reset reason, "" none */
	const struct rw_event *ev;	/* the event that decided it (owner, tuple, snapshot) */
};

const char *rw_class_name(enum rw_class c);
enum rw_class rw_class_from_name(const char *name);	/* RW_CL_COUNT if unknown */
const char *rw_subtype_name(enum rw_subtype s);	/* NULL for RW_SUB_NONE */
const char *rw_origin_name(enum rw_origin o);
/* One sentence: the usual cause and what to do. */
const char *rw_hint(const struct rw_verdict *v);

#endif /* RSTWATCH_VERDICT_H */
