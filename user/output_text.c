// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Human-readable output: a header, then one aligned line per verdict:
 *   TIME CLASS STATE LOCAL REMOTE OWNER  detail; hint
 * Owner names are escaped (rw_text_str), so no comm can forge a line.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "escape.h"
#include "flow.h"
#include "output.h"

#define ENDPOINT_W 27
#define CLASS_W 28	/* challenged_rst/out_of_window, the longest class/subtype */
#define OWNER_W 22

void rw_text_header(FILE *f)
{
	fprintf(f, "%-15s %-*s %-11s %-*s %-*s %-*s %s\n", "TIME", CLASS_W, "CLASS", "STATE", ENDPOINT_W,
		"LOCAL", ENDPOINT_W, "REMOTE", OWNER_W, "OWNER", "DETAIL; HINT");
}

static void endpoint(FILE *f, const struct rw_event *ev, bool local)
{
	char addr[RW_ADDR_STR], buf[RW_ADDR_STR + 10];

	rw_fmt_addr(ev, local, addr, sizeof(addr));
	snprintf(buf, sizeof(buf), ev->family == 6 ? "[%s]:%u" : "%s:%u", addr,
		 local ? ev->lport : ev->rport);
	fprintf(f, " %-*s", ENDPOINT_W, buf);
}

/* "comm[pid]" padded to OWNER_W, or "-" */
static void owner(FILE *f, const struct rw_event *ev)
{
	size_t n = 1;

	if (ev->flags & RW_EVF_OWNER) {
		n = rw_text_str(f, ev->comm, RW_COMM_MAX);
		n += (size_t)fprintf(f, "[%u]", ev->pid);
	} else {
		fputc('-', f);
	}
	fprintf(f, "%*s ", n < OWNER_W ? (int)(OWNER_W - n) : 0, "");
}

