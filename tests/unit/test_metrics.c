// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * --metrics without a socket: label escaping, Accept negotiation, request
 * parsing, the exposition in both formats, the per-owner series cap.  With --emit,
 * prints an exposition with hostile comms (text format, or OpenMetrics with
 * --emit om) for tests/unit/run to check with promtool and a strict
 * OpenMetrics parser.
 */
#include <stdlib.h>

#include "check.h"
#include "escape.h"
#include "httpd.h"
#include "metrics.h"

static char buf[1 << 16];

static const char *label(const char *s, size_t n)
{
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	rw_prom_label(f, s, n);
	fclose(f);
	return buf;
}

static void label_escapes(void)
{
	TEST("label escaping");
	CHECK_STR("plain", label("nginx", 16), "nginx");
	CHECK_STR("quote", label("a\"b", 16), "a\\\"b");
	CHECK_STR("backslash as text prints it, escaped", label("a\\b", 16), "a\\\\x5cb");
	CHECK_STR("newline", label("a\nb", 16), "a\\\\x0ab");
	CHECK_STR("ESC", label("\x1b[2J", 16), "\\\\x1b[2J");
	CHECK_STR("valid UTF-8 passes", label("caf\xc3\xa9", 16), "caf\xc3\xa9");
	CHECK_STR("invalid UTF-8", label("a\xff", 16), "a\\\\xff");
	CHECK_STR("C1", label("\xc2\x9b", 16), "\\\\xc2\\\\x9b");
	CHECK_STR("no NUL needed", label("0123456789abcdefXYZ", 16), "0123456789abcdef");
}

#define ACCEPT_PROM_2_42 "application/openmetrics-text;version=1.0.0,application/openmetrics-text;" \
			 "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

static bool om(const char *accept)
{
	return rw_http_wants_openmetrics(accept, strlen(accept));
}

static void negotiation(void)
{
	TEST("Accept negotiation");
	CHECK_INT("Prometheus 2.42's Accept", om(ACCEPT_PROM_2_42), true);
	CHECK_INT("text preferred", om("application/openmetrics-text;q=0.4, text/plain;q=0.5"), false);
	CHECK_INT("*/* only", om("*/*"), false);
	CHECK_INT("text/plain only", om("text/plain"), false);
	CHECK_INT("openmetrics only", om("application/openmetrics-text"), true);
	CHECK_INT("openmetrics, spaces, case", om(" Application/OpenMetrics-Text ; version=1.0.0"), true);
	CHECK_INT("q=0 refuses", om("application/openmetrics-text;q=0, text/plain"), false);
	CHECK_INT("q=0.0 refuses", om("application/openmetrics-text;q=0.0"), false);
	CHECK_INT("tie goes to openmetrics", om("text/plain, application/openmetrics-text"), true);
	CHECK_INT("a longer type is not openmetrics", om("application/openmetrics-textual"), false);
	CHECK_INT("empty", om(""), false);
	CHECK_INT("garbage", om(";;;,,,q=,"), false);
}

static struct rw_http_request req(const char *head)
{
	struct rw_http_request rq;

	rw_http_parse(head, strlen(head), &rq);
	return rq;
}

