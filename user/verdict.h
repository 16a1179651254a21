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
	RW_CL_UNCLASSIFIED,	/* an RST rstwatch cannot explain yet: reported, never dropped */
	RW_CL_COUNT
};

enum rw_subtype {
	RW_SUB_NONE = 0,
	RW_SUB_RETRANSMIT,
	RW_SUB_SYN,
	RW_SUB_KEEPALIVE,
	RW_SUB_COUNT
};

enum rw_origin {
	RW_OR_LOCAL = 0,	/* this host aborted */
	RW_OR_REPLY,		/* this host answered a segment with RST */
	RW_OR_PEER,		/* the peer aborted */
	RW_OR_LIFECYCLE,
};

/* rw_verdict.ev_mask: which evidence applies */
#define RW_VE_SOCKET	(1u << 0)	/* the socket snapshot fields */
#define RW_VE_SEGMENT	(1u << 1)	/* seg_flags / seg_len */
#define RW_VE_ERRNO	(1u << 2)	/* app_errno: what the application saw */
#define RW_VE_TIMEWAIT	(1u << 3)	/* closed_first, tw substate */
#define RW_VE_NO_STATE	(1u << 4)	/* evicted from the state table: less evidence */

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
