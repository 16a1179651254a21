// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Trace file encoding (man/rstwatch-trace.5).  Every integer is little-endian
 * and written field by field, never as a struct dump, so the format does not
 * depend on this compiler's padding.  Records are length-prefixed; fields are
 * only ever appended, a reader zero-fills fields a shorter record lacks and
 * skips bytes it does not know.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "trace.h"

#define HEADER_LEN 160		/* version 1 writes this much; readers accept more */
#define HEADER_MAX 4096
#define REC_HDR_LEN 8		/* u16 type, u16 reserved, u32 payload length */

/* ---- writing ---------------------------------------------------------- */

struct wbuf {
	uint8_t b[1024];
	size_t n;
};

static void put(struct wbuf *w, const void *p, size_t len)
{
	memcpy(w->b + w->n, p, len);
	w->n += len;
}

static void put_le(struct wbuf *w, uint64_t v, size_t bytes)
{
	for (size_t i = 0; i < bytes; i++)
		w->b[w->n++] = (uint8_t)(v >> (8 * i));
}

#define put_u8(w, v) put_le(w, (uint8_t)(v), 1)
#define put_u16(w, v) put_le(w, (uint16_t)(v), 2)
#define put_u32(w, v) put_le(w, (uint32_t)(v), 4)
#define put_u64(w, v) put_le(w, (uint64_t)(v), 8)

static void put_str(struct wbuf *w, const char *s, size_t max, size_t lenbytes)
{
	size_t len = strnlen(s, max);

	put_le(w, len, lenbytes);
	put(w, s, len);
}

static int write_record(FILE *f, enum rw_trace_rec type, const struct wbuf *payload)
{
	struct wbuf h = { .n = 0 };

	put_u16(&h, type);
	put_u16(&h, 0);
	put_u32(&h, payload->n);
	if (fwrite(h.b, 1, h.n, f) != h.n || fwrite(payload->b, 1, payload->n, f) != payload->n)
		return -1;
	return 0;
}

int rw_trace_write_header(FILE *f, const struct rw_trace_header *h)
{
	struct wbuf w = { .n = 0 };

	memset(w.b, 0, HEADER_LEN);
	put(&w, RW_TRACE_MAGIC, 8);
	put_u16(&w, RW_TRACE_VERSION);
	put_u16(&w, HEADER_LEN);
	put_u32(&w, 0);
	put_u64(&w, (uint64_t)h->boot_to_real_ns);
	put_u64(&w, h->created_ns);
	/* NUL-padded, not necessarily NUL-terminated at 64 bytes */
	memcpy(w.b + 32, h->kernel_release, strnlen(h->kernel_release, 64));
	memcpy(w.b + 96, h->hostname, strnlen(h->hostname, 64));
	return fwrite(w.b, 1, HEADER_LEN, f) == HEADER_LEN ? 0 : -1;
}

