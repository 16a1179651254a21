// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * rstwatch's own names for TCP states and reset reasons.  The kernel's numbers
 * for these are mapped onto them by name at start-up (decode.c), never by
 * number, because the numbers move between kernels.
 */
#include <string.h>

#include "event.h"

static const char *const state_names[RW_ST_COUNT] = {
	[RW_ST_UNKNOWN] = "UNKNOWN",
	[RW_ST_ESTABLISHED] = "ESTABLISHED",
	[RW_ST_SYN_SENT] = "SYN_SENT",
	[RW_ST_SYN_RECV] = "SYN_RECV",
	[RW_ST_FIN_WAIT1] = "FIN_WAIT1",
	[RW_ST_FIN_WAIT2] = "FIN_WAIT2",
	[RW_ST_TIME_WAIT] = "TIME_WAIT",
	[RW_ST_CLOSE] = "CLOSE",
	[RW_ST_CLOSE_WAIT] = "CLOSE_WAIT",
	[RW_ST_LAST_ACK] = "LAST_ACK",
	[RW_ST_LISTEN] = "LISTEN",
	[RW_ST_CLOSING] = "CLOSING",
	[RW_ST_NEW_SYN_RECV] = "NEW_SYN_RECV",
	[RW_ST_BOUND_INACTIVE] = "BOUND_INACTIVE",
};

static const char *const reason_names[RW_RSN_COUNT] = {
	[RW_RSN_NONE] = "",
	[RW_RSN_OTHER] = "",
	[RW_RSN_NOT_SPECIFIED] = "NOT_SPECIFIED",
	[RW_RSN_NO_SOCKET] = "NO_SOCKET",
	[RW_RSN_TCP_INVALID_ACK_SEQUENCE] = "TCP_INVALID_ACK_SEQUENCE",
	[RW_RSN_TCP_RFC7323_PAWS] = "TCP_RFC7323_PAWS",
	[RW_RSN_TCP_TOO_OLD_ACK] = "TCP_TOO_OLD_ACK",
	[RW_RSN_TCP_ACK_UNSENT_DATA] = "TCP_ACK_UNSENT_DATA",
	[RW_RSN_TCP_FLAGS] = "TCP_FLAGS",
	[RW_RSN_TCP_OLD_ACK] = "TCP_OLD_ACK",
	[RW_RSN_TCP_ABORT_ON_DATA] = "TCP_ABORT_ON_DATA",
	[RW_RSN_TCP_TIMEWAIT_SOCKET] = "TCP_TIMEWAIT_SOCKET",
	[RW_RSN_INVALID_SYN] = "INVALID_SYN",
	[RW_RSN_TCP_ABORT_ON_CLOSE] = "TCP_ABORT_ON_CLOSE",
	[RW_RSN_TCP_ABORT_ON_LINGER] = "TCP_ABORT_ON_LINGER",
	[RW_RSN_TCP_ABORT_ON_MEMORY] = "TCP_ABORT_ON_MEMORY",
	[RW_RSN_TCP_STATE] = "TCP_STATE",
	[RW_RSN_TCP_KEEPALIVE_TIMEOUT] = "TCP_KEEPALIVE_TIMEOUT",
	[RW_RSN_TCP_DISCONNECT_WITH_DATA] = "TCP_DISCONNECT_WITH_DATA",
};

const char *rw_state_name(enum rw_state s)
{
	return (unsigned)s < RW_ST_COUNT ? state_names[s] : state_names[RW_ST_UNKNOWN];
}

enum rw_state rw_state_from_name(const char *name)
{
	for (int i = 1; i < RW_ST_COUNT; i++)
		if (strcmp(state_names[i], name) == 0)
			return i;
	return RW_ST_UNKNOWN;
}

const char *rw_reason_name(enum rw_reason r)
{
	return (unsigned)r < RW_RSN_COUNT ? reason_names[r] : "";
}

enum rw_reason rw_reason_from_name(const char *name)
{
	if (!name[0])
		return RW_RSN_NONE;
	for (int i = RW_RSN_NOT_SPECIFIED; i < RW_RSN_COUNT; i++)
		if (strcmp(reason_names[i], name) == 0)
			return i;
	return RW_RSN_OTHER;
}