static void detail(FILE *f, const struct rw_verdict *v)
{
	const struct rw_event *ev = v->ev;
	const char *err = v->app_errno ? rw_errno_name(v->app_errno) : "no error";
	char fl[40];

	switch (v->cls) {
	case RW_CL_UNREAD_DATA:
		fprintf(f, "%u bytes unread", v->unread_bytes);
		break;
	case RW_CL_LINGER0:
		fputs("SO_LINGER {1,0} close", f);
		if (ev->unsent + ev->inflight)
			fprintf(f, ", %u bytes unsent discarded", ev->unsent + ev->inflight);
		break;
	case RW_CL_TIMEOUT:
		if (v->sub == RW_SUB_KEEPALIVE)
			fprintf(f, "%u keepalive probes unanswered", ev->probes_out);
		else if (v->sub == RW_SUB_ZERO_WINDOW)
			fprintf(f, "%u zero-window probes unanswered", ev->probes_out);
		else if (v->sub == RW_SUB_USER_TIMEOUT)
			fprintf(f, "TCP_USER_TIMEOUT %u ms ran out", ev->user_timeout_ms);
		else
			fprintf(f, "gave up after %u retransmits", ev->retransmits);
		fprintf(f, ", app sees %s", err);
		break;
	case RW_CL_DATA_AFTER_CLOSE:
		if (v->ev_mask & RW_VE_SEGMENT)
			fprintf(f, "%u bytes arrived after close", ev->seg_len);
		else
			fputs("data arrived after close", f);
		break;
	case RW_CL_LINGER2:
		fputs("TCP_LINGER2 < 0: close in FIN_WAIT2 resets", f);
		break;
	case RW_CL_MEMORY:
		fputs("orphan killed: too many orphans or memory pressure", f);
		break;
	case RW_CL_BAD_ACK:
		rw_fmt_tcp_flags(ev->seg_flags, fl, sizeof(fl));
		fprintf(f, "answered %s while connecting", fl[0] ? fl : "segment");
		break;
	case RW_CL_LISTEN_OVERFLOW:
		fputs("accept queue full (tcp_abort_on_overflow)", f);
		break;
	case RW_CL_TIME_WAIT_OVERFLOW:
		fputs("tcp_max_tw_buckets reached: TIME_WAIT skipped", f);
		break;
	case RW_CL_CLOSE_WAIT:
		fprintf(f, "%s CLOSE_WAIT for %.1f s", v->sub == RW_SUB_CLOSED ? "closed after" : "in",
			(double)v->duration_ns / 1e9);
		break;
	case RW_CL_PORT_PRESSURE:
		fprintf(f, "%u TIME_WAIT sockets to this endpoint, ports %u-%u", v->tw_count,
			ev->port_lo, ev->port_hi);
		break;
	case RW_CL_KILLED:
		fputs("killed by ", f);
		rw_text_str(f, ev->cur_comm, RW_COMM_MAX);
		fprintf(f, "[%u]", ev->cur_pid);
		break;
	case RW_CL_PEER_RESET:
		fprintf(f, "app sees %s", err);
		if (v->idle != RW_IDLE_NONE)
			fprintf(f, ", after %.1f s of silence%s", (double)(ev->last_recv_ms <
				ev->last_ack_ms ? ev->last_recv_ms : ev->last_ack_ms) / 1e3,
				v->idle == RW_IDLE_WOKE ? ", at its first segment" : "");
		break;
	case RW_CL_MIDDLEBOX_RESET:
		fputs("neither end sent it: no RST from ", f);
		if (v->peer.pid) {
			rw_text_str(f, v->peer.comm, RW_COMM_MAX);
			fprintf(f, "[%u]", v->peer.pid);
		} else {
			fputs("the other end", f);
		}
		fprintf(f, " (%s), app sees %s", rw_state_name(v->peer.state), err);
		break;
	case RW_CL_CHALLENGED_RST:
		fprintf(f, "RST at rcv_nxt%+d refused%s", (int32_t)(ev->seg_seq - ev->rcv_nxt),
			v->sub == RW_SUB_IN_WINDOW ? ", challenge ACK" : ", outside the window");
		break;
	case RW_CL_REFUSED:
		fputs("SYN to a port with no listener", f);
		break;
	case RW_CL_HALF_OPEN:
	case RW_CL_TIME_WAIT_RST:
		rw_fmt_tcp_flags(ev->seg_flags, fl, sizeof(fl));
		fprintf(f, "answered %s with %u bytes", fl[0] ? fl : "segment", ev->seg_len);
		break;
	case RW_CL_TIME_WAIT:
		if (v->sub != RW_SUB_NONE) {
			fputs(v->sub == RW_SUB_EXPIRED ? "expired" : v->sub == RW_SUB_REUSED ?
			      "taken over by a new connection" : "killed early", f);
			if (v->ev_mask & RW_VE_DURATION)
				fprintf(f, " after %.1f s", (double)v->duration_ns / 1e9);
			if (v->ev_mask & RW_VE_BY) {
				fputs(" by ", f);
				rw_text_str(f, ev->cur_comm, RW_COMM_MAX);
				fprintf(f, "[%u]", ev->cur_pid);
			}
			break;
		}
		fprintf(f, "%s", v->closed_first_local ? "closed first" : "simultaneous close");
		if (v->tw_substate == RW_ST_FIN_WAIT2)
			fputs(", peer's FIN still due", f);
		break;
	default:
		break;
	}
	if (v->reason[0]) {
		/* from a trace file the reason is any bytes: escape like a comm */
		fputs(" [", f);
		rw_text_str(f, v->reason, sizeof(v->reason));
		fputc(']', f);
	}
}

/* " (in pod NS/NAME, container RUNTIME:ID)" for an owner in a container or
 * pod, the id shortened to 12 digits as container tools print it; nothing
 * otherwise.  From a trace file these are any bytes: escaped like a comm. */
