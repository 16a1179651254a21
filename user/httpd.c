// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The --metrics endpoint (see httpd.h).  Every bound is a constant here:
 *
 *  - RW_HTTPD_CLIENTS connections at once.  One more evicts the oldest
 *    (an idle kept-alive one first), so a flood of connections cannot lock
 *    the scraper out for longer than it floods, and costs nothing extra.
 *  - ACCEPT_BURST accepts per call, one read and one write per client: a
 *    call's work is bounded whatever the clients do.
 *  - A request is at most REQ_MAX bytes (431 beyond) and must arrive whole
 *    within REQUEST_MS of the accept, or of its first byte on a kept-alive
 *    connection (slowloris), a
 *    response must be taken within WRITE_MS (a client that never reads), a
 *    kept-alive connection may idle IDLE_MS.
 *  - No body is ever read: a request that announces one is refused.
 *
 * After an error response the connection is half-closed and what the client
 * still sends is read and discarded for LINGER_MS, so that the response is
 * not destroyed by the RST a close() with unread data would send
 * (tcp_close() resets when the receive queue is not empty).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"

#define REQ_MAX 4096
#define ACCEPT_BURST 16
#define BACKLOG 16
#define REQUEST_MS 5000
#define IDLE_MS 60000
#define WRITE_MS 10000
#define LINGER_MS 1000
#define LINGER_BYTES 65536

enum cstate { C_IDLE, C_READ, C_WRITE, C_LINGER };

struct client {
	int fd;			/* -1: a free slot */
	enum cstate st;
	uint64_t since;		/* accepted (CLOCK_MONOTONIC): eviction order */
	uint64_t deadline;	/* of the current state */
	bool close_after;	/* once the response is out */
	bool served;		/* a response went out: idling is no misbehaviour */
	size_t rlen;		/* bytes in req */
	size_t discarded;	/* C_LINGER */
	char *out;		/* the response being written */
	size_t olen, opos;
	char req[REQ_MAX];
};

struct rw_httpd {
	int lfd;
	char addr[64];
	int polled[RW_HTTPD_FDS];	/* pollfd i -> client slot (-1: the listener) */
	struct client c[RW_HTTPD_CLIENTS];
	struct rw_httpd_stats st;
};

static const int codes[RW_HTTP_NCODES] = { 200, 400, 404, 405, 431, 505 };
static const char *const code_text[RW_HTTP_NCODES] = {
	"OK", "Bad Request", "Not Found", "Method Not Allowed",
	"Request Header Fields Too Large", "HTTP Version Not Supported",
};
static const char *const drop_names[RW_HTTP_NDROPS] = { "timeout", "evicted", "error" };

int rw_http_code(int idx)
{
	return idx >= 0 && idx < RW_HTTP_NCODES ? codes[idx] : 0;
}

const char *rw_http_drop_name(int idx)
{
	return idx >= 0 && idx < RW_HTTP_NDROPS ? drop_names[idx] : "";
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ listening */

/* "9100", "0.0.0.0:9100", "[::1]:9100" -> address; 0 or -1 with err. */
static int parse_spec(const char *spec, struct sockaddr_storage *ss, socklen_t *len, char *err,
		      size_t errlen)
{
	char host[64];
	const char *port = spec, *colon;
	unsigned long p;
	char *end;
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	snprintf(host, sizeof(host), "127.0.0.1");
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host)) {
			snprintf(err, errlen, "--metrics: '%s' is not [IPV6]:PORT", spec);
			return -1;
		}
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = 0;
		port = close + 2;
	} else if ((colon = strrchr(spec, ':'))) {
		if ((size_t)(colon - spec) >= sizeof(host) || memchr(spec, ':', (size_t)(colon - spec))) {
			snprintf(err, errlen, "--metrics: '%s' is not ADDR:PORT (an IPv6 address "
				 "goes in brackets: [::1]:9100)", spec);
			return -1;
		}
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = 0;
		port = colon + 1;
	}
	errno = 0;
	p = strtoul(port, &end, 10);
	if (!*port || *port == '-' || *port == '+' || *end || errno || p > 65535) {
		snprintf(err, errlen, "--metrics: '%s' is not a port (0-65535)", port);
		return -1;
	}
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		*len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*in6);
	} else {
		snprintf(err, errlen, "--metrics: '%s' is not a numeric IPv4 or IPv6 address", host);
		return -1;
	}
	return 0;
}

