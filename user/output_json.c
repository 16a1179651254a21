// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * JSON Lines: one object per verdict.  Keys are only ever added, never renamed
 * or removed (deploy/rstwatch.schema.json).  Strings that come from outside (comm,
 * cgroup) go through rw_json_str(), so one verdict is always one parseable line.
 */
#include <inttypes.h>
#include <string.h>

#include "escape.h"
#include "flow.h"
#include "output.h"

/*
 * A verdict's line is built in memory and leaves with one fwrite: with a
 * stdio call per key, number and string piece (and before that an fprintf
 * per key), stdio was most of what a JSON verdict cost (BENCHMARKS.md).  A
 * line longer than the buffer is written out in pieces; it stays one line.
 */
struct jline {
	FILE *f;
	size_t len;
	char buf[4096];
};

static void jflush(struct jline *j)
{
	fwrite(j->buf, 1, j->len, j->f);
	j->len = 0;
}

/* room for n more bytes (n <= sizeof(buf)) */
static char *jroom(struct jline *j, size_t n)
{
	if (sizeof(j->buf) - j->len < n)
		jflush(j);
	return j->buf + j->len;
}

static void jput(struct jline *j, const char *s, size_t n)
{
	memcpy(jroom(j, n), s, n);
	j->len += n;
}

#define JLIT(j, lit) jput(j, lit, sizeof(lit) - 1)

static void jstr(struct jline *j, const char *s, size_t maxlen)
{
	size_t n = strnlen(s, maxlen);

	JLIT(j, "\"");
	while (n > 0) {
		jroom(j, 64);
		j->len += rw_json_esc(j->buf + j->len, sizeof(j->buf) - j->len, &s, &n);
	}
	JLIT(j, "\"");
}

static void put_u64(struct jline *j, uint64_t v)
{
	char buf[24], *p = buf + sizeof(buf);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	jput(j, p, (size_t)(buf + sizeof(buf) - p));
}

static void key(struct jline *j, const char *k, bool *first)
{
	if (!*first)
		JLIT(j, ",");
	JLIT(j, "\"");
	jput(j, k, strlen(k));
	JLIT(j, "\":");
	*first = false;
}

static void kstr(struct jline *j, const char *k, const char *v, bool *first)
{
	key(j, k, first);
	if (v)
		jstr(j, v, SIZE_MAX);
	else
		JLIT(j, "null");
}

/* a string from outside (a name, an id) of at most max bytes; "" is null */
static void kname(struct jline *j, const char *k, const char *v, size_t max, bool *first)
{
	key(j, k, first);
	if (v && v[0])
		jstr(j, v, max);
	else
		JLIT(j, "null");
}

static void ku64(struct jline *j, const char *k, uint64_t v, bool *first)
{
	key(j, k, first);
	put_u64(j, v);
}

