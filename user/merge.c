// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Several trace files as one stream (merge.h).  Each file is in its
 * recording's order; the merge takes the earliest next item of all, by the
 * realtime clock each host stamped, the first file first on a tie.  An end
 * record has no time of its own: it stands at the time of the item before
 * it in its file.  One file gives exactly its own order, so a single -r
 * replays as it always did.  Hosts whose clocks differ by more than the
 * classifier waits for a verdict's other end (100 ms) get their pairs
 * reported apart: keep them synchronised (NTP).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"

struct input {
	struct rw_trace_reader rd;
	const char *name;
	struct rw_trace_item next;
	int state;		/* 1 next holds an item, 0 ended */
	uint64_t at;		/* next's time */
};

struct rw_merge {
	size_t n;
	struct input in[];
};

static int advance(struct input *in, char *err, size_t errlen)
{
	in->state = rw_trace_read(&in->rd, &in->next);
	if (in->state < 0) {
		snprintf(err, errlen, "%s: %s", in->name, in->rd.err);
		return -1;
	}
	if (in->state > 0 && in->next.kind == RW_TRACE_EVENT)
		in->at = in->next.ev.time_ns;
	else if (in->state > 0 && in->next.kind == RW_TRACE_TICK)
		in->at = in->next.tick_ns;
	return 0;
}

struct rw_merge *rw_merge_open(const char *const *paths, size_t n, uint64_t *created_ns, char *err,
			       size_t errlen)
{
	struct rw_merge *m = calloc(1, sizeof(*m) + n * sizeof(m->in[0]));
	struct rw_trace_header h;

	if (!m) {
		snprintf(err, errlen, "out of memory for %zu trace files", n);
		return NULL;
	}
	m->n = n;
	*created_ns = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		struct input *in = &m->in[i];

		in->name = strcmp(paths[i], "-") == 0 ? "stdin" : paths[i];
		in->rd.f = strcmp(paths[i], "-") == 0 ? stdin : fopen(paths[i], "rb");
		if (!in->rd.f) {
			snprintf(err, errlen, "%s: %s", paths[i], strerror(errno));
			rw_merge_close(m);
			return NULL;
		}
		if (rw_trace_read_header(&in->rd, &h)) {
			snprintf(err, errlen, "%s: %s", in->name, in->rd.err);
			rw_merge_close(m);
			return NULL;
		}
		if (h.created_ns < *created_ns)
			*created_ns = h.created_ns;
		in->at = h.created_ns;
		in->state = 2;	/* not read yet */
	}
	return m;
}

int rw_merge_next(struct rw_merge *m, struct rw_trace_item *it, size_t *source, char *err,
		  size_t errlen)
{
	struct input *best = NULL;

	for (size_t i = 0; i < m->n; i++) {
		struct input *in = &m->in[i];

		if (in->state == 2 && advance(in, err, errlen))
			return -1;
		if (in->state && (!best || in->at < best->at))
			best = in;
	}
	if (!best)
		return 0;
	*it = best->next;
	*source = (size_t)(best - m->in);
	return advance(best, err, errlen) ? -1 : 1;
}

void rw_merge_close(struct rw_merge *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		if (m->in[i].rd.f && m->in[i].rd.f != stdin)
			fclose(m->in[i].rd.f);
	free(m);
}

void rw_merge_ends(const struct rw_trace_end *ends, size_t n, struct rw_trace_end *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (size_t i = 0; i < n; i++) {
		const struct rw_trace_end *e = &ends[i];

		sum->produced += e->produced;
		sum->lost += e->lost;
		sum->tw_entered += e->tw_entered;
		sum->tw_expired += e->tw_expired;
		sum->tw_reused += e->tw_reused;
		sum->tw_ended += e->tw_ended;
		/* insertion by count, most first; equal counts keep their order */
		for (uint32_t j = 0; j < e->ntop && j < RW_TW_TOP; j++) {
			uint32_t k = sum->ntop < RW_TW_TOP ? sum->ntop++ : RW_TW_TOP;

			while (k > 0 && sum->top[k - 1].count < e->top[j].count) {
				if (k < RW_TW_TOP)
					sum->top[k] = sum->top[k - 1];
				k--;
			}
			if (k < RW_TW_TOP)
				sum->top[k] = e->top[j];
		}
	}
}