struct rw_httpd *rw_httpd_open(const char *spec, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct rw_httpd *h;
	char ip[INET6_ADDRSTRLEN];
	int one = 1;

	if (parse_spec(spec, &ss, &len, err, errlen))
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "--metrics: out of memory");
		return NULL;
	}
	for (int i = 0; i < RW_HTTPD_CLIENTS; i++)
		h->c[i].fd = -1;
	h->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0 ||
	    setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(h->lfd, (struct sockaddr *)&ss, len) || listen(h->lfd, BACKLOG) ||
	    getsockname(h->lfd, (struct sockaddr *)&ss, &len)) {
		snprintf(err, errlen, "--metrics %s: %s (choose another address or port)", spec,
			 strerror(errno));
		rw_httpd_close(h);
		return NULL;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
		snprintf(h->addr, sizeof(h->addr), "%s:%u", ip, ntohs(in4->sin_port));
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(h->addr, sizeof(h->addr), "[%s]:%u", ip, ntohs(in6->sin6_port));
	}
	return h;
}

const char *rw_httpd_addr(const struct rw_httpd *h)
{
	return h->addr;
}

const struct rw_httpd_stats *rw_httpd_stats(const struct rw_httpd *h)
{
	return &h->st;
}

static void drop(struct rw_httpd *h, struct client *c, int why)
{
	if (why >= 0)
		h->st.dropped[why]++;
	close(c->fd);
	free(c->out);
	c->out = NULL;
	c->fd = -1;
}

void rw_httpd_close(struct rw_httpd *h)
{
	if (!h)
		return;
	for (int i = 0; i < RW_HTTPD_CLIENTS; i++)
		if (h->c[i].fd >= 0)
			drop(h, &h->c[i], -1);
	if (h->lfd >= 0)
		close(h->lfd);
	free(h);
}

int rw_httpd_pollfds(struct rw_httpd *h, struct pollfd *p)
{
	int n = 0;

	p[n] = (struct pollfd){ .fd = h->lfd, .events = POLLIN };
	h->polled[n++] = -1;
	for (int i = 0; i < RW_HTTPD_CLIENTS; i++) {
		const struct client *c = &h->c[i];

		if (c->fd < 0)
			continue;
		p[n] = (struct pollfd){ .fd = c->fd, .events = c->st == C_WRITE ? POLLOUT : POLLIN };
		h->polled[n++] = i;
	}
	return n;
}

/* ------------------------------------------------------------ requests */

/* Case-insensitive: does [s, s+n) start with the NUL-terminated prefix? */
static bool starts(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && strncasecmp(s, prefix, k) == 0;
}

static const char *trim(const char *s, const char *e, const char **end)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*end = e;
	return s;
}

/* q=0.5 of one media range's parameters [s, e); 1 when absent. */
static double qvalue(const char *s, const char *e)
{
	while ((s = memchr(s, ';', (size_t)(e - s)))) {
		const char *pe;

		s = trim(s + 1, e, &pe);
		if (pe - s >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=') {
			double q = 0, scale = 1;
			const char *d = s + 2;

			if (d < pe && *d == '1')
				return 1;
			if (d < pe && *d == '0')
				d++;
			if (d < pe && *d == '.')
				for (d++; d < pe && *d >= '0' && *d <= '9'; d++)
					q += (*d - '0') * (scale /= 10);
			return q;
		}
	}
	return 1;
}

