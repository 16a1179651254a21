// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Kernel record -> kernel-independent event.
 *
 * TCP state and reset-reason numbers are read from this kernel's BTF by name:
 * enum sk_rst_reason was introduced in 6.10 and has been renumbered since
 * (bcc's hard-coded tables drifted the same way, bcc#5329).
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <bpf/btf.h>

#include "decode.h"
#include "events.h"

_Static_assert(sizeof(struct rw_record) == 264, "rw_record layout changed: update rw_decode()");
_Static_assert((int)RW_EV_STATE == (int)RW_REC_SET_STATE &&
	       (int)RW_EV_SEND_RESET == (int)RW_REC_SEND_RESET &&
	       (int)RW_EV_RECV_RESET == (int)RW_REC_RECV_RESET &&
	       (int)RW_EV_ERROR == (int)RW_REC_ERROR &&
	       (int)RW_EV_DESTROY == (int)RW_REC_DESTROY && (int)RW_EV_TW_ARM == (int)RW_REC_TW_ARM &&
	       (int)RW_EV_TW_CANCEL == (int)RW_REC_TW_CANCEL &&
	       (int)RW_EV_TW_EXPIRE == (int)RW_REC_TW_EXPIRE &&
	       (int)RW_EV_TW_SYN_REUSE == (int)RW_REC_TW_SYN_REUSE &&
	       (int)RW_EV_CW_STUCK == (int)RW_REC_CW_STUCK &&
	       (int)RW_EV_PRESSURE == (int)RW_REC_PRESSURE &&
	       (int)RW_EV_CHALLENGE == (int)RW_REC_CHALLENGE &&
	       (int)RW_EV_PEER == (int)RW_REC_PEER, "event kinds mirror record types");

_Static_assert(RW_SEG_SYN == RW_TCP_SYN && RW_SEG_ACK == RW_TCP_ACK && RW_SEG_FIN == RW_TCP_FIN &&
	       RW_SEG_RST == RW_TCP_RST, "segment flags are copied as the wire's bits");

#define STATE_PREFIX "TCP_"
#define REASON_PREFIX "SK_RST_REASON_"

/* Find the enum that holds enumerator `name`; returns its type id or -1. */
static int find_enum_with(const struct btf *btf, const char *name)
{
	int n = (int)btf__type_cnt(btf);

	for (int id = 1; id < n; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		const struct btf_enum *e;

		if (!btf_is_enum(t))
			continue;
		e = btf_enum(t);
		for (int i = 0; i < btf_vlen(t); i++)
			if (strcmp(btf__name_by_offset(btf, e[i].name_off), name) == 0)
				return id;
	}
	return -1;
}

int rw_decoder_init(struct rw_decoder *d, const struct btf *btf, char *err, size_t errlen)
{
	const struct btf_type *t;
	const struct btf_enum *e;
	int id;

	memset(d->state_map, RW_ST_UNKNOWN, sizeof(d->state_map));
	memset(d->reason_map, RW_RSN_OTHER, sizeof(d->reason_map));
	memset(d->reason_names, 0, sizeof(d->reason_names));
	d->have_reasons = false;

	id = find_enum_with(btf, "TCP_ESTABLISHED");
	if (id < 0) {
		snprintf(err, errlen, "kernel BTF has no TCP state enum (TCP_ESTABLISHED)");
		return -1;
	}
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (int i = 0; i < btf_vlen(t); i++) {
		const char *n = btf__name_by_offset(btf, e[i].name_off);

		if (e[i].val < 0 || e[i].val > 255 || strncmp(n, STATE_PREFIX, strlen(STATE_PREFIX)))
			continue;
		d->state_map[e[i].val] = rw_state_from_name(n + strlen(STATE_PREFIX));
	}

	id = btf__find_by_name_kind(btf, "sk_rst_reason", BTF_KIND_ENUM);
	if (id > 0) {
		t = btf__type_by_id(btf, id);
		e = btf_enum(t);
		d->have_reasons = true;
		for (int i = 0; i < btf_vlen(t); i++) {
			const char *n = btf__name_by_offset(btf, e[i].name_off);

			if (e[i].val < 0 || e[i].val >= RW_MAX_KREASONS)
				continue;
			if (strncmp(n, REASON_PREFIX, strlen(REASON_PREFIX)) == 0)
				n += strlen(REASON_PREFIX);
			snprintf(d->reason_names[e[i].val], RW_REASON_NAME_MAX, "%s", n);
			d->reason_map[e[i].val] = rw_reason_from_name(d->reason_names[e[i].val]);
		}
	}
	return 0;
}

static enum rw_state state_of(const struct rw_decoder *d, uint8_t raw)
{
	return d->state_map[raw];
}

int rw_decode(const struct rw_decoder *d, const void *data, size_t size, struct rw_event *ev)
{
	const struct rw_record *r = data;

	if (size < sizeof(*r))
		return -1;
	if (r->type < RW_REC_SET_STATE || r->type > RW_REC_PEER)
		return -1;

	memset(ev, 0, sizeof(*ev));
	ev->kind = r->type;	/* enum rw_ev_kind mirrors enum rw_rec_type */
	ev->time_ns = r->ts_boot_ns + d->boot_to_real_ns;
	/* a time-wait socket whose full socket never had a cookie: its address,
	 * which no cookie equals (cookies count up from 1, addresses are >= 2^63) */
	ev->sk = r->cookie ? r->cookie : r->skaddr;
	ev->skaddr = r->skaddr;
	ev->state = state_of(d, r->state);
	ev->oldstate = state_of(d, r->oldstate);
	ev->newstate = state_of(d, r->newstate);
	ev->prevstate = state_of(d, r->prevstate);
	ev->family = r->family == AF_INET6 ? 6 : 4;
	memcpy(ev->laddr, r->laddr, 16);
	memcpy(ev->raddr, r->raddr, 16);
	ev->lport = r->lport;
	ev->rport = r->rport;
	ev->netns = r->netns;

	if (r->type == RW_REC_SEND_RESET && r->reason != RW_REASON_NONE) {
		if (r->reason < RW_MAX_KREASONS && d->reason_names[r->reason][0]) {
			ev->reason = d->reason_map[r->reason];
			memcpy(ev->reason_name, d->reason_names[r->reason], RW_REASON_NAME_MAX);
		} else {
			ev->reason = RW_RSN_OTHER;
			snprintf(ev->reason_name, sizeof(ev->reason_name), "%u", r->reason);
		}
	}

	if (r->sk_flags & RW_SKF_HAS_SK)
		ev->flags |= RW_EVF_SK;
	if (r->sk_flags & RW_SKF_HAS_SKB) {
		ev->flags |= RW_EVF_SEG;
		ev->seg_flags = r->seg_flags;
		ev->seg_len = r->seg_len;
	}
	if (r->sk_flags & RW_SKF_FULL) {
		ev->flags |= RW_EVF_FULL;
		if (r->sk_flags & RW_SKF_LINGER)
			ev->flags |= RW_EVF_LINGER;
		if (r->sk_flags & RW_SKF_DEAD)
			ev->flags |= RW_EVF_ORPHAN;
		if (r->sk_flags & RW_SKF_DONE)
			ev->flags |= RW_EVF_FIN_RCVD;
		if (r->sk_flags & RW_SKF_KEEPOPEN)
			ev->flags |= RW_EVF_KEEPALIVE;
		ev->shutdown = r->sk_shutdown;
		ev->unread = r->unread;
		ev->unsent = r->unsent;
		ev->inflight = r->inflight;
		ev->total_retrans = r->total_retrans;
		ev->retransmits = r->retransmits;
		ev->probes_out = r->probes_out;
		ev->sk_err = r->sk_err;
		ev->sk_err_soft = r->sk_err_soft;
		ev->linger2 = r->linger2;
		ev->lingertime = r->lingertime;
		ev->user_timeout_ms = r->user_timeout;
		ev->snd_wnd = r->snd_wnd;
		ev->bytes_received = r->bytes_received;
		ev->bytes_acked = r->bytes_acked;
		ev->snd_una = r->snd_una;
		ev->rcv_nxt = r->rcv_nxt;
	}
	if (r->xflags & RW_XF_ACTIVE)
		ev->flags |= RW_EVF_ACTIVE;
	if (r->xflags & RW_XF_PASSIVE)
		ev->flags |= RW_EVF_PASSIVE;
	if (r->sk_flags & RW_SKF_OWNER) {
		ev->flags |= RW_EVF_OWNER;
		ev->pid = r->owner_pid;
		memcpy(ev->comm, r->owner_comm, RW_COMM_MAX);
		if (r->start_ns)
			ev->start_ns = r->start_ns + d->boot_to_real_ns;
		if (d->owner_cgroup)
			d->owner_cgroup(r->owner_cgroup, ev);
	}
	if (r->xflags & RW_XF_SUBSTATE) {
		ev->flags |= RW_EVF_SUBSTATE;
		ev->tw_substate = state_of(d, r->tw_substate);
	}
	if (r->xflags & RW_XF_PORTS) {
		ev->flags |= RW_EVF_PORTS;
		ev->port_lo = r->port_lo;
		ev->port_hi = r->port_hi;
	}
	if (r->type == RW_REC_TW_CANCEL || r->type == RW_REC_TW_EXPIRE) {
		ev->flags |= RW_EVF_HASH_KNOWN;
		if (!(r->xflags & RW_XF_UNHASHED))
			ev->flags |= RW_EVF_HASHED;
	}
	if ((r->xflags & RW_XF_TW_KNOWN) && !(r->xflags & RW_XF_TW_ARMED))
		ev->flags |= RW_EVF_NO_TW;
	if (r->xflags & RW_XF_ROW_KNOWN) {
		ev->flags |= RW_EVF_ROW_KNOWN;
		if (r->xflags & RW_XF_ROW_FULL)
			ev->flags |= RW_EVF_ROW_FULL;
	}
	if (r->xflags & RW_XF_EP_COUNTED)
		ev->flags |= RW_EVF_EP_COUNTED;
	if (r->type == RW_REC_DESTROY && (r->xflags & RW_XF_CLOSE_UNSEEN))
		ev->flags |= RW_EVF_CLOSE_UNSEEN;
	if (r->xflags & RW_XF_SINCE)
		ev->since_ns = r->since_ns + d->boot_to_real_ns;
	ev->tw_count = r->count;
	ev->seg_seq = r->seg_seq;
	if (r->rflags & RW_RF_SEQ) {
		ev->flags |= RW_EVF_SEQ;
		ev->rcv_nxt = r->rcv_nxt;
		ev->snd_nxt = r->snd_nxt;
		ev->rcv_wnd = r->rcv_wnd;
	}
	if (r->rflags & RW_RF_IDLE) {
		ev->flags |= RW_EVF_IDLE;
		ev->last_sent_ms = r->last_sent_ms;
		ev->last_recv_ms = r->last_recv_ms;
		ev->last_ack_ms = r->last_ack_ms;
	}
	if (r->rflags & RW_RF_IN_WINDOW)
		ev->flags |= RW_EVF_IN_WINDOW;
	if (r->rflags & RW_RF_SOCK_INPUT)
		ev->flags |= RW_EVF_SOCK_INPUT;
	ev->about = r->about;
	if (r->xflags & RW_XF_CONTEXT) {
		ev->flags |= RW_EVF_CONTEXT;
		if (r->xflags & RW_XF_SOFTIRQ)
			ev->flags |= RW_EVF_SOFTIRQ;
	}
	ev->cur_pid = r->cur_pid;
	memcpy(ev->cur_comm, r->cur_comm, RW_COMM_MAX);
	return 0;
}
