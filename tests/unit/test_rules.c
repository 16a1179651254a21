// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The classifier's rules (user/rules.c) called directly, one event at a time:
 * each case is the snapshot the kernel gives on one path (tests/e2e/
 * kernel-events.md), and what the rule must make of it.  test_classify.c
 * covers the same rules through the classifier, with the events around them.
 */
#include <errno.h>

#include "check.h"
#include "classify.h"
#include "rules.h"

/* An RST this host sent from a full socket in CLOSE, no reason given (a
 * kernel before 6.10), the close path's snapshot. */
static struct rw_event close_rst(void)
{
	struct rw_event ev = { .kind = RW_EV_SEND_RESET, .state = RW_ST_CLOSE,
			       .reason = RW_RSN_NONE, .flags = RW_EVF_SK | RW_EVF_FULL,
			       .shutdown = 3 };

	return ev;
}

static void local_abort_by_reason(void)
{
	static const struct { enum rw_reason reason; enum rw_class cls; } cases[] = {
		{ RW_RSN_TCP_ABORT_ON_CLOSE, RW_CL_UNREAD_DATA },
		{ RW_RSN_TCP_ABORT_ON_DATA, RW_CL_DATA_AFTER_CLOSE },
		{ RW_RSN_TCP_ABORT_ON_LINGER, RW_CL_LINGER2 },
		{ RW_RSN_TCP_ABORT_ON_MEMORY, RW_CL_MEMORY },
	};

	TEST("local_abort: the kernel's reason decides (6.10+)");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_event ev = close_rst();

		ev.reason = cases[i].reason;
		/* a snapshot that says otherwise does not matter */
		ev.flags |= RW_EVF_LINGER;
		CHECK_INT(rw_reason_name(cases[i].reason),
			  rw_local_abort(&ev, RW_ST_ESTABLISHED, true, false), cases[i].cls);
	}
}

static void local_abort_by_snapshot(void)
{
	struct rw_event ev;

	TEST("local_abort: no reason, the snapshot decides (before 6.10)");
	ev = close_rst();
	ev.unread = 100;
	CHECK_INT("bytes unread at close", rw_local_abort(&ev, RW_ST_ESTABLISHED, true, false),
		  RW_CL_UNREAD_DATA);
	ev.flags |= RW_EVF_FIN_RCVD;
	ev.unread = 1;
	CHECK_INT("only the peer's FIN unread is no data",
		  rw_local_abort(&ev, RW_ST_CLOSE_WAIT, true, false) == RW_CL_UNREAD_DATA, 0);

	ev = close_rst();
	CHECK_INT("tcp_reset() closed it first", rw_local_abort(&ev, RW_ST_ESTABLISHED, true, true),
		  RW_CL_DATA_AFTER_CLOSE);

	ev = close_rst();
	ev.linger2 = -1;
	CHECK_INT("FIN_WAIT2 with TCP_LINGER2 < 0", rw_local_abort(&ev, RW_ST_FIN_WAIT2, true, false),
		  RW_CL_LINGER2);

	ev = close_rst();
	ev.flags |= RW_EVF_ORPHAN | RW_EVF_SEG;
	CHECK_INT("an orphan answering data", rw_local_abort(&ev, RW_ST_FIN_WAIT1, true, false),
		  RW_CL_DATA_AFTER_CLOSE);
	ev.flags &= ~RW_EVF_SEG;
	CHECK_INT("an orphan answering nothing: tcp_check_oom()",
		  rw_local_abort(&ev, RW_ST_FIN_WAIT1, true, false), RW_CL_MEMORY);

	ev = close_rst();
	ev.flags |= RW_EVF_LINGER;
	ev.lingertime = 0;
	CHECK_INT("SO_LINGER {1,0}", rw_local_abort(&ev, RW_ST_ESTABLISHED, true, false),
		  RW_CL_LINGER0);
	ev.shutdown = 0;
	CHECK_INT("linger 0 set, but connect(AF_UNSPEC) (no SHUTDOWN_MASK)",
		  rw_local_abort(&ev, RW_ST_ESTABLISHED, true, false), RW_CL_KILLED);

	ev = close_rst();
	ev.sk_err = ECONNABORTED;
	CHECK_INT("ss -K (tcp_abort())", rw_local_abort(&ev, RW_ST_ESTABLISHED, true, false),
		  RW_CL_KILLED);
	ev = close_rst();
	CHECK_INT("sent before the socket left its state",
		  rw_local_abort(&ev, RW_ST_ESTABLISHED, false, false), RW_CL_KILLED);

	ev = close_rst();
	ev.state = RW_ST_SYN_SENT;
	CHECK_INT("an unacceptable ACK while connecting",
		  rw_local_abort(&ev, RW_ST_SYN_SENT, false, false), RW_CL_BAD_ACK);

	ev = close_rst();
	CHECK_INT("nothing that explains it", rw_local_abort(&ev, RW_ST_UNKNOWN, true, false),
		  RW_CL_UNCLASSIFIED);
}

