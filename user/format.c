// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Formatting shared by the text and JSON outputs. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "output.h"

void rw_fmt_addr(const struct rw_event *ev, bool local, char *buf, size_t len)
{
	const uint8_t *a = local ? ev->laddr : ev->raddr;

	if (!inet_ntop(ev->family == 6 ? AF_INET6 : AF_INET, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

const char *rw_errno_name(int err)
{
	const char *n;

	if (err == 0)
		return NULL;
	n = strerrorname_np(err);
	return n ? n : "EUNKNOWN";
}

const char *rw_linger_name(const struct rw_event *ev)
{
	if (!(ev->flags & RW_EVF_LINGER))
		return "off";
	return ev->lingertime == 0 ? "zero" : "on";
}

void rw_fmt_tcp_flags(uint8_t flags, char *buf, size_t len)
{
	static const char *const names[] = { "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR" };
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; i < 8; i++) {
		if (!(flags & (1u << i)))
			continue;
		off += snprintf(buf + off, off < len ? len - off : 0, "%s%s", off ? "|" : "", names[i]);
	}
}

int64_t rw_lifetime_ms(const struct rw_event *ev)
{
	if (!ev->start_ns || ev->time_ns < ev->start_ns)
		return -1;
	return (int64_t)((ev->time_ns - ev->start_ns) / 1000000);
}

void rw_fmt_time_rfc3339(uint64_t ns, char *buf, size_t len)
{
	time_t s = (time_t)(ns / 1000000000u);
	struct tm tm;
	char sec[24];

	gmtime_r(&s, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09" PRIu64 "Z", sec, (uint64_t)(ns % 1000000000u));
}