int rw_trace_write_event(FILE *f, const struct rw_event *ev)
{
	struct wbuf w;

	w.n = 0;	/* not an initializer: it would clear all of b[] for every event */
	put_u64(&w, ev->time_ns);
	put_u64(&w, ev->sk);
	put_u8(&w, ev->kind);
	put_u8(&w, ev->state);
	put_u8(&w, ev->oldstate);
	put_u8(&w, ev->newstate);
	put_u8(&w, ev->family);
	put_u8(&w, ev->seg_flags);
	put_u8(&w, ev->shutdown);
	put_u8(&w, ev->retransmits);
	put_u8(&w, ev->probes_out);
	put_u8(&w, 0);
	put_u16(&w, 0);
	put_u32(&w, ev->flags);
	put(&w, ev->laddr, 16);
	put(&w, ev->raddr, 16);
	put_u16(&w, ev->lport);
	put_u16(&w, ev->rport);
	put_u32(&w, ev->netns);
	put_u32(&w, ev->seg_len);
	put_u32(&w, ev->unread);
	put_u32(&w, ev->unsent);
	put_u32(&w, ev->inflight);
	put_u32(&w, ev->total_retrans);
	put_u32(&w, ev->sk_err);
	put_u32(&w, ev->sk_err_soft);
	put_u32(&w, ev->linger2);
	put_u32(&w, ev->lingertime);
	put_u32(&w, ev->user_timeout_ms);
	put_u32(&w, ev->snd_wnd);
	put_u64(&w, ev->bytes_received);
	put_u64(&w, ev->bytes_acked);
	put_u64(&w, ev->start_ns);
	put_u32(&w, ev->pid);
	put_u32(&w, ev->cur_pid);
	put(&w, ev->comm, RW_COMM_MAX);
	put(&w, ev->cur_comm, RW_COMM_MAX);
	put_str(&w, ev->reason_name, RW_REASON_NAME_MAX - 1, 1);
	put_str(&w, ev->cgroup, RW_CGROUP_MAX - 1, 2);
	/* appended after the first release: older traces end here */
	put_u8(&w, ev->tw_substate);
	put_u16(&w, ev->port_lo);
	put_u16(&w, ev->port_hi);
	/* format 2: sk above is the socket's cookie, its address follows */
	put_u64(&w, ev->skaddr);
	put_u8(&w, ev->prevstate);
	put_u64(&w, ev->since_ns);
	put_u32(&w, ev->tw_count);
	/* appended: the owner's container and pod */
	put_str(&w, ev->ctr.runtime, RW_RUNTIME_MAX - 1, 1);
	put_str(&w, ev->ctr.id, RW_CONTAINER_ID_MAX - 1, 1);
	put_str(&w, ev->ctr.pod_uid, RW_POD_UID_MAX - 1, 1);
	put_str(&w, ev->ctr.pod_ns, RW_POD_NS_MAX - 1, 1);
	put_str(&w, ev->ctr.pod, RW_POD_NAME_MAX - 1, 1);
	/* appended: the raw sequence numbers the initial ones come from */
	put_u32(&w, ev->snd_una);
	put_u32(&w, ev->rcv_nxt);
	/* appended: resets and their peers */
	put_u32(&w, ev->seg_seq);
	put_u32(&w, ev->snd_nxt);
	put_u32(&w, ev->rcv_wnd);
	put_u32(&w, ev->last_sent_ms);
	put_u32(&w, ev->last_recv_ms);
	put_u32(&w, ev->last_ack_ms);
	put_u64(&w, ev->about);
	return write_record(f, RW_TRACE_EVENT, &w);
}

int rw_trace_write_tick(FILE *f, uint64_t now_ns)
{
	struct wbuf w = { .n = 0 };

	put_u64(&w, now_ns);
	return write_record(f, RW_TRACE_TICK, &w);
}

int rw_trace_write_end(FILE *f, const struct rw_trace_end *end)
{
	struct wbuf w = { .n = 0 };

	put_u64(&w, end->produced);
	put_u64(&w, end->lost);
	/* appended after format 2's first release */
	put_u64(&w, end->tw_entered);
	put_u64(&w, end->tw_expired);
	put_u64(&w, end->tw_reused);
	put_u64(&w, end->tw_ended);
	put_u8(&w, end->ntop);
	for (uint32_t i = 0; i < end->ntop && i < RW_TW_TOP; i++) {
		const struct rw_tw_endpoint *e = &end->top[i];

		put_u8(&w, e->family);
		put_u32(&w, e->netns);
		put(&w, e->laddr, 16);
		put(&w, e->raddr, 16);
		put_u16(&w, e->rport);
		put_u32(&w, e->count);
	}
	/* appended: older readers stop after the endpoints */
	put_u64(&w, end->missed);
	put_u64(&w, end->close_unseen);
	return write_record(f, RW_TRACE_END, &w);
}

/* ---- reading ---------------------------------------------------------- */

