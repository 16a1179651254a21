// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Trace files: round trip, and the reader against hostile input: empty,
 * foreign, newer-version, truncated at every byte, oversized and corrupt
 * records, and random garbage.  Each must give one error with an offset, or a
 * clean end, and never read past what it was given.
 */
#include <stdlib.h>

#include <unistd.h>

#include "check.h"
#include "merge.h"
#include "trace.h"

static uint8_t file[8192];
static size_t file_len;

static struct rw_event full_event(uint64_t t)
{
	struct rw_event ev = { 0 };

	ev.time_ns = t;
	ev.sk = 0x2a00001234ull;		/* the cookie */
	ev.skaddr = 0xffff888108d0c0c0ull;
	ev.kind = RW_EV_SEND_RESET;
	ev.state = RW_ST_CLOSE;
	ev.oldstate = RW_ST_ESTABLISHED;
	ev.newstate = RW_ST_CLOSE;
	ev.family = 6;
	ev.seg_flags = RW_SEG_ACK;
	ev.shutdown = 3;
	ev.flags = RW_EVF_SK | RW_EVF_FULL | RW_EVF_OWNER | RW_EVF_LINGER;
	for (int i = 0; i < 16; i++) {
		ev.laddr[i] = (uint8_t)i;
		ev.raddr[i] = (uint8_t)(0xf0 + i);
	}
	ev.lport = 40000;
	ev.rport = 443;
	ev.netns = 4026531833u;
	ev.seg_len = 7;
	ev.unread = 100;
	ev.unsent = 5;
	ev.inflight = 9;
	ev.total_retrans = 3;
	ev.retransmits = 2;
	ev.probes_out = 1;
	ev.sk_err = 110;
	ev.sk_err_soft = -1;
	ev.linger2 = -1;
	ev.lingertime = 0;
	ev.user_timeout_ms = 30000;
	ev.snd_wnd = 65535;
	ev.bytes_received = 1ull << 40;
	ev.bytes_acked = 12345;
	ev.start_ns = t - 1000;
	ev.pid = 4242;
	ev.cur_pid = 7;
	memcpy(ev.comm, "0123456789abcdef", 16);	/* 16 bytes, no NUL */
	memcpy(ev.cur_comm, "ss", 3);
	snprintf(ev.cgroup, sizeof(ev.cgroup), "/system.slice/a \"b\".service");
	snprintf(ev.reason_name, sizeof(ev.reason_name), "TCP_ABORT_ON_CLOSE");
	ev.reason = RW_RSN_TCP_ABORT_ON_CLOSE;
	snprintf(ev.ctr.runtime, sizeof(ev.ctr.runtime), "containerd");
	memset(ev.ctr.id, 'a', RW_CONTAINER_ID_MAX - 1);
	snprintf(ev.ctr.pod_uid, sizeof(ev.ctr.pod_uid), "4f8e2c1a-7b3d-4e5f-9a0b-1c2d3e4f5a6b");
	memset(ev.ctr.pod_ns, 'n', RW_POD_NS_MAX - 1);
	memset(ev.ctr.pod, 'p', RW_POD_NAME_MAX - 1);		/* the longest of each */
	ev.flags |= RW_EVF_PASSIVE;
	ev.snd_una = 0xfffffff0u;
	ev.rcv_nxt = 7;
	ev.seg_seq = 0xfffffff0u;
	ev.snd_nxt = 17;
	ev.rcv_wnd = 65535;
	ev.last_sent_ms = 300000;
	ev.last_recv_ms = 1;
	ev.last_ack_ms = 4000000000u;
	ev.about = 0x2a00001235ull;
	return ev;
}

/* header, event, tick, event, end */
static void build(void)
{
	struct rw_trace_header h = { .version = RW_TRACE_VERSION, .boot_to_real_ns = -5,
				     .created_ns = 99 };
	struct rw_trace_end end = { .produced = 10, .lost = 2 };
	struct rw_event ev = full_event(1000);
	FILE *f = fmemopen(file, sizeof(file), "w");

	snprintf(h.kernel_release, sizeof(h.kernel_release), "6.18.44-test");
	snprintf(h.hostname, sizeof(h.hostname), "host");
	rw_trace_write_header(f, &h);
	rw_trace_write_event(f, &ev);
	rw_trace_write_tick(f, 2000);
	ev = full_event(3000);
	ev.kind = RW_EV_RECV_RESET;
	ev.reason_name[0] = 0;
	ev.reason = RW_RSN_NONE;
	rw_trace_write_event(f, &ev);
	rw_trace_write_end(f, &end);
	file_len = (size_t)ftell(f);
	fclose(f);
}

