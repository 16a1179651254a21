// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * events -> verdicts.  A pure function of the event stream (see classify.h).
 *
 * How each class is recognised, and the kernel code it rests on:
 *
 *  linger0      close() with SO_LINGER {1,0}: __tcp_close() calls
 *               tcp_disconnect(), which moves the socket to CLOSE *then* sends
 *               the RST (reason TCP_STATE on 6.12+, none before 6.10).  So: an
 *               active RST on a socket already in CLOSE, SOCK_LINGER set,
 *               sk_lingertime 0.  The state reported is the one it left.
 *  unread_data  __tcp_close() found unread bytes: CLOSE first, then the RST
 *               with TCP_ABORT_ON_CLOSE.  Older kernels give no reason; the
 *               snapshot's rcv_nxt - copied_seq > 0 (minus the peer's FIN,
 *               which counts one sequence number) says the same.  Checked
 *               before linger0, as the kernel does.
 *  timeout      tcp_write_err() sets sk_err to ETIMEDOUT (or the soft error an
 *               ICMP left), then tcp_done() moves the socket to CLOSE; the
 *               order against sk_error_report() differs between kernels and
 *               orphaned sockets get no report at all, so the CLOSE transition
 *               carrying that sk_err decides.  Subtype: syn when it left
 *               SYN_SENT/SYN_RECV; keepalive when tcp_keepalive_timer() sent
 *               its RST just before (reason TCP_KEEPALIVE_TIMEOUT, or before
 *               6.10 an RST outside CLOSE with keepalive probes out);
 *               retransmit otherwise.
 *  killed       tcp_abort() (ss -K, SOCK_DESTROY) sets sk_err ECONNABORTED
 *               before the RST and before CLOSE.
 *  peer_reset   tcp_reset() fires tcp_receive_reset in the state the RST
 *               arrived in; the errno the application gets follows from it.
 *  refused,     tcp_v[46]_send_reset() with no socket: a SYN without ACK is
 *  half_open    a connection attempt to a closed port, anything else a
 *               segment for a connection this host does not have.
 *  time_wait    tcp_time_wait() hands the connection to a time-wait socket and
 *               calls tcp_done(): FIN_WAIT2/CLOSING -> CLOSE with no error.
 *               tcp_disconnect() and the linger2 abort make the same
 *               transition but send an RST right after, so the verdict waits
 *               (RW_PENDING_NS at most) for that RST before it is emitted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "conntab.h"

#define PENDING_CAP 1024

struct pending {
	bool live;
	uint64_t deadline;
	struct rw_event ev;
	struct rw_verdict v;
};

struct rw_classifier {
	struct rw_conntab *tab;
	rw_emit_fn emit;
	void *arg;
	struct pending *pend;	/* FIFO ring, PENDING_CAP slots */
	uint64_t pend_head, pend_tail;
	struct rw_classify_stats st;
};

struct rw_classifier *rw_classifier_new(size_t capacity, rw_emit_fn emit, void *arg)
{
	struct rw_classifier *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->tab = rw_conntab_new(capacity);
	c->pend = calloc(PENDING_CAP, sizeof(*c->pend));
	if (!c->tab || !c->pend) {
		rw_classifier_free(c);
		return NULL;
	}
	c->emit = emit;
	c->arg = arg;
	return c;
}

void rw_classifier_free(struct rw_classifier *c)
{
	if (!c)
		return;
	rw_conntab_free(c->tab);
	free(c->pend);
	free(c);
}

void rw_classify_stats(const struct rw_classifier *c, struct rw_classify_stats *out)
{
	*out = c->st;
}

static void out(struct rw_classifier *c, const struct rw_verdict *v)
{
	c->st.verdicts++;
	c->emit(v, c->arg);
}

static void settle(struct rw_classifier *c, struct pending *p)
{
	struct rw_conn *conn;

	if (!p->live)
		return;
	p->live = false;
	conn = rw_conntab_get(c->tab, p->ev.sk);
	if (conn && conn->pending == (uint32_t)(p - c->pend))
		conn->pending = RW_NO_PENDING;
	out(c, &p->v);
}

static void settle_conn(struct rw_classifier *c, struct rw_conn *conn)
{
	if (conn->pending != RW_NO_PENDING)
		settle(c, &c->pend[conn->pending]);
}