bool rw_http_wants_openmetrics(const char *accept, size_t len)
{
	const char *s = accept, *end = accept + len;
	double om = 0, text = 0;

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s)), *e = comma ? comma : end;
		const char *semi = memchr(s, ';', (size_t)(e - s)), *te;
		const char *type = trim(s, semi ? semi : e, &te);
		size_t tl = (size_t)(te - type);
		double q = qvalue(type, e);

		if (tl == 28 && starts(type, tl, "application/openmetrics-text"))
			om = q > om ? q : om;
		else if ((tl == 10 && starts(type, tl, "text/plain")) || (tl == 6 && starts(type, tl, "text/*")) ||
			 (tl == 3 && starts(type, tl, "*/*")))
			text = q > text ? q : text;
		if (!comma)
			break;
		s = comma + 1;
	}
	return om > 0 && om >= text;
}

/* The response: status line, headers, body (none for HEAD). */
static void respond(struct rw_httpd *h, struct client *c, int code, const char *type,
		    const char *extra, const char *body, size_t blen, bool head)
{
	char hdr[512];
	int n;

	h->st.requests[code]++;
	n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "%s%s\r\n", codes[code], code_text[code], type, blen, extra,
		     c->close_after ? "Connection: close\r\n" : "");
	if (head)
		blen = 0;
	c->out = malloc((size_t)n + blen);
	if (!c->out) {
		c->close_after = true;
		c->olen = c->opos = 0;
		return;
	}
	memcpy(c->out, hdr, (size_t)n);
	if (blen)
		memcpy(c->out + n, body, blen);
	c->olen = (size_t)n + blen;
	c->opos = 0;
}

static void respond_error(struct rw_httpd *h, struct client *c, int code, const char *extra)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", codes[code], code_text[code]);

	c->close_after = true;
	respond(h, c, code, "text/plain; charset=utf-8", extra, body, (size_t)n, false);
}

static const char *const TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
static const char *const OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

static void respond_metrics(struct rw_httpd *h, struct client *c, bool om, bool head,
			    rw_httpd_render_fn fn, void *arg)
{
	char *body = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&body, &blen);

	if (!f) {
		c->close_after = true;
		return;
	}
	fn(f, om, arg);
	if (fclose(f)) {
		free(body);
		c->close_after = true;
		return;
	}
	respond(h, c, RW_HTTP_200, om ? OM_TYPE : TEXT_TYPE, "", body, blen, head);
	free(body);
}

void rw_http_parse(const char *s, size_t len, struct rw_http_request *rq)
{
	const char *end = s + len, *eol, *sp1, *sp2, *t, *q;
	const char *accept = NULL, *accept_end = NULL;
	bool http10, keep = true;
	size_t tl;

	memset(rq, 0, sizeof(*rq));
	rq->status = RW_HTTP_400;
	rq->close = true;	/* after any error */
	if (memchr(s, 0, len) || !(eol = memchr(s, '\n', len)))
		return;
	sp1 = memchr(s, ' ', (size_t)(eol - s));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp1 == s || sp2 == sp1 + 1)
		return;
	{
		const char *v = sp2 + 1, *ve = eol > v && eol[-1] == '\r' ? eol - 1 : eol;
		size_t vl = (size_t)(ve - v);

		if (vl == 8 && memcmp(v, "HTTP/1.1", 8) == 0) {
			http10 = false;
		} else if (vl == 8 && memcmp(v, "HTTP/1.0", 8) == 0) {
			http10 = true;
		} else {
			if (vl >= 5 && memcmp(v, "HTTP/", 5) == 0)
				rq->status = RW_HTTP_505;
			return;
		}
	}
	for (const char *l = eol + 1; l < end; l = eol + 1) {
		const char *colon, *ve, *v;

		eol = memchr(l, '\n', (size_t)(end - l));
		if (!eol || eol == l || (eol == l + 1 && *l == '\r'))
			break;		/* the empty line: end of the head */
		colon = memchr(l, ':', (size_t)(eol - l));
		/* no name, or obsolete line folding (a line starting with a space) */
		if (!colon || colon == l || *l == ' ' || *l == '\t')
			return;
		for (const char *n = l; n < colon; n++)
			if (*n <= ' ' || *n >= 0x7f)
				return;
		v = trim(colon + 1, eol, &ve);
		if (ve > v && ve[-1] == '\r')
			v = trim(v, ve - 1, &ve);
		if (colon - l == 6 && starts(l, 6, "accept")) {
			accept = v;
			accept_end = ve;
		} else if (colon - l == 10 && starts(l, 10, "connection")) {
			for (const char *k = v; k + 5 <= ve; k++)
				if (strncasecmp(k, "close", 5) == 0)
					keep = false;
		} else if ((colon - l == 14 && starts(l, 14, "content-length") &&
			    !(ve - v == 1 && *v == '0')) ||
			   (colon - l == 17 && starts(l, 17, "transfer-encoding"))) {
			return;		/* a body: never read */
		}
	}
	rq->head = sp1 - s == 4 && memcmp(s, "HEAD", 4) == 0;
	if (!rq->head && !(sp1 - s == 3 && memcmp(s, "GET", 3) == 0)) {
		rq->status = RW_HTTP_405;
		return;
	}
	t = sp1 + 1;
	tl = (size_t)(sp2 - t);
	if ((q = memchr(t, '?', tl)))
		tl = (size_t)(q - t);
	rq->close = http10 || !keep;
	rq->status = RW_HTTP_200;
	if (tl == 8 && memcmp(t, "/metrics", 8) == 0) {
		rq->target = RW_HTTP_METRICS;
		rq->openmetrics = accept && rw_http_wants_openmetrics(accept,
								      (size_t)(accept_end - accept));
	} else if (tl == 1 && *t == '/') {
		rq->target = RW_HTTP_INDEX;
	} else {
		rq->status = RW_HTTP_404;
		rq->close = true;
	}
}

