/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The --metrics endpoint: a small HTTP/1.x server, GET and HEAD only, that
 * never blocks and never grows.  It lives in rstwatch's main loop: its fds
 * are polled beside the ring buffer's, and each call to rw_httpd_serve() does
 * a bounded amount of non-blocking work, so no client can delay the draining
 * of the ring buffer.  Memory is fixed (RW_HTTPD_CLIENTS slots with a 4 KiB
 * request buffer each) plus one response per client being written.
 */
#ifndef RSTWATCH_HTTPD_H
#define RSTWATCH_HTTPD_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RW_HTTPD_CLIENTS 8	/* connections served at once; a new one evicts the oldest */
#define RW_HTTPD_FDS (1 + RW_HTTPD_CLIENTS)

/* Responses by status, and clients closed before they were done. */
enum { RW_HTTP_200, RW_HTTP_400, RW_HTTP_404, RW_HTTP_405, RW_HTTP_431, RW_HTTP_505,
       RW_HTTP_NCODES };
enum { RW_HTTP_DROP_TIMEOUT, RW_HTTP_DROP_EVICTED, RW_HTTP_DROP_ERROR, RW_HTTP_NDROPS };

struct rw_httpd_stats {
	uint64_t requests[RW_HTTP_NCODES];
	uint64_t dropped[RW_HTTP_NDROPS];
};

int rw_http_code(int idx);		/* RW_HTTP_404 -> 404 */
const char *rw_http_drop_name(int idx);	/* RW_HTTP_DROP_TIMEOUT -> "timeout" */

/* Writes the body of GET /metrics; openmetrics: the client asked for it. */
typedef void (*rw_httpd_render_fn)(FILE *f, bool openmetrics, void *arg);

struct rw_httpd;

/* Listen on spec: "PORT" (127.0.0.1), "ADDR:PORT" or "[ADDR6]:PORT"; PORT 0
 * takes any free port.  Returns NULL with a one-line reason in err. */
struct rw_httpd *rw_httpd_open(const char *spec, char *err, size_t errlen);
/* Where it listens, "127.0.0.1:9100" or "[::1]:9100". */
const char *rw_httpd_addr(const struct rw_httpd *h);
/* The fds to poll (at most RW_HTTPD_FDS), events set; returns how many. */
int rw_httpd_pollfds(struct rw_httpd *h, struct pollfd *p);
/* After poll(): p and n as rw_httpd_pollfds() filled them, revents set. */
void rw_httpd_serve(struct rw_httpd *h, const struct pollfd *p, int n, rw_httpd_render_fn fn,
		    void *arg);
const struct rw_httpd_stats *rw_httpd_stats(const struct rw_httpd *h);
void rw_httpd_close(struct rw_httpd *h);

/* What a request head asks for, and the answer it gets. */
struct rw_http_request {
	int status;		/* RW_HTTP_*: 200, or the error to answer */
	enum { RW_HTTP_INDEX, RW_HTTP_METRICS } target;	/* with 200 */
	bool head;		/* HEAD: no body */
	bool openmetrics;	/* its Accept prefers OpenMetrics */
	bool close;		/* close once answered (HTTP/1.0, Connection: close, errors) */
};

/* Parse one request head, [buf, buf + len) through its empty line: request
 * line "METHOD SP TARGET SP HTTP/1.x", then "Name: value" lines of which only
 * Accept and Connection matter; a request that announces a body is refused
 * (400), a method other than GET or HEAD gets 405.  No I/O: fuzzed. */
void rw_http_parse(const char *buf, size_t len, struct rw_http_request *rq);

/* Whether an Accept header value prefers OpenMetrics to the text format. */
bool rw_http_wants_openmetrics(const char *accept, size_t len);

#endif /* RSTWATCH_HTTPD_H */