__attribute__((format(printf, 2, 3)))
static int fail(struct rw_trace_reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* Read exactly len bytes; returns the number read (short at end of file). */
static size_t read_full(struct rw_trace_reader *r, void *buf, size_t len)
{
	size_t got = fread(buf, 1, len, r->f);

	r->offset += got;
	return got;
}

/* A cursor over one record's payload: a field past the end reads as zero
 * (written by an older rstwatch); a string that overruns is corruption. */
struct cur {
	const uint8_t *p;
	size_t left;
	bool overrun;
};

static uint64_t get_le(struct cur *c, size_t bytes)
{
	uint64_t v = 0;

	if (c->left < bytes) {
		c->left = 0;
		return 0;
	}
	for (size_t i = 0; i < bytes; i++)
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += bytes;
	c->left -= bytes;
	return v;
}

static void get_bytes(struct cur *c, void *dst, size_t len)
{
	if (c->left < len) {
		memset(dst, 0, len);
		c->left = 0;
		return;
	}
	memcpy(dst, c->p, len);
	c->p += len;
	c->left -= len;
}

static void get_str(struct cur *c, char *dst, size_t cap, size_t lenbytes)
{
	size_t len;

	dst[0] = 0;
	if (c->left == 0)
		return;
	len = (size_t)get_le(c, lenbytes);
	if (len >= cap || len > c->left) {
		c->overrun = true;
		return;
	}
	memcpy(dst, c->p, len);
	dst[len] = 0;
	c->p += len;
	c->left -= len;
}

static int parse_event(struct rw_trace_reader *r, uint64_t at, const uint8_t *p, size_t len,
		       struct rw_event *ev)
{
	struct cur c = { .p = p, .left = len };

	memset(ev, 0, sizeof(*ev));
	ev->time_ns = get_le(&c, 8);
	ev->sk = get_le(&c, 8);
	ev->kind = (uint8_t)get_le(&c, 1);
	ev->state = (uint8_t)get_le(&c, 1);
	ev->oldstate = (uint8_t)get_le(&c, 1);
	ev->newstate = (uint8_t)get_le(&c, 1);
	ev->family = (uint8_t)get_le(&c, 1);
	ev->seg_flags = (uint8_t)get_le(&c, 1);
	ev->shutdown = (uint8_t)get_le(&c, 1);
	ev->retransmits = (uint8_t)get_le(&c, 1);
	ev->probes_out = (uint8_t)get_le(&c, 1);
	get_le(&c, 3);		/* reserved */
	ev->flags = (uint32_t)get_le(&c, 4);
	get_bytes(&c, ev->laddr, 16);
	get_bytes(&c, ev->raddr, 16);
	ev->lport = (uint16_t)get_le(&c, 2);
	ev->rport = (uint16_t)get_le(&c, 2);
	ev->netns = (uint32_t)get_le(&c, 4);
	ev->seg_len = (uint32_t)get_le(&c, 4);
	ev->unread = (uint32_t)get_le(&c, 4);
	ev->unsent = (uint32_t)get_le(&c, 4);
	ev->inflight = (uint32_t)get_le(&c, 4);
	ev->total_retrans = (uint32_t)get_le(&c, 4);
	ev->sk_err = (int32_t)get_le(&c, 4);
	ev->sk_err_soft = (int32_t)get_le(&c, 4);
	ev->linger2 = (int32_t)get_le(&c, 4);
	ev->lingertime = (uint32_t)get_le(&c, 4);
	ev->user_timeout_ms = (uint32_t)get_le(&c, 4);
	ev->snd_wnd = (uint32_t)get_le(&c, 4);
	ev->bytes_received = get_le(&c, 8);
	ev->bytes_acked = get_le(&c, 8);
	ev->start_ns = get_le(&c, 8);
	ev->pid = (uint32_t)get_le(&c, 4);
	ev->cur_pid = (uint32_t)get_le(&c, 4);
	get_bytes(&c, ev->comm, RW_COMM_MAX);
	get_bytes(&c, ev->cur_comm, RW_COMM_MAX);
	get_str(&c, ev->reason_name, RW_REASON_NAME_MAX, 1);
	get_str(&c, ev->cgroup, RW_CGROUP_MAX, 2);
	if (c.left) {		/* absent from traces of the first release */
		ev->tw_substate = (uint8_t)get_le(&c, 1);
		ev->port_lo = (uint16_t)get_le(&c, 2);
		ev->port_hi = (uint16_t)get_le(&c, 2);
	}
	if (r->version >= 2) {
		ev->skaddr = get_le(&c, 8);
		ev->prevstate = (uint8_t)get_le(&c, 1);
		ev->since_ns = get_le(&c, 8);
		ev->tw_count = (uint32_t)get_le(&c, 4);
		get_str(&c, ev->ctr.runtime, RW_RUNTIME_MAX, 1);
		get_str(&c, ev->ctr.id, RW_CONTAINER_ID_MAX, 1);
		get_str(&c, ev->ctr.pod_uid, RW_POD_UID_MAX, 1);
		get_str(&c, ev->ctr.pod_ns, RW_POD_NS_MAX, 1);
		get_str(&c, ev->ctr.pod, RW_POD_NAME_MAX, 1);
		ev->snd_una = (uint32_t)get_le(&c, 4);
		ev->rcv_nxt = (uint32_t)get_le(&c, 4);
		ev->seg_seq = (uint32_t)get_le(&c, 4);
		ev->snd_nxt = (uint32_t)get_le(&c, 4);
		ev->rcv_wnd = (uint32_t)get_le(&c, 4);
		ev->last_sent_ms = (uint32_t)get_le(&c, 4);
		ev->last_recv_ms = (uint32_t)get_le(&c, 4);
		ev->last_ack_ms = (uint32_t)get_le(&c, 4);
		ev->about = get_le(&c, 8);
	} else {
		ev->skaddr = ev->sk;	/* format 1 knew a socket by its address only */
	}
	/* anything left was written by a newer rstwatch: ignored */

	if (c.overrun)
		return fail(r, "event at byte %llu: a string overruns its record",
			    (unsigned long long)at);
	if (ev->kind < RW_EV_STATE || ev->kind > RW_EV_PEER)
		return fail(r, "event at byte %llu: unknown event kind %u", (unsigned long long)at,
			    ev->kind);
	if (ev->family != 4 && ev->family != 6)
		return fail(r, "event at byte %llu: bad address family %u", (unsigned long long)at,
			    ev->family);
	if (ev->state >= RW_ST_COUNT || ev->oldstate >= RW_ST_COUNT || ev->newstate >= RW_ST_COUNT ||
	    ev->tw_substate >= RW_ST_COUNT || ev->prevstate >= RW_ST_COUNT)
		return fail(r, "event at byte %llu: bad TCP state", (unsigned long long)at);
	ev->reason = rw_reason_from_name(ev->reason_name);
	return 0;
}

int rw_trace_read_header(struct rw_trace_reader *r, struct rw_trace_header *h)
{
	uint8_t b[HEADER_MAX];
	size_t got = read_full(r, b, HEADER_LEN);
	struct cur c = { .p = b + 8, .left = HEADER_LEN - 8 };
	uint16_t hlen;

	memset(h, 0, sizeof(*h));
	if (got == 0)
		return fail(r, "empty file: not an rstwatch trace");
	if (got < 8 || memcmp(b, RW_TRACE_MAGIC, 8) != 0)
		return fail(r, "not an rstwatch trace (no \"%s\" magic at byte 0)", RW_TRACE_MAGIC);
	if (got < 12)
		return fail(r, "truncated header at byte %zu", got);
	h->version = (uint16_t)get_le(&c, 2);
	hlen = (uint16_t)get_le(&c, 2);
	if (h->version == 0)
		return fail(r, "bad trace format version 0 at byte 8");
	if (h->version > RW_TRACE_VERSION)
		return fail(r, "trace format version %u is newer than this rstwatch reads (%u): "
			    "use a newer rstwatch", h->version, RW_TRACE_VERSION);
	if (hlen < HEADER_LEN || hlen > HEADER_MAX)
		return fail(r, "bad header length %u at byte 10", hlen);
	if (got < HEADER_LEN)
		return fail(r, "truncated header at byte %zu (%u bytes expected)", got, hlen);
	if (hlen > HEADER_LEN &&
	    read_full(r, b + HEADER_LEN, hlen - HEADER_LEN) != (size_t)(hlen - HEADER_LEN))
		return fail(r, "truncated header at byte %llu (%u bytes expected)",
			    (unsigned long long)r->offset, hlen);
	get_le(&c, 4);		/* reserved */
	r->version = h->version;
	h->boot_to_real_ns = (int64_t)get_le(&c, 8);
	h->created_ns = get_le(&c, 8);
	memcpy(h->kernel_release, b + 32, 64);
	memcpy(h->hostname, b + 96, 64);
	return 0;
}

int rw_trace_read(struct rw_trace_reader *r, struct rw_trace_item *it)
{
	static uint8_t payload[RW_TRACE_MAX_RECORD];
	uint8_t h[REC_HDR_LEN];
	uint64_t at;
	size_t got;
	uint32_t len;
	uint16_t type;

	for (;;) {
		at = r->offset;
		got = read_full(r, h, REC_HDR_LEN);
		if (got == 0)
			return ferror(r->f) ? fail(r, "read error at byte %llu: %s",
						   (unsigned long long)at, strerror(errno)) : 0;
		if (got < REC_HDR_LEN)
			return fail(r, "truncated record header at byte %llu", (unsigned long long)at);
		type = (uint16_t)(h[0] | h[1] << 8);
		len = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 |
		      (uint32_t)h[7] << 24;
		if (len > RW_TRACE_MAX_RECORD)
			return fail(r, "record at byte %llu: length %u exceeds %u",
				    (unsigned long long)at, len, RW_TRACE_MAX_RECORD);
		got = read_full(r, payload, len);
		if (got < len)
			return fail(r, "truncated record at byte %llu: %u bytes announced, %zu present",
				    (unsigned long long)at, len, got);

		memset(it, 0, sizeof(*it));
		it->kind = type;
		switch (type) {
		case RW_TRACE_EVENT:
			return parse_event(r, at, payload, len, &it->ev) ? -1 : 1;
		case RW_TRACE_TICK: {
			struct cur c = { .p = payload, .left = len };

			it->tick_ns = get_le(&c, 8);
			return 1;
		}
		case RW_TRACE_END: {
			struct cur c = { .p = payload, .left = len };

			it->end.produced = get_le(&c, 8);
			it->end.lost = get_le(&c, 8);
			it->end.tw_entered = get_le(&c, 8);
			it->end.tw_expired = get_le(&c, 8);
			it->end.tw_reused = get_le(&c, 8);
			it->end.tw_ended = get_le(&c, 8);
			it->end.ntop = (uint32_t)get_le(&c, 1);
			if (it->end.ntop > RW_TW_TOP)
				return fail(r, "record at byte %llu: %u endpoints (at most %u)",
					    (unsigned long long)at, it->end.ntop, RW_TW_TOP);
			for (uint32_t i = 0; i < it->end.ntop; i++) {
				struct rw_tw_endpoint *e = &it->end.top[i];

				e->family = (uint8_t)get_le(&c, 1);
				e->netns = (uint32_t)get_le(&c, 4);
				get_bytes(&c, e->laddr, 16);
				get_bytes(&c, e->raddr, 16);
				e->rport = (uint16_t)get_le(&c, 2);
				e->count = (uint32_t)get_le(&c, 4);
				if (e->family != 4 && e->family != 6)
					return fail(r, "record at byte %llu: bad address family %u",
						    (unsigned long long)at, e->family);
			}
			it->end.missed = get_le(&c, 8);
			it->end.close_unseen = get_le(&c, 8);
			return 1;
		}
		default:
			continue;	/* a record type from a newer rstwatch: skip it */
		}
	}
}
