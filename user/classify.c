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
 *               The time-wait socket's timer is armed before that CLOSE; when
 *               the timers are traced and none was armed for the 4-tuple,
 *               it got none: time_wait_overflow (inet_twsk_alloc() over
 *               tcp_max_tw_buckets).
 *  tw end       the time-wait socket's timer: it fires (expired), or it is
 *               cancelled.  A cancel is followed at once by a start when the
 *               period restarts (a FIN, a retransmission), so a cancel waits
 *               for that start.  __inet_check_established() unhashes the
 *               time-wait socket before cancelling it when connect() takes
 *               its 4-tuple (reused); inet_twsk_deschedule_put() on a hashed
 *               one is tcp_abort() in a task (ss -K: killed by it) or, in
 *               softirq, an RST (TIME_WAIT assassination: killed, and a
 *               peer_reset in TIME_WAIT) or a SYN taking the 4-tuple on the
 *               passive side (reused), which only the ESTABLISHED child that
 *               handshake makes, within RW_PENDING_NS, tells from an RST.
 *  data_after_  a time-wait socket still in FIN_WAIT2 answers new data with
 *  close        an RST (TCP_TIMEWAIT_SOCKET); an orphan in FIN_WAIT1/2 with
 *               RCV_SHUTDOWN meets data in tcp_rcv_state_process(): it calls
 *               tcp_reset() (a tcp_receive_reset that is no peer reset) and
 *               then answers with TCP_ABORT_ON_DATA.  So a reset received in
 *               FIN_WAIT1/2 after shutdown(RD) waits for that RST.
 *  linger2,     the reasons TCP_ABORT_ON_LINGER / TCP_ABORT_ON_MEMORY (6.10+);
 *  memory       before 6.10: an RST from FIN_WAIT2 with linger2 < 0, and an
 *               orphan's own RST in CLOSE answering no segment (rw_local_abort()).
 *  bad_ack      an RST sent by a SYN_SENT socket: tcp_rcv_synsent_state_process()
 *               refused the ACK that answered its SYN.
 *  listen_      an RST sent by a listener for a segment with ACK and no SYN:
 *  overflow     tcp_check_req() found the accept queue full (reason
 *               INVALID_SYN; before 6.10, no reason and the segment not
 *               through the listener's own input); other reasons there are
 *               half-open answers.
 *  close_wait   CLOSE_WAIT entered and not left within --close-wait.
 *  port_        TIME_WAIT sockets per (netns, local address, remote address
 *  pressure     and port), against the netns's ephemeral port range.
 *
 * Linking: a verdict where an RST was sent and one where an RST was
 * received are the two ends of one connection when they have the same flow
 * id (flow.c: both initial sequence numbers, the same at both ends, through
 * NAT and across hosts), or, where one of them has none (a reset from no
 * socket), the same 4-tuple seen from opposite ends.  Each waits up to
 * RW_PENDING_NS for the other; a pair is emitted together with one conn_id.
 *
 * Events from several hosts' traces (-r A -r B) carry their file in
 * ev->source: sockets, time-wait and endpoint keys are kept apart by it
 * (cookies and netns inode numbers repeat between hosts), links are not.
 *
 *  middlebox_  an RST received that neither end sent, seen where both ends
 *  reset       are sockets of this host that rstwatch watches: the other end
 *              received one too within RW_PENDING_NS (a middlebox resetting
 *              both), or the peer probe found it still synchronised (a
 *              RW_EV_PEER right after the receiver's, user/loader.c) and no
 *              RST of this host on the connection came within RW_PENDING_NS.
 *              On one host the kernel traces every RST its TCP sends
 *              (tcp_send_reset, and the stand-ins before 6.10), so an RST
 *              received there came from elsewhere: a firewall or NAT
 *              (netfilter's nf_send_reset() is no TCP socket), a load
 *              balancer, an attacker.  Where only one end is watched (the
 *              other is remote, unknown to rstwatch, filtered out, or behind
 *              a NAT that changes its 4-tuple) it stays a peer_reset, whose
 *              hint names middleboxes when the idle times fit one
 *              (rw_idle_fit()).
 *  challenged_ tcp_validate_incoming() refused an RST: in the window but not
 *  rst         at rcv_nxt (challenge ACK, RFC 5961) or outside it; the
 *              connection lives on.  skb:kfree_skb with its drop reason and
 *              receiving socket (6.11+).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "rules.h"
#include "conntab.h"
#include "flow.h"

#define PENDING_CAP 4096
#define LINK_SLOTS 8192		/* open-addressing index of pending linkable verdicts */
#define CW_CAP 4096		/* CLOSE_WAIT sockets watched at once */
#define RCV_SHUTDOWN 1		/* include/net/sock.h */
/* A time-wait socket whose end was not seen (no timer tracing, events lost)
 * is forgotten this long after its timer was last armed: the 60 s period plus
 * the timer wheel's slack at that range (1/8). */
#define TW_FORGET_NS (70ull * 1000 * 1000 * 1000)

enum link_role { LINK_NONE = 0, LINK_SENDER, LINK_RECEIVER };
enum pend_table { PT_CONN = 0, PT_TW };

struct pending {
	bool live;
	uint8_t table;		/* enum pend_table: whose ->pending points here */
	uint8_t role;		/* enum link_role */
	uint64_t deadline;
	uint64_t key;		/* the conn's sk, or the time-wait key */
	uint64_t link_key;	/* its 4-tuple's */
	uint64_t flow_key;	/* its flow id's, 0 none */
	struct rw_event ev;
	struct rw_verdict v;
	struct rw_verdict v2;	/* a second verdict settled with it (peer_reset in TIME_WAIT) */
	bool has_v2;
	bool silent;		/* keeps ev (the owner) for a follow-up; says nothing itself */
};

struct cw_watch {
	uint64_t sk, since;
	struct rw_event ev;	/* the CLOSE_WAIT entry: owner and tuple */
};

struct rw_classifier {
	struct rw_conntab *tab;	/* connections, by socket */
	struct rw_conntab *tw;	/* time-wait connections, by tuple key */
	struct rw_conntab *ep;	/* port-pressure endpoints */
	rw_emit_fn emit;
	void *arg;
	struct pending *pend;	/* FIFO ring, PENDING_CAP slots */
	uint64_t pend_head, pend_tail;
	uint32_t *link;		/* LINK_SLOTS pending indexes, UINT32_MAX empty */
	struct cw_watch *cw;	/* FIFO ring, CW_CAP slots */
	uint64_t cw_head, cw_tail;
	uint64_t close_wait_ns;
	unsigned int pressure_pct;
	uint64_t next_conn_id;
	struct rw_classify_stats st;
};

struct rw_classifier *rw_classifier_new(size_t capacity, rw_emit_fn emit, void *arg)
{
	struct rw_classifier *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->tab = rw_conntab_new(capacity);
	c->tw = rw_conntab_new(capacity);
	c->ep = rw_conntab_new(capacity / 4 ? capacity / 4 : 1);
	c->pend = calloc(PENDING_CAP, sizeof(*c->pend));
	c->link = malloc(LINK_SLOTS * sizeof(*c->link));
	c->cw = calloc(CW_CAP, sizeof(*c->cw));
	if (!c->tab || !c->tw || !c->ep || !c->pend || !c->link || !c->cw) {
		rw_classifier_free(c);
		return NULL;
	}
	memset(c->link, 0xff, LINK_SLOTS * sizeof(*c->link));
	c->emit = emit;
	c->arg = arg;
	c->close_wait_ns = RW_CLOSE_WAIT_DEFAULT_NS;
	c->pressure_pct = RW_PRESSURE_DEFAULT_PCT;
	c->next_conn_id = 1;
	return c;
}

void rw_classifier_set(struct rw_classifier *c, uint64_t close_wait_ns, unsigned int pressure_pct)
{
	c->close_wait_ns = close_wait_ns;
	c->pressure_pct = pressure_pct;
}

void rw_classifier_free(struct rw_classifier *c)
{
	if (!c)
		return;
	rw_conntab_free(c->tab);
	rw_conntab_free(c->tw);
	rw_conntab_free(c->ep);
	free(c->pend);
	free(c->link);
	free(c->cw);
	free(c);
}

void rw_classify_stats(const struct rw_classifier *c, struct rw_classify_stats *out)
{
	*out = c->st;
	out->time_wait = rw_conntab_count(c->tw);
}

/* conn stops being a stuck CLOSE_WAIT socket (it left, or its entry goes). */
static void close_wait_unstick(struct rw_classifier *c, const struct rw_conn *conn)
{
	if (conn->close_wait && conn->reported)
		c->st.close_wait_stuck--;
}

/* The socket's identity, apart from another trace file's (whose cookies
 * count from the same start): the top byte of a cookie is 0, of an
 * address 0xff, of a generation id (before 5.12) 0. */
static uint64_t sk_key(const struct rw_event *ev)
{
	return ev->sk ? ev->sk ^ (uint64_t)ev->source << 56 : 0;
}

static void out(struct rw_classifier *c, const struct rw_verdict *v)
{
	const struct rw_conn *conn = v->ev && v->ev->sk ? rw_conntab_peek(c->tab, sk_key(v->ev)) : NULL;

	c->st.verdicts++;
	if (conn && conn->history_lost) {
		struct rw_verdict partial = *v;

		partial.ev_mask |= RW_VE_NO_STATE;
		c->emit(&partial, c->arg);
		return;
	}
	c->emit(v, c->arg);
}

/* ------------------------------------------------------------ keys */


static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 29);
}

static uint64_t mix_addr(uint64_t h, const uint8_t a[16])
{
	uint64_t lo, hi;

	memcpy(&lo, a, 8);
	memcpy(&hi, a + 8, 8);
	return mix(mix(h, lo), hi);
}

/* A time-wait connection: its netns and 4-tuple. */
static uint64_t tw_key(const struct rw_event *ev)
{
	uint64_t h = mix(ev->family | (uint64_t)ev->source << 8, ev->netns);

	h = mix_addr(mix_addr(h, ev->laddr), ev->raddr);
	return mix(h, (uint64_t)ev->lport << 16 | ev->rport);
}

/* Where TIME_WAIT sockets compete for ephemeral ports: a local address and a
 * remote endpoint in one netns. */
static uint64_t endpoint_key(const struct rw_event *ev)
{
	uint64_t h = mix(ev->family | 0x100 | (uint64_t)ev->source << 16, ev->netns);

	return mix(mix_addr(mix_addr(h, ev->laddr), ev->raddr), ev->rport);
}

/* The connection, the same from both ends: its two endpoints in order. */
static uint64_t link_key_of(const struct rw_event *ev)
{
	const uint8_t *a = ev->laddr, *b = ev->raddr;
	uint16_t pa = ev->lport, pb = ev->rport;
	int cmp = memcmp(a, b, 16);

	if (cmp > 0 || (cmp == 0 && pa > pb)) {
		a = ev->raddr;
		b = ev->laddr;
		pa = ev->rport;
		pb = ev->lport;
	}
	return mix(mix_addr(mix_addr(mix(ev->family, 0x11), a), b), (uint64_t)pa << 16 | pb);
}

/* The connection by its flow id, the same from both ends; 0 none. */
static uint64_t flow_key_of(const struct rw_event *ev)
{
	uint64_t flow = rw_flow_id(ev);

	return flow ? mix(flow, 0x666c6f77) | 1 : 0;
}

/* ------------------------------------------------------------ pending verdicts */

static struct rw_conn *pend_owner(struct rw_classifier *c, const struct pending *p)
{
	return rw_conntab_peek(p->table == PT_TW ? c->tw : c->tab, p->key);
}

/* A connection whose destroy was seen and that waits for nothing more. */
static void forget_if_done(struct rw_classifier *c, struct rw_conn *conn)
{
	if (conn->destroyed && conn->pending == RW_NO_PENDING) {
		close_wait_unstick(c, conn);
		rw_conntab_del(c->tab, conn);
	}
}

static void pend_release(struct rw_classifier *c, struct pending *p)
{
	struct rw_conn *conn = pend_owner(c, p);

	p->live = false;
	if (conn && conn->pending == (uint32_t)(p - c->pend)) {
		conn->pending = RW_NO_PENDING;
		if (p->table == PT_CONN)
			forget_if_done(c, conn);
	}
}

/* An RST received that no RST of this host answered for within the wait,
 * while its other end, watched here, stayed open: neither end sent it. */
static void neither_end(struct rw_verdict *v)
{
	v->cls = RW_CL_MIDDLEBOX_RESET;
	v->origin = RW_OR_PEER;	/* it came from the peer's side of the path */
	v->idle = RW_IDLE_NONE;
}

static void settle(struct rw_classifier *c, struct pending *p)
{
	if (!p->live)
		return;
	if (p->role == LINK_RECEIVER && (p->v.ev_mask & RW_VE_PEER) && p->v.cls == RW_CL_PEER_RESET)
		neither_end(&p->v);
	/* out() reads the connection's entry: emit before releasing it */
	if (!p->silent) {
		out(c, &p->v);
		if (p->has_v2)
			out(c, &p->v2);
	}
	pend_release(c, p);
}

static void settle_conn(struct rw_classifier *c, struct rw_conn *conn)
{
	if (conn->pending != RW_NO_PENDING)
		settle(c, &c->pend[conn->pending]);
}

/* Settle what conn waits for and delete its entry. */
static void drop_conn(struct rw_classifier *c, struct rw_conn *conn)
{
	conn->destroyed = false;	/* deleted here, not by settling */
	settle_conn(c, conn);
	close_wait_unstick(c, conn);
	rw_conntab_del(c->tab, conn);
}

static void cancel_pending(struct rw_classifier *c, struct rw_conn *conn)
{
	if (conn->pending == RW_NO_PENDING)
		return;
	c->pend[conn->pending].live = false;
	conn->pending = RW_NO_PENDING;
}

static struct pending *defer(struct rw_classifier *c, struct rw_conn *conn, enum pend_table table,
			     const struct rw_verdict *v, const struct rw_event *ev)
{
	struct pending *p;

	if (c->pend_tail - c->pend_head == PENDING_CAP) {
		settle(c, &c->pend[c->pend_head % PENDING_CAP]);
		c->pend_head++;
	}
	p = &c->pend[c->pend_tail % PENDING_CAP];
	memset(p, 0, offsetof(struct pending, ev));
	p->live = true;
	p->table = table;
	p->key = conn ? conn->sk : 0;
	p->deadline = ev->time_ns + RW_PENDING_NS;
	p->ev = *ev;
	p->v = *v;
	p->v.ev = &p->ev;
	p->has_v2 = false;
	p->silent = false;
	if (conn)
		conn->pending = (uint32_t)(c->pend_tail % PENDING_CAP);
	c->pend_tail++;
	return p;
}

/* ------------------------------------------------------------ linking */

/* The other end of a connection on this host, from its own verdict's event. */
static void peer_from(struct rw_verdict *v, const struct rw_event *other, enum rw_state state)
{
	v->ev_mask |= RW_VE_PEER;
	memset(&v->peer, 0, sizeof(v->peer));
	v->peer.state = state;
	v->peer.netns = other->netns;
	v->peer.snd_nxt = other->snd_nxt;
	if (other->flags & RW_EVF_OWNER) {
		v->peer.pid = other->pid;
		memcpy(v->peer.comm, other->comm, sizeof(v->peer.comm));
	}
}

/* tcp_reset() for data after shutdown(RD) in FIN_WAIT1/2
 * (tcp_rcv_state_process()): a tcp_receive_reset with no RST received. */
static bool reset_for_data(const struct rw_event *ev)
{
	return (ev->state == RW_ST_FIN_WAIT1 || ev->state == RW_ST_FIN_WAIT2) &&
	       (ev->shutdown & RCV_SHUTDOWN);
}

/* Opposite ends of one 4-tuple (same link key, not the same view). */
static bool opposite(const struct rw_event *a, const struct rw_event *b)
{
	return a->sk != b->sk && a->lport == b->rport && a->rport == b->lport &&
	       !memcmp(a->laddr, b->raddr, 16) && !memcmp(a->raddr, b->laddr, 16);
}

/* Two events of opposite ends of one connection: never one socket's; by
 * 4-tuple, the tuple seen from both sides. */
static bool other_end(const struct rw_event *a, const struct rw_event *b, bool by_flow)
{
	if (a->sk == b->sk && a->source == b->source)
		return false;
	return by_flow || opposite(a, b);
}

/*
 * The pending verdict of the other end (role want) under key, a flow id's
 * key (by_flow) or a 4-tuple's.  By 4-tuple, one whose flow id is known and
 * differs from flow (ours, 0 none) is another connection that held the
 * same 4-tuple, or another host's.
 */
static uint32_t *link_slot(struct rw_classifier *c, const struct rw_event *ev, uint64_t key,
			   bool by_flow, uint64_t flow, enum link_role want)
{
	for (uint32_t i = 0; i < 16; i++) {
		uint32_t *s = &c->link[(key + i) & (LINK_SLOTS - 1)];
		struct pending *p;

		if (*s == UINT32_MAX)
			continue;
		p = &c->pend[*s];
		if (!p->live || p->role != want || !other_end(&p->ev, ev, by_flow))
			continue;
		if (by_flow ? p->flow_key == key :
		    p->link_key == key && (!flow || !p->flow_key || p->flow_key == flow))
			return s;
	}
	return NULL;
}

/* The other end's waiting verdict of role want: by flow id, else by 4-tuple. */
static uint32_t *other_slot(struct rw_classifier *c, const struct rw_event *ev, enum link_role want)
{
	uint64_t flow = flow_key_of(ev);
	uint32_t *slot = flow ? link_slot(c, ev, flow, true, flow, want) : NULL;

	return slot ? slot : link_slot(c, ev, link_key_of(ev), false, flow, want);
}

static void link_add(struct rw_classifier *c, uint64_t key, uint32_t idx)
{
	for (uint32_t i = 0; i < 16; i++) {
		uint32_t *s = &c->link[(key + i) & (LINK_SLOTS - 1)];

		if (*s == UINT32_MAX || !c->pend[*s].live || c->pend[*s].role == LINK_NONE) {
			*s = idx;
			return;
		}
	}
	c->link[key & (LINK_SLOTS - 1)] = idx;	/* crowded: the oldest claim loses */
}

/*
 * Both ends received an RST (v's, and one that waits): each names the other
 * and they share a conn_id.  If neither end's RST comes within their wait,
 * a middlebox reset them both (settle()); one that does comes before (ss -K
 * at both ends at once on 6.11+ sends each RST while its socket is still
 * ESTABLISHED) and links as usual.
 */
static void both_received(struct rw_classifier *c, struct rw_verdict *v, const struct rw_event *ev)
{
	uint32_t *slot = other_slot(c, ev, LINK_RECEIVER);
	struct pending *o = slot ? &c->pend[*slot] : NULL;

	if (!o || o->v.cls != RW_CL_PEER_RESET || v->cls != RW_CL_PEER_RESET ||
	    reset_for_data(&o->ev) || reset_for_data(ev))
		return;
	peer_from(v, &o->ev, o->v.state);
	peer_from(&o->v, ev, v->state);
	v->conn_id = o->v.conn_id = c->next_conn_id++;
}

/*
 * Emit v now if its other end already waits (both with one conn_id, the
 * sender's first), else let it wait RW_PENDING_NS for the other end.  conn is
 * the connection v is about (NULL for a reset from no socket).
 */
static void deliver(struct rw_classifier *c, struct rw_conn *conn, enum pend_table table,
		    const struct rw_verdict *v, const struct rw_event *ev, enum link_role role)
{
	uint64_t key = link_key_of(ev), flow = flow_key_of(ev);
	enum link_role want = role == LINK_SENDER ? LINK_RECEIVER : LINK_SENDER;
	uint32_t *slot = other_slot(c, ev, want);
	struct rw_verdict waits = *v;
	struct pending *p;

	if (slot) {
		struct pending *o = &c->pend[*slot];
		struct rw_verdict mine = *v, theirs = o->v;
		const struct rw_verdict *first = role == LINK_SENDER ? &mine : &theirs;
		const struct rw_verdict *second = role == LINK_SENDER ? &theirs : &mine;

		*slot = UINT32_MAX;
		/* the peer did send it: what the probe saw of it is no evidence */
		mine.ev_mask &= ~RW_VE_PEER;
		theirs.ev_mask &= ~RW_VE_PEER;
		mine.conn_id = theirs.conn_id = c->next_conn_id++;
		mine.link = &theirs;
		theirs.link = &mine;
		(role == LINK_SENDER ? &theirs : &mine)->link_second = true;
		out(c, first);
		out(c, second);
		if (o->has_v2)
			out(c, &o->v2);
		pend_release(c, o);
		return;
	}
	if (role == LINK_RECEIVER)
		both_received(c, &waits, ev);
	p = defer(c, conn, table, &waits, ev);
	p->role = role;
	p->link_key = key;
	p->flow_key = flow;
	link_add(c, key, (uint32_t)(p - c->pend));
	if (flow)
		link_add(c, flow, (uint32_t)(p - c->pend));
}

/* ------------------------------------------------------------ CLOSE_WAIT */

static void close_wait_enter(struct rw_classifier *c, struct rw_conn *conn, const struct rw_event *ev)
{
	struct cw_watch *w;

	close_wait_unstick(c, conn);	/* its leaving was not seen */
	conn->close_wait = true;
	conn->reported = false;
	conn->since = ev->time_ns;
	if (c->cw_tail - c->cw_head == CW_CAP) {
		c->st.cw_dropped++;	/* the oldest watch is given up */
		c->cw_head++;
	}
	w = &c->cw[c->cw_tail++ % CW_CAP];
	w->sk = sk_key(ev);
	w->since = ev->time_ns;
	w->ev = *ev;
}

/* CLOSE_WAIT watches whose threshold passed by now: report those still there. */
static void close_wait_check(struct rw_classifier *c, uint64_t now_ns)
{
	while (c->cw_head != c->cw_tail) {
		struct cw_watch *w = &c->cw[c->cw_head % CW_CAP];
		struct rw_conn *conn;
		struct rw_verdict v;

		if (w->since + c->close_wait_ns > now_ns)
			break;
		c->cw_head++;
		conn = rw_conntab_peek(c->tab, w->sk);
		if (!conn || !conn->close_wait || conn->since != w->since || conn->reported)
			continue;
		conn->reported = true;
		c->st.close_wait_stuck++;
		w->ev.time_ns = w->since + c->close_wait_ns;	/* when it became stuck */
		memset(&v, 0, sizeof(v));
		v.cls = RW_CL_CLOSE_WAIT;
		v.sub = RW_SUB_STUCK;
		v.origin = RW_OR_LIFECYCLE;
		v.state = RW_ST_CLOSE_WAIT;
		v.ev = &w->ev;
		v.duration_ns = c->close_wait_ns;
		v.ev_mask = RW_VE_DURATION;
		out(c, &v);
	}
}

/* ------------------------------------------------------------ time-wait table */

static void tw_forget(struct rw_classifier *c, struct rw_conn *tw)
{
	struct rw_conn *ep = rw_conntab_peek(c->ep, tw->endpoint);

	if (ep && --ep->count == 0)
		rw_conntab_del(c->ep, ep);
	cancel_pending(c, tw);
	rw_conntab_del(c->tw, tw);
}

/* Forget time-wait connections whose end can no longer come. */
static void tw_age(struct rw_classifier *c, uint64_t now_ns)
{
	struct rw_conn *tw;

	while ((tw = rw_conntab_oldest(c->tw)) && tw->err_time + TW_FORGET_NS < now_ns)
		tw_forget(c, tw);
}

/* The time-wait entry of ev's connection; created (and counted against its
 * endpoint) if new.  err_time holds when its timer was last armed. */
static struct rw_conn *tw_get(struct rw_classifier *c, const struct rw_event *ev, bool known_start)
{
	uint64_t key = tw_key(ev);
	struct rw_conn *tw = rw_conntab_get(c->tw, key), *ep;

	if (tw)
		return tw;
	tw = rw_conntab_add(c->tw, key);
	if (!tw) {
		tw_forget(c, rw_conntab_oldest(c->tw));
		tw = rw_conntab_add(c->tw, key);
	}
	/* a TIME_WAIT entry (CLOSE) starts it; a timer event from the kernel's
	 * own record of it knows when it began */
	tw->since = known_start ? ev->time_ns : ev->since_ns;
	tw->err_time = ev->time_ns;
	tw->endpoint = endpoint_key(ev);
	ep = rw_conntab_get(c->ep, tw->endpoint);
	if (!ep) {
		ep = rw_conntab_add(c->ep, tw->endpoint);
		if (!ep) {
			rw_conntab_del(c->ep, rw_conntab_oldest(c->ep));
			ep = rw_conntab_add(c->ep, tw->endpoint);
		}
	}
	ep->count++;
	return tw;
}

/* A connection entered TIME_WAIT (ev: its FIN_WAIT2/CLOSING -> CLOSE): say so
 * once if its endpoint is short of ephemeral ports. */
static void pressure_check(struct rw_classifier *c, const struct rw_conn *tw,
			   const struct rw_event *ev)
{
	struct rw_conn *ep = rw_conntab_peek(c->ep, tw->endpoint);
	uint32_t range;
	struct rw_verdict v;

	if (!ep || ep->reported || !(ev->flags & RW_EVF_PORTS) || ev->port_hi < ev->port_lo)
		return;
	range = (uint32_t)ev->port_hi - ev->port_lo + 1;
	if ((uint64_t)ep->count * 100 < (uint64_t)range * c->pressure_pct)
		return;
	ep->reported = true;
	memset(&v, 0, sizeof(v));
	v.cls = RW_CL_PORT_PRESSURE;
	v.origin = RW_OR_LIFECYCLE;
	v.state = RW_ST_TIME_WAIT;
	v.ev = ev;
	v.tw_count = ep->count;
	v.ev_mask = RW_VE_PRESSURE;
	out(c, &v);
}

/* ------------------------------------------------------------ ticks */

void rw_classify_tick(struct rw_classifier *c, uint64_t now_ns)
{
	while (c->pend_head != c->pend_tail) {
		struct pending *p = &c->pend[c->pend_head % PENDING_CAP];

		if (p->live && p->deadline > now_ns)
			break;
		settle(c, p);
		c->pend_head++;
	}
	close_wait_check(c, now_ns);
}

bool rw_classify_pending(const struct rw_classifier *c)
{
	return c->pend_head != c->pend_tail || c->cw_head != c->cw_tail;
}

void rw_classify_flush(struct rw_classifier *c)
{
	while (c->pend_head != c->pend_tail) {
		settle(c, &c->pend[c->pend_head % PENDING_CAP]);
		c->pend_head++;
	}
}

/* ------------------------------------------------------------ connections */

/* The first event a socket has: connect() leaves CLOSE, an accepted child
 * leaves SYN_RECV, a listener leaves CLOSE too. */
static bool starts_life(const struct rw_event *ev)
{
	return ev->kind == RW_EV_STATE &&
	       (ev->oldstate == RW_ST_CLOSE || ev->oldstate == RW_ST_SYN_RECV ||
		ev->oldstate == RW_ST_NEW_SYN_RECV);
}

/*
 * The entry for ev's socket, created if needed.  Socket addresses are slab
 * addresses and are reused; an entry whose socket already reached CLOSE but
 * which now shows a live state belongs to a socket whose destroy we missed.
 */
static struct rw_conn *conn_get(struct rw_classifier *c, const struct rw_event *ev, bool *fresh)
{
	struct rw_conn *conn = rw_conntab_get(c->tab, sk_key(ev));
	enum rw_state live = ev->kind == RW_EV_STATE ? ev->oldstate : ev->state;

	*fresh = false;
	if (conn)
		conn->last_ns = ev->time_ns;
	if (conn && conn->closed_from != RW_ST_UNKNOWN && live != RW_ST_CLOSE) {
		conn->destroyed = false;	/* the entry is reused, not forgotten */
		settle_conn(c, conn);	/* the old connection's verdict stands */
		close_wait_unstick(c, conn);
		conn->closed_from = RW_ST_UNKNOWN;
		conn->peer_reset = conn->keepalive_rst = conn->decided = false;
		conn->close_wait = conn->reported = false;
		conn->await_rst = conn->destroyed = false;
		conn->err = conn->err_soft = 0;
		*fresh = true;
	}
	if (conn)
		return conn;
	conn = rw_conntab_add(c->tab, sk_key(ev));
	if (!conn) {
		struct rw_conn *old = rw_conntab_oldest(c->tab);

		/* one whose verdict is out and that waits for nothing loses
		 * nothing; only the others count as evicted */
		if (old->decided && old->pending == RW_NO_PENDING && !old->close_wait) {
			rw_conntab_del(c->tab, old);
		} else {
			drop_conn(c, old);
			c->st.evictions++;
		}
		conn = rw_conntab_add(c->tab, sk_key(ev));
	}
	/* once the table has evicted, a connection first met mid-life may be
	 * one of those: what its lost entry knew is missing from its verdict */
	conn->history_lost = c->st.evictions && !starts_life(ev);
	conn->closed_from = RW_ST_UNKNOWN;
	conn->last_ns = ev->time_ns;
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
 * The socket left `from` for CLOSE with error err: decide the verdict.  ev is
 * the event that carried the error (the CLOSE transition, or the error report
 * that followed it).  Returns false when err is 0: nothing to decide.
 */
static bool close_with_error(struct rw_classifier *c, struct rw_conn *conn,
			     const struct rw_event *ev, enum rw_state from, int err, int soft)
{
	struct rw_verdict v;
	enum link_role role = LINK_NONE;

	if (!err)
		return false;
	if (rw_is_timeout(from, err, soft)) {
		verdict_init(&v, ev, RW_CL_TIMEOUT, RW_OR_LOCAL, from);
		v.sub = rw_timeout_subtype(ev, from, conn->keepalive_rst);
		if (v.sub == RW_SUB_KEEPALIVE) {
			/* the reason came with the RST, not with this transition */
			snprintf(v.reason, sizeof(v.reason), "%s", rw_reason_name(conn->rst_reason));
			role = LINK_SENDER;
		}
	} else if (err == ECONNABORTED) {
		/* tcp_abort() on a state that needs no RST (SYN_SENT, LAST_ACK...) */
		verdict_init(&v, ev, RW_CL_KILLED, RW_OR_LOCAL, from);
		v.ev_mask |= RW_VE_BY;
	} else {
		/* neither a reset (decided when the RST arrived) nor a timeout: a
		 * hard ICMP error while connecting */
		verdict_init(&v, ev, RW_CL_UNCLASSIFIED, RW_OR_LOCAL, from);
	}
	v.app_errno = err;
	v.ev_mask |= RW_VE_ERRNO;
	conn->decided = true;
	cancel_pending(c, conn);
	if (role == LINK_NONE)
		out(c, &v);
	else
		deliver(c, conn, PT_CONN, &v, ev, role);
	return true;
}

/*
 * FIN_WAIT2/CLOSING -> CLOSE without error: into TIME_WAIT, or, with no
 * time-wait socket in its place, past it.  Waits for an RST that would make
 * it something else (tcp_disconnect(), the linger2 abort, data that reached
 * an orphan: see kernel-events.md).  With no time-wait socket armed, the
 * overflow is decided only from positive evidence, the death row found full
 * (a trace of format 1 could not say: there the missing socket decides); an
 * RST may still follow, after the socket's destroy, so the entry stays.
 */
static void closed_orderly(struct rw_classifier *c, struct rw_conn *conn, const struct rw_event *ev)
{
	bool fin = ev->flags & RW_EVF_FIN_RCVD;
	bool no_tw = ev->flags & RW_EVF_NO_TW;
	bool full = !(ev->flags & RW_EVF_ROW_KNOWN) || (ev->flags & RW_EVF_ROW_FULL);
	struct rw_conn *tw;
	struct rw_verdict v;
	struct pending *p;

	verdict_init(&v, ev, no_tw ? RW_CL_TIME_WAIT_OVERFLOW : RW_CL_TIME_WAIT, RW_OR_LIFECYCLE,
		     fin ? RW_ST_TIME_WAIT : RW_ST_FIN_WAIT2);
	v.tw_substate = v.state;
	v.closed_first_local = ev->oldstate == RW_ST_FIN_WAIT2;
	v.ev_mask |= RW_VE_TIMEWAIT;
	p = defer(c, conn, PT_CONN, &v, ev);
	conn->await_rst = no_tw;
	if (no_tw) {
		p->silent = !full;	/* no time-wait socket, no overflow: what follows says */
		return;
	}
	tw = tw_get(c, ev, true);
	if (!(ev->flags & RW_EVF_EP_COUNTED))
		pressure_check(c, tw, ev);	/* a trace of format 1 */
}

static void on_close(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_conn *conn;
	int err, soft;
	bool fresh;

	if (ev->oldstate == RW_ST_CLOSE)
		return;
	conn = conn_get(c, ev, &fresh);
	conn->closed_from = ev->oldstate;
	if (conn->decided || conn->peer_reset)
		return;		/* the reset explains this CLOSE */
	/* the CLOSE's own sk_err, else one reported just before it */
	err = ev->sk_err;
	soft = ev->sk_err_soft;
	if (!err && ev->time_ns - conn->err_time <= RW_ERR_FRESH_NS) {
		err = conn->err;
		soft = conn->err_soft;
	}
	if (close_with_error(c, conn, ev, ev->oldstate, err, soft))
		return;
	if ((ev->oldstate == RW_ST_FIN_WAIT2 || ev->oldstate == RW_ST_CLOSING) && ev->linger2 >= 0)
		closed_orderly(c, conn, ev);
}

static void on_state(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_conn *conn;
	struct rw_verdict v;
	bool fresh;

	if (ev->newstate == RW_ST_CLOSE)
		on_close(c, ev);
	if (ev->newstate == RW_ST_CLOSE_WAIT) {
		conn = conn_get(c, ev, &fresh);
		close_wait_enter(c, conn, ev);
	} else if (ev->oldstate == RW_ST_CLOSE_WAIT) {
		conn = rw_conntab_peek(c->tab, sk_key(ev));
		if (!conn || !conn->close_wait)
			return;
		close_wait_unstick(c, conn);
		conn->close_wait = false;
		if (!conn->reported)
			return;
		conn->reported = false;
		verdict_init(&v, ev, RW_CL_CLOSE_WAIT, RW_OR_LIFECYCLE, RW_ST_CLOSE_WAIT);
		v.sub = RW_SUB_CLOSED;
		v.duration_ns = ev->time_ns - conn->since;
		v.ev_mask |= RW_VE_DURATION;
		out(c, &v);
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
	/* tcp_disconnect() zeroed inet_dport first: its RST decided already, or
	 * none was due (a TCP_REPAIR close) */
	if (ev->rport == 0)
		return;
	conn = rw_conntab_get(c->tab, sk_key(ev));
	/* the kernel sends no CLOSE that carried no error: the report, which
	 * carries the state it closed from, decides alone */
	if (!conn && ev->prevstate != RW_ST_UNKNOWN) {
		conn = conn_get(c, ev, &fresh);
		conn->closed_from = ev->prevstate;
	}
	if (conn && !conn->decided && !conn->peer_reset && conn->closed_from != RW_ST_UNKNOWN)
		close_with_error(c, conn, ev, conn->closed_from, ev->sk_err, ev->sk_err_soft);
}

/* An RST this host sent for a segment that found no full socket: no socket
 * at all, a time-wait socket, or a listener. */
static void reset_reply(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_verdict v;
	bool syn = (ev->seg_flags & RW_SEG_SYN) && !(ev->seg_flags & RW_SEG_ACK);

	if (!(ev->flags & RW_EVF_SK)) {
		verdict_init(&v, ev, syn ? RW_CL_REFUSED : RW_CL_HALF_OPEN, RW_OR_REPLY,
			     RW_ST_UNKNOWN);
	} else if (ev->state == RW_ST_TIME_WAIT) {
		struct rw_conn *tw = rw_conntab_get(c->tw, tw_key(ev));
		bool fw2 = (ev->flags & RW_EVF_SUBSTATE) && ev->tw_substate == RW_ST_FIN_WAIT2;

		/* the time-wait socket dies right after: that end is this RST */
		if (tw)
			tw->decided = true;
		if (fw2 && ev->seg_len > 0) {
			verdict_init(&v, ev, RW_CL_DATA_AFTER_CLOSE, RW_OR_LOCAL, RW_ST_FIN_WAIT2);
		} else {
			verdict_init(&v, ev, RW_CL_TIME_WAIT_RST, RW_OR_REPLY,
				     fw2 ? RW_ST_FIN_WAIT2 : RW_ST_TIME_WAIT);
			v.tw_substate = v.state;
			v.ev_mask |= RW_VE_TIMEWAIT;
			v.closed_first_local = true;
		}
	} else if (ev->state == RW_ST_LISTEN) {
		/* tcp_check_req(): the handshake's ACK found the accept queue
		 * full.  Without a reason, an ACK the listener's own input
		 * answered (tcp_rcv_state_process(): for a connection gone, say
		 * one its child reset while the ACK was in flight) is no
		 * overflow */
		bool ack_only = (ev->seg_flags & RW_SEG_ACK) && !(ev->seg_flags & RW_SEG_SYN);
		bool overflow = ev->reason == RW_RSN_INVALID_SYN ||
				(ev->reason == RW_RSN_NONE && ack_only &&
				 !(ev->flags & RW_EVF_SOCK_INPUT));

		verdict_init(&v, ev, overflow && ack_only ? RW_CL_LISTEN_OVERFLOW : RW_CL_HALF_OPEN,
			     RW_OR_REPLY, RW_ST_LISTEN);
	} else {
		verdict_init(&v, ev, RW_CL_UNCLASSIFIED, RW_OR_REPLY, ev->state);
	}
	deliver(c, NULL, PT_CONN, &v, ev, LINK_SENDER);
}

/*
 * The state a socket in CLOSE left: from its CLOSE event; from the kernel,
 * which keeps it and sends it with the RST (no CLOSE event is sent for a
 * close an RST explains); or, after tcp_reset() closed it, the state the
 * reset arrived in.  ev: the RST, sent in CLOSE.
 */
static enum rw_state closed_from(const struct rw_classifier *c, const struct rw_conn *conn,
				 const struct rw_event *ev)
{
	if (conn->closed_from != RW_ST_UNKNOWN)
		return conn->closed_from;
	if (ev->prevstate != RW_ST_UNKNOWN)
		return ev->prevstate;
	if (conn->peer_reset && conn->pending != RW_NO_PENDING)
		return c->pend[conn->pending].ev.state;
	return ev->state;
}

/* The owner the pending verdict's event knew, for an event that came after
 * the socket's destroy had dropped it from the owners map. */
static const struct rw_event *with_owner(struct rw_classifier *c, const struct rw_conn *conn,
					 const struct rw_event *ev, struct rw_event *buf)
{
	const struct rw_event *old;

	if ((ev->flags & RW_EVF_OWNER) || conn->pending == RW_NO_PENDING)
		return ev;
	old = &c->pend[conn->pending].ev;
	if (!(old->flags & RW_EVF_OWNER))
		return ev;
	*buf = *ev;
	buf->flags |= RW_EVF_OWNER;
	buf->pid = old->pid;
	buf->start_ns = old->start_ns;
	memcpy(buf->comm, old->comm, sizeof(buf->comm));
	memcpy(buf->cgroup, old->cgroup, sizeof(buf->cgroup));
	return buf;
}

static void on_send_reset(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_verdict v;
	struct rw_conn *conn;
	struct rw_event owned;
	enum rw_state prev;
	bool fresh, closing;

	if (!(ev->flags & RW_EVF_FULL) || ev->state == RW_ST_LISTEN) {
		reset_reply(c, ev);
		return;
	}
	conn = conn_get(c, ev, &fresh);
	ev = with_owner(c, conn, ev, &owned);
	closing = ev->state == RW_ST_CLOSE;

	if (ev->reason == RW_RSN_TCP_KEEPALIVE_TIMEOUT ||
	    (rw_no_reason(ev) && !closing && ev->probes_out > 0 &&
	     (ev->flags & RW_EVF_KEEPALIVE) && ev->sk_err == 0)) {
		conn->keepalive_rst = true;	/* the timeout verdict follows with CLOSE */
		conn->rst_reason = ev->reason;
		return;
	}
	/* FIN_WAIT2 -> CLOSE followed by RST: not TIME_WAIT; a reset received
	 * just before in FIN_WAIT1/2 was tcp_reset() answering data */
	if (conn->decided && !(conn->peer_reset && conn->pending != RW_NO_PENDING))
		return;
	prev = closing ? closed_from(c, conn, ev) : ev->state;
	cancel_pending(c, conn);

	verdict_init(&v, ev, rw_local_abort(ev, prev, closing, conn->peer_reset), RW_OR_LOCAL, prev);
	if (v.cls == RW_CL_UNREAD_DATA)
		v.unread_bytes = rw_unread_bytes(ev);
	if (v.cls == RW_CL_BAD_ACK)
		v.origin = RW_OR_REPLY;
	if (v.cls == RW_CL_KILLED) {
		v.app_errno = closing ? ECONNRESET : ECONNABORTED;
		v.ev_mask |= RW_VE_ERRNO | RW_VE_BY;
	}
	if (fresh && closing && ev->prevstate == RW_ST_UNKNOWN)
		v.ev_mask |= RW_VE_NO_STATE;
	conn->decided = true;
	conn->await_rst = false;
	deliver(c, conn, PT_CONN, &v, ev, LINK_SENDER);
	forget_if_done(c, conn);	/* the RST after destroy: nothing follows it */
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
	if (ev->flags & RW_EVF_SEQ)
		v.ev_mask |= RW_VE_SEQ;
	if (ev->flags & RW_EVF_IDLE) {
		v.ev_mask |= RW_VE_IDLE;
		v.idle = rw_idle_fit(ev);
	}
	/* tcp_reset(): what the application's next call returns */
	v.app_errno = ev->state == RW_ST_SYN_SENT ? ECONNREFUSED :
		      ev->state == RW_ST_CLOSE_WAIT ? EPIPE : ECONNRESET;
	if (ev->flags & RW_EVF_ORPHAN)
		v.app_errno = 0;	/* closed already: nobody sees it */
	v.ev_mask |= RW_VE_ERRNO;
	/* the RST tcp_v4_do_rcv() sends next decides (data_after_close); the
	 * verdict waits for it */
	if (reset_for_data(ev))
		conn->decided = false;
	deliver(c, conn, PT_CONN, &v, ev, LINK_RECEIVER);
}

/* ------------------------------------------------------------ time-wait timer */

static void tw_end_verdict(struct rw_verdict *v, const struct rw_conn *tw, const struct rw_event *ev,
			   enum rw_subtype sub)
{
	verdict_init(v, ev, RW_CL_TIME_WAIT, RW_OR_LIFECYCLE, RW_ST_TIME_WAIT);
	v->sub = sub;
	if (ev->flags & RW_EVF_SUBSTATE) {
		v->state = ev->tw_substate;
		v->tw_substate = ev->tw_substate;
	}
	if (tw->since) {
		v->duration_ns = ev->time_ns - tw->since;
		v->ev_mask |= RW_VE_DURATION;
	}
}

/* A SYN took the 4-tuple of a time-wait socket whose cancel is waiting. */
static void on_tw_syn_reuse(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_conn *tw = rw_conntab_peek(c->tw, tw_key(ev));
	struct pending *p;

	if (!tw || tw->pending == RW_NO_PENDING)
		return;
	p = &c->pend[tw->pending];
	p->v.sub = RW_SUB_REUSED;
	p->v.ev_mask &= ~RW_VE_BY;
	p->has_v2 = false;	/* no assassination after all */
	settle(c, p);
	tw_forget(c, tw);
}

static void on_tw_timer(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_conn *tw = tw_get(c, ev, false);
	struct rw_verdict v;
	struct pending *p;

	switch (ev->kind) {
	case RW_EV_TW_ARM:
		cancel_pending(c, tw);	/* a cancel that was a re-arm */
		tw->err_time = ev->time_ns;
		if (!tw->since)
			tw->since = ev->time_ns;
		return;
	case RW_EV_TW_EXPIRE:
		cancel_pending(c, tw);
		if (!tw->decided) {
			tw_end_verdict(&v, tw, ev, RW_SUB_EXPIRED);
			out(c, &v);
		}
		tw_forget(c, tw);
		return;
	default:
		break;
	}
	/* cancelled */
	if (tw->decided) {
		tw_forget(c, tw);
		return;
	}
	if (!(ev->flags & RW_EVF_HASHED) && (ev->flags & RW_EVF_HASH_KNOWN)) {
		tw_end_verdict(&v, tw, ev, RW_SUB_REUSED);	/* connect() took the 4-tuple */
		out(c, &v);
		tw_forget(c, tw);
		return;
	}
	tw_end_verdict(&v, tw, ev, RW_SUB_KILLED);
	if (!(ev->flags & RW_EVF_CONTEXT) || !(ev->flags & RW_EVF_SOFTIRQ)) {
		/* in a task: tcp_abort() (ss -K) or a netns going away; or the
		 * context is unknown, and no RST is claimed */
		if (ev->flags & RW_EVF_CONTEXT)
			v.ev_mask |= RW_VE_BY;
		defer(c, tw, PT_TW, &v, ev);
		return;
	}
	/* in softirq: an RST killed it, or a SYN took it (on_tw_syn_reuse()) */
	p = defer(c, tw, PT_TW, &v, ev);
	verdict_init(&p->v2, &p->ev, RW_CL_PEER_RESET, RW_OR_PEER, v.state);
	p->v2.tw_substate = v.tw_substate;
	p->v2.ev_mask |= RW_VE_TIMEWAIT;
	p->v2.closed_first_local = true;
	p->has_v2 = true;
}

/*
 * The socket is freed.  A verdict waiting for its other end keeps waiting
 * (the sender's RST is traced after the receiver's reset, CLOSE and destroy);
 * one waiting for an RST of its own is settled, but a reset received in
 * FIN_WAIT1/2 waits, with its entry, for the RST that answers the data,
 * which tcp_v4_do_rcv() sends after the destroy.
 */
static void on_destroy(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_conn *conn = rw_conntab_get(c->tab, sk_key(ev));

	if (!conn)
		return;
	if (conn->pending != RW_NO_PENDING) {
		/* an RST of its own may still come: keep the entry (its owner, the
		 * state it closed from) until it does or the wait ends */
		if ((conn->peer_reset && !conn->decided) || conn->await_rst) {
			conn->destroyed = true;
			return;
		}
		if (c->pend[conn->pending].role != LINK_NONE)
			conn->pending = RW_NO_PENDING;	/* it waits on, without its entry */
	}
	drop_conn(c, conn);
}

/*
 * The kernel's CLOSE_WAIT walk found a socket there past --close-wait (the
 * kernel keeps when each socket entered CLOSE_WAIT; no record is sent for
 * the many that leave it in time).  Its exit comes as a CLOSE_WAIT -> x
 * transition: on_state() says when it finally closed.
 */
static void on_cw_stuck(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_conn *conn;
	struct rw_verdict v;
	bool fresh;

	conn = conn_get(c, ev, &fresh);
	if (conn->close_wait && conn->reported)
		return;
	close_wait_unstick(c, conn);	/* its leaving was not seen */
	conn->close_wait = conn->reported = true;
	c->st.close_wait_stuck++;
	conn->since = ev->since_ns;
	verdict_init(&v, ev, RW_CL_CLOSE_WAIT, RW_OR_LIFECYCLE, RW_ST_CLOSE_WAIT);
	v.sub = RW_SUB_STUCK;
	if (ev->since_ns && ev->since_ns <= ev->time_ns) {
		v.duration_ns = ev->time_ns - ev->since_ns;
		v.ev_mask |= RW_VE_DURATION;
	}
	out(c, &v);
}

/* A TIME_WAIT entry brought its endpoint to --port-pressure: the kernel
 * counts TIME_WAIT sockets per endpoint and says so once. */
static void on_pressure(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_verdict v;

	memset(&v, 0, sizeof(v));
	v.cls = RW_CL_PORT_PRESSURE;
	v.origin = RW_OR_LIFECYCLE;
	v.state = RW_ST_TIME_WAIT;
	v.ev = ev;
	v.tw_count = ev->tw_count;
	v.ev_mask = RW_VE_PRESSURE;
	out(c, &v);
}

/*
 * The peer probe found the other end of a reset receiver (ev->about) among
 * the sockets rstwatch watches on this host, synchronised: if no RST of this
 * host on the connection comes within the receiver's wait, neither end sent
 * it (settle()).  A receiver no longer waiting (linked, or settled) ignores it.
 */
static void on_peer(struct rw_classifier *c, const struct rw_event *ev)
{
	uint32_t *slot = other_slot(c, ev, LINK_RECEIVER);
	struct pending *p = slot ? &c->pend[*slot] : NULL;

	if (!p || p->ev.sk != ev->about || p->v.cls != RW_CL_PEER_RESET)
		return;
	peer_from(&p->v, ev, ev->state);
}

/* tcp_validate_incoming() refused an RST: the connection lives on. */
static void on_challenge(struct rw_classifier *c, const struct rw_event *ev)
{
	struct rw_verdict v;

	verdict_init(&v, ev, RW_CL_CHALLENGED_RST, RW_OR_PEER, ev->state);
	v.sub = ev->flags & RW_EVF_IN_WINDOW ? RW_SUB_IN_WINDOW : RW_SUB_OUT_OF_WINDOW;
	if (ev->flags & RW_EVF_SEQ)
		v.ev_mask |= RW_VE_SEQ;
	out(c, &v);
}

/*
 * Forget connections whose verdict is out and that wait for nothing, once
 * nothing was heard of them for RW_CONN_AGE_NS: the kernel sends no destroy
 * for them (it keeps their story and sends only what becomes a verdict), so
 * without this their entries would fill the table.  A few per event, oldest
 * first; one still in use is moved to the front.
 */
static void conn_age(struct rw_classifier *c, uint64_t now_ns)
{
	for (int i = 0; i < 4; i++) {
		struct rw_conn *conn = rw_conntab_oldest(c->tab);

		if (!conn || conn->last_ns + RW_CONN_AGE_NS > now_ns)
			return;
		if (conn->pending == RW_NO_PENDING && !conn->close_wait)
			rw_conntab_del(c->tab, conn);
		else
			rw_conntab_get(c->tab, conn->sk)->last_ns = now_ns;
	}
}

void rw_classify(struct rw_classifier *c, const struct rw_event *ev)
{
	c->st.events++;
	rw_classify_tick(c, ev->time_ns);
	tw_age(c, ev->time_ns);
	conn_age(c, ev->time_ns);
	switch (ev->kind) {
	case RW_EV_STATE:
		on_state(c, ev);
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
		on_destroy(c, ev);
		break;
	case RW_EV_TW_ARM:
	case RW_EV_TW_CANCEL:
	case RW_EV_TW_EXPIRE:
		on_tw_timer(c, ev);
		break;
	case RW_EV_TW_SYN_REUSE:
		on_tw_syn_reuse(c, ev);
		break;
	case RW_EV_CW_STUCK:
		on_cw_stuck(c, ev);
		break;
	case RW_EV_PRESSURE:
		on_pressure(c, ev);
		break;
	case RW_EV_PEER:
		on_peer(c, ev);
		break;
	case RW_EV_CHALLENGE:
		on_challenge(c, ev);
		break;
	default:
		break;
	}
}
