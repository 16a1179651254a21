// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Userspace filters: --class lists, cgroup paths, and the kernel's filter
 * rules applied to replayed events (a socket that passed stays selected,
 * owner filters drop ownerless events, CLOSE and time-wait events select
 * nothing).
 */
#include "check.h"
#include "filter.h"

static uint32_t classes(const char *list, bool exclude, int want_rc)
{
	uint32_t m = 0;
	char err[160];

	CHECK_INT(list, rw_parse_classes("--class", list, exclude, &m, err, sizeof(err)), want_rc);
	return m;
}

static void class_lists(void)
{
	char err[160];
	uint32_t m;

	TEST("--class lists");
	CHECK_INT("one", classes("linger0", true, 0), 1u << RW_CL_LINGER0);
	CHECK_INT("two", classes("linger0,peer_reset", true, 0),
		  (1u << RW_CL_LINGER0) | (1u << RW_CL_PEER_RESET));
	CHECK_INT("^ leaves one out of all", classes("^time_wait", true, 0),
		  RW_ALL_CLASSES & ~(1u << RW_CL_TIME_WAIT));
	CHECK_INT("no- too", classes("no-time_wait,^close_wait", true, 0),
		  RW_ALL_CLASSES & ~(1u << RW_CL_TIME_WAIT) & ~(1u << RW_CL_CLOSE_WAIT));
	CHECK_INT("out of the listed", classes("linger0,peer_reset,^peer_reset", true, 0),
		  1u << RW_CL_LINGER0);
	classes("linger0,^linger0", true, -1);
	classes("^linger0", false, -1);		/* --fail-on takes no exclusion */
	classes("", true, -1);
	classes("linger0,,bogus", true, -1);
	rw_parse_classes("--class", "a,bogus", true, &m, err, sizeof(err));
	CHECK_STR("message", err, "--class: unknown class 'a' (classes are listed in rstwatch(8))");
}

static void cgroup_paths(void)
{
	char out[RW_CGROUP_MAX];

	TEST("cgroup paths");
	CHECK_INT("plain", rw_cgroup_normalize("/system.slice/a.service", out, sizeof(out)), 0);
	CHECK_STR("plain", out, "/system.slice/a.service");
	rw_cgroup_normalize("//system.slice///a.service/", out, sizeof(out));
	CHECK_STR("slashes folded", out, "/system.slice/a.service");
	rw_cgroup_normalize("/", out, sizeof(out));
	CHECK_STR("root", out, "/");
	CHECK_INT("relative", rw_cgroup_normalize("system.slice", out, sizeof(out)), -1);
	CHECK_INT("..", rw_cgroup_normalize("/a/../b", out, sizeof(out)), -1);
	CHECK_INT(".", rw_cgroup_normalize("/a/./b", out, sizeof(out)), -1);
	CHECK_INT("names with dots", rw_cgroup_normalize("/a/..b/.c", out, sizeof(out)), 0);
	CHECK_INT("too long", rw_cgroup_normalize("/0123456789", out, 8), -1);
	CHECK_INT("below", rw_cgroup_below("/kubepods/pod1/c", "/kubepods"), 1);
	CHECK_INT("itself", rw_cgroup_below("/kubepods", "/kubepods"), 1);
	CHECK_INT("a sibling with the same start", rw_cgroup_below("/kubepods2/x", "/kubepods"), 0);
	CHECK_INT("root takes all", rw_cgroup_below("/x", "/"), 1);
	CHECK_INT("unknown path: no", rw_cgroup_below("", "/"), 0);
}

static struct rw_event ev(uint64_t sk, enum rw_state state, uint16_t lport, uint16_t rport, uint32_t pid)
{
	struct rw_event e = { 0 };

	e.sk = sk;
	e.state = state;
	e.family = 4;
	e.netns = 7;
	e.lport = lport;
	e.rport = rport;
	e.flags = RW_EVF_SK | RW_EVF_FULL;
	if (pid) {
		e.flags |= RW_EVF_OWNER;
		e.pid = pid;
		snprintf(e.cgroup, sizeof(e.cgroup), "/kubepods/pod%u", pid);
	}
	return e;
}

static void replay_rules(void)
{
	struct rw_filter f = { .port = 80 };
	struct rw_event e;

	TEST("replay: the kernel's rules");
	CHECK_INT("init", rw_filter_init(&f), 0);
	e = ev(1, RW_ST_ESTABLISHED, 40000, 80, 10);
	CHECK_INT("port matches", rw_filter_event(&f, &e), 1);
	e = ev(1, RW_ST_CLOSE, 40000, 0, 10);	/* tcp_disconnect() zeroed the port */
	CHECK_INT("selected socket stays", rw_filter_event(&f, &e), 1);
	e = ev(2, RW_ST_CLOSE, 40001, 80, 10);
	CHECK_INT("passes in CLOSE", rw_filter_event(&f, &e), 1);
	e = ev(2, RW_ST_CLOSE, 40001, 0, 10);
	CHECK_INT("... but was not remembered", rw_filter_event(&f, &e), 0);
	e = ev(3, RW_ST_ESTABLISHED, 40002, 443, 10);
	CHECK_INT("other port", rw_filter_event(&f, &e), 0);
	rw_filter_free(&f);

	f = (struct rw_filter){ .pid = 10 };
	rw_filter_init(&f);
	e = ev(4, RW_ST_ESTABLISHED, 1, 2, 10);
	CHECK_INT("pid", rw_filter_event(&f, &e), 1);
	e = ev(5, RW_ST_ESTABLISHED, 1, 2, 11);
	CHECK_INT("other pid", rw_filter_event(&f, &e), 0);
	e = ev(0, RW_ST_UNKNOWN, 1, 2, 0);
	e.flags = RW_EVF_SEG;
	CHECK_INT("no owner", rw_filter_event(&f, &e), 0);
	rw_filter_free(&f);

	f = (struct rw_filter){ 0 };
	rw_cgroup_normalize("/kubepods", f.cgroup, sizeof(f.cgroup));
	rw_filter_init(&f);
	e = ev(6, RW_ST_ESTABLISHED, 1, 2, 12);
	CHECK_INT("cgroup below", rw_filter_event(&f, &e), 1);
	snprintf(e.cgroup, sizeof(e.cgroup), "/system.slice");
	e.sk = 7;
	CHECK_INT("cgroup elsewhere", rw_filter_event(&f, &e), 0);
	rw_filter_free(&f);

	f = (struct rw_filter){ .family = 6, .netns = 7 };
	rw_filter_init(&f);
	e = ev(8, RW_ST_ESTABLISHED, 1, 2, 0);
	CHECK_INT("family", rw_filter_event(&f, &e), 0);
	e.family = 6;
	CHECK_INT("family and netns", rw_filter_event(&f, &e), 1);
	e.netns = 8;
	e.sk = 9;
	CHECK_INT("netns", rw_filter_event(&f, &e), 0);
	rw_filter_free(&f);

	f = (struct rw_filter){ 0 };
	CHECK_INT("no filter: no table", rw_filter_init(&f) == 0 && !f.selected, 1);
	CHECK_INT("no filter: all pass", rw_filter_event(&f, &e), 1);
}

int main(void)
{
	class_lists();
	cgroup_paths();
	replay_rules();
	return check_done("filter");
}