static void timeouts(void)
{
	struct rw_event ev = { .kind = RW_EV_STATE, .state = RW_ST_CLOSE };

	TEST("is_timeout: tcp_write_err()");
	CHECK_INT("ETIMEDOUT", rw_is_timeout(RW_ST_ESTABLISHED, ETIMEDOUT, 0), 1);
	CHECK_INT("the soft error an ICMP left", rw_is_timeout(RW_ST_ESTABLISHED, EHOSTUNREACH,
							       EHOSTUNREACH), 1);
	CHECK_INT("while connecting, an ICMP's error is not a timeout",
		  rw_is_timeout(RW_ST_SYN_SENT, EHOSTUNREACH, EHOSTUNREACH), 0);
	CHECK_INT("ECONNRESET", rw_is_timeout(RW_ST_ESTABLISHED, ECONNRESET, 0), 0);

	TEST("timeout_subtype: which timer gave up");
	CHECK_INT("SYN", rw_timeout_subtype(&ev, RW_ST_SYN_SENT, false), RW_SUB_SYN);
	CHECK_INT("keepalive", rw_timeout_subtype(&ev, RW_ST_ESTABLISHED, true), RW_SUB_KEEPALIVE);
	ev.user_timeout_ms = 5000;
	CHECK_INT("TCP_USER_TIMEOUT", rw_timeout_subtype(&ev, RW_ST_ESTABLISHED, false),
		  RW_SUB_USER_TIMEOUT);
	ev.user_timeout_ms = 0;
	ev.probes_out = 3;
	CHECK_INT("zero-window probes", rw_timeout_subtype(&ev, RW_ST_ESTABLISHED, false),
		  RW_SUB_ZERO_WINDOW);
	ev.inflight = 100;
	CHECK_INT("data in flight: retransmissions", rw_timeout_subtype(&ev, RW_ST_ESTABLISHED,
									 false), RW_SUB_RETRANSMIT);
}

static void idle(void)
{
	struct rw_event ev = { .kind = RW_EV_RECV_RESET, .state = RW_ST_ESTABLISHED };

	TEST("idle_fit: a middlebox's idle timer");
	ev.last_recv_ms = ev.last_ack_ms = ev.last_sent_ms = 300010;
	CHECK_INT("silent both ways for a round 300 s", rw_idle_fit(&ev), RW_IDLE_ROUND);
	ev.last_sent_ms = 3;
	CHECK_INT("the first segment after 300 s of silence", rw_idle_fit(&ev), RW_IDLE_WOKE);
	ev.last_recv_ms = ev.last_ack_ms = ev.last_sent_ms = 1000;
	CHECK_INT("a second of silence is not idle", rw_idle_fit(&ev), RW_IDLE_NONE);
	ev.last_recv_ms = ev.last_ack_ms = 300010;
	ev.state = RW_ST_CLOSE_WAIT;
	CHECK_INT("the peer closed first: not a middlebox's", rw_idle_fit(&ev), RW_IDLE_NONE);
}

int main(void)
{
	local_abort_by_reason();
	local_abort_by_snapshot();
	timeouts();
	idle();
	return check_done("rules");
}