static void where(FILE *f, const struct rw_event *ev)
{
	const struct rw_container *c = &ev->ctr;

	if (!(ev->flags & RW_EVF_OWNER) || (!c->id[0] && !c->pod_uid[0]))
		return;
	fputs(" (in ", f);
	if (c->pod_uid[0]) {
		fputs("pod ", f);
		if (c->pod[0]) {
			rw_text_str(f, c->pod_ns, sizeof(c->pod_ns));
			fputc('/', f);
			rw_text_str(f, c->pod, sizeof(c->pod));
		} else {
			rw_text_str(f, c->pod_uid, sizeof(c->pod_uid));
		}
		if (c->id[0])
			fputs(", ", f);
	}
	if (c->id[0]) {
		fputs("container ", f);
		if (c->runtime[0]) {
			rw_text_str(f, c->runtime, sizeof(c->runtime));
			fputc(':', f);
		}
		rw_text_str(f, c->id, 12);
	}
	fputc(')', f);
}

static void who(FILE *f, const struct rw_event *ev)
{
	if (ev->flags & RW_EVF_OWNER)
		rw_text_str(f, ev->comm, RW_COMM_MAX);
	else
		fputs("(kernel)", f);
	where(f, ev);
}

/* Both ends of a connection on this host: one line, from the sender of the
 * RST, that names both owners ("nginx reset curl: unread_data (...)"). */
static void linked_detail(FILE *f, const struct rw_verdict *v)
{
	const char *sub = rw_subtype_name(v->sub);

	who(f, v->ev);
	fputs(" reset ", f);
	who(f, v->link->ev);
	fprintf(f, ": %s%s%s (", rw_class_name(v->cls), sub ? "/" : "", sub ? sub : "");
	detail(f, v);
	fputc(')', f);
}

/* Whether hint is new to this run (and remember it). */
static bool hint_new(struct rw_text_hints *h, const char *hint)
{
	if (!h)
		return true;
	for (unsigned int i = 0; i < h->n; i++)
		if (h->seen[i] == hint)
			return false;
	if (h->n < sizeof(h->seen) / sizeof(h->seen[0]))
		h->seen[h->n++] = hint;
	return true;
}

void rw_text_verdict(FILE *f, const struct rw_verdict *v, struct rw_text_hints *hints)
{
	const char *hint = rw_hint(v);
	const struct rw_event *ev = v->ev;
	time_t s = (time_t)(ev->time_ns / 1000000000ull);
	const char *sub = rw_subtype_name(v->sub);
	char cls[48], tbuf[16];
	struct tm tm;

	if (v->link && v->link_second)
		return;		/* printed with the first of the pair */
	localtime_r(&s, &tm);
	strftime(tbuf, sizeof(tbuf), "%H:%M:%S", &tm);
	snprintf(cls, sizeof(cls), "%s%s%s", rw_class_name(v->cls), sub ? "/" : "", sub ? sub : "");
	fprintf(f, "%s.%06" PRIu64 " %-*s %-11s", tbuf, (uint64_t)((ev->time_ns / 1000) % 1000000), CLASS_W, cls,
		v->state == RW_ST_UNKNOWN ? "-" : rw_state_name(v->state));
	endpoint(f, ev, true);
	endpoint(f, ev, false);
	fputc(' ', f);
	owner(f, ev);
	if (v->link) {
		linked_detail(f, v);
	} else {
		detail(f, v);
		where(f, ev);
	}
	if (hint_new(hints, hint))
		fprintf(f, "; %s", hint);
	fputc('\n', f);
}