static void ki64(struct jline *j, const char *k, int64_t v, bool *first)
{
	key(j, k, first);
	if (v < 0)
		JLIT(j, "-");
	put_u64(j, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

static void kbool(struct jline *j, const char *k, bool v, bool *first)
{
	key(j, k, first);
	if (v)
		JLIT(j, "true");
	else
		JLIT(j, "false");
}

static void evidence(struct jline *f, const struct rw_verdict *v)
{
	const struct rw_event *ev = v->ev;
	bool first = true;

	JLIT(f, "{");
	if (v->ev_mask & RW_VE_ERRNO)
		kstr(f, "errno", rw_errno_name(v->app_errno), &first);
	if (v->ev_mask & RW_VE_SOCKET) {
		int64_t life = rw_lifetime_ms(ev);

		ku64(f, "unread_bytes", v->unread_bytes, &first);
		ku64(f, "unsent_bytes", ev->unsent, &first);
		ku64(f, "inflight_bytes", ev->inflight, &first);
		ku64(f, "retransmits", ev->retransmits, &first);
		ku64(f, "total_retrans", ev->total_retrans, &first);
		ku64(f, "probes", ev->probes_out, &first);
		kstr(f, "sk_err", rw_errno_name(ev->sk_err), &first);
		kstr(f, "so_linger", rw_linger_name(ev), &first);
		kbool(f, "keepalive", ev->flags & RW_EVF_KEEPALIVE, &first);
		kbool(f, "orphan", ev->flags & RW_EVF_ORPHAN, &first);
		kbool(f, "fin_received", ev->flags & RW_EVF_FIN_RCVD, &first);
		ku64(f, "bytes_received", ev->bytes_received, &first);
		ku64(f, "bytes_acked", ev->bytes_acked, &first);
		key(f, "lifetime_ms", &first);
		if (life >= 0)
			put_u64(f, (uint64_t)life);
		else
			JLIT(f, "null");
	}
	if (v->ev_mask & RW_VE_SEGMENT) {
		char fl[40];

		rw_fmt_tcp_flags(ev->seg_flags, fl, sizeof(fl));
		kstr(f, "segment_flags", fl, &first);
		ku64(f, "segment_bytes", ev->seg_len, &first);
	}
	if (v->ev_mask & RW_VE_TIMEWAIT) {
		kstr(f, "closed_first", v->closed_first_local ? "local" : "simultaneous", &first);
		kstr(f, "substate", rw_state_name(v->tw_substate), &first);
	}
	if (v->ev_mask & RW_VE_BY) {
		ku64(f, "by_pid", ev->cur_pid, &first);
		key(f, "by_comm", &first);
		jstr(f, ev->cur_comm, RW_COMM_MAX);
	}
	if (v->ev_mask & RW_VE_DURATION)
		ku64(f, v->cls == RW_CL_CLOSE_WAIT ? "close_wait_ms" : "tw_duration_ms",
		     v->duration_ns / 1000000, &first);
	if (v->ev_mask & RW_VE_PRESSURE) {
		char range[16];

		snprintf(range, sizeof(range), "%u-%u", ev->port_lo, ev->port_hi);
		ku64(f, "time_wait_count", v->tw_count, &first);
		kstr(f, "port_range", range, &first);
	}
	if (v->ev_mask & RW_VE_SEQ) {
		ku64(f, "rcv_nxt", ev->rcv_nxt, &first);
		ku64(f, "snd_nxt", ev->snd_nxt, &first);
		ku64(f, "rcv_wnd", ev->rcv_wnd, &first);
		if (v->cls == RW_CL_CHALLENGED_RST) {
			ku64(f, "rst_seq", ev->seg_seq, &first);
			ki64(f, "seq_offset", (int32_t)(ev->seg_seq - ev->rcv_nxt), &first);
		}
	}
	if (v->ev_mask & RW_VE_IDLE) {
		ku64(f, "last_sent_ms", ev->last_sent_ms, &first);
		ku64(f, "last_recv_ms", ev->last_recv_ms, &first);
		ku64(f, "last_ack_ms", ev->last_ack_ms, &first);
	}
	if (v->ev_mask & RW_VE_PEER) {
		kstr(f, "peer_state", rw_state_name(v->peer.state), &first);
		key(f, "peer_pid", &first);
		if (v->peer.pid)
			put_u64(f, v->peer.pid);
		else
			JLIT(f, "null");
		key(f, "peer_comm", &first);
		if (v->peer.pid)
			jstr(f, v->peer.comm, RW_COMM_MAX);
		else
			JLIT(f, "null");
		ku64(f, "peer_netns", v->peer.netns, &first);
		ku64(f, "peer_snd_nxt", v->peer.snd_nxt, &first);
	}
	if (v->ev_mask & RW_VE_NO_STATE)
		kbool(f, "partial", true, &first);
	JLIT(f, "}");
}

void rw_json_verdict(FILE *out, const struct rw_verdict *v)
{
	struct jline line = { .f = out }, *f = &line;
	const struct rw_event *ev = v->ev;
	bool owner = ev->flags & RW_EVF_OWNER;
	char addr[RW_ADDR_STR], tbuf[40];
	bool first = true;
	uint64_t flow;

	JLIT(f, "{");
	rw_fmt_time_rfc3339(ev->time_ns, tbuf, sizeof(tbuf));
	kstr(f, "time", tbuf, &first);
	kstr(f, "class", rw_class_name(v->cls), &first);
	kstr(f, "subtype", rw_subtype_name(v->sub), &first);
	kstr(f, "origin", rw_origin_name(v->origin), &first);
	kstr(f, "reason", v->reason[0] ? v->reason : NULL, &first);
	kstr(f, "state", v->state == RW_ST_UNKNOWN ? NULL : rw_state_name(v->state), &first);
	kstr(f, "family", ev->family == 6 ? "ipv6" : "ipv4", &first);
	rw_fmt_addr(ev, true, addr, sizeof(addr));
	kstr(f, "laddr", addr, &first);
	ku64(f, "lport", ev->lport, &first);
	rw_fmt_addr(ev, false, addr, sizeof(addr));
	kstr(f, "raddr", addr, &first);
	ku64(f, "rport", ev->rport, &first);
	ku64(f, "netns", ev->netns, &first);
	key(f, "pid", &first);
	if (owner)
		put_u64(f, ev->pid);
	else
		JLIT(f, "null");
	key(f, "comm", &first);
	if (owner)
		jstr(f, ev->comm, RW_COMM_MAX);
	else
		JLIT(f, "null");
	kname(f, "cgroup", owner ? ev->cgroup : NULL, RW_CGROUP_MAX, &first);
	kname(f, "container", owner ? ev->ctr.id : NULL, RW_CONTAINER_ID_MAX, &first);
	kname(f, "runtime", owner ? ev->ctr.runtime : NULL, RW_RUNTIME_MAX, &first);
	kname(f, "pod_uid", owner ? ev->ctr.pod_uid : NULL, RW_POD_UID_MAX, &first);
	kname(f, "pod_namespace", owner ? ev->ctr.pod_ns : NULL, RW_POD_NS_MAX, &first);
	kname(f, "pod", owner ? ev->ctr.pod : NULL, RW_POD_NAME_MAX, &first);
	key(f, "conn_id", &first);
	if (v->conn_id) {
		JLIT(f, "\"");
		put_u64(f, v->conn_id);
		JLIT(f, "\"");
	} else {
		JLIT(f, "null");
	}
	key(f, "flow_id", &first);
	flow = rw_flow_id(ev);
	if (flow) {
		char hex[RW_FLOW_STR + 2];

		snprintf(hex, sizeof(hex), "\"%016" PRIx64 "\"", flow);
		jput(f, hex, RW_FLOW_STR + 1);
	} else {
		JLIT(f, "null");
	}
	key(f, "evidence", &first);
	evidence(f, v);
	kstr(f, "hint", rw_hint(v), &first);
	JLIT(f, "}\n");
	jflush(f);
}