/* One whole request head in c->req[0, len): answer it. */
static void handle(struct rw_httpd *h, struct client *c, size_t len, rw_httpd_render_fn fn, void *arg)
{
	struct rw_http_request rq;

	rw_http_parse(c->req, len, &rq);
	c->close_after = rq.close;
	if (rq.status != RW_HTTP_200)
		respond_error(h, c, rq.status, rq.status == RW_HTTP_405 ? "Allow: GET, HEAD\r\n" : "");
	else if (rq.target == RW_HTTP_METRICS)
		respond_metrics(h, c, rq.openmetrics, rq.head, fn, arg);
	else
		respond(h, c, RW_HTTP_200, "text/plain; charset=utf-8", "",
			"rstwatch: metrics at /metrics\n", 30, rq.head);
}

/* The end of a request head in c->req (after "\r\n\r\n" or "\n\n"), or 0. */
static size_t head_end(const struct client *c)
{
	for (size_t i = 1; i < c->rlen; i++) {
		if (c->req[i] != '\n')
			continue;
		if (c->req[i - 1] == '\n')
			return i + 1;
		if (i >= 2 && c->req[i - 1] == '\r' && c->req[i - 2] == '\n')
			return i + 1;
	}
	return 0;
}

/* Answer the request in c->req if it is whole. */
static void parse(struct rw_httpd *h, struct client *c, uint64_t now, rw_httpd_render_fn fn, void *arg)
{
	size_t len = head_end(c);

	if (!len) {
		if (c->rlen == REQ_MAX) {
			respond_error(h, c, RW_HTTP_431, "");
			c->rlen = 0;
			c->st = C_WRITE;
			c->deadline = now + WRITE_MS;
		}
		return;
	}
	handle(h, c, len, fn, arg);
	/* what follows the head is the next (pipelined) request */
	memmove(c->req, c->req + len, c->rlen - len);
	c->rlen -= len;
	c->st = C_WRITE;
	c->deadline = now + WRITE_MS;
}

/* ------------------------------------------------------------ connections */

