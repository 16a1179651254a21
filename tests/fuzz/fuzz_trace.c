// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Fuzz the trace-file reader (user/trace.c) as `rstwatch -r` drives it: the
 * header, then every record until a clean end or an error.  Checked:
 *   - an error always says why, in one line, and no call consumed more bytes
 *     than the input holds; a clean end consumed all of it;
 *   - every item handed out is made of its own record's bytes only (read
 *     again after other bytes, it comes out the same);
 *   - every event handed out passes the reader's own validation (kind,
 *     family, states) with its strings terminated inside their arrays;
 *   - the event, hostile as the file made it, goes through every output: a
 *     verdict built from it (class, subtype, origin and evidence chosen by
 *     its bytes, so all of them get reached) as a JSON line that must be one
 *     valid JSON object, and as a text line, and the event itself as an
 *     --events line, each of which must be one line of valid UTF-8 with no
 *     control byte that could forge a line or start a terminal escape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "output.h"
#include "trace.h"

/* Outputs are written into memory and checked after mem_close(). */
static FILE *mem_open(char **out, size_t *len)
{
	FILE *f = open_memstream(out, len);

	REQUIRE(f, "open_memstream failed");
	return f;
}

static void mem_close(FILE *f)
{
	REQUIRE(fclose(f) == 0, "writing to memory failed");
}

static void require_one_line(const char *what, const char *out, size_t len)
{
	size_t at;

	fz_checking(what, out, len);
	REQUIRE(len > 0 && out[len - 1] == '\n', "%s: not one line ending in a newline", what);
	at = fz_unclean_at((const uint8_t *)out, len - 1, NULL);
	REQUIRE(at == len - 1, "%s: a control byte, DEL or invalid UTF-8 at byte %zu of the line",
		what, at);
}

static void require_json_line(const char *out, size_t len)
{
	const uint8_t *p = (const uint8_t *)out, *end = p + len;
	const char *why = "";

	require_one_line("rw_json_verdict", out, len);
	REQUIRE(*p == '{', "rw_json_verdict: the line is not an object");
	p = fz_json_value(p, end - 1, 0, &why);
	REQUIRE(p, "rw_json_verdict: invalid JSON: %s", why);
	REQUIRE(p == end - 1, "rw_json_verdict: bytes after the object");
}

/* A verdict of any shape about this event.  The classifier would only ever
 * build some of these, but the outputs must cope with all of them; the
 * socket pointer (8 bytes the fuzzer controls) picks the shape. */
static void any_verdict(const struct rw_event *ev, struct rw_verdict *v)
{
	uint64_t k = ev->sk;

	memset(v, 0, sizeof(*v));
	v->cls = (enum rw_class)(k % RW_CL_COUNT);
	v->sub = (enum rw_subtype)((k >> 8) % RW_SUB_COUNT);
	v->origin = (enum rw_origin)((k >> 16) % RW_OR_COUNT);
	v->ev_mask = (uint32_t)(k >> 24) & 0x7ff;
	v->idle = (enum rw_idle)((k >> 36) % 3);
	/* the other end's owner: as hostile as the event's current task */
	v->peer.state = (enum rw_state)ev->oldstate;
	v->peer.pid = ev->cur_pid;
	memcpy(v->peer.comm, ev->cur_comm, sizeof(v->peer.comm));
	v->peer.netns = ev->netns;
	v->peer.snd_nxt = ev->snd_nxt;
	v->closed_first_local = (k >> 32) & 1;
	v->state = (enum rw_state)ev->state;
	v->tw_substate = (enum rw_state)ev->newstate;
	v->app_errno = ev->sk_err_soft;	/* any int, as hostile as sk_err */
	v->unread_bytes = ev->unread;
	memcpy(v->reason, ev->reason_name, sizeof(v->reason));	/* as classify.c does */
	v->ev = ev;
}

static void check_event(const struct rw_event *ev)
{
	struct rw_verdict v;
	size_t len;
	char *out;
	FILE *f;

	REQUIRE(ev->kind >= RW_EV_STATE && ev->kind <= RW_EV_PEER, "kind %u let through",
		ev->kind);
	REQUIRE(ev->family == 4 || ev->family == 6, "family %u let through", ev->family);
	REQUIRE(ev->state < RW_ST_COUNT && ev->oldstate < RW_ST_COUNT &&
		ev->newstate < RW_ST_COUNT, "a TCP state out of range let through");
	REQUIRE(strnlen(ev->reason_name, sizeof(ev->reason_name)) < sizeof(ev->reason_name),
		"reason_name not terminated");
	REQUIRE(strnlen(ev->cgroup, sizeof(ev->cgroup)) < sizeof(ev->cgroup),
		"cgroup not terminated");
	REQUIRE(ev->reason == rw_reason_from_name(ev->reason_name), "reason disagrees with its name");

	any_verdict(ev, &v);
	f = mem_open(&out, &len);
	rw_json_verdict(f, &v);
	mem_close(f);
	require_json_line(out, len);
	free(out);

	f = mem_open(&out, &len);
	rw_text_verdict(f, &v, NULL);
	mem_close(f);
	require_one_line("rw_text_verdict", out, len);
	free(out);

	f = mem_open(&out, &len);
	rw_text_event(f, ev);
	mem_close(f);
	require_one_line("rw_text_event", out, len);
	free(out);
	fz_checking(NULL, NULL, 0);
}