static void cancel_pending(struct rw_classifier *c, struct rw_conn *conn)
{
	if (conn->pending == RW_NO_PENDING)
		return;
	c->pend[conn->pending].live = false;
	conn->pending = RW_NO_PENDING;
}

static void defer(struct rw_classifier *c, struct rw_conn *conn, const struct rw_verdict *v,
		  const struct rw_event *ev)
{
	struct pending *p;

	if (c->pend_tail - c->pend_head == PENDING_CAP) {
		settle(c, &c->pend[c->pend_head % PENDING_CAP]);
		c->pend_head++;
	}
	p = &c->pend[c->pend_tail % PENDING_CAP];
	p->live = true;
	p->deadline = ev->time_ns + RW_PENDING_NS;
	p->ev = *ev;
	p->v = *v;
	p->v.ev = &p->ev;
	conn->pending = (uint32_t)(c->pend_tail % PENDING_CAP);
	c->pend_tail++;
}

void rw_classify_tick(struct rw_classifier *c, uint64_t now_ns)
{
	while (c->pend_head != c->pend_tail) {
		struct pending *p = &c->pend[c->pend_head % PENDING_CAP];

		if (p->live && p->deadline > now_ns)
			break;
		settle(c, p);
		c->pend_head++;
	}
}

bool rw_classify_pending(const struct rw_classifier *c)
{
	return c->pend_head != c->pend_tail;
}

void rw_classify_flush(struct rw_classifier *c)
{
	rw_classify_tick(c, UINT64_MAX);
}

/*
 * The entry for ev's socket, created if needed.  Socket addresses are slab
 * addresses and are reused; an entry whose socket already reached CLOSE but
 * which now shows a live state belongs to a socket whose destroy we missed.
 */
static struct rw_conn *conn_get(struct rw_classifier *c, const struct rw_event *ev, bool *fresh)
{
	struct rw_conn *conn = rw_conntab_get(c->tab, ev->sk);
	enum rw_state live = ev->kind == RW_EV_STATE ? ev->oldstate : ev->state;

	*fresh = false;
	if (conn && conn->closed_from != RW_ST_UNKNOWN && live != RW_ST_CLOSE) {
		cancel_pending(c, conn);
		conn->closed_from = RW_ST_UNKNOWN;
		conn->peer_reset = conn->keepalive_rst = conn->decided = false;
		conn->err = conn->err_soft = 0;
		*fresh = true;
	}
	if (conn)
		return conn;
	conn = rw_conntab_add(c->tab, ev->sk);
	if (!conn) {
		struct rw_conn *old = rw_conntab_oldest(c->tab);

		settle_conn(c, old);
		rw_conntab_del(c->tab, old);
		c->st.evictions++;
		conn = rw_conntab_add(c->tab, ev->sk);
	}
	conn->closed_from = RW_ST_UNKNOWN;
	*fresh = true;
	return conn;
}

static void verdict_init(struct rw_verdict *v, const struct rw_event *ev, enum rw_class cls,
			 enum rw_origin origin, enum rw_state state)
{
	memset(v, 0, sizeof(*v));
	v->cls = cls;
	v->origin = origin;
	v->state = state;
	v->ev = ev;
	if (ev->flags & RW_EVF_FULL)
		v->ev_mask |= RW_VE_SOCKET;
	if (ev->flags & RW_EVF_SEG)
		v->ev_mask |= RW_VE_SEGMENT;
	memcpy(v->reason, ev->reason_name, sizeof(v->reason));
}

/*
 * tcp_write_err() is the only path that gives up on a connection by timer: it
 * sets sk_err to the soft error an ICMP message left, or ETIMEDOUT.  While
 * connecting, tcp_v[46]_err() also closes the socket on a hard ICMP error,
 * and its earlier ICMPs (those that arrived while connect() held the socket)
 * left the same errno as the soft error: the socket cannot tell the two
 * apart, so in SYN_SENT/SYN_RECV only ETIMEDOUT is a timeout.
 */
static bool connecting(enum rw_state from)
{
	return from == RW_ST_SYN_SENT || from == RW_ST_SYN_RECV;
}

static bool is_timeout(enum rw_state from, int err, int soft)
{
	if (err == ETIMEDOUT)
		return true;
	if (connecting(from))
		return false;
	return soft && err == soft;
}

/*
 * The socket left `from` for CLOSE with error err: decide the verdict.  ev is
 * the event that carried the error (the CLOSE transition, or the error report
 * that followed it).  Returns false when err is 0: nothing to decide.
 */
