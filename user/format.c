// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Formatting shared by the text and JSON outputs. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "output.h"

/* Decimal digits of v at p, returns the end.  Formatting by hand: glibc's
 * inet_ntop() for IPv4 and strftime()/snprintf() went through vfprintf, a
 * fifth of a JSON verdict's cost (BENCHMARKS.md). */
static char *put_dec(char *p, unsigned v)
{
	char tmp[10];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* v as exactly width digits, zero-padded */
static char *put_dec_w(char *p, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + width;
}

void rw_fmt_addr(const struct rw_event *ev, bool local, char *buf, size_t len)
{
	const uint8_t *a = local ? ev->laddr : ev->raddr;

	if (ev->family != 6 && len >= INET_ADDRSTRLEN) {
		char *p = buf;

		for (int i = 0; i < 4; i++) {
			if (i)
				*p++ = '.';
			p = put_dec(p, a[i]);
		}
		*p = 0;
		return;
	}
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

/* Days since 1970-01-01 -> proleptic Gregorian date (H. Hinnant's
 * civil_from_days), without gmtime_r()'s time zone machinery. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void rw_fmt_time_rfc3339(uint64_t ns, char *buf, size_t len)
{
	uint64_t s = ns / 1000000000u;
	unsigned sod = (unsigned)(s % 86400), mon, day;
	int64_t year;
	char tmp[40], *p = tmp;

	civil_from_days((int64_t)(s / 86400), &year, &mon, &day);
	if (year > 9999) {	/* not from a clock; keep the old, general path */
		time_t t = (time_t)s;
		struct tm tm;
		char sec[32];

		gmtime_r(&t, &tm);
		strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(buf, len, "%s.%09" PRIu64 "Z", sec, (uint64_t)(ns % 1000000000u));
		return;
	}
	p = put_dec_w(p, (unsigned)year, 4);
	*p++ = '-';
	p = put_dec_w(p, mon, 2);
	*p++ = '-';
	p = put_dec_w(p, day, 2);
	*p++ = 'T';
	p = put_dec_w(p, sod / 3600, 2);
	*p++ = ':';
	p = put_dec_w(p, sod / 60 % 60, 2);
	*p++ = ':';
	p = put_dec_w(p, sod % 60, 2);
	*p++ = '.';
	p = put_dec_w(p, (unsigned)(ns % 1000000000u), 9);
	*p++ = 'Z';
	if (len) {
		size_t n = (size_t)(p - tmp) < len ? (size_t)(p - tmp) : len - 1;

		memcpy(buf, tmp, n);
		buf[n] = 0;
	}
}
