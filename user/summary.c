// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The -c / -i summary: verdict counts per class and subtype, and the losses. */
#include <inttypes.h>
#include <string.h>

#include "output.h"
#include "summary.h"

static void name(char *buf, size_t len, int cls, int sub)
{
	const char *s = rw_subtype_name(sub);

	snprintf(buf, len, "%s%s%s", rw_class_name(cls), s ? "/" : "", s ? s : "");
}

/* An endpoint's addresses as the verdicts print them. */
static void endpoint_addrs(const struct rw_tw_endpoint *e, char *la, char *ra)
{
	struct rw_event ev = { .family = e->family };

	memcpy(ev.laddr, e->laddr, 16);
	memcpy(ev.raddr, e->raddr, 16);
	rw_fmt_addr(&ev, true, la, RW_ADDR_STR);
	rw_fmt_addr(&ev, false, ra, RW_ADDR_STR);
}

static void tw_json(FILE *f, const struct rw_summary_tw *tw)
{
	char la[RW_ADDR_STR], ra[RW_ADDR_STR];

	fprintf(f, ",\"time_wait\":{\"entered\":%" PRIu64 ",\"expired\":%" PRIu64
		",\"reused\":%" PRIu64 ",\"now\":%" PRIu64 ",\"top\":[", tw->entered, tw->expired,
		tw->reused, tw->now);
	for (uint32_t i = 0; i < tw->ntop; i++) {
		const struct rw_tw_endpoint *e = &tw->top[i];

		endpoint_addrs(e, la, ra);
		fprintf(f, "%s{\"family\":\"ipv%u\",\"laddr\":\"%s\",\"raddr\":\"%s\","
			"\"rport\":%u,\"netns\":%u,\"count\":%u}", i ? "," : "", e->family, la, ra,
			e->rport, e->netns, e->count);
	}
	fputs("]}", f);
}

static void tw_text(FILE *f, const struct rw_summary_tw *tw)
{
	char la[RW_ADDR_STR], ra[RW_ADDR_STR];

	if (!tw->entered && !tw->now && !tw->ntop)
		return;
	fprintf(f, "time_wait: %" PRIu64 " entered, %" PRIu64 " expired, %" PRIu64 " reused, %"
		PRIu64 " now\n", tw->entered, tw->expired, tw->reused, tw->now);
	for (uint32_t i = 0; i < tw->ntop; i++) {
		const struct rw_tw_endpoint *e = &tw->top[i];

		endpoint_addrs(e, la, ra);
		fprintf(f, "  %s -> %s%s%s:%u netns %u: %u\n", la, e->family == 6 ? "[" : "", ra,
			e->family == 6 ? "]" : "", e->rport, e->netns, e->count);
	}
}

void rw_summary_print(FILE *f, bool json, bool interval, uint64_t time_ns,
		      const struct rw_summary *s, const struct rw_summary_losses *l,
		      const struct rw_summary_tw *tw)
{
	bool first = true;
	char n[48], t[40];

	rw_fmt_time_rfc3339(time_ns, t, sizeof(t));
	if (json) {
		fprintf(f, "{\"summary\":\"%s\",\"time\":\"%s\",\"counts\":[",
			interval ? "interval" : "total", t);
		for (int c = 0; c < RW_CL_COUNT; c++) {
			for (int u = 0; u < RW_SUB_COUNT; u++) {
				const char *sub = rw_subtype_name(u);

				if (!s->n[c][u])
					continue;
				fprintf(f, "%s{\"class\":\"%s\",\"subtype\":", first ? "" : ",",
					rw_class_name(c));
				if (sub)
					fprintf(f, "\"%s\"", sub);
				else
					fputs("null", f);
				fprintf(f, ",\"count\":%" PRIu64 "}", s->n[c][u]);
				first = false;
			}
		}
		fprintf(f, "],\"events\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"evictions\":%" PRIu64
			",\"bad_records\":%" PRIu64, l->events, l->lost, l->evictions, l->bad_records);
		tw_json(f, tw);
		fprintf(f, ",\"missed\":%" PRIu64 ",\"closes_unseen\":%" PRIu64 "}\n", l->missed,
			l->close_unseen);
		return;
	}
	fprintf(f, "--- %s summary to %s\n", interval ? "interval" : "total", t);
	for (int c = 0; c < RW_CL_COUNT; c++) {
		for (int u = 0; u < RW_SUB_COUNT; u++) {
			if (!s->n[c][u])
				continue;
			name(n, sizeof(n), c, u);
			fprintf(f, "%-28s %10" PRIu64 "\n", n, s->n[c][u]);
			first = false;
		}
	}
	if (first)
		fputs("(no verdicts)\n", f);
	tw_text(f, tw);
	fprintf(f, "events %" PRIu64 ", lost %" PRIu64 ", evicted %" PRIu64 ", malformed %" PRIu64
		", missed %" PRIu64 ", closes unseen %" PRIu64 "\n", l->events, l->lost, l->evictions,
		l->bad_records, l->missed, l->close_unseen);
}
