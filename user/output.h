/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Sinks: where a verdict leaves the program. */
#ifndef RSTWATCH_OUTPUT_H
#define RSTWATCH_OUTPUT_H

#include <stdio.h>

#include "verdict.h"

#define RW_ADDR_STR 48

/* Shared formatting helpers (format.c). */
void rw_fmt_addr(const struct rw_event *ev, bool local, char *buf, size_t len);
const char *rw_errno_name(int err);	/* "ECONNRESET"; NULL for 0 */
const char *rw_linger_name(const struct rw_event *ev);	/* "off" | "zero" | "on" */
void rw_fmt_tcp_flags(uint8_t flags, char *buf, size_t len);	/* "SYN|ACK" */
/* "2026-11-22T02:11:44.214201328Z": RFC 3339, UTC, nanoseconds. */
void rw_fmt_time_rfc3339(uint64_t ns, char *buf, size_t len);
/* Connection lifetime in ms at this event, -1 if unknown. */
int64_t rw_lifetime_ms(const struct rw_event *ev);

/* output_text.c */
void rw_text_header(FILE *f);
/* The hints a text run has printed: each is printed once, the first time its
 * class (and subtype) appears; the same sentence on every line of a busy
 * host would drown the rest.  JSON carries the hint on every line. */
struct rw_text_hints {
	const char *seen[64];	/* rw_hint()'s static strings */
	unsigned int n;
};
/* hints NULL: print the hint whatever came before */
void rw_text_verdict(FILE *f, const struct rw_verdict *v, struct rw_text_hints *hints);
/* One line per decoded event, every field: for --events. */
void rw_text_event(FILE *f, const struct rw_event *ev);

/* output_json.c */
void rw_json_verdict(FILE *f, const struct rw_verdict *v);

#endif /* RSTWATCH_OUTPUT_H */
