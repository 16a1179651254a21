// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Writes the generated seeds of the fuzz corpora: `make fuzz-corpus` runs it
 * as `mkcorpus tests/fuzz/corpus`, after a trace format change.  Traces are
 * written by user/trace.c's own writer, so they follow the format as it is;
 * the broken ones are those traces cut or with one field corrupted, each
 * aimed at one of the reader's checks.  The JSON seeds are the strings a comm
 * or a cgroup path can hold that an encoder is most likely to get wrong.
 * Other files in the corpus directories (regression inputs) are left alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "trace.h"

#define HDR 160			/* version 1 header length */
#define EV_KIND (8 + 16)	/* offsets in the first record: header + field */
#define EV_STATE (8 + 17)
#define EV_FAMILY (8 + 20)

static const char *dir;

static void put_file(const char *sub, const char *name, const void *b, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	f = fopen(path, "w");
	if (!f || fwrite(b, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "mkcorpus: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static struct rw_event event(uint8_t kind, uint8_t family)
{
	struct rw_event ev = { 0 };

	ev.time_ns = 1763777504214201328ull;
	ev.start_ns = ev.time_ns - 1500000000ull;
	ev.sk = 0xffff888108d0c0c0ull;
	ev.kind = kind;
	ev.family = family;
	ev.state = RW_ST_ESTABLISHED;
	ev.oldstate = RW_ST_ESTABLISHED;
	ev.newstate = RW_ST_CLOSE;
	ev.flags = RW_EVF_SK | RW_EVF_FULL | RW_EVF_OWNER;
	if (family == 4) {
		memcpy(ev.laddr, (uint8_t[]){ 127, 0, 0, 1 }, 4);
		memcpy(ev.raddr, (uint8_t[]){ 10, 1, 2, 3 }, 4);
	} else {
		ev.laddr[15] = 1;
		memcpy(ev.raddr, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8 }, 4);
		ev.raddr[15] = 7;
	}
	ev.lport = 8080;
	ev.rport = 51234;
	ev.netns = 4026531840u;
	ev.pid = 4242;
	ev.cur_pid = 4242;
	memcpy(ev.comm, "server", 7);
	memcpy(ev.cur_comm, "server", 7);
	snprintf(ev.cgroup, sizeof(ev.cgroup), "/system.slice/app.service");
	return ev;
}

/* A trace in memory, written by user/trace.c. */
struct trace {
	char *b;
	size_t len;
	FILE *f;
};

static void trace_begin(struct trace *t)
{
	struct rw_trace_header h = { .version = RW_TRACE_VERSION,
				     .boot_to_real_ns = 1763000000000000000ll,
				     .created_ns = 1763777504000000000ull };

	snprintf(h.kernel_release, sizeof(h.kernel_release), "6.1.0-28-amd64");
	snprintf(h.hostname, sizeof(h.hostname), "fuzz");
	t->f = open_memstream(&t->b, &t->len);
	if (!t->f || rw_trace_write_header(t->f, &h) != 0)
		exit(1);
}

static void trace_end(struct trace *t)
{
	if (fclose(t->f) != 0)
		exit(1);
}

static void trace_seeds(void)
{
	struct trace t;
	struct rw_event ev;
	uint8_t b[2048];
	size_t first_len;

	/* header only: a recording that saw nothing */
	trace_begin(&t);
	trace_end(&t);
	put_file("trace", "header-only", t.b, t.len);
	free(t.b);

	/* one record of each type, an unknown one and every event kind */
	trace_begin(&t);
	ev = event(RW_EV_SEND_RESET, 4);
	ev.flags |= RW_EVF_LINGER | RW_EVF_SEG;
	ev.seg_flags = RW_SEG_ACK | RW_SEG_RST;
	ev.seg_len = 12;
	ev.unread = 100;
	snprintf(ev.reason_name, sizeof(ev.reason_name), "TCP_ABORT_ON_CLOSE");
	ev.reason = RW_RSN_TCP_ABORT_ON_CLOSE;
	rw_trace_write_event(t.f, &ev);
	first_len = (size_t)ftell(t.f) - HDR;
	rw_trace_write_tick(t.f, ev.time_ns + 100000000ull);
	fwrite((uint8_t[]){ 77, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4 }, 1, 12, t.f);
	for (uint8_t k = RW_EV_STATE; k <= RW_EV_DESTROY; k++) {
		ev = event(k, k % 2 ? 6 : 4);
		ev.state = (uint8_t)(k + 3);
		ev.sk_err = k == RW_EV_ERROR ? 104 : 0;
		if (k == RW_EV_DESTROY)
			ev.flags &= ~RW_EVF_OWNER;
		snprintf(ev.reason_name, sizeof(ev.reason_name), "%s",
			 k == RW_EV_RECV_RESET ? "SOME_FUTURE_REASON" : "");
		ev.reason = rw_reason_from_name(ev.reason_name);
		rw_trace_write_event(t.f, &ev);
	}
	rw_trace_write_end(t.f, &(struct rw_trace_end){ .produced = 7, .lost = 1 });
	trace_end(&t);
	put_file("trace", "every-record", t.b, t.len);

	/* broken copies of it, one reader check each */
	put_file("trace", "empty", "", 0);
	put_file("trace", "cut-in-magic", t.b, 5);
	put_file("trace", "cut-in-header", t.b, 100);
	put_file("trace", "cut-in-record-header", t.b, HDR + 5);
	put_file("trace", "cut-in-event", t.b, HDR + first_len - 9);
	memcpy(b, t.b, HDR + first_len);
	memcpy(b, "PCAPPCAP", 8);
	put_file("trace", "bad-magic", b, HDR + first_len);
	memcpy(b, t.b, 8);
	b[8] = 2;
	put_file("trace", "version-2", b, HDR + first_len);
	b[8] = 0;
	put_file("trace", "version-0", b, HDR + first_len);
	b[8] = 1;
	b[10] = 10;
	put_file("trace", "header-len-10", b, HDR + first_len);
	b[10] = HDR;
	memset(b + HDR + 4, 0xff, 4);
	put_file("trace", "record-len-huge", b, HDR + first_len);
	memcpy(b + HDR + 4, t.b + HDR + 4, 4);
	b[HDR + EV_KIND] = 9;
	put_file("trace", "event-kind-9", b, HDR + first_len);
	b[HDR + EV_KIND] = RW_EV_SEND_RESET;
	b[HDR + EV_FAMILY] = 5;
	put_file("trace", "event-family-5", b, HDR + first_len);
	b[HDR + EV_FAMILY] = 4;
	b[HDR + EV_STATE] = 200;
	put_file("trace", "event-state-200", b, HDR + first_len);
	b[HDR + EV_STATE] = RW_ST_ESTABLISHED;
	/* the reason name's length byte, just before its 18 bytes and the cgroup */
	b[HDR + first_len - 2 - 25 - 18 - 1] = 250;
	put_file("trace", "string-overrun", b, HDR + first_len);
	free(t.b);

	/* owner strings as hostile as a comm and a cgroup path can be; the
	 * socket pointer picks a killed verdict, which prints cur_comm too */
	trace_begin(&t);
	ev = event(RW_EV_DESTROY, 6);
	ev.sk = 0xffff88811f0000c5ull;	/* killed (% RW_CL_COUNT), all evidence (>> 24) */
	memcpy(ev.comm, "\x1b[31m\"x\\\n\x7f\xc3\xa9\xed\xa0\x80\xff", 16);
	memcpy(ev.cur_comm, "\xc0\x80\xf4\x90\x80\x80\xe2\x82\r\t\x01", 12);
	snprintf(ev.cgroup, sizeof(ev.cgroup), "/a \"b\"\\c\x1b]0;t\x07/\xe2\x82\xac\xf0\x9f\x98/\x80\xc1\xbf");
	rw_trace_write_event(t.f, &ev);
	trace_end(&t);
	put_file("trace", "hostile-strings", t.b, t.len);
	free(t.b);

	/* a longer header (a newer minor revision) and a shorter event (an
	 * older writer): both must read */
	trace_begin(&t);
	ev = event(RW_EV_RECV_RESET, 6);
	rw_trace_write_event(t.f, &ev);
	trace_end(&t);
	memcpy(b, t.b, HDR);
	b[10] = 200;
	memset(b + HDR, 0xee, 40);
	memcpy(b + 200, t.b + HDR, t.len - HDR);
	put_file("trace", "header-len-200", b, t.len + 40);
	memcpy(b + HDR, (uint8_t[]){ 1, 0, 0, 0, 21, 0, 0, 0 }, 8);
	memcpy(b + HDR + 8, t.b + HDR + 8, 21);
	b[10] = HDR;
	put_file("trace", "event-21-bytes", b, HDR + 8 + 21);
	free(t.b);
}

static void json_seeds(void)
{
	static const struct { const char *name, *s; size_t len; } seeds[] = {
#define S(name, lit) { name, lit, sizeof(lit) - 1 }
		S("plain", "nginx"),
		S("comm-16-no-nul", "0123456789abcdef"),
		S("quote-backslash", "a\"b\\c\"\\"),
		S("controls", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"
			      "\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"),
		S("terminal-escapes", "\x1b[2J\x1b]0;title\x07x\n12:00:00 fake\r"),
		S("nul-inside", "ab\0cd"),
		S("utf8-valid", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
		S("utf8-limits", "\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
		S("replacement-char", "\xef\xbf\xbd"),
		S("stray-continuation", "a\x80z\xbf"),
		S("truncated-sequences", "a\xe2\x82" "b\xf0\x9f\x98" "c\xc3"),
		S("overlong", "\xc0\x80\xc1\xbf\xe0\x80\xaf\xe0\x9f\xbf\xf0\x80\x80\xaf\xf0\x8f\xbf\xbf"),
		S("surrogates", "\xed\xa0\x80\xed\xbf\xbf\xed\xb0\x80"),
		S("beyond-10ffff", "\xf4\x90\x80\x80\xf5\x80\x80\x80\xf7\xbf\xbf\xbf"),
		S("never-in-utf8", "\xfe\xff\xf8\x88\x80\x80\x80\xfc\x84\x80\x80\x80\x80"),
		S("json-lookalike", "\\u0041\\n\"},{\"class\":\"x"),
		S("cgroup-path", "/system.slice/a \"b\".service"),
#undef S
	};

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		put_file("json", seeds[i].name, seeds[i].s, seeds[i].len);
}

int main(int argc, char **argv)
{
	char path[512];

	if (argc != 2) {
		fprintf(stderr, "usage: mkcorpus DIR (writes DIR/trace/ and DIR/json/)\n");
		return 2;
	}
	dir = argv[1];
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", dir, (const char *[]){ "", "/trace", "/json" }[i]);
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			fprintf(stderr, "mkcorpus: cannot create %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	trace_seeds();
	json_seeds();
	return 0;
}
