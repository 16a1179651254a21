// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Encoders: JSON string escaping, text escaping, and whole verdict lines.
 * With --emit, prints verdict lines with hostile comms for tests/unit/run to
 * check with a real JSON parser.
 */
#include <stdlib.h>

#include "check.h"
#include "escape.h"
#include "output.h"
#include "summary.h"

static char buf[4096];

static char *capture(void (*fn)(FILE *, const char *, size_t), const char *s, size_t n)
{
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	fn(f, s, n);
	fclose(f);
	return buf;
}

static char *capture_text(const char *s, size_t n, size_t *cols)
{
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	*cols = rw_text_str(f, s, n);
	fclose(f);
	return buf;
}

static void json_escapes(void)
{
	char all[33];

	TEST("json escaping");
	CHECK_STR("plain", capture(rw_json_str, "nginx", 16), "\"nginx\"");
	CHECK_STR("quote and backslash", capture(rw_json_str, "a\"b\\c", 16), "\"a\\\"b\\\\c\"");
	CHECK_STR("newline, tab, ESC", capture(rw_json_str, "a\nb\tc\x1b[2J", 16),
		  "\"a\\u000ab\\u0009c\\u001b[2J\"");
	CHECK_STR("DEL", capture(rw_json_str, "\x7f", 16), "\"\\u007f\"");
	for (int i = 0; i < 32; i++)
		all[i] = (char)(i + 1 < 32 ? i + 1 : ' ');
	all[32] = 0;
	CHECK_STR("every control byte",
		  capture(rw_json_str, all, sizeof(all)),
		  "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\u0008\\u0009\\u000a"
		  "\\u000b\\u000c\\u000d\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014"
		  "\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e"
		  "\\u001f \"");
	CHECK_STR("valid UTF-8 passes", capture(rw_json_str, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 32),
		  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	CHECK_STR("stray continuation byte", capture(rw_json_str, "a\x80z", 16), "\"a\\ufffdz\"");
	CHECK_STR("truncated sequence", capture(rw_json_str, "a\xe2\x82", 16), "\"a\\ufffd\\ufffd\"");
	CHECK_STR("overlong NUL", capture(rw_json_str, "\xc0\x80", 16), "\"\\ufffd\\ufffd\"");
	CHECK_STR("UTF-16 surrogate", capture(rw_json_str, "\xed\xa0\x80", 16),
		  "\"\\ufffd\\ufffd\\ufffd\"");
	CHECK_STR("beyond U+10FFFF", capture(rw_json_str, "\xf4\x90\x80\x80", 16),
		  "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	CHECK_STR("15 bytes, no NUL: stops at maxlen", capture(rw_json_str, "ABCDEFGHIJKLMNOPQRS", 15),
		  "\"ABCDEFGHIJKLMNO\"");
}

static void text_escapes(void)
{
	size_t cols;

	TEST("text escaping");
	CHECK_STR("plain", capture_text("curl", 16, &cols), "curl");
	CHECK_INT("plain width", cols, 4);
	CHECK_STR("newline cannot forge a line", capture_text("x\n12:00 fake", 16, &cols),
		  "x\\x0a12:00 fake");
	CHECK_STR("ESC and backslash", capture_text("\x1b]0;\\", 16, &cols), "\\x1b]0;\\x5c");
	CHECK_INT("escaped width: two escapes of 4 and 3 plain", cols, 11);
	CHECK_STR("invalid UTF-8", capture_text("\xff\xfe", 16, &cols), "\\xff\\xfe");
	CHECK_STR("valid UTF-8 passes", capture_text("\xc3\xa9t\xc3\xa9", 16, &cols), "\xc3\xa9t\xc3\xa9");
	CHECK_INT("width counts characters, not bytes", cols, 3);
}

static struct rw_event sample_event(const char *comm)
{
	struct rw_event ev = { 0 };

	ev.time_ns = 1795313504214201328ull;	/* 2026-11-22T02:11:44.214201328Z */
	ev.kind = RW_EV_SEND_RESET;
	ev.sk = 0xffff888108d0c0c0ull;
	ev.state = RW_ST_CLOSE;
	ev.family = 4;
	ev.flags = RW_EVF_SK | RW_EVF_FULL | RW_EVF_OWNER | RW_EVF_FIN_RCVD;
	memcpy(ev.laddr, (uint8_t[]){ 10, 231, 1, 1 }, 4);
	memcpy(ev.raddr, (uint8_t[]){ 10, 231, 1, 2 }, 4);
	ev.lport = 40000;
	ev.rport = 8080;
	ev.netns = 4026532000u;
	ev.unread = 101;
	ev.bytes_received = 100;
	ev.pid = 4242;
	ev.start_ns = ev.time_ns - 1500000000ull;
	memcpy(ev.comm, comm, strnlen(comm, RW_COMM_MAX));
	snprintf(ev.cgroup, sizeof(ev.cgroup), "/system.slice/app.service");
	snprintf(ev.reason_name, sizeof(ev.reason_name), "TCP_ABORT_ON_CLOSE");
	return ev;
}

static void verdict_line(void)
{
	struct rw_event ev = sample_event("client");
	struct rw_verdict v = {
		.cls = RW_CL_UNREAD_DATA, .origin = RW_OR_LOCAL, .state = RW_ST_CLOSE_WAIT,
		.ev_mask = RW_VE_SOCKET, .unread_bytes = 100, .ev = &ev,
		.reason = "TCP_ABORT_ON_CLOSE",
	};
	char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	TEST("JSON verdict line");
	rw_json_verdict(f, &v);
	fclose(f);
	CHECK_STR("whole line", buf,
		  "{\"time\":\"2026-11-22T02:11:44.214201328Z\",\"class\":\"unread_data\","
		  "\"subtype\":null,\"origin\":\"local\",\"reason\":\"TCP_ABORT_ON_CLOSE\","
		  "\"state\":\"CLOSE_WAIT\",\"family\":\"ipv4\",\"laddr\":\"10.231.1.1\","
		  "\"lport\":40000,\"raddr\":\"10.231.1.2\",\"rport\":8080,\"netns\":4026532000,"
		  "\"pid\":4242,\"comm\":\"client\",\"cgroup\":\"/system.slice/app.service\","
		  "\"container\":null,\"runtime\":null,\"pod_uid\":null,\"pod_namespace\":null,"
		  "\"pod\":null,\"conn_id\":null,\"flow_id\":null,\"evidence\":{\"unread_bytes\":100,\"unsent_bytes\":0,\"inflight_bytes\":0,"
		  "\"retransmits\":0,\"total_retrans\":0,\"probes\":0,\"sk_err\":null,"
		  "\"so_linger\":\"off\",\"keepalive\":false,\"orphan\":false,\"fin_received\":true,"
		  "\"bytes_received\":100,\"bytes_acked\":0,\"lifetime_ms\":1500},"
		  "\"hint\":\"the application closed with unread bytes in its receive queue, so the "
		  "kernel reset the connection; read the request fully, or shutdown(SHUT_WR) and "
		  "drain, before close()\"}\n");

	/* no owner, no socket: nulls, and IPv6 in compressed form */
	ev = sample_event("");
	ev.flags = RW_EVF_SEG;
	ev.family = 6;
	memset(ev.laddr, 0, 16);
	memset(ev.raddr, 0, 16);
	ev.laddr[0] = 0xfd;
	ev.laddr[15] = 2;
	ev.raddr[0] = 0xfd;
	ev.raddr[15] = 1;
	ev.seg_flags = 0x02;
	v = (struct rw_verdict){ .cls = RW_CL_REFUSED, .origin = RW_OR_REPLY,
				 .state = RW_ST_UNKNOWN, .ev_mask = RW_VE_SEGMENT, .ev = &ev };
	f = fmemopen(buf, sizeof(buf), "w");
	rw_json_verdict(f, &v);
	fclose(f);
	CHECK_INT("ends in exactly one newline", strchr(buf, '\n') == buf + strlen(buf) - 1, 1);
	CHECK_INT("state null", strstr(buf, "\"state\":null,") != NULL, 1);
	CHECK_INT("owner null", strstr(buf, "\"pid\":null,\"comm\":null,\"cgroup\":null,") != NULL, 1);
	CHECK_INT("ipv6 compressed", strstr(buf, "\"laddr\":\"fd00::2\"") != NULL, 1);
	CHECK_INT("segment evidence", strstr(buf, "\"segment_flags\":\"SYN\",\"segment_bytes\":0") != NULL, 1);
}

/* The owner's container and pod: JSON keys and the text line, escaped. */
static void container_line(void)
{
	struct rw_event ev = sample_event("nginx");
	struct rw_verdict v = { .cls = RW_CL_LINGER0, .origin = RW_OR_LOCAL,
				.state = RW_ST_ESTABLISHED, .ev = &ev };
	char out[4096];
	FILE *f;

	TEST("container and pod");
	snprintf(ev.ctr.runtime, sizeof(ev.ctr.runtime), "cri-o");
	snprintf(ev.ctr.id, sizeof(ev.ctr.id), "0123456789abcdef0123456789abcdef"
		 "0123456789abcdef0123456789abcdef");
	snprintf(ev.ctr.pod_uid, sizeof(ev.ctr.pod_uid), "4f8e2c1a-7b3d-4e5f-9a0b-1c2d3e4f5a6b");
	snprintf(ev.ctr.pod_ns, sizeof(ev.ctr.pod_ns), "shop");
	snprintf(ev.ctr.pod, sizeof(ev.ctr.pod), "web-\"0\"\n");
	f = fmemopen(out, sizeof(out), "w");
	rw_json_verdict(f, &v);
	fclose(f);
	CHECK_INT("JSON keys", strstr(out, "\"cgroup\":\"/system.slice/app.service\","
		  "\"container\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
		  "\"runtime\":\"cri-o\",\"pod_uid\":\"4f8e2c1a-7b3d-4e5f-9a0b-1c2d3e4f5a6b\","
		  "\"pod_namespace\":\"shop\",\"pod\":\"web-\\\"0\\\"\\u000a\",") != NULL, 1);
	f = fmemopen(out, sizeof(out), "w");
	rw_text_verdict(f, &v, NULL);
	fclose(f);
	CHECK_INT("text: pod and short container id",
		  strstr(out, "SO_LINGER {1,0} close (in pod shop/web-\"0\"\\x0a, container "
			 "cri-o:0123456789ab); ") != NULL, 1);
	/* a pod whose directory was not found: its UID; a container alone */
	ev.ctr.pod_ns[0] = ev.ctr.pod[0] = 0;
	f = fmemopen(out, sizeof(out), "w");
	rw_text_verdict(f, &v, NULL);
	fclose(f);
	CHECK_INT("text: pod UID", strstr(out, "(in pod 4f8e2c1a-7b3d-4e5f-9a0b-1c2d3e4f5a6b, "
					  "container cri-o:0123456789ab)") != NULL, 1);
	ev.ctr.pod_uid[0] = ev.ctr.runtime[0] = 0;
	f = fmemopen(out, sizeof(out), "w");
	rw_text_verdict(f, &v, NULL);
	fclose(f);
	CHECK_INT("text: container alone", strstr(out, "(in container 0123456789ab)") != NULL, 1);
	/* both ISNs known (tests/unit/test_classify.c has how): a flow id */
	ev.flags |= RW_EVF_ACTIVE;
	ev.snd_una = 361424668u + 101;
	ev.bytes_acked = 101;
	ev.rcv_nxt = 511198760u + 1 + 50;
	ev.bytes_received = 50;
	f = fmemopen(out, sizeof(out), "w");
	rw_json_verdict(f, &v);
	fclose(f);
	CHECK_INT("flow_id", strstr(out, "\"conn_id\":null,\"flow_id\":\"ecc1c1482007ef73\",") != NULL, 1);
	/* no owner: nothing of it */
	ev.flags &= ~RW_EVF_OWNER;
	f = fmemopen(out, sizeof(out), "w");
	rw_json_verdict(f, &v);
	fclose(f);
	CHECK_INT("no owner: null", strstr(out, "\"container\":null,\"runtime\":null,") != NULL, 1);
}

static void summaries(void)
{
	struct rw_summary s = { 0 };
	struct rw_summary_losses l = { .events = 40, .lost = 2, .evictions = 1, .missed = 4,
					.close_unseen = 3 };
	struct rw_verdict v = { .cls = RW_CL_TIMEOUT, .sub = RW_SUB_SYN };
	struct rw_tw_endpoint top[2] = {
		{ .family = 4, .netns = 7, .laddr = { 10, 0, 0, 1 }, .raddr = { 10, 0, 0, 2 },
		  .rport = 80, .count = 30 },
		{ .family = 6, .netns = 7, .laddr = { 0xfd, [15] = 1 }, .raddr = { 0xfd, [15] = 2 },
		  .rport = 443, .count = 2 },
	};
	struct rw_summary_tw tw = { .entered = 40, .expired = 5, .reused = 3, .now = 32, .ntop = 2,
				    .top = top };
	struct rw_summary_tw none = { 0 };
	char out[1024];
	FILE *f;

	TEST("summary");
	rw_summary_add(&s, &v);
	rw_summary_add(&s, &v);
	v.cls = RW_CL_LINGER0;
	v.sub = RW_SUB_NONE;
	rw_summary_add(&s, &v);
	f = fmemopen(out, sizeof(out), "w");
	rw_summary_print(f, true, false, 1795313504214201328ull, &s, &l, &tw);
	fclose(f);
	CHECK_STR("JSON total", out,
		  "{\"summary\":\"total\",\"time\":\"2026-11-22T02:11:44.214201328Z\",\"counts\":["
		  "{\"class\":\"linger0\",\"subtype\":null,\"count\":1},"
		  "{\"class\":\"timeout\",\"subtype\":\"syn\",\"count\":2}],"
		  "\"events\":40,\"lost\":2,\"evictions\":1,\"bad_records\":0,"
		  "\"time_wait\":{\"entered\":40,\"expired\":5,\"reused\":3,\"now\":32,\"top\":["
		  "{\"family\":\"ipv4\",\"laddr\":\"10.0.0.1\",\"raddr\":\"10.0.0.2\",\"rport\":80,"
		  "\"netns\":7,\"count\":30},"
		  "{\"family\":\"ipv6\",\"laddr\":\"fd00::1\",\"raddr\":\"fd00::2\",\"rport\":443,"
		  "\"netns\":7,\"count\":2}]},\"missed\":4,\"closes_unseen\":3}\n");
	f = fmemopen(out, sizeof(out), "w");
	rw_summary_print(f, false, true, 1795313504214201328ull, &s, &l, &tw);
	fclose(f);
	CHECK_STR("text interval", out,
		  "--- interval summary to 2026-11-22T02:11:44.214201328Z\n"
		  "linger0                               1\n"
		  "timeout/syn                           2\n"
		  "time_wait: 40 entered, 5 expired, 3 reused, 32 now\n"
		  "  10.0.0.1 -> 10.0.0.2:80 netns 7: 30\n"
		  "  fd00::1 -> [fd00::2]:443 netns 7: 2\n"
		  "events 40, lost 2, evicted 1, malformed 0, missed 4, closes unseen 3\n");
	f = fmemopen(out, sizeof(out), "w");
	rw_summary_print(f, false, false, 1795313504214201328ull, &s, &l, &none);
	fclose(f);
	CHECK_STR("text, no TIME_WAIT: no line for it", out,
		  "--- total summary to 2026-11-22T02:11:44.214201328Z\n"
		  "linger0                               1\n"
		  "timeout/syn                           2\n"
		  "events 40, lost 2, evicted 1, malformed 0, missed 4, closes unseen 3\n");
}

/* --events: a socket freed whose close no program saw says so by name. */
static void event_lines(void)
{
	struct rw_event ev = { .time_ns = 1795313504214201328ull, .sk = 0x1234, .skaddr = 0xffff1,
			       .kind = RW_EV_DESTROY, .state = RW_ST_CLOSE, .family = 4,
			       .flags = RW_EVF_SK | RW_EVF_CLOSE_UNSEEN, .lport = 10007,
			       .rport = 80, .laddr = { 10, 0, 0, 1 }, .raddr = { 10, 0, 0, 2 } };
	char out[512];
	FILE *f;

	TEST("event lines");
	f = fmemopen(out, sizeof(out), "w");
	rw_text_event(f, &ev);
	fclose(f);
	CHECK_INT("destroy, close unseen", strstr(out, " destroy    sk=ffff1 cookie=1234 CLOSE ") &&
		  strstr(out, " close_unseen owner=-"), 1);
	ev.flags = RW_EVF_SK;
	f = fmemopen(out, sizeof(out), "w");
	rw_text_event(f, &ev);
	fclose(f);
	CHECK_INT("... only then", strstr(out, "close_unseen") == NULL, 1);
}

/* Verdict lines whose comm is hostile; the runner parses each with Python's json. */
static int emit_hostile(void)
{
	static const char *const comms[] = {
		"quo\"te", "back\\slash", "new\nline", "esc\x1b[31m", "bad\xff\xfeutf8",
		"ABCDEFGHIJKLMNOP", "\x01\x02\x03\x7f", "\xe2\x82",
	};

	for (size_t i = 0; i < sizeof(comms) / sizeof(comms[0]); i++) {
		struct rw_event ev = sample_event(comms[i]);
		struct rw_verdict v = { .cls = RW_CL_LINGER0, .state = RW_ST_ESTABLISHED,
					.ev_mask = RW_VE_SOCKET, .ev = &ev };

		rw_json_verdict(stdout, &v);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--emit") == 0)
		return emit_hostile();
	json_escapes();
	text_escapes();
	verdict_line();
	container_line();
	summaries();
	event_lines();
	return check_done("output");
}