/* Read a whole buffer: items counted, 0 clean end or -1 error (message in err). */
static int read_all(const uint8_t *buf, size_t len, int *items, char *err, size_t errlen,
		    struct rw_trace_item *first)
{
	struct rw_trace_reader r = { 0 };
	struct rw_trace_header h;
	struct rw_trace_item it;
	int rc;

	*items = 0;
	err[0] = 0;
	r.f = fmemopen((void *)buf, len ? len : 1, "r");
	if (len == 0) {
		fclose(r.f);
		r.f = fopen("/dev/null", "r");
	}
	rc = rw_trace_read_header(&r, &h);
	while (rc == 0 && (rc = rw_trace_read(&r, &it)) > 0) {
		if (*items == 0 && first)
			*first = it;
		(*items)++;
		rc = 0;
	}
	snprintf(err, errlen, "%s", r.err);
	fclose(r.f);
	return rc;
}

static void round_trip(void)
{
	struct rw_trace_reader r = { 0 };
	struct rw_trace_header h;
	struct rw_trace_item it;
	struct rw_event want = full_event(1000);

	TEST("round trip");
	r.f = fmemopen(file, file_len, "r");
	CHECK_INT("header", rw_trace_read_header(&r, &h), 0);
	CHECK_INT("version", h.version, 2);
	CHECK_INT("boot offset", h.boot_to_real_ns, -5);
	CHECK_STR("kernel", h.kernel_release, "6.18.44-test");
	CHECK_STR("host", h.hostname, "host");
	CHECK_INT("event", rw_trace_read(&r, &it), 1);
	CHECK_INT("kind", it.kind, RW_TRACE_EVENT);
	CHECK_INT("every field back", memcmp(&it.ev, &want, sizeof(want)), 0);
	CHECK_INT("tick", rw_trace_read(&r, &it), 1);
	CHECK_INT("tick time", it.tick_ns, 2000);
	CHECK_INT("second event", rw_trace_read(&r, &it), 1);
	CHECK_INT("no reason", it.ev.reason, RW_RSN_NONE);
	CHECK_INT("end", rw_trace_read(&r, &it), 1);
	CHECK_INT("end counters", it.end.produced * 100 + it.end.lost, 1002);
	CHECK_INT("clean end of file", rw_trace_read(&r, &it), 0);
	CHECK_INT("all consumed", r.offset, file_len);
	fclose(r.f);
}

/* A format-1 trace knew sockets by address: that address is the identity,
 * and the field format 2 appends is not read from it. */
static void format1(void)
{
	static uint8_t old[8192];
	struct rw_trace_item it;
	char err[192];
	int n;

	TEST("format 1: the address is the identity");
	memcpy(old, file, file_len);
	old[8] = 1;
	CHECK_INT("reads", read_all(old, file_len, &n, err, sizeof(err), &it), 0);
	CHECK_INT("items", n, 4);
	CHECK_INT("sk kept", it.ev.sk == 0x2a00001234ull, 1);
	CHECK_INT("address is sk", it.ev.skaddr == it.ev.sk, 1);
}

/* The end record carries what the kernel counted instead of sending records. */
static void kernel_counts(void)
{
	static uint8_t buf[2048];
	struct rw_trace_header h = { .version = RW_TRACE_VERSION };
	struct rw_trace_end end = { .produced = 9, .lost = 1, .tw_entered = 100, .tw_expired = 60,
				    .tw_reused = 30, .tw_ended = 95, .ntop = 1, .missed = 4,
				    .close_unseen = 3 };
	struct rw_trace_item it;
	char err[192];
	size_t len;
	int n;
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	TEST("end record: TIME_WAIT counts and top endpoints");
	end.top[0] = (struct rw_tw_endpoint){ .family = 6, .netns = 42, .rport = 443, .count = 5,
					      .laddr = { 0xfd, [15] = 1 }, .raddr = { 0xfd, [15] = 2 } };
	rw_trace_write_header(f, &h);
	rw_trace_write_end(f, &end);
	len = (size_t)ftell(f);
	fclose(f);
	CHECK_INT("reads", read_all(buf, len, &n, err, sizeof(err), &it), 0);
	CHECK_INT("every field back", memcmp(&it.end, &end, sizeof(end)), 0);
	/* as an older rstwatch wrote it: nothing after the endpoints */
	buf[4 + 160] = (uint8_t)(buf[4 + 160] - 16);	/* payload length */
	CHECK_INT("reads without the counts appended", read_all(buf, len - 16, &n, err, sizeof(err),
								  &it), 0);
	CHECK_INT("... as 0", (int)(it.end.missed + it.end.close_unseen), 0);
	CHECK_INT("... the rest as written", (int)(it.end.tw_ended + it.end.top[0].count), 100);
	buf[4 + 160] = (uint8_t)(buf[4 + 160] + 16);
	buf[160 + 8 + 48] = RW_TW_TOP + 1;	/* ntop */
	CHECK_INT("too many endpoints refused", read_all(buf, len, &n, err, sizeof(err), &it), -1);
	CHECK_STR("... in one line", err, "record at byte 160: 6 endpoints (at most 5)");
}