static bool close_with_error(struct rw_classifier *c, struct rw_conn *conn,
			     const struct rw_event *ev, enum rw_state from, int err, int soft)
{
	struct rw_verdict v;

	if (!err)
		return false;
	if (is_timeout(from, err, soft)) {
		verdict_init(&v, ev, RW_CL_TIMEOUT, RW_OR_LOCAL, from);
		if (connecting(from))
			v.sub = RW_SUB_SYN;
		else if (conn->keepalive_rst) {
			v.sub = RW_SUB_KEEPALIVE;
			/* the reason came with the RST, not with this transition */
			snprintf(v.reason, sizeof(v.reason), "%s", rw_reason_name(conn->rst_reason));
		} else
			v.sub = RW_SUB_RETRANSMIT;
	} else if (err == ECONNABORTED) {
		/* tcp_abort() on a state that needs no RST (SYN_SENT, LAST_ACK...) */
		verdict_init(&v, ev, RW_CL_KILLED, RW_OR_LOCAL, from);
	} else {
		/* neither a reset (decided when the RST arrived) nor a timeout: a
		 * hard ICMP error while connecting */
		verdict_init(&v, ev, RW_CL_UNCLASSIFIED, RW_OR_LOCAL, from);
	}
	v.app_errno = err;
	v.ev_mask |= RW_VE_ERRNO;
	conn->decided = true;
	cancel_pending(c, conn);
	out(c, &v);
	return true;
}

static void on_close(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_verdict v;
	struct rw_conn *conn;
	int err, soft;
	bool fresh;

	if (ev->oldstate == RW_ST_CLOSE)
		return;
	conn = conn_get(c, ev, &fresh);
	conn->closed_from = ev->oldstate;
	if (conn->decided)
		return;
	/* the CLOSE's own sk_err, else one reported just before it */
	err = ev->sk_err;
	soft = ev->sk_err_soft;
	if (!err && ev->time_ns - conn->err_time <= RW_ERR_FRESH_NS) {
		err = conn->err;
		soft = conn->err_soft;
	}
	if (close_with_error(c, conn, ev, ev->oldstate, err, soft))
		return;
	if ((ev->oldstate == RW_ST_FIN_WAIT2 || ev->oldstate == RW_ST_CLOSING) && ev->linger2 >= 0) {
		bool fin = ev->flags & RW_EVF_FIN_RCVD;

		verdict_init(&v, ev, RW_CL_TIME_WAIT, RW_OR_LIFECYCLE,
			     fin ? RW_ST_TIME_WAIT : RW_ST_FIN_WAIT2);
		v.tw_substate = v.state;
		v.closed_first_local = ev->oldstate == RW_ST_FIN_WAIT2;
		v.ev_mask |= RW_VE_TIMEWAIT;
		defer(c, conn, &v, ev);
	}
}

/*
 * An error reported to the owner.  Before CLOSE (6.1's tcp_write_err(),
 * tcp_abort()) it is kept for the CLOSE that follows; after a CLOSE that
 * carried no error it decides: sk_err is written before tcp_done() on every
 * kernel, but a reader on another CPU can consume it (sock_error()) before the
 * CLOSE transition is snapshotted, while the report itself still carries it.
 */
static void on_error(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_conn *conn;
	bool fresh;

	if (!ev->sk_err || !(ev->flags & RW_EVF_FULL))
		return;
	if (ev->state != RW_ST_CLOSE) {
		conn = conn_get(c, ev, &fresh);
		conn->err = ev->sk_err;
		conn->err_soft = ev->sk_err_soft;
		conn->err_time = ev->time_ns;
		return;
	}
	conn = rw_conntab_get(c->tab, ev->sk);
	if (conn && !conn->decided && conn->closed_from != RW_ST_UNKNOWN)
		close_with_error(c, conn, ev, conn->closed_from, ev->sk_err, ev->sk_err_soft);
}

static uint32_t unread_bytes(const struct rw_event *ev)
{
	/* the peer's FIN occupies one sequence number until the reader sees EOF */
	if ((ev->flags & RW_EVF_FIN_RCVD) && ev->unread > 0)
		return ev->unread - 1;
	return ev->unread;
}