/*
 * rw_trace_read() parses every record in one static buffer, where reading
 * past a record's end is invisible to ASan: it finds what an earlier record
 * left there.  So read the item's record again, right after a record of a
 * type no reader knows (skipped, but read into that buffer) that fills it
 * with 0xaa: an item made only of its own record's bytes comes out the same.
 * data[from..to) holds the records the call consumed, the item's last.
 */
static void require_own_bytes(const uint8_t *data, size_t hdr_len, size_t from, size_t to,
			      const struct rw_trace_item *want)
{
	struct rw_trace_reader r = { 0 };
	struct rw_trace_header h;
	struct rw_trace_item it;
	size_t rec = from, fill, n;
	uint8_t *b;

	/* skip the unknown records the call skipped: the item's is the last */
	for (;;) {
		const uint8_t *p = data + rec + 4;
		size_t next = rec + 8 + ((size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
					 (size_t)p[3] << 24);

		if (next >= to)
			break;
		rec = next;
	}
	REQUIRE(rec + 8 <= to, "the item's record is not where the offsets say");
	fill = to - rec - 8 + 4096;
	fill = fill > RW_TRACE_MAX_RECORD ? RW_TRACE_MAX_RECORD : fill;
	n = hdr_len + 8 + fill + (to - rec);
	b = malloc(n);
	REQUIRE(b, "out of memory");
	memcpy(b, data, hdr_len);
	memcpy(b + hdr_len, (uint8_t[]){ 0xff, 0xff, 0, 0, (uint8_t)fill, (uint8_t)(fill >> 8),
					  (uint8_t)(fill >> 16), 0 }, 8);
	memset(b + hdr_len + 8, 0xaa, fill);
	memcpy(b + hdr_len + 8 + fill, data + rec, to - rec);

	r.f = fmemopen(b, n, "r");
	REQUIRE(r.f, "fmemopen failed");
	REQUIRE(rw_trace_read_header(&r, &h) == 0, "the header read once, not twice: %s", r.err);
	REQUIRE(rw_trace_read(&r, &it) == 1, "the record read once, not after another: %s", r.err);
	REQUIRE(memcmp(&it, want, sizeof(it)) == 0,
		"the item read from the record at byte %zu depends on bytes outside its record",
		rec);
	fclose(r.f);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_trace_reader r = { 0 };
	struct rw_trace_header h;
	struct rw_trace_item it;
	size_t hdr_len;
	int rc;

	/* fmemopen() refuses a zero-length buffer; /dev/null is an empty stream */
	r.f = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
	REQUIRE(r.f, "cannot open the input as a stream");

	rc = rw_trace_read_header(&r, &h);
	REQUIRE(rc == 0 || rc == -1, "rw_trace_read_header returned %d", rc);
	REQUIRE(r.offset <= size, "header read consumed %llu of %zu bytes",
		(unsigned long long)r.offset, size);
	if (rc == 0) {
		REQUIRE(strnlen(h.kernel_release, sizeof(h.kernel_release)) < sizeof(h.kernel_release),
			"kernel_release not terminated");
		REQUIRE(strnlen(h.hostname, sizeof(h.hostname)) < sizeof(h.hostname),
			"hostname not terminated");
		hdr_len = (size_t)r.offset;
		for (;;) {
			size_t from = (size_t)r.offset;

			if ((rc = rw_trace_read(&r, &it)) != 1)
				break;
			REQUIRE(r.offset <= size, "consumed %llu of %zu bytes",
				(unsigned long long)r.offset, size);
			REQUIRE(it.kind == RW_TRACE_EVENT || it.kind == RW_TRACE_TICK ||
				it.kind == RW_TRACE_END, "item of kind %d handed out", it.kind);
			require_own_bytes(data, hdr_len, from, (size_t)r.offset, &it);
			if (it.kind == RW_TRACE_EVENT)
				check_event(&it.ev);
		}
		REQUIRE(rc == 0 || rc == -1, "rw_trace_read returned %d", rc);
	}

	REQUIRE(r.offset <= size, "consumed %llu of %zu bytes", (unsigned long long)r.offset, size);
	if (rc < 0) {
		size_t n = strnlen(r.err, sizeof(r.err));

		REQUIRE(n > 0, "an error without a message");
		REQUIRE(n < sizeof(r.err), "error message not terminated");
		fz_checking("the error message", r.err, n);
		REQUIRE(fz_unclean_at((const uint8_t *)r.err, n, NULL) == n,
			"the error message is not one clean line");
		fz_checking(NULL, NULL, 0);
	} else {
		REQUIRE(r.offset == size, "clean end after %llu of %zu bytes",
			(unsigned long long)r.offset, size);
	}
	fclose(r.f);
	return 0;
}