static void headers(void)
{
	uint8_t b[256] = { 0 };
	char err[192];
	int n;

	TEST("headers");
	CHECK_INT("empty file", read_all(b, 0, &n, err, sizeof(err), NULL), -1);
	CHECK_STR("empty file says so", err, "empty file: not an rstwatch trace");
	memcpy(b, "PCAPPCAPxxxx", 12);
	read_all(b, 12, &n, err, sizeof(err), NULL);
	CHECK_STR("foreign file", err, "not an rstwatch trace (no \"RSTWATCH\" magic at byte 0)");

	memcpy(b, file, 160);
	b[8] = 3;
	read_all(b, 160, &n, err, sizeof(err), NULL);
	CHECK_STR("newer version rejected, never misread", err,
		  "trace format version 3 is newer than this rstwatch reads (2): use a newer rstwatch");
	b[8] = 0;
	read_all(b, 160, &n, err, sizeof(err), NULL);
	CHECK_STR("version 0", err, "bad trace format version 0 at byte 8");
	b[8] = 1;
	b[10] = 10;
	b[11] = 0;
	read_all(b, 160, &n, err, sizeof(err), NULL);
	CHECK_STR("header length too small", err, "bad header length 10 at byte 10");

	/* a longer header from a newer minor revision is skipped */
	{
		uint8_t big[8192];

		memcpy(big, file, 160);
		big[10] = 200;
		memset(big + 160, 0xee, 40);
		memcpy(big + 200, file + 160, file_len - 160);
		CHECK_INT("longer header accepted", read_all(big, file_len + 40, &n, err, sizeof(err), NULL), 0);
		CHECK_INT("all items after it", n, 4);
	}
}

static void truncation_everywhere(void)
{
	char err[192];
	int n, bad = 0, boundaries = 0;

	TEST("truncated at every byte");
	for (size_t cut = 0; cut < file_len; cut++) {
		int rc = read_all(file, cut, &n, err, sizeof(err), NULL);

		if (rc == 0) {
			boundaries++;	/* cut exactly between records: fewer items, no error */
			continue;
		}
		if (!strstr(err, "truncated") && !strstr(err, "empty") && !strstr(err, "magic"))
			bad++, fprintf(stderr, "  cut at %zu: %s\n", cut, err);
	}
	CHECK_INT("every cut inside a record is reported as truncated", bad, 0);
	CHECK_INT("cuts at record boundaries read cleanly (after header, 3 records)", boundaries, 4);
}

static void corrupt_records(void)
{
	uint8_t b[8192];
	char err[192];
	int n;

	TEST("corrupt records");
	memcpy(b, file, file_len);
	b[160 + 4] = 0xff;	/* first record's length: huge */
	b[160 + 5] = 0xff;
	b[160 + 6] = 0xff;
	b[160 + 7] = 0xff;
	read_all(b, file_len, &n, err, sizeof(err), NULL);
	CHECK_STR("oversized length", err, "record at byte 160: length 4294967295 exceeds 65536");

	memcpy(b, file, file_len);
	b[160 + 8 + 16] = 42;	/* kind */
	read_all(b, file_len, &n, err, sizeof(err), NULL);
	CHECK_STR("bad kind", err, "event at byte 160: unknown event kind 42");

	memcpy(b, file, file_len);
	b[160 + 8 + 20] = 5;	/* family */
	read_all(b, file_len, &n, err, sizeof(err), NULL);
	CHECK_STR("bad family", err, "event at byte 160: bad address family 5");

	memcpy(b, file, file_len);
	b[160 + 8 + 17] = 200;	/* state */
	read_all(b, file_len, &n, err, sizeof(err), NULL);
	CHECK_STR("bad state", err, "event at byte 160: bad TCP state");

	/* unknown record type: skipped, the rest still read */
	memcpy(b, file, file_len);
	b[160] = 77;
	CHECK_INT("unknown record type skipped", read_all(b, file_len, &n, err, sizeof(err), NULL), 0);
	CHECK_INT("the other records", n, 3);
}