static void on_send_reset(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_verdict v;
	struct rw_conn *conn;
	enum rw_state prev;
	bool fresh, closing;

	if (!(ev->flags & RW_EVF_SK)) {
		bool syn = (ev->seg_flags & RW_SEG_SYN) && !(ev->seg_flags & RW_SEG_ACK);

		verdict_init(&v, ev, syn ? RW_CL_REFUSED : RW_CL_HALF_OPEN, RW_OR_REPLY,
			     RW_ST_UNKNOWN);
		out(c, &v);
		return;
	}
	if (ev->state == RW_ST_TIME_WAIT) {
		verdict_init(&v, ev, RW_CL_TIME_WAIT_RST, RW_OR_REPLY, RW_ST_TIME_WAIT);
		out(c, &v);
		return;
	}
	if (!(ev->flags & RW_EVF_FULL)) {
		verdict_init(&v, ev, RW_CL_UNCLASSIFIED, RW_OR_REPLY, ev->state);
		out(c, &v);
		return;
	}

	conn = conn_get(c, ev, &fresh);
	cancel_pending(c, conn);	/* FIN_WAIT2 -> CLOSE followed by RST: not TIME_WAIT */
	closing = ev->state == RW_ST_CLOSE;

	if (ev->reason == RW_RSN_TCP_KEEPALIVE_TIMEOUT ||
	    (ev->reason == RW_RSN_NONE && !closing && ev->probes_out > 0 &&
	     (ev->flags & RW_EVF_KEEPALIVE) && ev->sk_err == 0)) {
		conn->keepalive_rst = true;	/* the timeout verdict follows with CLOSE */
		conn->rst_reason = ev->reason;
		return;
	}
	if (conn->decided)
		return;

	prev = closing && conn->closed_from != RW_ST_UNKNOWN ? conn->closed_from : ev->state;
	if (ev->reason == RW_RSN_TCP_ABORT_ON_CLOSE ||
	    (ev->reason == RW_RSN_NONE && closing && unread_bytes(ev) > 0)) {
		verdict_init(&v, ev, RW_CL_UNREAD_DATA, RW_OR_LOCAL, prev);
		v.unread_bytes = unread_bytes(ev);
	} else if (closing && (ev->flags & RW_EVF_LINGER) && ev->lingertime == 0) {
		verdict_init(&v, ev, RW_CL_LINGER0, RW_OR_LOCAL, prev);
	} else if (ev->sk_err == ECONNABORTED) {
		verdict_init(&v, ev, RW_CL_KILLED, RW_OR_LOCAL, ev->state);
	} else {
		verdict_init(&v, ev, RW_CL_UNCLASSIFIED, RW_OR_LOCAL, prev);
	}
	if (v.cls == RW_CL_KILLED) {
		v.app_errno = ECONNABORTED;
		v.ev_mask |= RW_VE_ERRNO;
	}
	if (fresh && closing)
		v.ev_mask |= RW_VE_NO_STATE;
	conn->decided = true;
	out(c, &v);
}

static void on_recv_reset(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_verdict v;
	struct rw_conn *conn;
	bool fresh;

	if (ev->state == RW_ST_CLOSE)
		return;		/* tcp_reset() ignores an RST on a closed socket */
	conn = conn_get(c, ev, &fresh);
	cancel_pending(c, conn);
	if (conn->decided)
		return;
	conn->peer_reset = true;
	conn->decided = true;
	verdict_init(&v, ev, RW_CL_PEER_RESET, RW_OR_PEER, ev->state);
	/* tcp_reset(): what the application's next call returns */
	v.app_errno = ev->state == RW_ST_SYN_SENT ? ECONNREFUSED :
		      ev->state == RW_ST_CLOSE_WAIT ? EPIPE : ECONNRESET;
	v.ev_mask |= RW_VE_ERRNO;
	out(c, &v);
}

void rw_classify(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_conn *conn;

	c->st.events++;
	rw_classify_tick(c, ev->time_ns);
	switch (ev->kind) {
	case RW_EV_STATE:
		if (ev->newstate == RW_ST_CLOSE)
			on_close(c, ev);
		break;
	case RW_EV_SEND_RESET:
		on_send_reset(c, ev);
		break;
	case RW_EV_RECV_RESET:
		on_recv_reset(c, ev);
		break;
	case RW_EV_ERROR:
		on_error(c, ev);
		break;
	case RW_EV_DESTROY:
		conn = rw_conntab_get(c->tab, ev->sk);
		if (conn) {
			settle_conn(c, conn);
			rw_conntab_del(c->tab, conn);
		}
		break;
	default:
		break;
	}
}