static void accept_some(struct rw_httpd *h, uint64_t now)
{
	for (int k = 0; k < ACCEPT_BURST; k++) {
		int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), victim = -1;
		struct client *c;

		if (fd < 0)
			return;		/* EAGAIN, or an error the next poll repeats */
		for (int i = 0; i < RW_HTTPD_CLIENTS && victim < 0; i++)
			if (h->c[i].fd < 0)
				victim = i;
		if (victim < 0) {
			/* full: the oldest idle connection goes, else the oldest */
			for (int i = 0; i < RW_HTTPD_CLIENTS; i++) {
				const struct client *a = &h->c[i], *b = victim < 0 ? NULL : &h->c[victim];
				bool a_idle = a->st == C_IDLE, b_idle = b && b->st == C_IDLE;

				if (!b || (a_idle && !b_idle) || (a_idle == b_idle && a->since < b->since))
					victim = i;
			}
			drop(h, &h->c[victim], RW_HTTP_DROP_EVICTED);
		}
		c = &h->c[victim];
		c->fd = fd;
		c->st = C_IDLE;
		c->since = now;
		c->deadline = now + REQUEST_MS;
		c->close_after = c->served = false;
		c->rlen = c->discarded = 0;
		c->olen = c->opos = 0;
	}
}

static void on_readable(struct rw_httpd *h, struct client *c, uint64_t now, rw_httpd_render_fn fn,
			void *arg)
{
	char sink[4096];
	ssize_t n;

	if (c->st == C_LINGER) {
		n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0)
			c->discarded += (size_t)n;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
		    c->discarded > LINGER_BYTES)
			drop(h, c, -1);
		return;
	}
	n = recv(c->fd, c->req + c->rlen, REQ_MAX - c->rlen, MSG_DONTWAIT);
	if (n == 0) {
		drop(h, c, -1);	/* the client closed */
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			drop(h, c, RW_HTTP_DROP_ERROR);
		return;
	}
	if (c->st == C_IDLE) {
		c->st = C_READ;
		if (c->served)	/* a new connection's clock runs from its accept */
			c->deadline = now + REQUEST_MS;
	}
	c->rlen += (size_t)n;
	parse(h, c, now, fn, arg);
}

static void on_writable(struct rw_httpd *h, struct client *c, uint64_t now, rw_httpd_render_fn fn,
			void *arg)
{
	ssize_t n = 0;

	if (c->opos < c->olen)
		n = send(c->fd, c->out + c->opos, c->olen - c->opos, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			drop(h, c, RW_HTTP_DROP_ERROR);
		return;
	}
	c->opos += (size_t)n;
	if (c->opos < c->olen)
		return;
	free(c->out);
	c->out = NULL;
	c->olen = c->opos = 0;
	if (c->close_after) {
		shutdown(c->fd, SHUT_WR);
		c->st = C_LINGER;
		c->deadline = now + LINGER_MS;
		return;
	}
	c->served = true;
	c->st = c->rlen ? C_READ : C_IDLE;
	c->deadline = now + (c->rlen ? REQUEST_MS : IDLE_MS);
	if (c->rlen)
		parse(h, c, now, fn, arg);
}

void rw_httpd_serve(struct rw_httpd *h, const struct pollfd *p, int n, rw_httpd_render_fn fn,
		    void *arg)
{
	uint64_t now = now_ms();

	for (int i = 0; i < n; i++) {
		struct client *c;

		if (!p[i].revents)
			continue;
		if (h->polled[i] < 0) {
			accept_some(h, now);
			continue;
		}
		c = &h->c[h->polled[i]];
		if (c->fd != p[i].fd)
			continue;	/* evicted by an accept above */
		if (c->st == C_WRITE && (p[i].revents & (POLLOUT | POLLERR | POLLHUP)))
			on_writable(h, c, now, fn, arg);
		else if (c->st != C_WRITE && (p[i].revents & (POLLIN | POLLERR | POLLHUP)))
			on_readable(h, c, now, fn, arg);
	}
	for (int i = 0; i < RW_HTTPD_CLIENTS; i++) {
		struct client *c = &h->c[i];

		/* a kept-alive connection idling out, or a lingering one, is done */
		if (c->fd >= 0 && now >= c->deadline)
			drop(h, c, c->st == C_LINGER || (c->st == C_IDLE && c->served) ? -1 :
				   RW_HTTP_DROP_TIMEOUT);
	}
}
