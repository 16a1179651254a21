// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Verdict output (stdout or -o FILE) through fopencookie(): the formatting
 * code keeps its FILE *, and this file decides how bytes reach the fd.
 * stdio hands over its buffer in arbitrary pieces; write_lines() passes on
 * only whole lines (the tail of a piece waits for the next call, glibc
 * retries what a cookie write did not take), so output that stops early
 * still ends in a complete line.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/types.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sink.h"

#define STOP_WRITE_MS 1000	/* after a stop signal, how long a stalled reader is waited for */
#define POLL_MS 100		/* how often a blocked write looks at *stop */
#define SINK_BUF (64 * 1024)

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t count_lines(const char *buf, size_t n)
{
	uint64_t lines = 0;

	for (size_t i = 0; i < n; i++)
		lines += buf[i] == '\n';
	return lines + (n && buf[n - 1] != '\n');
}

/* Past the stop deadline? Starts the clock on the first look after stop. */
static bool giving_up(struct rw_sink *s)
{
	if (!*s->stop)
		return false;
	if (!s->give_up_ns)
		s->give_up_ns = mono_ns() + STOP_WRITE_MS * 1000000ull;
	return mono_ns() >= s->give_up_ns;
}

/* Write len bytes (whole lines, at most PIPE_BUF unless one line is longer),
 * waiting for room; past the stop deadline, drop and count what is left. */
static void emit(struct rw_sink *s, const char *buf, size_t len)
{
	struct pollfd p = { .fd = s->fd, .events = POLLOUT };
	ssize_t w;

	while (len > 0 && !s->broken && !s->err) {
		if (giving_up(s)) {
			s->dropped_lines += count_lines(buf, len);
			return;
		}
		p.revents = 0;
		if (poll(&p, 1, POLL_MS) <= 0 || !(p.revents & (POLLOUT | POLLERR | POLLHUP)))
			continue;	/* no room yet (or EINTR): look at stop again */
		w = write(s->fd, buf, len);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == EPIPE)
				s->broken = true;
			else
				s->err = errno;
			return;
		}
		buf += w;
		len -= (size_t)w;
	}
}

/*
 * glibc's cookie write marks the stream failed unless all n bytes are taken,
 * so take them all: gather whole lines in pend and write them a pipe-atomic
 * batch at a time; a line's start waits in pend for its end.
 */
static ssize_t write_lines(void *cookie, const char *buf, size_t n)
{
	struct rw_sink *s = cookie;
	size_t off = 0, room, take;
	const char *nl;

	while (off < n) {
		nl = memchr(buf + off, '\n', n - off);
		take = nl ? (size_t)(nl - (buf + off)) + 1 : n - off;
		room = (PIPE_BUF < sizeof(s->pend) ? PIPE_BUF : sizeof(s->pend)) - s->pend_len;
		if (take <= room) {
			memcpy(s->pend + s->pend_len, buf + off, take);
			s->pend_len += take;
			off += take;
		} else if (s->pend_len) {
			/* write the batch; a line's start alone is kept for its end */
			char *last = memrchr(s->pend, '\n', s->pend_len);
			size_t whole = last ? (size_t)(last - s->pend) + 1 : s->pend_len;

			emit(s, s->pend, whole);
			memmove(s->pend, s->pend + whole, s->pend_len - whole);
			s->pend_len -= whole;
			if (!last) {	/* one line longer than the batch: as it comes */
				emit(s, s->pend, s->pend_len);
				s->pend_len = 0;
			}
		} else {
			emit(s, buf + off, take);	/* one line longer than PIPE_BUF */
			off += take;
		}
	}
	/* complete lines go out now: stdio flushes when rstwatch wants them out */
	if (s->pend_len) {
		char *last = memrchr(s->pend, '\n', s->pend_len);
		size_t whole = last ? (size_t)(last - s->pend) + 1 : 0;

		emit(s, s->pend, whole);
		memmove(s->pend, s->pend + whole, s->pend_len - whole);
		s->pend_len -= whole;
	}
	return (ssize_t)n;
}

FILE *rw_sink_open(struct rw_sink *s, int fd, const volatile sig_atomic_t *stop)
{
	cookie_io_functions_t io = { .write = write_lines };
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->stop = stop;
	f = fopencookie(s, "w", io);
	if (f)
		setvbuf(f, NULL, _IOFBF, SINK_BUF);
	return f;
}
