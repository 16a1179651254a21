// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The classifier's gauges (rstwatch_time_wait_sockets and
 * rstwatch_close_wait_stuck_sockets) on a recorded trace: TIME_WAIT entries
 * and expiries of three connections, one socket stuck in CLOSE_WAIT
 * (tests/traces/time_wait_expired_v46.rwt, run from the repository root).
 */
#include "check.h"
#include "classify.h"
#include "trace.h"

struct seen {
	struct rw_classifier *cls;
	int entries, expired, stuck;
	uint64_t tw_max, tw_at_stuck, cw_at_stuck;
};

static void on_verdict(const struct rw_verdict *v, void *arg)
{
	struct seen *s = arg;
	struct rw_classify_stats st;

	rw_classify_stats(s->cls, &st);
	if (st.time_wait > s->tw_max)
		s->tw_max = st.time_wait;
	if (v->cls == RW_CL_TIME_WAIT && v->sub == RW_SUB_NONE) {
		s->entries++;
		CHECK_INT("time_wait gauge counts the entry", st.time_wait >= 1, 1);
	} else if (v->cls == RW_CL_TIME_WAIT && v->sub == RW_SUB_EXPIRED) {
		s->expired++;
	} else if (v->cls == RW_CL_CLOSE_WAIT && v->sub == RW_SUB_STUCK) {
		s->stuck++;
		s->tw_at_stuck = st.time_wait;
		s->cw_at_stuck = st.close_wait_stuck;
	}
}

static void replay(void)
{
	struct seen s = { 0 };
	struct rw_trace_reader r = { 0 };
	struct rw_trace_header h;
	struct rw_trace_item it;
	struct rw_classify_stats st;
	int rc;

	TEST("gauges on time_wait_expired_v46.rwt");
	r.f = fopen("tests/traces/time_wait_expired_v46.rwt", "rb");
	CHECK_INT("trace opens (run from the repository root)", r.f != NULL, 1);
	if (!r.f)
		return;
	s.cls = rw_classifier_new(1024, on_verdict, &s);
	rw_classifier_set(s.cls, RW_CLOSE_WAIT_DEFAULT_NS, RW_PRESSURE_DEFAULT_PCT);
	CHECK_INT("header", rw_trace_read_header(&r, &h), 0);
	while ((rc = rw_trace_read(&r, &it)) > 0) {
		if (it.kind == RW_TRACE_EVENT)
			rw_classify(s.cls, &it.ev);
		else if (it.kind == RW_TRACE_TICK)
			rw_classify_tick(s.cls, it.tick_ns);
	}
	CHECK_INT("read to the end", rc, 0);
	rw_classify_flush(s.cls);
	rw_classify_stats(s.cls, &st);
	CHECK_INT("three entries", s.entries, 3);
	CHECK_INT("three expiries", s.expired, 3);
	CHECK_INT("all three in TIME_WAIT at once", s.tw_max, 3);
	CHECK_INT("none left in TIME_WAIT at the end", st.time_wait, 0);
	CHECK_INT("one stuck in CLOSE_WAIT", s.stuck, 1);
	CHECK_INT("stuck gauge at its verdict", s.cw_at_stuck, 1);
	CHECK_INT("still stuck at the end (never closed)", st.close_wait_stuck, 1);
	rw_classifier_free(s.cls);
	fclose(r.f);
}

/* A stuck socket that closes, and one whose entry is evicted: both leave
 * the gauge. */
static void stuck_then_gone(void)
{
	struct seen s = { 0 };
	struct rw_classify_stats st;
	struct rw_event ev = { .kind = RW_EV_STATE, .flags = RW_EVF_SK | RW_EVF_FULL, .family = 4 };
	uint64_t t = 1000000000ull;

	TEST("stuck CLOSE_WAIT gauge leaves");
	s.cls = rw_classifier_new(16, on_verdict, &s);
	rw_classifier_set(s.cls, 1000000000ull, RW_PRESSURE_DEFAULT_PCT);
	for (uint64_t sk = 1; sk <= 2; sk++) {
		ev.sk = sk;
		ev.time_ns = t;
		ev.oldstate = RW_ST_ESTABLISHED;
		ev.newstate = RW_ST_CLOSE_WAIT;
		ev.state = RW_ST_ESTABLISHED;
		ev.lport = (uint16_t)(1000 + sk);
		rw_classify(s.cls, &ev);
	}
	rw_classify_tick(s.cls, t + 2000000000ull);
	rw_classify_stats(s.cls, &st);
	CHECK_INT("two stuck", st.close_wait_stuck, 2);
	ev.sk = 1;
	ev.time_ns = t + 3000000000ull;
	ev.oldstate = RW_ST_CLOSE_WAIT;
	ev.newstate = RW_ST_LAST_ACK;
	ev.state = RW_ST_CLOSE_WAIT;
	rw_classify(s.cls, &ev);
	rw_classify_stats(s.cls, &st);
	CHECK_INT("one closed: one stuck", st.close_wait_stuck, 1);
	/* 20 more sockets entering CLOSE_WAIT (not yet stuck: no tick) evict
	 * the older entries from the 16-entry table */
	for (uint64_t sk = 100; sk < 120; sk++) {
		ev.sk = sk;
		ev.time_ns = t + 4000000000ull;
		ev.oldstate = RW_ST_ESTABLISHED;
		ev.newstate = RW_ST_CLOSE_WAIT;
		ev.state = RW_ST_ESTABLISHED;
		rw_classify(s.cls, &ev);
	}
	rw_classify_stats(s.cls, &st);
	CHECK_INT("evicted: none stuck", st.close_wait_stuck, 0);
	CHECK_INT("it was evicted", st.evictions >= 1, 1);
	rw_classifier_free(s.cls);
}

int main(void)
{
	replay();
	stuck_then_gone();
	return check_done("gauges");
}
