// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Classifier on hand-checked event sequences.  Each sequence is what the
 * kernel's tracepoints really emit for that abort (taken from `rstwatch
 * --events` on 6.18, and from the 6.1 code paths where they differ).
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "classify.h"
#include "flow.h"

#define MAXV 16

struct got {
	int n;
	struct rw_verdict v[MAXV];
	struct rw_event ev[MAXV];
};

static void collect(const struct rw_verdict *v, void *arg)
{
	struct got *g = arg;

	if (g->n < MAXV) {
		g->v[g->n] = *v;
		g->ev[g->n] = *v->ev;	/* the event may live in the classifier */
		g->v[g->n].ev = &g->ev[g->n];
	}
	g->n++;
}

static uint64_t now = 1000000000ull;

static struct rw_event ev_sk(enum rw_ev_kind kind, uint64_t sk, enum rw_state state)
{
	struct rw_event e = { 0 };

	now += 1000;	/* 1 us apart, as a close path runs */
	e.time_ns = now;
	e.kind = kind;
	e.sk = sk;
	e.state = state;
	e.family = 4;
	e.flags = RW_EVF_SK | RW_EVF_FULL | RW_EVF_OWNER;
	e.lport = 40000;
	e.rport = 8080;
	e.pid = 42;
	memcpy(e.comm, "client", 7);
	return e;
}

static struct rw_event ev_state(uint64_t sk, enum rw_state from, enum rw_state to)
{
	struct rw_event e = ev_sk(RW_EV_STATE, sk, to);

	e.oldstate = from;
	e.newstate = to;
	return e;
}

static struct rw_event ev_rst(uint64_t sk, enum rw_state state, enum rw_reason reason)
{
	struct rw_event e = ev_sk(RW_EV_SEND_RESET, sk, state);

	e.reason = reason;
	if (reason != RW_RSN_NONE)
		snprintf(e.reason_name, sizeof(e.reason_name), "%s", rw_reason_name(reason));
	return e;
}

static struct rw_classifier *fresh(struct got *g, size_t cap)
{
	memset(g, 0, sizeof(*g));
	return rw_classifier_new(cap, collect, g);
}

static void expect_one(struct got *g, enum rw_class cls, enum rw_subtype sub, enum rw_state st)
{
	CHECK_INT("verdict count", g->n, 1);
	if (g->n < 1)
		return;
	CHECK_STR("class", rw_class_name(g->v[0].cls), rw_class_name(cls));
	CHECK_STR("subtype", rw_subtype_name(g->v[0].sub), rw_subtype_name(sub));
	CHECK_STR("state", rw_state_name(g->v[0].state), rw_state_name(st));
}

static void linger0(enum rw_reason reason)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	/* tcp_disconnect(): CLOSE first, then the RST */
	e = ev_state(1, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	e.flags |= RW_EVF_LINGER;
	e.shutdown = 3;	/* close() set SHUTDOWN_MASK */
	e.shutdown = 3;
	rw_classify(c, &e);
	e = ev_rst(1, RW_ST_CLOSE, reason);
	e.flags |= RW_EVF_LINGER;
	e.shutdown = 3;	/* close() set SHUTDOWN_MASK */
	e.shutdown = 3;
	rw_classify(c, &e);
	rw_classify(c, &(struct rw_event){ .kind = RW_EV_DESTROY, .sk = 1, .time_ns = now });
	rw_classify_flush(c);
	expect_one(&g, RW_CL_LINGER0, RW_SUB_NONE, RW_ST_ESTABLISHED);
	if (g.n) {
		CHECK_INT("linger0 origin", g.v[0].origin, RW_OR_LOCAL);
		CHECK_STR("reason", g.v[0].reason, rw_reason_name(reason));
	}
	rw_classifier_free(c);
}

static void unread(enum rw_reason reason, bool fin, uint32_t raw, uint32_t want)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;
	enum rw_state from = fin ? RW_ST_CLOSE_WAIT : RW_ST_ESTABLISHED;

	e = ev_state(7, from, RW_ST_CLOSE);
	e.unread = raw;
	if (fin)
		e.flags |= RW_EVF_FIN_RCVD;
	rw_classify(c, &e);
	e = ev_rst(7, RW_ST_CLOSE, reason);
	e.unread = raw;
	if (fin)
		e.flags |= RW_EVF_FIN_RCVD;
	/* linger 0 too: unread data wins, as in __tcp_close() */
	e.flags |= RW_EVF_LINGER;
	e.shutdown = 3;	/* close() set SHUTDOWN_MASK */
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_UNREAD_DATA, RW_SUB_NONE, from);
	if (g.n)
		CHECK_INT("unread bytes (FIN not counted)", g.v[0].unread_bytes, want);
	rw_classifier_free(c);
}

/* tcp_close() of a socket that tcp_check_oom() finds one orphan too many:
 * FIN_WAIT1 -> CLOSE, then the RST; 6.10+ says TCP_ABORT_ON_MEMORY, 6.1
 * nothing, and the orphan's RST answering no segment says it instead. */
static void memory(enum rw_reason reason)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	e = ev_state(9, RW_ST_FIN_WAIT1, RW_ST_CLOSE);
	e.flags |= RW_EVF_ORPHAN;
	e.shutdown = 3;
	rw_classify(c, &e);
	e = ev_rst(9, RW_ST_CLOSE, reason);
	e.flags |= RW_EVF_ORPHAN;
	e.shutdown = 3;
	rw_classify(c, &e);
	rw_classify(c, &(struct rw_event){ .kind = RW_EV_DESTROY, .sk = 9, .time_ns = now });
	rw_classify_flush(c);
	expect_one(&g, RW_CL_MEMORY, RW_SUB_NONE, RW_ST_FIN_WAIT1);
	rw_classifier_free(c);
}

static void timeout_retransmit(bool report_first)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	if (report_first) {
		/* 6.1 tcp_write_err(): sk_error_report() before tcp_done() */
		e = ev_sk(RW_EV_ERROR, 3, RW_ST_ESTABLISHED);
		e.sk_err = ETIMEDOUT;
		rw_classify(c, &e);
	}
	e = ev_state(3, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	e.sk_err = ETIMEDOUT;
	e.retransmits = 4;
	rw_classify(c, &e);
	if (!report_first) {
		/* 6.10+ tcp_done_with_error(): report after CLOSE */
		e = ev_sk(RW_EV_ERROR, 3, RW_ST_CLOSE);
		e.sk_err = ETIMEDOUT;
		rw_classify(c, &e);
	}
	rw_classify_flush(c);
	expect_one(&g, RW_CL_TIMEOUT, RW_SUB_RETRANSMIT, RW_ST_ESTABLISHED);
	if (g.n)
		CHECK_INT("errno the app sees", g.v[0].app_errno, ETIMEDOUT);
	rw_classifier_free(c);
}

/* The CLOSE snapshot lost sk_err to a reader on another CPU: the report decides. */
static void error_only_in_report(bool report_first, uint64_t gap_ns, int want_n)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e, r;

	r = ev_sk(RW_EV_ERROR, 8, report_first ? RW_ST_ESTABLISHED : RW_ST_CLOSE);
	r.sk_err = ETIMEDOUT;
	e = ev_state(8, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	if (report_first) {
		rw_classify(c, &r);
		e.time_ns = r.time_ns + gap_ns;
		rw_classify(c, &e);
	} else {
		rw_classify(c, &e);
		rw_classify(c, &r);
	}
	rw_classify_flush(c);
	CHECK_INT("verdicts", g.n, want_n);
	if (want_n && g.n)
		expect_one(&g, RW_CL_TIMEOUT, RW_SUB_RETRANSMIT, RW_ST_ESTABLISHED);
	rw_classifier_free(c);
}

static void timeout_syn(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e = ev_state(4, RW_ST_SYN_SENT, RW_ST_CLOSE);

	e.sk_err = ETIMEDOUT;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_TIMEOUT, RW_SUB_SYN, RW_ST_SYN_SENT);
	rw_classifier_free(c);
}

static void close_with_error(int err, int soft, enum rw_class want, enum rw_subtype sub)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e = ev_state(6, RW_ST_SYN_SENT, RW_ST_CLOSE);

	e.sk_err = err;
	e.sk_err_soft = soft;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, want, sub, RW_ST_SYN_SENT);
	if (g.n)
		CHECK_INT("errno", g.v[0].app_errno, err);
	rw_classifier_free(c);
}

static void timeout_keepalive(enum rw_reason reason)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	/* tcp_keepalive_timer(): RST while still ESTABLISHED, then tcp_write_err() */
	e = ev_rst(5, RW_ST_ESTABLISHED, reason);
	e.probes_out = 2;
	e.flags |= RW_EVF_KEEPALIVE;
	rw_classify(c, &e);
	CHECK_INT("no verdict before the socket closes", g.n, 0);
	e = ev_state(5, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	e.sk_err = ETIMEDOUT;
	e.probes_out = 2;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_TIMEOUT, RW_SUB_KEEPALIVE, RW_ST_ESTABLISHED);
	if (g.n)
		CHECK_STR("reason carried over from the RST", g.v[0].reason,
			  reason == RW_RSN_NONE ? "" : rw_reason_name(reason));
	rw_classifier_free(c);
}

static void peer_reset(enum rw_state st, int want_errno, int close_err)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	rw_classify(c, &(struct rw_event){ 0 });	/* a kind-0 event is ignored */
	e = ev_sk(RW_EV_RECV_RESET, 9, st);
	rw_classify(c, &e);
	e = ev_state(9, st, RW_ST_CLOSE);
	e.sk_err = close_err;
	rw_classify(c, &e);
	e = ev_sk(RW_EV_ERROR, 9, RW_ST_CLOSE);
	e.sk_err = close_err;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_PEER_RESET, RW_SUB_NONE, st);
	if (g.n) {
		CHECK_INT("errno", g.v[0].app_errno, want_errno);
		CHECK_INT("origin", g.v[0].origin, RW_OR_PEER);
	}
	rw_classifier_free(c);
}

static void no_socket(uint8_t seg_flags, enum rw_class want)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e = ev_rst(0, RW_ST_CLOSE, RW_RSN_NO_SOCKET);

	e.flags = RW_EVF_SEG;
	e.seg_flags = seg_flags;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, want, RW_SUB_NONE, RW_ST_UNKNOWN);
	if (g.n)
		CHECK_INT("origin", g.v[0].origin, RW_OR_REPLY);
	rw_classifier_free(c);
}

static void time_wait(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	/* tcp_time_wait() -> tcp_done(): FIN_WAIT2 -> CLOSE, FIN received, no error */
	e = ev_state(11, RW_ST_FIN_WAIT2, RW_ST_CLOSE);
	e.flags |= RW_EVF_FIN_RCVD;
	rw_classify(c, &e);
	CHECK_INT("time_wait waits for a possible RST", g.n, 0);
	rw_classify_tick(c, e.time_ns + RW_PENDING_NS - 1);
	CHECK_INT("still waiting just before the deadline", g.n, 0);
	rw_classify_tick(c, e.time_ns + RW_PENDING_NS);
	expect_one(&g, RW_CL_TIME_WAIT, RW_SUB_NONE, RW_ST_TIME_WAIT);
	if (g.n) {
		CHECK_INT("origin", g.v[0].origin, RW_OR_LIFECYCLE);
		CHECK_INT("closed first", g.v[0].closed_first_local, 1);
	}
	rw_classifier_free(c);

	/* the destroy that follows for an orphan settles it at once */
	c = fresh(&g, 64);
	e = ev_state(12, RW_ST_FIN_WAIT2, RW_ST_CLOSE);
	rw_classify(c, &e);
	rw_classify(c, &(struct rw_event){ .kind = RW_EV_DESTROY, .sk = 12, .time_ns = now });
	expect_one(&g, RW_CL_TIME_WAIT, RW_SUB_NONE, RW_ST_FIN_WAIT2);
	rw_classifier_free(c);

	/* FIN_WAIT2 -> CLOSE then an RST: a linger-0 close after shutdown(), not TIME_WAIT */
	c = fresh(&g, 64);
	e = ev_state(13, RW_ST_FIN_WAIT2, RW_ST_CLOSE);
	e.flags |= RW_EVF_LINGER;
	e.shutdown = 3;	/* close() set SHUTDOWN_MASK */
	rw_classify(c, &e);
	e = ev_rst(13, RW_ST_CLOSE, RW_RSN_TCP_STATE);
	e.flags |= RW_EVF_LINGER;
	e.shutdown = 3;	/* close() set SHUTDOWN_MASK */
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_LINGER0, RW_SUB_NONE, RW_ST_FIN_WAIT2);
	rw_classifier_free(c);
}

static void killed(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	/* tcp_abort(): sk_err ECONNABORTED, report, RST while ESTABLISHED, tcp_done() */
	e = ev_rst(20, RW_ST_ESTABLISHED, RW_RSN_TCP_STATE);
	e.sk_err = ECONNABORTED;
	rw_classify(c, &e);
	e = ev_state(20, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	e.sk_err = ECONNABORTED;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_KILLED, RW_SUB_NONE, RW_ST_ESTABLISHED);
	rw_classifier_free(c);
}

static void reused_address(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	/* a linger-0 close whose destroy we never saw ... */
	e = ev_state(30, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	e.flags |= RW_EVF_LINGER;
	e.shutdown = 3;	/* close() set SHUTDOWN_MASK */
	rw_classify(c, &e);
	e = ev_rst(30, RW_ST_CLOSE, RW_RSN_TCP_STATE);
	e.flags |= RW_EVF_LINGER;
	e.shutdown = 3;	/* close() set SHUTDOWN_MASK */
	rw_classify(c, &e);
	/* ... then a new socket at the same address is reset by its peer */
	e = ev_sk(RW_EV_RECV_RESET, 30, RW_ST_ESTABLISHED);
	rw_classify(c, &e);
	rw_classify_flush(c);
	CHECK_INT("both verdicts", g.n, 2);
	if (g.n == 2)
		CHECK_STR("second", rw_class_name(g.v[1].cls), "peer_reset");
	rw_classifier_free(c);
}

static void eviction(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 2);
	struct rw_classify_stats st;
	struct rw_event e;

	/* three pending TIME_WAITs in a table of two: the oldest is settled, not lost */
	for (uint64_t sk = 40; sk < 43; sk++) {
		e = ev_state(sk, RW_ST_FIN_WAIT2, RW_ST_CLOSE);
		e.flags |= RW_EVF_FIN_RCVD;
		rw_classify(c, &e);
	}
	rw_classify_stats(c, &st);
	CHECK_INT("evictions counted", st.evictions, 1);
	CHECK_INT("evicted connection's verdict emitted", g.n, 1);
	rw_classify_flush(c);
	CHECK_INT("all three verdicts", g.n, 3);
	rw_classifier_free(c);

	/* an RST on a closed socket we no longer remember: verdict marked partial */
	c = fresh(&g, 64);
	e = ev_rst(50, RW_ST_CLOSE, RW_RSN_TCP_ABORT_ON_CLOSE);
	e.unread = 5;
	rw_classify(c, &e);
	rw_classify_flush(c);	/* it waited for the other end's reset */
	expect_one(&g, RW_CL_UNREAD_DATA, RW_SUB_NONE, RW_ST_CLOSE);
	if (g.n)
		CHECK_INT("partial evidence flagged", !!(g.v[0].ev_mask & RW_VE_NO_STATE), 1);
	rw_classifier_free(c);
}

/* The two ends of one connection on this host, in either order: one conn_id. */
static void linked(bool receiver_first)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event close_ev, rst, peer;

	close_ev = ev_state(60, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	rst = ev_rst(60, RW_ST_CLOSE, RW_RSN_TCP_ABORT_ON_CLOSE);
	rst.unread = 100;
	peer = ev_sk(RW_EV_RECV_RESET, 61, RW_ST_ESTABLISHED);
	peer.lport = 8080;	/* the other end: the tuple reversed */
	peer.rport = 40000;
	if (receiver_first)
		rw_classify(c, &peer);
	rw_classify(c, &close_ev);
	rw_classify(c, &rst);
	if (!receiver_first)
		rw_classify(c, &peer);
	CHECK_INT("both out at once, no deadline needed", g.n, 2);
	if (g.n == 2) {
		CHECK_STR("the sender first", rw_class_name(g.v[0].cls), "unread_data");
		CHECK_STR("then the receiver", rw_class_name(g.v[1].cls), "peer_reset");
		CHECK_INT("one conn_id", g.v[0].conn_id == g.v[1].conn_id && g.v[0].conn_id, 1);
	}
	rw_classifier_free(c);

	/* a remote peer: the verdict waits RW_PENDING_NS, then goes alone */
	c = fresh(&g, 64);
	rw_classify(c, &close_ev);
	rw_classify(c, &rst);
	CHECK_INT("held for its other end", g.n, 0);
	rw_classify_tick(c, rst.time_ns + RW_PENDING_NS);
	CHECK_INT("alone after the deadline", g.n, 1);
	if (g.n)
		CHECK_INT("no conn_id", (int)g.v[0].conn_id, 0);
	rw_classifier_free(c);
}

/* The peer probe's answer for receiver rr: its other end, synchronised. */
static struct rw_event ev_peer(const struct rw_event *rr, enum rw_state state)
{
	struct rw_event e = ev_sk(RW_EV_PEER, rr->sk + 1000, state);

	e.time_ns = rr->time_ns;	/* stamped with the reset's time */
	e.lport = rr->rport;
	e.rport = rr->lport;
	e.netns = 77;
	e.pid = 43;
	memcpy(e.comm, "server", 7);
	e.flags = RW_EVF_SK | RW_EVF_OWNER | RW_EVF_SEQ;
	e.snd_nxt = 5000;
	e.about = rr->sk;
	return e;
}

/*
 * An RST received while the other end, watched on this host, stays
 * ESTABLISHED and sends none: middlebox_reset once the wait is over, naming
 * the other end.  If the other end's RST comes within the wait after all
 * (the probe saw it just before it sent), the pair is linked as usual.
 */
static void middlebox(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event rr, peer, close_ev, rst;

	rr = ev_sk(RW_EV_RECV_RESET, 80, RW_ST_ESTABLISHED);
	rr.flags |= RW_EVF_SEQ;
	rr.rcv_nxt = 5000;
	peer = ev_peer(&rr, RW_ST_ESTABLISHED);
	rw_classify(c, &rr);
	rw_classify(c, &peer);
	CHECK_INT("waits for an RST of this host", g.n, 0);
	rw_classify_tick(c, rr.time_ns + RW_PENDING_NS);
	expect_one(&g, RW_CL_MIDDLEBOX_RESET, RW_SUB_NONE, RW_ST_ESTABLISHED);
	if (g.n) {
		CHECK_INT("origin peer", g.v[0].origin, RW_OR_PEER);
		CHECK_INT("peer evidence", !!(g.v[0].ev_mask & RW_VE_PEER), 1);
		CHECK_INT("peer pid", (int)g.v[0].peer.pid, 43);
		CHECK_STR("peer comm", g.v[0].peer.comm, "server");
		CHECK_INT("peer netns", (int)g.v[0].peer.netns, 77);
		CHECK_INT("peer snd_nxt = the RST's seq", (int)g.v[0].peer.snd_nxt, 5000);
		CHECK_INT("the receiver's errno", g.v[0].app_errno, ECONNRESET);
		CHECK_INT("no conn_id", (int)g.v[0].conn_id, 0);
	}
	rw_classifier_free(c);

	/* an answer about another receiver changes nothing */
	c = fresh(&g, 64);
	rw_classify(c, &rr);
	peer.about = 999;
	rw_classify(c, &peer);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_PEER_RESET, RW_SUB_NONE, RW_ST_ESTABLISHED);
	rw_classifier_free(c);

	/* the other end did send it: linked, no middlebox */
	c = fresh(&g, 64);
	peer.about = rr.sk;
	rw_classify(c, &rr);
	rw_classify(c, &peer);
	close_ev = ev_state(peer.sk, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	close_ev.lport = peer.lport;
	close_ev.rport = peer.rport;
	close_ev.flags |= RW_EVF_LINGER;
	close_ev.shutdown = 3;
	rst = close_ev;
	rst.kind = RW_EV_SEND_RESET;
	rst.state = RW_ST_CLOSE;
	rst.reason = RW_RSN_TCP_STATE;
	rw_classify(c, &close_ev);
	rw_classify(c, &rst);
	rw_classify_flush(c);
	CHECK_INT("a linked pair", g.n, 2);
	if (g.n == 2) {
		CHECK_STR("the sender's verdict", rw_class_name(g.v[0].cls), "linger0");
		CHECK_STR("the receiver's", rw_class_name(g.v[1].cls), "peer_reset");
		CHECK_INT("no peer evidence", !!(g.v[1].ev_mask & RW_VE_PEER), 0);
	}
	rw_classifier_free(c);
}

/* Both ends received an RST within the wait, neither sent one. */
static void middlebox_both(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event a, b;

	a = ev_sk(RW_EV_RECV_RESET, 90, RW_ST_ESTABLISHED);
	b = ev_sk(RW_EV_RECV_RESET, 91, RW_ST_CLOSE_WAIT);
	b.lport = a.rport;
	b.rport = a.lport;
	b.pid = 44;
	rw_classify(c, &a);
	rw_classify(c, &b);
	CHECK_INT("both wait for an RST of either end", g.n, 0);
	rw_classify_tick(c, b.time_ns + RW_PENDING_NS);
	CHECK_INT("then both out", g.n, 2);
	if (g.n == 2) {
		CHECK_STR("first", rw_class_name(g.v[0].cls), "middlebox_reset");
		CHECK_STR("second", rw_class_name(g.v[1].cls), "middlebox_reset");
		CHECK_INT("one conn_id", g.v[0].conn_id == g.v[1].conn_id && g.v[0].conn_id, 1);
		CHECK_INT("not a sender/receiver pair", g.v[0].link == NULL && g.v[1].link == NULL, 1);
		CHECK_STR("the first names the second's state", rw_state_name(g.v[0].peer.state),
			  "CLOSE_WAIT");
		CHECK_INT("the second names the first's owner", (int)g.v[1].peer.pid, 42);
	}
	rw_classifier_free(c);

	/* ss -K at both ends at once (6.11+: each RST sent while ESTABLISHED):
	 * both receive, then both RSTs come: whatever they are, they are sent
	 * by this host, so no middlebox */
	c = fresh(&g, 64);
	rw_classify(c, &a);
	rw_classify(c, &b);
	{
		struct rw_event ra = ev_rst(a.sk, RW_ST_ESTABLISHED, RW_RSN_TCP_STATE);
		struct rw_event rb = ev_rst(b.sk, RW_ST_ESTABLISHED, RW_RSN_TCP_STATE);

		rb.lport = b.lport;
		rb.rport = b.rport;
		rw_classify(c, &ra);
		rw_classify(c, &rb);
	}
	rw_classify_flush(c);
	CHECK_INT("verdicts", g.n >= 2, 1);
	for (int i = 0; i < g.n && i < MAXV; i++)
		CHECK_INT("no middlebox", g.v[i].cls != RW_CL_MIDDLEBOX_RESET, 1);
	if (g.n >= 2)
		CHECK_INT("the first RST linked", g.v[0].conn_id && g.v[0].conn_id == g.v[1].conn_id, 1);
	rw_classifier_free(c);

	/* two resets on one side (a 4-tuple reused): not both ends */
	c = fresh(&g, 64);
	b = a;
	b.sk = 92;
	rw_classify(c, &a);
	rw_classify(c, &b);
	rw_classify_flush(c);
	CHECK_INT("two verdicts", g.n, 2);
	if (g.n == 2)
		CHECK_INT("both peer_reset", g.v[0].cls == RW_CL_PEER_RESET &&
			  g.v[1].cls == RW_CL_PEER_RESET, 1);
	rw_classifier_free(c);
}

/* An RST a listener sent for a segment with ACK and no SYN: an accept queue
 * overflow (tcp_check_req()) or an ACK for a connection gone, which went
 * through the listener's own input (tcp_rcv_state_process()). */
static void listener_reply(enum rw_reason reason, bool sock_input, enum rw_class want)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e = ev_rst(7, RW_ST_LISTEN, reason);

	e.flags = RW_EVF_SK | RW_EVF_SEG | (sock_input ? RW_EVF_SOCK_INPUT : 0);
	e.seg_flags = RW_SEG_ACK;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, want, RW_SUB_NONE, RW_ST_LISTEN);
	if (g.n)
		CHECK_INT("origin", g.v[0].origin, RW_OR_REPLY);
	rw_classifier_free(c);
}

static void challenged(bool in_window)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e = ev_sk(RW_EV_CHALLENGE, 95, RW_ST_ESTABLISHED);

	e.flags |= RW_EVF_SEQ | RW_EVF_SEG | (in_window ? RW_EVF_IN_WINDOW : 0);
	e.seg_flags = RW_SEG_RST;
	e.rcv_nxt = 0xfffffff0u;
	e.seg_seq = 0x10;	/* across the wrap: 32 ahead */
	rw_classify(c, &e);
	expect_one(&g, RW_CL_CHALLENGED_RST, in_window ? RW_SUB_IN_WINDOW : RW_SUB_OUT_OF_WINDOW,
		   RW_ST_ESTABLISHED);
	if (g.n) {
		CHECK_INT("origin peer", g.v[0].origin, RW_OR_PEER);
		CHECK_INT("sequence evidence", !!(g.v[0].ev_mask & RW_VE_SEQ), 1);
	}
	/* the connection lives on: a later close is its own story */
	rw_classifier_free(c);
}

/* peer_reset's hint: the idle times of the receiver (ms) */
static void idle_hint(uint32_t sent, uint32_t recv, uint32_t ack, enum rw_state st,
		      enum rw_idle want)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e = ev_sk(RW_EV_RECV_RESET, 96, st);

	e.flags |= RW_EVF_IDLE;
	e.last_sent_ms = sent;
	e.last_recv_ms = recv;
	e.last_ack_ms = ack;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_PEER_RESET, RW_SUB_NONE, st);
	if (g.n) {
		CHECK_INT("idle fit", g.v[0].idle, want);
		CHECK_INT("idle evidence", !!(g.v[0].ev_mask & RW_VE_IDLE), 1);
		if (want != RW_IDLE_NONE)
			CHECK_INT("the hint names middleboxes", strstr(rw_hint(&g.v[0]), "balancer") != NULL, 1);
	}
	rw_classifier_free(c);
}

/*
 * Snapshots taken from a real connection on 6.18 (TCP_REPAIR read both
 * ISNs right after the handshake: client 361424668, server 511198760):
 * the client sent 100 bytes and got 50, then closed with linger 0.
 */
static void set_seqs(struct rw_event *e, bool active)
{
	e->flags |= active ? RW_EVF_ACTIVE : RW_EVF_PASSIVE;
	e->snd_una = active ? 361424668u + 101 : 511198760u + 1 + 50;
	e->bytes_acked = active ? 101 : 50;	/* the connect()ing side's SYN counts */
	e->rcv_nxt = active ? 511198760u + 1 + 50 : 361424668u + 1 + 100;
	e->bytes_received = active ? 50 : 100;
}

static void flow_ids(void)
{
	struct rw_event cli = ev_sk(RW_EV_SEND_RESET, 1, RW_ST_CLOSE), srv = cli, e;
	uint32_t snd, rcv;

	set_seqs(&cli, true);
	set_seqs(&srv, false);
	CHECK_INT("client: ISNs", rw_flow_isns(&cli, &snd, &rcv), 1);
	CHECK_INT("client's own", snd, 361424668u);
	CHECK_INT("client's peer's", rcv, 511198760u);
	CHECK_INT("server: ISNs", rw_flow_isns(&srv, &snd, &rcv), 1);
	CHECK_INT("server's own", snd, 511198760u);
	CHECK_INT("server's peer's", rcv, 361424668u);
	CHECK_INT("the same id at both ends", rw_flow_id(&cli) == rw_flow_id(&srv), 1);
	CHECK_INT("as measured", rw_flow_id(&cli) == 0xecc1c1482007ef73ull, 1);
	/* a received FIN is in bytes_received (tcp_rcv_nxt_update() over end_seq) */
	e = cli;
	e.rcv_nxt += 1;
	e.bytes_received += 1;
	e.flags |= RW_EVF_FIN_RCVD;
	CHECK_INT("FIN received: same id", rw_flow_id(&e) == rw_flow_id(&cli), 1);
	/* across 2^32, and more than 4 GiB through */
	e = cli;
	e.snd_una = 5;
	e.bytes_acked = (7ull << 32) + 6;
	rw_flow_isns(&e, &snd, &rcv);
	CHECK_INT("modulo 2^32", snd, UINT32_MAX);
	e = cli;
	e.flags &= ~RW_EVF_ACTIVE;
	CHECK_INT("side unknown: none", (int)(rw_flow_id(&e) != 0), 0);
	e.flags |= RW_EVF_ACTIVE | RW_EVF_PASSIVE;
	CHECK_INT("both sides: none", (int)(rw_flow_id(&e) != 0), 0);
	e = cli;
	e.state = RW_ST_SYN_SENT;
	CHECK_INT("SYN_SENT: none", (int)(rw_flow_id(&e) != 0), 0);
	e = cli;
	e.prevstate = RW_ST_SYN_SENT;
	CHECK_INT("closed from SYN_SENT: none", (int)(rw_flow_id(&e) != 0), 0);
	e = cli;
	e.rcv_nxt = 0;
	e.bytes_received = 0;
	CHECK_INT("never synchronized: none", (int)(rw_flow_id(&e) != 0), 0);
	e = cli;
	e.flags &= ~RW_EVF_FULL;
	CHECK_INT("no full socket: none", (int)(rw_flow_id(&e) != 0), 0);
}

/*
 * The two ends through NAT, one trace file each (-r A -r B): no 4-tuple in
 * common, cookies and netns alike in both files.  The flow id links them;
 * a flow id that differs keeps apart even the same 4-tuple.
 */
static void linked_by_flow(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event rst, peer;

	rst = ev_rst(70, RW_ST_CLOSE, RW_RSN_TCP_STATE);
	rst.flags |= RW_EVF_LINGER;
	rst.shutdown = 3;
	set_seqs(&rst, true);
	peer = ev_sk(RW_EV_RECV_RESET, 70, RW_ST_ESTABLISHED);	/* the same cookie, host B */
	peer.source = 1;
	peer.lport = 80;		/* after DNAT and SNAT */
	peer.rport = 61000;
	memcpy(peer.laddr, (uint8_t[]){ 10, 0, 2, 2 }, 4);
	set_seqs(&peer, false);
	rw_classify(c, &peer);
	rw_classify(c, &rst);
	CHECK_INT("linked at once", g.n, 2);
	if (g.n == 2) {
		CHECK_STR("the sender first", rw_class_name(g.v[0].cls), "linger0");
		CHECK_STR("then the receiver", rw_class_name(g.v[1].cls), "peer_reset");
		CHECK_INT("one conn_id", g.v[0].conn_id == g.v[1].conn_id && g.v[0].conn_id, 1);
	}
	rw_classifier_free(c);

	/* the same 4-tuple (reversed), another connection's flow id: apart */
	c = fresh(&g, 64);
	peer = ev_sk(RW_EV_RECV_RESET, 71, RW_ST_ESTABLISHED);
	peer.lport = 8080;
	peer.rport = 40000;
	set_seqs(&peer, false);
	peer.snd_una += 12345;
	rw_classify(c, &peer);
	rw_classify(c, &rst);
	rw_classify_flush(c);
	CHECK_INT("two verdicts", g.n, 2);
	if (g.n == 2)
		CHECK_INT("not linked", (int)(g.v[0].conn_id || g.v[1].conn_id), 0);
	rw_classifier_free(c);

	/* a reset from no socket has no flow id: the 4-tuple still links it */
	c = fresh(&g, 64);
	peer.snd_una -= 12345;
	rst = ev_sk(RW_EV_SEND_RESET, 0, RW_ST_UNKNOWN);
	rst.flags = RW_EVF_SEG;
	rst.seg_flags = RW_SEG_ACK;
	rst.lport = 40000;
	rst.rport = 8080;
	rw_classify(c, &peer);
	rw_classify(c, &rst);
	CHECK_INT("half_open and its peer_reset linked", g.n == 2 && g.v[0].conn_id &&
		  g.v[0].conn_id == g.v[1].conn_id, 1);
	rw_classifier_free(c);
}

/* tcp_abort() on 6.11+: the RST from ESTABLISHED before sk_err */
static void killed_abort_new_order(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	e = ev_rst(70, RW_ST_ESTABLISHED, RW_RSN_TCP_STATE);
	memcpy(e.cur_comm, "ss", 3);
	rw_classify(c, &e);
	e = ev_state(70, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	e.sk_err = ECONNABORTED;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_KILLED, RW_SUB_NONE, RW_ST_ESTABLISHED);
	if (g.n)
		CHECK_INT("by the task", !!(g.v[0].ev_mask & RW_VE_BY), 1);
	rw_classifier_free(c);

	/* connect(AF_UNSPEC): tcp_disconnect() moves to CLOSE, then the RST;
	 * the application did not close (sk_shutdown 0) */
	c = fresh(&g, 64);
	rw_classify(c, &(struct rw_event){ 0 });	/* a clock tick of nothing */
	e = ev_state(71, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	rw_classify(c, &e);
	e = ev_rst(71, RW_ST_CLOSE, RW_RSN_TCP_STATE);
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_KILLED, RW_SUB_NONE, RW_ST_ESTABLISHED);
	rw_classifier_free(c);
}

/* An orphan in FIN_WAIT1 meets data: tcp_reset() (a receive_reset), CLOSE,
 * destroy, and only then the RST with TCP_ABORT_ON_DATA, its owner gone. */
static void data_after_close_orphan(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	e = ev_sk(RW_EV_RECV_RESET, 80, RW_ST_FIN_WAIT1);
	e.shutdown = 3;
	e.flags |= RW_EVF_ORPHAN;
	rw_classify(c, &e);
	e = ev_state(80, RW_ST_FIN_WAIT1, RW_ST_CLOSE);
	e.shutdown = 3;
	e.sk_err = ECONNRESET;
	rw_classify(c, &e);
	rw_classify(c, &(struct rw_event){ .kind = RW_EV_DESTROY, .sk = 80, .time_ns = now });
	e = ev_rst(80, RW_ST_CLOSE, RW_RSN_TCP_ABORT_ON_DATA);
	e.flags &= ~RW_EVF_OWNER;
	e.seg_len = 10;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_DATA_AFTER_CLOSE, RW_SUB_NONE, RW_ST_FIN_WAIT1);
	if (g.n)
		CHECK_INT("owner carried from the reset", g.v[0].ev->pid, 42);
	rw_classifier_free(c);
}

/*
 * An orphan in FIN_WAIT1 gets the ACK of its FIN with data on it:
 * tcp_rcv_state_process() moves it to FIN_WAIT2 and calls tcp_done() (no
 * tcp_reset(), no time-wait socket), then tcp_v4_do_rcv() sends the RST,
 * after the destroy (seen with redis closing on -DENIED).  The socket's
 * address then starts another connection, which closes with unread data.
 * addr: the identity (a format-1 trace's address, or a cookie).
 */
static void data_after_close_fin_wait2(uint64_t addr, uint64_t second, uint32_t row)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	e = ev_state(addr, RW_ST_FIN_WAIT2, RW_ST_CLOSE);
	e.shutdown = 3;
	e.flags |= RW_EVF_ORPHAN | RW_EVF_NO_TW | row;
	rw_classify(c, &e);
	rw_classify(c, &(struct rw_event){ .kind = RW_EV_DESTROY, .sk = addr, .time_ns = now });
	e = ev_rst(addr, RW_ST_CLOSE, RW_RSN_TCP_ABORT_ON_DATA);
	e.flags &= ~RW_EVF_OWNER;	/* the owner map forgot it at the destroy */
	e.flags |= RW_EVF_ORPHAN | RW_EVF_SEG;
	e.shutdown = 3;
	e.seg_len = 6;
	rw_classify(c, &e);
	now += RW_PENDING_NS * 2;
	rw_classify_tick(c, now);
	expect_one(&g, RW_CL_DATA_AFTER_CLOSE, RW_SUB_NONE, RW_ST_FIN_WAIT2);
	if (g.n)
		CHECK_INT("owner carried over the destroy", g.v[0].ev->pid, 42);

	e = ev_state(second, RW_ST_ESTABLISHED, RW_ST_CLOSE);
	e.unread = 6;
	e.shutdown = 3;
	rw_classify(c, &e);
	e = ev_rst(second, RW_ST_CLOSE, RW_RSN_TCP_ABORT_ON_CLOSE);
	e.unread = 6;
	e.shutdown = 3;
	rw_classify(c, &e);
	rw_classify_flush(c);
	CHECK_INT("the next socket's verdict", g.n, 2);
	if (g.n == 2)
		CHECK_STR("the next socket's class", rw_class_name(g.v[1].cls),
			  rw_class_name(RW_CL_UNREAD_DATA));
	rw_classifier_free(c);
}

/* The same with no reset reason (before 6.10) and the kernel's state: the
 * RST record alone, with the state it closed from. */
static void data_after_close_fin_wait2_noreason(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	e = ev_rst(2001, RW_ST_CLOSE, RW_RSN_NONE);
	e.prevstate = RW_ST_FIN_WAIT2;
	e.flags |= RW_EVF_ORPHAN | RW_EVF_SEG;
	e.seg_flags = RW_SEG_ACK;
	e.seg_len = 6;
	e.shutdown = 3;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_DATA_AFTER_CLOSE, RW_SUB_NONE, RW_ST_FIN_WAIT2);
	if (g.n)
		CHECK_INT("full evidence (the kernel gave the state)",
			  !!(g.v[0].ev_mask & RW_VE_NO_STATE), 0);
	rw_classifier_free(c);
}

/* No time-wait socket and the death row not full: no overflow, whatever
 * follows (here nothing); full: an overflow once no RST came. */
static void tw_missing(uint32_t row, int want_n)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	e = ev_state(96, RW_ST_FIN_WAIT2, RW_ST_CLOSE);
	e.flags |= RW_EVF_FIN_RCVD | RW_EVF_NO_TW | row;
	rw_classify(c, &e);
	rw_classify(c, &(struct rw_event){ .kind = RW_EV_DESTROY, .sk = 96, .time_ns = now });
	now += RW_PENDING_NS * 2;
	rw_classify_tick(c, now);
	CHECK_INT("verdicts", g.n, want_n);
	if (g.n == 1)
		CHECK_STR("class", rw_class_name(g.v[0].cls), rw_class_name(RW_CL_TIME_WAIT_OVERFLOW));
	rw_classify_flush(c);
	CHECK_INT("nothing left to settle", g.n, want_n);
	rw_classifier_free(c);
}

/* The kernel keeps each socket's state and sends no CLOSE that carried no
 * error; if a reader took sk_err before the CLOSE was seen, the report that
 * follows (with the state it closed from) decides alone. */
static void error_report_alone(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	e = ev_sk(RW_EV_ERROR, 70, RW_ST_CLOSE);
	e.sk_err = ETIMEDOUT;
	e.prevstate = RW_ST_ESTABLISHED;
	e.inflight = 100;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_TIMEOUT, RW_SUB_RETRANSMIT, RW_ST_ESTABLISHED);
	rw_classifier_free(c);
}

static struct rw_event ev_tw(enum rw_ev_kind kind, uint64_t tw, uint32_t flags)
{
	struct rw_event e = ev_sk(kind, tw, RW_ST_TIME_WAIT);

	e.flags = RW_EVF_SK | RW_EVF_OWNER | RW_EVF_SUBSTATE | flags;
	e.tw_substate = RW_ST_TIME_WAIT;
	return e;
}

/* How a time-wait socket ends, from its timer. */
static void tw_end(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;
	const uint32_t task = RW_EVF_CONTEXT | RW_EVF_HASH_KNOWN | RW_EVF_HASHED;
	const uint32_t softirq = task | RW_EVF_SOFTIRQ;

	/* armed, re-armed (cancel + start), then expired: one verdict */
	rw_classify(c, (e = ev_tw(RW_EV_TW_ARM, 90, 0), &e));
	rw_classify(c, (e = ev_tw(RW_EV_TW_CANCEL, 90, softirq), &e));
	rw_classify(c, (e = ev_tw(RW_EV_TW_ARM, 90, 0), &e));
	now += 60ull * 1000000000;
	rw_classify(c, (e = ev_tw(RW_EV_TW_CANCEL, 90, softirq), &e));	/* expire_timers() */
	rw_classify(c, (e = ev_tw(RW_EV_TW_EXPIRE, 90, softirq), &e));
	rw_classify_flush(c);
	expect_one(&g, RW_CL_TIME_WAIT, RW_SUB_EXPIRED, RW_ST_TIME_WAIT);
	if (g.n)
		CHECK_INT("lasted 60 s", (int)(g.v[0].duration_ns / 1000000000ull), 60);
	rw_classifier_free(c);

	/* connect() took it: unhashed before the cancel */
	c = fresh(&g, 64);
	rw_classify(c, (e = ev_tw(RW_EV_TW_ARM, 91, 0), &e));
	rw_classify(c, (e = ev_tw(RW_EV_TW_CANCEL, 91, RW_EVF_CONTEXT | RW_EVF_HASH_KNOWN), &e));
	rw_classify_flush(c);
	expect_one(&g, RW_CL_TIME_WAIT, RW_SUB_REUSED, RW_ST_TIME_WAIT);
	rw_classifier_free(c);

	/* ss -K: cancelled in a task */
	c = fresh(&g, 64);
	rw_classify(c, (e = ev_tw(RW_EV_TW_ARM, 92, 0), &e));
	rw_classify(c, (e = ev_tw(RW_EV_TW_CANCEL, 92, task), &e));
	rw_classify_flush(c);
	expect_one(&g, RW_CL_TIME_WAIT, RW_SUB_KILLED, RW_ST_TIME_WAIT);
	if (g.n)
		CHECK_INT("by the task", !!(g.v[0].ev_mask & RW_VE_BY), 1);
	rw_classifier_free(c);

	/* an RST: cancelled in softirq, no start follows */
	c = fresh(&g, 64);
	rw_classify(c, (e = ev_tw(RW_EV_TW_ARM, 93, 0), &e));
	rw_classify(c, (e = ev_tw(RW_EV_TW_CANCEL, 93, softirq), &e));
	rw_classify_tick(c, e.time_ns + RW_PENDING_NS);
	CHECK_INT("killed and assassinated", g.n, 2);
	if (g.n == 2) {
		CHECK_STR("time_wait end", rw_subtype_name(g.v[0].sub), "killed");
		CHECK_STR("peer_reset", rw_class_name(g.v[1].cls), "peer_reset");
		CHECK_STR("in TIME_WAIT", rw_state_name(g.v[1].state), "TIME_WAIT");
	}
	rw_classifier_free(c);
}

/* FIN_WAIT2 -> CLOSE without a time-wait socket armed: overflow */
static void tw_overflow(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;

	e = ev_state(95, RW_ST_FIN_WAIT2, RW_ST_CLOSE);
	e.flags |= RW_EVF_FIN_RCVD | RW_EVF_NO_TW;
	rw_classify(c, &e);
	rw_classify_flush(c);
	expect_one(&g, RW_CL_TIME_WAIT_OVERFLOW, RW_SUB_NONE, RW_ST_TIME_WAIT);
	rw_classifier_free(c);
}

static void close_wait(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;
	uint64_t t0;

	rw_classifier_set(c, 1000000000ull, 50);
	e = ev_state(96, RW_ST_ESTABLISHED, RW_ST_CLOSE_WAIT);
	rw_classify(c, &e);
	t0 = e.time_ns;
	rw_classify_tick(c, t0 + 999999999ull);
	CHECK_INT("not yet", g.n, 0);
	CHECK_INT("ticks wanted while watching", rw_classify_pending(c), 1);
	rw_classify_tick(c, t0 + 1500000000ull);
	expect_one(&g, RW_CL_CLOSE_WAIT, RW_SUB_STUCK, RW_ST_CLOSE_WAIT);
	if (g.n)
		CHECK_INT("dated at the threshold", g.v[0].ev->time_ns == t0 + 1000000000ull, 1);
	now = t0 + 3000000000ull;
	e = ev_state(96, RW_ST_CLOSE_WAIT, RW_ST_LAST_ACK);
	rw_classify(c, &e);
	CHECK_INT("closed, reported again", g.n, 2);
	if (g.n == 2) {
		CHECK_STR("closed", rw_subtype_name(g.v[1].sub), "closed");
		CHECK_INT("after 3 s", (int)(g.v[1].duration_ns / 1000000), 3000);
	}
	rw_classifier_free(c);
}

static void port_pressure(void)
{
	struct got g;
	struct rw_classifier *c = fresh(&g, 64);
	struct rw_event e;
	int pressure = 0;

	/* a range of 4 ports at 50%: the second TIME_WAIT to the endpoint */
	for (uint16_t p = 0; p < 3; p++) {
		e = ev_state(100 + p, RW_ST_FIN_WAIT2, RW_ST_CLOSE);
		e.flags |= RW_EVF_FIN_RCVD | RW_EVF_PORTS;
		e.lport = 50000 + p;
		e.port_lo = 50000;
		e.port_hi = 50003;
		rw_classify(c, &e);
	}
	rw_classify_flush(c);
	for (int i = 0; i < g.n && i < MAXV; i++)
		if (g.v[i].cls == RW_CL_PORT_PRESSURE) {
			pressure++;
			CHECK_INT("count at the threshold", (int)g.v[i].tw_count, 2);
		}
	CHECK_INT("once per endpoint", pressure, 1);
	rw_classifier_free(c);
}

int main(void)
{
	TEST("middlebox_reset: the other end watched here stayed open; linked if it sent");
	middlebox();
	TEST("middlebox_reset: both ends received, neither sent");
	middlebox_both();
	TEST("listen_overflow: the handshake's ACK refused (INVALID_SYN)");
	listener_reply(RW_RSN_INVALID_SYN, false, RW_CL_LISTEN_OVERFLOW);
	TEST("listen_overflow: no reason (before 6.10), the handshake's check");
	listener_reply(RW_RSN_NONE, false, RW_CL_LISTEN_OVERFLOW);
	TEST("half_open: no reason, an ACK through the listener's own input");
	listener_reply(RW_RSN_NONE, true, RW_CL_HALF_OPEN);
	TEST("half_open: a listener's reply for TCP_FLAGS (6.10+)");
	listener_reply(RW_RSN_TCP_FLAGS, true, RW_CL_HALF_OPEN);
	TEST("challenged_rst in the window");
	challenged(true);
	TEST("challenged_rst outside it");
	challenged(false);
	TEST("peer_reset hint: reset after 300 s of silence both ways");
	idle_hint(300100, 300050, 300040, RW_ST_ESTABLISHED, RW_IDLE_ROUND);
	TEST("peer_reset hint: 4 s is too short to tell");
	idle_hint(4000, 4000, 4000, RW_ST_ESTABLISHED, RW_IDLE_NONE);
	TEST("peer_reset hint: 302.7 s of silence is no round number");
	idle_hint(302700, 302700, 302700, RW_ST_ESTABLISHED, RW_IDLE_NONE);
	TEST("peer_reset hint: the first segment after 600 s of silence");
	idle_hint(0, 612345, 612300, RW_ST_ESTABLISHED, RW_IDLE_WOKE);
	TEST("peer_reset hint: none in CLOSE_WAIT (the peer closed first)");
	idle_hint(0, 612345, 612300, RW_ST_CLOSE_WAIT, RW_IDLE_NONE);
	TEST("peer_reset hint: data received 1 s ago");
	idle_hint(0, 1000, 612300, RW_ST_ESTABLISHED, RW_IDLE_NONE);
	TEST("linked: sender first");
	linked(false);
	TEST("linked: receiver first");
	linked(true);
	TEST("flow ids");
	flow_ids();
	TEST("linked by flow id: through NAT, across trace files");
	linked_by_flow();
	TEST("killed: tcp_abort 6.11+ order, connect(AF_UNSPEC)");
	killed_abort_new_order();
	TEST("data_after_close: FIN_WAIT1 ACK + data, RST after the destroy, address reused");
	data_after_close_fin_wait2(0xffff888100001000ull, 0xffff888100001000ull, 0);
	TEST("data_after_close: the same, known by cookies, death row not full");
	data_after_close_fin_wait2(1001, 1002, RW_EVF_ROW_KNOWN);
	TEST("data_after_close: the same, known by cookies, before 6.10 (no reason)");
	data_after_close_fin_wait2_noreason();
	TEST("data_after_close: the same, death row full: still no overflow");
	data_after_close_fin_wait2(1003, 1004, RW_EVF_ROW_KNOWN | RW_EVF_ROW_FULL);
	TEST("timeout decided by the report alone (no CLOSE sent by the kernel)");
	error_report_alone();
	TEST("no time-wait socket, death row not full: no overflow");
	tw_missing(RW_EVF_ROW_KNOWN, 0);
	TEST("no time-wait socket, death row full: overflow");
	tw_missing(RW_EVF_ROW_KNOWN | RW_EVF_ROW_FULL, 1);
	TEST("data_after_close: orphan, RST after the destroy");
	data_after_close_orphan();
	TEST("time_wait ends");
	tw_end();
	TEST("time_wait_overflow");
	tw_overflow();
	TEST("close_wait stuck and closed");
	close_wait();
	TEST("port_pressure");
	port_pressure();
	TEST("linger0, 6.12+ reason TCP_STATE");
	linger0(RW_RSN_TCP_STATE);
	TEST("linger0, pre-6.10 no reason");
	linger0(RW_RSN_NONE);
	TEST("unread_data with reason");
	unread(RW_RSN_TCP_ABORT_ON_CLOSE, false, 100, 100);
	TEST("unread_data without reason, FIN received");
	unread(RW_RSN_NONE, true, 101, 100);
	TEST("unread_data on 6.10-6.11: NOT_SPECIFIED is no reason");
	unread(RW_RSN_NOT_SPECIFIED, false, 100, 100);
	TEST("memory with reason");
	memory(RW_RSN_TCP_ABORT_ON_MEMORY);
	TEST("memory, pre-6.10 no reason: an orphan's own RST in CLOSE");
	memory(RW_RSN_NONE);
	TEST("timeout/retransmit, report after CLOSE");
	timeout_retransmit(false);
	TEST("timeout/retransmit, report before CLOSE (6.1)");
	timeout_retransmit(true);
	TEST("timeout/syn");
	timeout_syn();
	TEST("timeout decided by the report after a CLOSE without sk_err");
	error_only_in_report(false, 0, 1);
	TEST("timeout decided by a report just before a CLOSE without sk_err (6.1)");
	error_only_in_report(true, 3000, 1);
	TEST("an old error report does not explain a later clean CLOSE");
	error_only_in_report(true, RW_ERR_FRESH_NS + 1, 0);
	TEST("ICMP hard error after earlier soft ones while connecting: not a timeout");
	close_with_error(EHOSTUNREACH, EHOSTUNREACH, RW_CL_UNCLASSIFIED, RW_SUB_NONE);
	TEST("hard ICMP error while connecting is not a timeout");
	close_with_error(EHOSTUNREACH, 0, RW_CL_UNCLASSIFIED, RW_SUB_NONE);
	TEST("ICMP port unreachable while connecting is not a timeout");
	close_with_error(ECONNREFUSED, 0, RW_CL_UNCLASSIFIED, RW_SUB_NONE);
	TEST("timeout/keepalive with reason");
	timeout_keepalive(RW_RSN_TCP_KEEPALIVE_TIMEOUT);
	TEST("timeout/keepalive without reason");
	timeout_keepalive(RW_RSN_NONE);
	TEST("timeout/keepalive on 6.10-6.11 (NOT_SPECIFIED)");
	timeout_keepalive(RW_RSN_NOT_SPECIFIED);
	TEST("peer_reset in SYN_SENT");
	peer_reset(RW_ST_SYN_SENT, ECONNREFUSED, ECONNREFUSED);
	TEST("peer_reset in ESTABLISHED");
	peer_reset(RW_ST_ESTABLISHED, ECONNRESET, ECONNRESET);
	TEST("peer_reset in CLOSE_WAIT");
	peer_reset(RW_ST_CLOSE_WAIT, EPIPE, EPIPE);
	TEST("refused");
	no_socket(RW_SEG_SYN, RW_CL_REFUSED);
	TEST("half_open");
	no_socket(RW_SEG_ACK | 0x08 /* PSH */, RW_CL_HALF_OPEN);
	TEST("time_wait");
	time_wait();
	TEST("killed");
	killed();
	TEST("reused socket address");
	reused_address();
	TEST("eviction");
	eviction();
	return check_done("classify");
}
