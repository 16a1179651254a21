// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The -c / -i summary: verdict counts per class and subtype, and the losses. */
#include <inttypes.h>

#include "output.h"
#include "summary.h"

static void name(char *buf, size_t len, int cls, int sub)
{
	const char *s = rw_subtype_name(sub);

	snprintf(buf, len, "%s%s%s", rw_class_name(cls), s ? "/" : "", s ? s : "");
}

void rw_summary_print(FILE *f, bool json, bool interval, uint64_t time_ns,
		      const struct rw_summary *s, const struct rw_summary_losses *l)
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
			",\"bad_records\":%" PRIu64 "}\n", l->events, l->lost, l->evictions,
			l->bad_records);
		return;
	}
	fprintf(f, "--- %s summary to %s\n", interval ? "interval" : "total", t);
	for (int c = 0; c < RW_CL_COUNT; c++) {
		for (int u = 0; u < RW_SUB_COUNT; u++) {
			if (!s->n[c][u])
				continue;
			name(n, sizeof(n), c, u);
			fprintf(f, "%-24s %10" PRIu64 "\n", n, s->n[c][u]);
			first = false;
		}
	}
	if (first)
		fputs("(no verdicts)\n", f);
	fprintf(f, "events %" PRIu64 ", lost %" PRIu64 ", evicted %" PRIu64 ", malformed %" PRIu64
		"\n", l->events, l->lost, l->evictions, l->bad_records);
}