void rw_text_event(FILE *f, const struct rw_event *ev)
{
	static const char *const kinds[] = { "?", "state", "send_reset", "recv_reset", "error",
					     "destroy", "tw_arm", "tw_cancel", "tw_expire",
					     "tw_syn_reuse", "cw_stuck", "pressure", "challenge",
					     "peer" };
	char fl[40];

	fprintf(f, "%" PRIu64 ".%09" PRIu64 " %-10s sk=%" PRIx64,
		(uint64_t)(ev->time_ns / 1000000000u), (uint64_t)(ev->time_ns % 1000000000u),
		ev->kind < sizeof(kinds) / sizeof(kinds[0]) ? kinds[ev->kind] : "?", ev->skaddr);
	/* the identity, where it is not the address (ss -e prints it as sk:) */
	if (ev->sk != ev->skaddr)
		fprintf(f, " cookie=%" PRIx64, ev->sk);
	fprintf(f, " %s", rw_state_name(ev->state));
	if (ev->kind == RW_EV_STATE)
		fprintf(f, " %s->%s", rw_state_name(ev->oldstate), rw_state_name(ev->newstate));
	endpoint(f, ev, true);
	endpoint(f, ev, false);
	fprintf(f, " netns=%u flags=%#x", ev->netns, ev->flags);
	if (ev->flags & RW_EVF_SUBSTATE)
		fprintf(f, " substate=%s", rw_state_name(ev->tw_substate));
	if (ev->prevstate != RW_ST_UNKNOWN)
		fprintf(f, " prev=%s", rw_state_name(ev->prevstate));
	if (ev->since_ns)
		fprintf(f, " since=%" PRIu64 ".%09" PRIu64, (uint64_t)(ev->since_ns / 1000000000u),
			(uint64_t)(ev->since_ns % 1000000000u));
	if (ev->kind == RW_EV_PRESSURE)
		fprintf(f, " count=%u", ev->tw_count);
	if (ev->flags & RW_EVF_CLOSE_UNSEEN)
		fputs(" close_unseen", f);
	if (ev->flags & RW_EVF_PORTS)
		fprintf(f, " ports=%u-%u", ev->port_lo, ev->port_hi);
	if (ev->reason_name[0]) {
		fputs(" reason=", f);
		rw_text_str(f, ev->reason_name, sizeof(ev->reason_name));
	}
	if (ev->flags & RW_EVF_SEG) {
		rw_fmt_tcp_flags(ev->seg_flags, fl, sizeof(fl));
		fprintf(f, " seg=%s/%u", fl, ev->seg_len);
	}
	if (ev->kind == RW_EV_CHALLENGE)
		fprintf(f, " rst_seq=%u", ev->seg_seq);
	if (ev->kind == RW_EV_PEER)
		fprintf(f, " about=%" PRIx64, ev->about);
	if (ev->flags & RW_EVF_SEQ)
		fprintf(f, " rcv_nxt=%u snd_nxt=%u rcv_wnd=%u", ev->rcv_nxt, ev->snd_nxt, ev->rcv_wnd);
	if (ev->flags & RW_EVF_IDLE)
		fprintf(f, " last_sent=%u last_recv=%u last_ack=%u", ev->last_sent_ms,
			ev->last_recv_ms, ev->last_ack_ms);
	if (ev->flags & RW_EVF_FULL) {
		uint32_t snd_isn, rcv_isn;

		fprintf(f, " unread=%u unsent=%u inflight=%u rto=%u probes=%u err=%d soft=%d "
			"linger=%s l2=%d shut=%u snd_una=%u rcv_nxt=%u acked=%" PRIu64
			" received=%" PRIu64, ev->unread, ev->unsent, ev->inflight,
			ev->retransmits, ev->probes_out, ev->sk_err, ev->sk_err_soft,
			rw_linger_name(ev), ev->linger2, ev->shutdown, ev->snd_una, ev->rcv_nxt,
			ev->bytes_acked, ev->bytes_received);
		if (rw_flow_isns(ev, &snd_isn, &rcv_isn))
			fprintf(f, " %s snd_isn=%u rcv_isn=%u flow=%016" PRIx64,
				ev->flags & RW_EVF_ACTIVE ? "active" : "passive", snd_isn, rcv_isn,
				rw_flow_id(ev));
	}
	fprintf(f, " owner=");
	if (ev->flags & RW_EVF_OWNER) {
		rw_text_str(f, ev->comm, RW_COMM_MAX);
		fprintf(f, "[%u]", ev->pid);
	} else {
		fputc('-', f);
	}
	where(f, ev);
	fprintf(f, " cur=");
	rw_text_str(f, ev->cur_comm, RW_COMM_MAX);
	fprintf(f, "[%u]\n", ev->cur_pid);
}