static void request_parsing(void)
{
	struct rw_http_request rq;

	TEST("request parsing");
	rq = req("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: " ACCEPT_PROM_2_42 "\r\n\r\n");
	CHECK_INT("Prometheus: 200", rw_http_code(rq.status), 200);
	CHECK_INT("Prometheus: /metrics", rq.target, RW_HTTP_METRICS);
	CHECK_INT("Prometheus: OpenMetrics", rq.openmetrics, true);
	CHECK_INT("Prometheus: kept alive", rq.close, false);
	rq = req("GET /metrics?x=1 HTTP/1.0\n\n");
	CHECK_INT("query string, bare LF: 200", rw_http_code(rq.status), 200);
	CHECK_INT("HTTP/1.0 closes", rq.close, true);
	CHECK_INT("no Accept: text", rq.openmetrics, false);
	rq = req("HEAD / HTTP/1.1\r\nConnection: Close\r\n\r\n");
	CHECK_INT("HEAD /", rw_http_code(rq.status) == 200 && rq.head && rq.target == RW_HTTP_INDEX, 1);
	CHECK_INT("Connection: close", rq.close, true);
	CHECK_INT("HTTP/2.0", rw_http_code(req("GET /metrics HTTP/2.0\r\n\r\n").status), 505);
	CHECK_INT("POST", rw_http_code(req("POST /metrics HTTP/1.1\r\n\r\n").status), 405);
	CHECK_INT("a body", rw_http_code(req("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").status), 400);
	CHECK_INT("Content-Length: 0", rw_http_code(req("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status), 200);
	CHECK_INT("chunked", rw_http_code(req("GET / HTTP/1.1\r\nTransfer-Encoding: x\r\n\r\n").status), 400);
	CHECK_INT("folded header", rw_http_code(req("GET / HTTP/1.1\r\n x: y\r\n\r\n").status), 400);
	CHECK_INT("no colon", rw_http_code(req("GET / HTTP/1.1\r\nHost\r\n\r\n").status), 400);
	CHECK_INT("space in a name", rw_http_code(req("GET / HTTP/1.1\r\nHo st: x\r\n\r\n").status), 400);
	CHECK_INT("no version", rw_http_code(req("GET /\r\n\r\n").status), 400);
	CHECK_INT("other path", rw_http_code(req("GET /metricsx HTTP/1.1\r\n\r\n").status), 404);
	CHECK_INT("empty", rw_http_code(req("\r\n\r\n").status), 400);
}

static struct rw_event ev_owner(const char *comm)
{
	struct rw_event ev = { .flags = RW_EVF_OWNER, .pid = 42 };

	memcpy(ev.comm, comm, strnlen(comm, RW_COMM_MAX));
	return ev;
}

static void count(struct rw_metrics *m, const struct rw_event *ev, enum rw_class cls,
		  enum rw_subtype sub, enum rw_origin o, enum rw_state st, int n)
{
	struct rw_verdict v = { .cls = cls, .sub = sub, .origin = o, .state = st, .ev = ev };

	for (int i = 0; i < n; i++)
		rw_metrics_verdict(m, &v);
}

static const char *expose(const struct rw_metrics *m, bool openmetrics)
{
	struct rw_metrics_health h = { .produced = 7, .lost = 1, .time_wait = 3, .missed = 4,
					.close_unseen = 2 };
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	h.http.requests[RW_HTTP_200] = 5;
	rw_metrics_write(f, m, &h, openmetrics);
	fclose(f);
	return buf;
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void exposition(void)
{
	struct rw_metrics *m = rw_metrics_new(0, 10);
	struct rw_tracer_feature f[] = { { "reset_reason", true }, { "accept_fexit", false } };
	struct rw_event none = { 0 }, own = ev_owner("nginx");
	const char *t;

	TEST("exposition");
	rw_metrics_set_build(m, "0.1.0", "6.18.0", f, 2);
	count(m, &own, RW_CL_UNREAD_DATA, RW_SUB_NONE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 3);
	count(m, &none, RW_CL_REFUSED, RW_SUB_NONE, RW_OR_REPLY, RW_ST_UNKNOWN, 2);
	count(m, &own, RW_CL_TIMEOUT, RW_SUB_SYN, RW_OR_LOCAL, RW_ST_SYN_SENT, 1);
	t = expose(m, false);
	CHECK_INT("text: TYPE names the sample", has_line(t, "# TYPE rstwatch_verdicts_total counter"), 1);
	CHECK_INT("text: unread_data", has_line(t, "rstwatch_verdicts_total{class=\"unread_data\","
						 "origin=\"local\",state=\"ESTABLISHED\"} 3"), 1);
	CHECK_INT("text: refused has no state", has_line(t, "rstwatch_verdicts_total{class=\"refused\","
							 "origin=\"reply\"} 2"), 1);
	CHECK_INT("text: subtype", has_line(t, "rstwatch_verdicts_total{class=\"timeout\",subtype=\"syn\","
					       "origin=\"local\",state=\"SYN_SENT\"} 1"), 1);
	CHECK_INT("text: no owner family unless asked", strstr(t, "rstwatch_owner_verdicts") == NULL, 1);
	CHECK_INT("text: info is a gauge", has_line(t, "# TYPE rstwatch_build_info gauge"), 1);
	CHECK_INT("text: build info", has_line(t, "rstwatch_build_info{version=\"0.1.0\",kernel=\"6.18.0\"} 1"), 1);
	CHECK_INT("text: feature off", has_line(t, "rstwatch_kernel_feature{feature=\"accept_fexit\"} 0"), 1);
	CHECK_INT("text: lost", has_line(t, "rstwatch_events_lost_total 1"), 1);
	CHECK_INT("text: missed", has_line(t, "rstwatch_events_missed_total 4"), 1);
	CHECK_INT("text: closes unseen", has_line(t, "rstwatch_closes_unseen_total 2"), 1);
	CHECK_INT("text: time_wait gauge", has_line(t, "rstwatch_time_wait_sockets 3"), 1);
	CHECK_INT("text: http 200", has_line(t, "rstwatch_http_requests_total{code=\"200\"} 5"), 1);
	CHECK_INT("text: no EOF", strstr(t, "# EOF") == NULL, 1);
	t = expose(m, true);
	CHECK_INT("om: TYPE names the family", has_line(t, "# TYPE rstwatch_verdicts counter"), 1);
	CHECK_INT("om: sample keeps _total", has_line(t, "rstwatch_verdicts_total{class=\"refused\","
							 "origin=\"reply\"} 2"), 1);
	CHECK_INT("om: info", has_line(t, "# TYPE rstwatch_build info"), 1);
	CHECK_INT("om: unit", has_line(t, "# UNIT process_cpu_seconds seconds"), 1);
	CHECK_INT("om: ends in # EOF", strlen(t) > 6 && strcmp(t + strlen(t) - 6, "# EOF\n") == 0, 1);
	rw_metrics_free(m);
}

static void owner_cap(void)
{
	struct rw_metrics *m = rw_metrics_new(RW_ML_COMM, 3);
	struct rw_event a = ev_owner("a"), b = ev_owner("b"), c = ev_owner("c"), d = ev_owner("d");
	struct rw_event none = { 0 };
	const char *t;

	TEST("per-owner series and their cap");
	count(m, &a, RW_CL_LINGER0, RW_SUB_NONE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 2);
	count(m, &b, RW_CL_LINGER0, RW_SUB_NONE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 1);
	count(m, &a, RW_CL_PEER_RESET, RW_SUB_NONE, RW_OR_PEER, RW_ST_ESTABLISHED, 1);
	count(m, &c, RW_CL_LINGER0, RW_SUB_NONE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 4);	/* the 4th series */
	count(m, &d, RW_CL_LINGER0, RW_SUB_NONE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 1);
	count(m, &a, RW_CL_LINGER0, RW_SUB_NONE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 1);	/* existing: counted */
	count(m, &none, RW_CL_REFUSED, RW_SUB_NONE, RW_OR_REPLY, RW_ST_UNKNOWN, 1);	/* no owner */
	t = expose(m, false);
	CHECK_INT("a", has_line(t, "rstwatch_owner_verdicts_total{class=\"linger0\",origin=\"local\","
				  "state=\"ESTABLISHED\",comm=\"a\"} 3"), 1);
	CHECK_INT("b", has_line(t, "rstwatch_owner_verdicts_total{class=\"linger0\",origin=\"local\","
				  "state=\"ESTABLISHED\",comm=\"b\"} 1"), 1);
	CHECK_INT("c refused", strstr(t, "comm=\"c\"") == NULL, 1);
	CHECK_INT("refused count", has_line(t, "rstwatch_owner_verdicts_refused_total 5"), 1);
	CHECK_INT("series", has_line(t, "rstwatch_owner_series 3"), 1);
	CHECK_INT("the total still counts all", has_line(t, "rstwatch_verdicts_total{class=\"linger0\","
							  "origin=\"local\",state=\"ESTABLISHED\"} 9"), 1);
	rw_metrics_free(m);
}

static void parse_labels(void)
{
	uint32_t l;
	char err[128];

	TEST("--metrics-labels");
	CHECK_INT("comm", rw_metrics_parse_labels("comm", &l, err, sizeof(err)), 0);
	CHECK_INT("comm bit", l, RW_ML_COMM);
	CHECK_INT("unknown", rw_metrics_parse_labels("comm,pid", &l, err, sizeof(err)), -1);
	CHECK_STR("its message", err, "--metrics-labels: unknown label 'pid' (known: comm, container, "
		  "pod, namespace)");
	CHECK_INT("empty", rw_metrics_parse_labels(",", &l, err, sizeof(err)), -1);
	CHECK_INT("all four", rw_metrics_parse_labels("namespace,pod,container,comm", &l, err,
						      sizeof(err)), 0);
	CHECK_INT("all four bits", l, RW_ML_COMM | RW_ML_CONTAINER | RW_ML_POD | RW_ML_NAMESPACE);
}

/* Container, pod and namespace labels: one series per pod and container,
 * empty values where the owner has none. */
static void container_labels(void)
{
	struct rw_metrics *m = rw_metrics_new(RW_ML_CONTAINER | RW_ML_POD | RW_ML_NAMESPACE, 10);
	struct rw_event a = ev_owner("nginx"), b = ev_owner("nginx"), host = ev_owner("sshd");
	const char *t;

	TEST("container labels");
	snprintf(a.ctr.id, sizeof(a.ctr.id), "%s", "aaaa");
	snprintf(a.ctr.pod, sizeof(a.ctr.pod), "%s", "web-0");
	snprintf(a.ctr.pod_ns, sizeof(a.ctr.pod_ns), "%s", "shop");
	b = a;
	snprintf(b.ctr.pod, sizeof(b.ctr.pod), "%s", "web-1");
	count(m, &a, RW_CL_LINGER0, RW_SUB_NONE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 2);
	count(m, &b, RW_CL_LINGER0, RW_SUB_NONE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 1);
	count(m, &host, RW_CL_LINGER0, RW_SUB_NONE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 1);
	t = expose(m, false);
	CHECK_INT("web-0", has_line(t, "rstwatch_owner_verdicts_total{class=\"linger0\",origin=\"local\","
				      "state=\"ESTABLISHED\",container=\"aaaa\",pod=\"web-0\","
				      "namespace=\"shop\"} 2"), 1);
	CHECK_INT("web-1", has_line(t, "rstwatch_owner_verdicts_total{class=\"linger0\",origin=\"local\","
				      "state=\"ESTABLISHED\",container=\"aaaa\",pod=\"web-1\","
				      "namespace=\"shop\"} 1"), 1);
	CHECK_INT("no comm label: not asked", strstr(t, "comm=") == NULL, 1);
	CHECK_INT("on the host: empty", has_line(t, "rstwatch_owner_verdicts_total{class=\"linger0\","
						   "origin=\"local\",state=\"ESTABLISHED\",container=\"\","
						   "pod=\"\",namespace=\"\"} 1"), 1);
	rw_metrics_free(m);
}

/* An exposition with every hostile comm of test_output plus a quote. */
static int emit(bool openmetrics)
{
	static const char *const comms[] = {
		"plain", "quo\"te", "back\\slash", "new\nline", "\x1b[31mred", "\xff\xfe", "\xc2\x85nel",
		"caf\xc3\xa9", "0123456789abcdef",
	};
	struct rw_metrics *m = rw_metrics_new(RW_ML_COMM, 100);
	struct rw_tracer_feature f[] = { { "reset_reason", true } };

	rw_metrics_set_build(m, "0.1.0", "6.18.0 \"#1\"\\", f, 1);
	for (size_t i = 0; i < sizeof(comms) / sizeof(comms[0]); i++) {
		struct rw_event ev = ev_owner(comms[i]);

		count(m, &ev, RW_CL_UNREAD_DATA, RW_SUB_NONE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 1);
		count(m, &ev, RW_CL_TIMEOUT, RW_SUB_KEEPALIVE, RW_OR_LOCAL, RW_ST_ESTABLISHED, 2);
	}
	fputs(expose(m, openmetrics), stdout);
	rw_metrics_free(m);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--emit") == 0)
		return emit(argc >= 3 && strcmp(argv[2], "om") == 0);
	label_escapes();
	negotiation();
	request_parsing();
	exposition();
	owner_cap();
	parse_labels();
	container_labels();
	return check_done("metrics");
}