static void older_writer(void)
{
	uint8_t b[512];
	struct rw_trace_item it;
	char err[192];
	int n;

	TEST("shorter record from an older writer");
	memcpy(b, file, 160);
	/* an event record holding only time, sk and the eight state bytes + family */
	memcpy(b + 160, (uint8_t[]){ 1, 0, 0, 0, 21, 0, 0, 0 }, 8);
	memset(b + 168, 0, 21);
	b[168] = 42;		/* time */
	b[168 + 16] = RW_EV_DESTROY;
	b[168 + 20] = 4;	/* family */
	CHECK_INT("read", read_all(b, 160 + 8 + 21, &n, err, sizeof(err), &it), 0);
	CHECK_INT("one event", n, 1);
	CHECK_INT("its time", it.ev.time_ns, 42);
	CHECK_INT("missing fields are zero", it.ev.pid + it.ev.unread + it.ev.netns, 0);
	CHECK_STR("missing strings are empty", it.ev.cgroup, "");
}

static void garbage(void)
{
	uint8_t b[4096];
	char err[192];
	int n, crashed = 0;

	TEST("random garbage after a valid header");
	srand(1);
	for (int round = 0; round < 2000; round++) {
		size_t len = 160 + (size_t)(rand() % 3000);

		memcpy(b, file, 160);
		for (size_t i = 160; i < len; i++)
			b[i] = (uint8_t)rand();
		if (read_all(b, len, &n, err, sizeof(err), NULL) < 0 && !err[0])
			crashed++;	/* an error must always say why */
	}
	CHECK_INT("every failure explained", crashed, 0);
}

/* Two hosts' files as one stream: by time, ties to the first file, an end
 * record where it stands; the counters add up, top endpoints merged. */
static void merged(void)
{
	char a[] = "/tmp/rstwatch-merge-XXXXXX", b[] = "/tmp/rstwatch-merge-XXXXXX";
	const char *paths[2] = { a, b };
	struct rw_trace_header h = { .version = RW_TRACE_VERSION };
	struct rw_trace_end ends[2] = {
		{ .produced = 3, .lost = 1, .ntop = 2, .top = { { .family = 4, .count = 9 },
								 { .family = 4, .count = 2 } } },
		{ .produced = 4, .ntop = 1, .top = { { .family = 6, .count = 5 } } },
	}, sum;
	struct rw_trace_item it;
	struct rw_merge *m;
	uint64_t created, want_t[] = { 10, 20, 20, 30, 40 };
	size_t src, want_src[] = { 0, 0, 1, 0, 1 }, n = 0;
	char err[320];
	int fa = mkstemp(a), fb = mkstemp(b);
	FILE *f[2] = { fdopen(fa, "w"), fdopen(fb, "w") };
	struct rw_event e = full_event(0);

	TEST("merged files");
	h.created_ns = 7;
	rw_trace_write_header(f[0], &h);
	h.created_ns = 5;
	rw_trace_write_header(f[1], &h);
	e.time_ns = 10;
	rw_trace_write_event(f[0], &e);
	e.time_ns = 20;
	rw_trace_write_event(f[0], &e);		/* tie with b's: a first */
	rw_trace_write_end(f[0], &ends[0]);	/* stands at 20: before b's 20 too */
	rw_trace_write_tick(f[0], 30);
	rw_trace_write_event(f[1], &e);
	e.time_ns = 40;
	rw_trace_write_event(f[1], &e);
	fclose(f[0]);
	fclose(f[1]);
	m = rw_merge_open(paths, 2, &created, err, sizeof(err));
	CHECK_INT("opened", m != NULL, 1);
	CHECK_INT("earliest start", created, 5);
	while (m && rw_merge_next(m, &it, &src, err, sizeof(err)) > 0) {
		uint64_t t = it.kind == RW_TRACE_TICK ? it.tick_ns : it.kind == RW_TRACE_EVENT ?
			     it.ev.time_ns : 0;

		if (it.kind == RW_TRACE_END) {
			CHECK_INT("end after a's 20, and before b's (a tie)", n, 2);
			CHECK_INT("end's file", src, 0);
			continue;
		}
		if (n < 5) {
			CHECK_INT("time order", t, want_t[n]);
			CHECK_INT("file", src, want_src[n]);
		}
		n++;
	}
	CHECK_INT("all items", n, 5);
	rw_merge_close(m);
	rw_merge_ends(ends, 2, &sum);
	CHECK_INT("produced", sum.produced, 7);
	CHECK_INT("lost", sum.lost, 1);
	CHECK_INT("top", sum.ntop, 3);
	CHECK_INT("top by count", sum.top[0].count * 100 + sum.top[1].count * 10 + sum.top[2].count,
		  952);
	paths[1] = "/nonexistent/rstwatch";
	CHECK_INT("a missing file", rw_merge_open(paths, 2, &created, err, sizeof(err)) == NULL, 1);
	CHECK_STR("... named", err, "/nonexistent/rstwatch: No such file or directory");
	unlink(a);
	unlink(b);
}

int main(void)
{
	build();
	round_trip();
	merged();
	format1();
	kernel_counts();
	headers();
	truncation_everywhere();
	corrupt_records();
	older_writer();
	garbage();
	return check_done("trace");
}
