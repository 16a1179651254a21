// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Skeleton lifecycle (libbpf-tools style): open, set the rodata knobs, pick
 * program variants from this kernel's BTF, load, attach, seed socket owners,
 * ring buffer.  Optional programs that a kernel may refuse (fexit on accept,
 * the iterator that seeds owners) are retried without, so they only ever add
 * evidence, never stop rstwatch.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "events.h"
#include "loader.h"
#include "trace.h"

/* include/net/tcp_states.h: unchanged since 2.6, as bpf/ assumes */
#define TCP_ESTABLISHED 1
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_TIME_WAIT 6
#define TCP_CLOSE_WAIT 8
#define TCP_LAST_ACK 9
#define TCP_CLOSING 11
#define RCV_SHUTDOWN 1		/* include/net/sock.h */

#define RW_CHUNK 256		/* records delivered at once, after one peer probe */
#define RW_PEER_ASK_MAX 64	/* questions of one peer probe: peer_ask's max_entries */
#define CHUNK_FULL (-ENOBUFS)	/* take_record(): deliver the chunk, then drain on */
/* The peer probe walks every socket the kernel keeps a story for (about 1 us
 * each on the test VMs): after a run it rests RW_PROBE_REST times as long, so
 * it takes at most a tenth of rstwatch's time, whatever the resets' rate. */
#define RW_PROBE_REST 9

static uint64_t clock_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#include "rstwatch.skel.h"

struct rw_tracer {
	struct rstwatch_bpf *skel;
	struct ring_buffer *rb;
	struct btf *btf;
	int ncpu;
	int send_reset_nargs;	/* of btf_trace_tcp_send_reset: 3 since 6.10, 2 before */
	bool have_cookie;	/* tracing programs may call bpf_get_socket_cookie() (5.12+) */
	rw_record_fn fn;	/* where records go: the ring buffer's and the walk's */
	void *fn_ctx;
	uint64_t close_wait_ns;
	/* what the last CLOSE_WAIT walk found, delivered after the next drain:
	 * records born before the walk come first */
	struct rw_record stuck[1024];
	unsigned int nstuck;
	bool nosock_hook;	/* 5.17-6.9: on_kfree_skb_nosock loads (refused, half_open) */
	bool tw_addr_hidden;	/* timer tracepoints exist, tw_timer_handler's address not shown */
	int accept_nargs;	/* of inet_csk_accept: 4 before 6.10, 2 since */
	unsigned int optional;	/* OPT_* loaded */
	unsigned int avail;	/* OPT_* this kernel allows */
	bool error_report;	/* on_error_report loaded */
	bool rst_hook;		/* 6.11+: on_kfree_skb_rst (challenged_rst) loads */
	bool peer_probe;	/* 5.13+: peer_probe loads (middlebox_reset, one end reset) */
	bool probe_failed;	/* said once */
	uint64_t probe_runs, probe_ns;	/* what the peer probe cost (-v at exit) */
	uint64_t probe_next;	/* boot ns before which it does not run again */
	uint64_t probe_skipped;	/* questions not asked for that */
	uint32_t drop[4];	/* TCP_RESET, TCP_OLD_SEQUENCE, TCP_INVALID_SEQUENCE,
				   TCP_INVALID_END_SEQUENCE in this kernel's enum, ~0 absent */
	uint32_t tick_ns;	/* ns per jiffy */
	/* records taken from the ring buffer, delivered after the peer probe
	 * answered the resets among them (deliver_chunk()) */
	struct rw_record chunk[RW_CHUNK];
	uint32_t chunk_size[RW_CHUNK];
	unsigned int nchunk, nasks;
	uint32_t sock_table;	/* max_entries of socks and tws */
	uint64_t tw_reaped;	/* counted tws entries whose end went unseen (reap_tws()) */
	uint64_t next_reap;	/* boot ns of the next reap_tws() */
	bool warned_socks, warned_tws;	/* said once that a table filled */
};

/* how often reap_tws() looks for time-wait sockets whose end went unseen */
#define RW_REAP_NS (10ull * 1000000000ull)

static bool verbose;

static int take_record(void *ctx, void *data, size_t size);

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	/* without -v even warnings stay quiet: our one-line errors say what failed */
	if (!verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

__attribute__((format(printf, 1, 2)))
static void note(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	fputs("rstwatch: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Parameter count of a tracepoint's BTF prototype (btf_trace_<name> is a
 * typedef of a pointer to a func_proto whose first parameter is void *__data),
 * or -1 if this kernel has no such tracepoint. */
static int tp_nargs(const struct btf *btf, const char *tp)
{
	char name[128];
	const struct btf_type *t;
	int id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return -1;
	t = btf__type_by_id(btf, id);
	t = btf__type_by_id(btf, t->type);	/* pointer */
	if (!t || !btf_is_ptr(t))
		return -1;
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t))
		return -1;
	return btf_vlen(t) - 1;
}

static bool has_func(const struct btf *btf, const char *fn)
{
	return btf__find_by_name_kind(btf, fn, BTF_KIND_FUNC) > 0;
}

/* Parameter count of a kernel function in BTF, or -1 if BTF has no such one. */
static int func_nargs(const struct btf *btf, const char *fn)
{
	int id = btf__find_by_name_kind(btf, fn, BTF_KIND_FUNC);
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;

	t = t ? btf__type_by_id(btf, t->type) : NULL;
	return t && btf_is_func_proto(t) ? btf_vlen(t) : -1;
}

/* The value of the enumerator `name` of enum `type` in this kernel, or -1. */
static long long enum_value(const struct btf *btf, const char *type, const char *name)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_ENUM);
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_enum *e;

	if (!t)
		return -1;
	e = btf_enum(t);
	for (int i = 0; i < btf_vlen(t); i++, e++) {
		if (strcmp(btf__name_by_offset(btf, e->name_off), name) == 0)
			return e->val;
	}
	return -1;
}

static bool has_enum_value(const struct btf *btf, const char *type, const char *name)
{
	return enum_value(btf, type, name) >= 0;
}

/*
 * The drop reasons of a refused RST (bpf/rstwatch.bpf.c rst_refused()), and
 * the range the hook's first compare tests.  TCP_RESET came in 5.19, with
 * TCP_INVALID_SEQUENCE; TCP_OLD_SEQUENCE later, TCP_INVALID_END_SEQUENCE in
 * 6.17: absent ones stay ~0, which no reason equals.
 */
static void rst_drop_reasons(struct rw_tracer *t)
{
	static const char *const names[4] = {
		"SKB_DROP_REASON_TCP_RESET", "SKB_DROP_REASON_TCP_OLD_SEQUENCE",
		"SKB_DROP_REASON_TCP_INVALID_SEQUENCE", "SKB_DROP_REASON_TCP_INVALID_END_SEQUENCE",
	};

	for (int i = 0; i < 4; i++) {
		long long v = enum_value(t->btf, "skb_drop_reason", names[i]);

		t->drop[i] = v >= 0 && v < UINT32_MAX ? (uint32_t)v : UINT32_MAX;
	}
}

/* Optional programs, as a bit set: each adds evidence, none is needed. */
enum {
	OPT_ACCEPT = 1u << 0,	/* fexit/inet_csk_accept: the accepting process owns the child */
	OPT_SEED = 1u << 1,	/* iter/task_file: owners of sockets that predate rstwatch */
	OPT_TW = 1u << 2,	/* timer:* on tw_timer: how TIME_WAIT ends */
	OPT_RESET_FENTRY = 1u << 3,	/* pre-6.10: fentry on tcp_v[46]_send_reset for time_wait_rst,
				   and before 5.17 for refused and half_open too */
};

/*
 * Whether /proc/kallsyms gives symbol an address: libbpf resolves typeless
 * ksyms from there, and without CAP_SYSLOG (kptr_restrict) every address
 * reads 0.  The time-wait timer programs compare against tw_timer_handler's
 * address; without it they would run on every timer for nothing.
 */
static bool has_ksym_addr(const char *symbol)
{
	char line[256], name[128];
	unsigned long long addr;
	bool found = false;
	FILE *f = fopen("/proc/kallsyms", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %*s %127s", &addr, name) == 2 && strcmp(name, symbol) == 0)
			found = addr != 0;
	fclose(f);
	return found;
}

/*
 * Runs of p the kernel skipped and counted: __bpf_trace_run() (and a
 * trampoline) skips a program already running on this CPU, a softirq
 * firing its tracepoint over a task that is in it, and counts it in
 * bpf_prog_info.recursion_misses (5.12, commit 9ed9e9ba2337).  -1: this
 * kernel's bpf_prog_info has no such field.
 */
static int64_t prog_missed(const struct bpf_program *p)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd = bpf_program__fd(p);

	if (fd < 0)	/* not loaded on this kernel */
		return 0;
	memset(&info, 0, sizeof(info));
	/* the kernel writes back how much of info it filled */
	if (bpf_obj_get_info_by_fd(fd, &info, &len) ||
	    len < offsetof(struct bpf_prog_info, recursion_misses) + sizeof(info.recursion_misses))
		return -1;
	return (int64_t)info.recursion_misses;
}

static const char *const required_tps[] = {
	"inet_sock_set_state", "tcp_send_reset", "tcp_receive_reset", "tcp_destroy_sock",
	"tcp_rcv_space_adjust",
};

static int open_and_load(struct rw_tracer *t, const struct rw_loader_opts *o, unsigned int optional,
			 char *err, size_t errlen)
{
	struct rstwatch_bpf *skel;
	int n, rc;

	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = o->btf_path);

	skel = rstwatch_bpf__open_opts(&oo);
	if (!skel) {
		snprintf(err, errlen, "opening BPF object: %s", strerror(errno));
		return -1;
	}
	skel->rodata->filter_pid = o->filters.pid;
	skel->rodata->filter_port = o->filters.port;
	skel->rodata->filter_family = o->filters.family;
	skel->rodata->filter_netns = o->filters.netns;
	skel->rodata->filter_tree = o->filters.tree;
	skel->rodata->filter_cgroup = o->filters.cgroup_id;
	skel->rodata->filter_cgroup_level = o->filters.cgroup_level;
	bpf_program__set_autoload(skel->progs.on_fork, o->filters.tree);
	/* a forced wakeup past a quarter of the buffer; otherwise the drain timer */
	skel->rodata->wakeup_bytes = o->ringbuf_bytes / 4;
	bpf_map__set_max_entries(skel->maps.events, o->ringbuf_bytes);
	/* identity: the socket cookie, or before 5.12 address and generation */
	skel->rodata->have_cookie = t->have_cookie;
	if (t->have_cookie)
		bpf_map__set_max_entries(skel->maps.sk_gen, 1);
	/* the filters' and the command's maps only when they are used */
	t->sock_table = o->sock_table ? o->sock_table : 65536;
	bpf_map__set_max_entries(skel->maps.socks, t->sock_table);
	bpf_map__set_max_entries(skel->maps.tws, t->sock_table);
	if (!(o->filters.pid || o->filters.port || o->filters.family || o->filters.netns ||
	      o->filters.tree || o->filters.cgroup_id))
		bpf_map__set_max_entries(skel->maps.selected, 1);
	else
		bpf_map__set_max_entries(skel->maps.selected, t->sock_table);
	if (!o->filters.tree)
		bpf_map__set_max_entries(skel->maps.proc_tree, 1);
	skel->rodata->tw_events = o->tw_events;
	skel->rodata->pressure_pct = o->pressure_pct;
	skel->rodata->close_wait_ns = o->close_wait_ns;
	skel->rodata->tick_ns = t->tick_ns;
	if (t->rst_hook) {
		uint32_t lo = UINT32_MAX, hi = 0;

		for (int i = 0; i < 4; i++) {
			if (t->drop[i] == UINT32_MAX)
				continue;
			lo = t->drop[i] < lo ? t->drop[i] : lo;
			hi = t->drop[i] > hi ? t->drop[i] : hi;
		}
		skel->rodata->drop_lo = lo;
		skel->rodata->drop_span = hi - lo;
		skel->rodata->drop_reset = t->drop[0];
		skel->rodata->drop_old_seq = t->drop[1];
		skel->rodata->drop_bad_seq = t->drop[2];
		skel->rodata->drop_bad_end_seq = t->drop[3];
	}
	bpf_program__set_autoload(skel->progs.on_kfree_skb_rst, t->rst_hook);
	/* run by deliver_chunk(), never attached */
	bpf_program__set_autoload(skel->progs.peer_probe, t->peer_probe);
	bpf_program__set_autoattach(skel->progs.peer_probe, false);

	n = t->send_reset_nargs;
	bpf_program__set_autoload(skel->progs.on_send_reset, n >= 3);
	bpf_program__set_autoload(skel->progs.on_send_reset_noreason, n == 2);
	/* before 6.10 the resets without a full socket need other hooks */
	bpf_program__set_autoload(skel->progs.on_kfree_skb_nosock, t->nosock_hook);
	bpf_program__set_autoload(skel->progs.on_v4_send_reset, optional & OPT_RESET_FENTRY);
	bpf_program__set_autoload(skel->progs.on_v6_send_reset, optional & OPT_RESET_FENTRY);
	/* with no kfree_skb drop reason, the fentry programs answer for the
	 * segments that found no socket too */
	skel->rodata->nosock_by_fentry = !t->nosock_hook;
	/* added in 5.12; the classifier does not depend on it */
	bpf_program__set_autoload(skel->progs.on_error_report, t->error_report);
	/* inet_csk_accept(sk, flags, err, kern) before 6.10, (sk, arg) since */
	n = t->accept_nargs;
	bpf_program__set_autoload(skel->progs.on_accept_exit, (optional & OPT_ACCEPT) && n != 4);
	bpf_program__set_autoload(skel->progs.on_accept_exit_4args, (optional & OPT_ACCEPT) && n == 4);
	bpf_program__set_autoload(skel->progs.seed_owners, optional & OPT_SEED);
	skel->rodata->tw_tracking = !!(optional & OPT_TW);
	bpf_program__set_autoload(skel->progs.on_timer_start, optional & OPT_TW);
	bpf_program__set_autoload(skel->progs.on_timer_cancel, optional & OPT_TW);
	bpf_program__set_autoload(skel->progs.on_timer_expire, optional & OPT_TW);
	/* seed_owners() runs once, after the tracepoints: seed_owners_now() */
	bpf_program__set_autoattach(skel->progs.seed_owners, false);

	rc = rstwatch_bpf__load(skel);
	if (rc) {
		snprintf(err, errlen, "loading BPF programs: %s%s", strerror(-rc),
			 rc == -EPERM ? " (run as root, or with CAP_BPF and CAP_PERFMON)" :
			 o->btf_path && access("/sys/kernel/btf/vmlinux", R_OK) ?
			 " (this kernel has no BTF of its own: --btf gives the types, but rstwatch's "
			 "tp_btf programs attach by the kernel's BTF, CONFIG_DEBUG_INFO_BTF=y)" :
			 " (run with -v for the verifier's log)");
		rstwatch_bpf__destroy(skel);
		return -1;
	}
	t->skel = skel;
	return 0;
}

/*
 * Load with as many optional programs as this kernel accepts.  A refusal does
 * not say which program was refused, so try every subset from the largest
 * down (all, each alone, none); the first that loads wins.  Returns the set
 * loaded, or -1 with err from the last (no optional programs) attempt.
 */
/* Which optional programs this kernel's BTF (and kallsyms) allow. */
static unsigned int optional_available(struct rw_tracer *t)
{
	unsigned int avail = 0;

	if (has_func(t->btf, "inet_csk_accept"))
		avail |= OPT_ACCEPT;
	if (has_func(t->btf, "bpf_iter_task_file"))	/* the iterator's BTF target, 5.8+ */
		avail |= OPT_SEED;
	if (tp_nargs(t->btf, "timer_cancel") == 1) {
		if (has_ksym_addr("tw_timer_handler"))
			avail |= OPT_TW;
		else
			t->tw_addr_hidden = true;
	}
	/* the functions are static: present in BTF only where not inlined; a
	 * modular IPv6 would carry tcp_v6_send_reset in its own BTF, so then
	 * neither is attached and time_wait_rst is reported unavailable */
	if (t->send_reset_nargs == 2 && has_func(t->btf, "tcp_v4_send_reset") &&
	    has_func(t->btf, "tcp_v6_send_reset"))
		avail |= OPT_RESET_FENTRY;
	return avail;
}

static int load_best(struct rw_tracer *t, const struct rw_loader_opts *o, char *err, size_t errlen)
{
	unsigned int avail = 0, tried = 0;	/* bit n of tried: subset n attempted */
	/* the order of the timer programs, iterator and accept, each first
	 * with, then without, the pre-6.10 fentry for time_wait_rst: where
	 * fentry is refused, that costs one more attempt per step */
	static const unsigned int order[] = {
		OPT_ACCEPT | OPT_SEED | OPT_TW | OPT_RESET_FENTRY, OPT_ACCEPT | OPT_SEED | OPT_TW,
		OPT_SEED | OPT_TW | OPT_RESET_FENTRY, OPT_SEED | OPT_TW,
		OPT_ACCEPT | OPT_TW | OPT_RESET_FENTRY, OPT_ACCEPT | OPT_TW,
		OPT_TW | OPT_RESET_FENTRY, OPT_TW,
		OPT_ACCEPT | OPT_SEED | OPT_RESET_FENTRY, OPT_ACCEPT | OPT_SEED,
		OPT_SEED | OPT_RESET_FENTRY, OPT_SEED,
		OPT_ACCEPT | OPT_RESET_FENTRY, OPT_ACCEPT,
		OPT_RESET_FENTRY, 0,
	};

	avail = t->avail;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		unsigned int set = order[i] & avail;

		if (tried & (1u << set))
			continue;
		tried |= 1u << set;	/* set < 16: OPT_* are bits 0-3 */
		if (open_and_load(t, o, set, err, errlen) == 0)
			return (int)set;
	}
	return -1;
}

/*
 * Give sockets that existed before rstwatch started an owner: one pass of the
 * seed_owners() iterator over every task's open files.  The tracepoints are
 * attached first, so a socket opened or used during the walk is learned live
 * (the iterator never overwrites that).  The iterator writes nothing: read()
 * only drives the walk, and bpf_seq_read() returns EAGAIN every million
 * objects that produced no output, resuming where it stopped on the next read.
 */
static const char no_seed[] = "sockets opened before rstwatch started get an owner only once "
			      "they are used (connect, listen, recv, close)";

static void seed_owners_now(struct rw_tracer *t)
{
	struct bpf_link *link;
	char buf[64];
	ssize_t n;
	int fd;

	link = bpf_program__attach_iter(t->skel->progs.seed_owners, NULL);
	if (!link) {
		note("attaching the open-files iterator: %s: %s", strerror(errno), no_seed);
		return;
	}
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		note("starting the open-files iterator: %s: %s", strerror(errno), no_seed);
		bpf_link__destroy(link);
		return;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			note("walking open files: %s: some %s", strerror(errno), no_seed);
			break;
		}
	}
	close(fd);
	bpf_link__destroy(link);
	note("owners of %llu TCP sockets and %llu listeners opened before start learned from "
	     "open files", (unsigned long long)t->skel->bss->seeded_sockets,
	     (unsigned long long)t->skel->bss->seeded_listeners);
}

/*
 * How long a jiffy lasts, to turn the socket's idle times (kept in jiffies)
 * into ms: the coarse clocks advance once a tick, and clock_getres() gives
 * their resolution as TICK_NSEC (posix_get_coarse_res(): KTIME_LOW_RES).
 * 0 (idle times not reported) for anything but a plausible HZ.
 */
static uint32_t jiffy_ns(void)
{
	struct timespec res;

	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) || res.tv_sec ||
	    res.tv_nsec < 1000000 || res.tv_nsec > 20000000)
		return 0;
	return (uint32_t)res.tv_nsec;
}

/*
 * What the path between two ends does to them (challenged_rst,
 * middlebox_reset) needs hooks some kernels lack: said at start-up, in the
 * line the e2e tests parse.
 */
static void say_path_hooks(const struct rw_tracer *t)
{
	if (!t->rst_hook)
		fprintf(stderr, "rstwatch: this kernel cannot report: challenged_rst (skb:kfree_skb "
			"names no receiving socket before 6.11, or there is no drop reason TCP_RESET)\n");
	if (!t->peer_probe)
		fprintf(stderr, "rstwatch: this kernel cannot report: middlebox_reset where one end "
			"only got the RST (no bpf_for_each_map_elem() to find the other end, 5.13+)\n");
	else
		note("an RST received is checked against the other end's socket on this host "
		     "(the peer probe: middlebox_reset)");
}

/*
 * Before 6.10: with -v, which hooks stand in for the reset tracepoint; and
 * always (not only with -v) which verdict classes this kernel cannot give
 * because a hook is missing.  tests/vm/init parses this line:
 * "rstwatch: this kernel cannot report: CLASS[, CLASS...] (why)".
 */
static void say_reset_hooks(const struct rw_tracer *t, unsigned int optional)
{
	static const char fentry[] = "fentry on tcp_v4_send_reset and tcp_v6_send_reset";
	bool by_fentry = optional & OPT_RESET_FENTRY;

	if (t->send_reset_nargs >= 3)
		return;
	if (t->nosock_hook)
		note("tcp_send_reset has no reason and no socketless resets here: refused and "
		     "half_open come from skb:kfree_skb (drop reason NO_SOCKET)");
	else if (by_fentry)
		note("tcp_send_reset has no reason and no socketless resets here, and kfree_skb no "
		     "drop reason: refused and half_open come from %s", fentry);
	if (by_fentry) {
		note("time_wait_rst comes from %s", fentry);
		return;
	}
	fprintf(stderr, "rstwatch: this kernel cannot report: %stime_wait_rst (its tcp_send_reset "
		"tracepoint misses resets sent by time-wait sockets%s, and %s is refused or "
		"absent)\n", t->nosock_hook ? "" : "refused, half_open, ",
		t->nosock_hook ? "" : " and for segments with no socket (kfree_skb has no drop "
		"reason NO_SOCKET)", fentry);
}

/*
 * Attach the fentry/fexit programs one by one, after the others: a kernel
 * may verify them and still refuse their trampoline when attaching (arm64
 * before 6.4 has no ftrace direct calls: ENOTSUPP, 524, seen on Debian's
 * arm64 6.1).  Each is optional; returns the set less what would not
 * attach, a pair (IPv4 and IPv6) attached both or neither.
 */
static unsigned int attach_trampolines(struct rw_tracer *t, unsigned int optional)
{
	struct rstwatch_bpf *s = t->skel;
	struct {
		struct bpf_program *prog;
		struct bpf_link **link;
		unsigned int opt;
	} tr[] = {
		{ s->progs.on_accept_exit, &s->links.on_accept_exit, OPT_ACCEPT },
		{ s->progs.on_accept_exit_4args, &s->links.on_accept_exit_4args, OPT_ACCEPT },
		{ s->progs.on_v4_send_reset, &s->links.on_v4_send_reset, OPT_RESET_FENTRY },
		{ s->progs.on_v6_send_reset, &s->links.on_v6_send_reset, OPT_RESET_FENTRY },
	};
	size_t n = sizeof(tr) / sizeof(tr[0]);

	for (size_t i = 0; i < n; i++) {
		if (!bpf_program__autoload(tr[i].prog) || !(optional & tr[i].opt))
			continue;
		*tr[i].link = bpf_program__attach(tr[i].prog);
		if (!*tr[i].link) {
			note("attaching %s: %s (errno %d)", bpf_program__name(tr[i].prog),
			     strerror(errno), errno);
			optional &= ~tr[i].opt;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (*tr[i].link && !(optional & tr[i].opt)) {
			bpf_link__destroy(*tr[i].link);
			*tr[i].link = NULL;
		}
	}
	return optional;
}

int rw_tracer_open(struct rw_tracer **out, const struct rw_loader_opts *o, rw_record_fn fn,
		   void *ctx, char *err, size_t errlen)
{
	struct rw_tracer *t;
	int rc, optional;

	verbose = o->verbose;
	libbpf_set_print(print_libbpf);
	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t->fn = fn;
	t->fn_ctx = ctx;
	t->close_wait_ns = o->close_wait_ns;
	if (o->btf_path) {
		t->btf = btf__parse(o->btf_path, NULL);
		if (!t->btf) {
			snprintf(err, errlen, "--btf %s: %s (give a BTF file, raw or in an ELF's .BTF "
				 "section, for this kernel, e.g. from BTFHub)", o->btf_path,
				 errno == EINVAL || errno == EPROTO || errno >= 4000 ? "not a BTF file" :
				 strerror(errno));
			goto fail;
		}
	} else {
		t->btf = btf__load_vmlinux_btf();
		if (!t->btf) {
			/* libbpf says ESRCH when no candidate file exists */
			snprintf(err, errlen, "cannot read kernel BTF (/sys/kernel/btf/vmlinux): %s "
				 "(rstwatch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y)",
				 errno == ESRCH ? "not found" : strerror(errno));
			goto fail;
		}
	}
	for (size_t i = 0; i < sizeof(required_tps) / sizeof(required_tps[0]); i++) {
		if (tp_nargs(t->btf, required_tps[i]) < 0) {
			snprintf(err, errlen, "this kernel has no tracepoint %s (rstwatch needs Linux 5.8 or later)",
				 required_tps[i]);
			goto fail;
		}
	}

	t->send_reset_nargs = tp_nargs(t->btf, "tcp_send_reset");
	/* the helper's tracing variant, commit c5dbb89fc2ac (5.12) */
	t->have_cookie = has_func(t->btf, "bpf_get_socket_ptr_cookie");

	if (!t->have_cookie)
		note("no socket cookies for tracing programs here (5.12+): sockets are known by "
		     "address and a generation renewed at each socket's birth");
	/* kfree_skb(skb, location, reason) since 5.17, with SKB_DROP_REASON_NO_SOCKET */
	t->nosock_hook = t->send_reset_nargs == 2 && tp_nargs(t->btf, "kfree_skb") >= 3 &&
			 has_enum_value(t->btf, "skb_drop_reason", "SKB_DROP_REASON_NO_SOCKET");
	t->error_report = tp_nargs(t->btf, "inet_sk_error_report") >= 0;
	/* kfree_skb(skb, location, reason, rx_sk) since 6.11: the socket that
	 * refused an RST, and the drop reason TCP_RESET its challenge gives */
	rst_drop_reasons(t);
	t->rst_hook = tp_nargs(t->btf, "kfree_skb") >= 4 && t->drop[0] != UINT32_MAX;
	/* the peer probe walks socks with bpf_for_each_map_elem() (5.13) */
	t->peer_probe = has_enum_value(t->btf, "bpf_func_id", "BPF_FUNC_for_each_map_elem");
	t->tick_ns = jiffy_ns();
	t->accept_nargs = func_nargs(t->btf, "inet_csk_accept");
	t->avail = optional_available(t);
	/* the caller's use of the types (decoding), then they go: libbpf parses
	 * its own copy to load, and two at once would double rstwatch's peak */
	if (o->types && o->types(t->btf, o->types_ctx, err, errlen))
		goto fail;
	btf__free(t->btf);
	t->btf = NULL;
	malloc_trim(0);
	optional = load_best(t, o, err, errlen);
	if (optional < 0)
		goto fail;
	malloc_trim(0);	/* libbpf's own copy of the types is gone too: give the heap back */
	/* the trampolines one by one: a kernel may load one it cannot attach
	 * (arm64 before 6.4: no ftrace direct calls) */
	bpf_program__set_autoattach(t->skel->progs.on_accept_exit, false);
	bpf_program__set_autoattach(t->skel->progs.on_accept_exit_4args, false);
	bpf_program__set_autoattach(t->skel->progs.on_v4_send_reset, false);
	bpf_program__set_autoattach(t->skel->progs.on_v6_send_reset, false);
	rc = rstwatch_bpf__attach(t->skel);
	if (rc) {
		snprintf(err, errlen, "attaching BPF programs: %s%s", strerror(-rc),
			 rc == -EPERM ? " (run as root, or with CAP_BPF and CAP_PERFMON)" : "");
		goto fail;
	}
	optional = (int)attach_trampolines(t, (unsigned int)optional);
	t->optional = (unsigned int)optional;
	if (!t->error_report)
		fprintf(stderr, "rstwatch: warning: this kernel has no tracepoint inet_sk_error_report "
			"(5.12+): errors reported before a close are not traced\n");
	if (!(optional & OPT_ACCEPT))
		note("fexit on inet_csk_accept unavailable: accepted sockets are attributed to the "
		     "listener's owner until they are read");
	if (!(optional & OPT_SEED))
		note("open-files iterator (iter/task_file) unavailable: %s", no_seed);
	/* kallsyms_show_value() hides addresses from a process without
	 * CAP_SYSLOG (unless perf_event_paranoid <= 1 and kptr_restrict 0):
	 * the usual cause under least privilege, so said without -v */
	if (t->tw_addr_hidden)
		fprintf(stderr, "rstwatch: this kernel cannot report: time_wait_overflow, how TIME_WAIT "
			"ends, peer_reset in TIME_WAIT (tw_timer_handler's address in /proc/kallsyms is "
			"hidden from rstwatch: give it CAP_SYSLOG)\n");
	else if (!(optional & OPT_TW))
		note("time-wait timer tracing unavailable (the timer programs were refused): "
		     "TIME_WAIT entries are reported, not how they end, and TIME_WAIT assassination "
		     "is not seen");
	say_reset_hooks(t, optional);
	say_path_hooks(t);
	if (prog_missed(t->skel->progs.on_set_state) < 0)
		note("this kernel does not count the program runs it skips (recursion_misses, 5.12+): "
		     "missed stays 0; a close they cost is still counted as unseen");
	if (optional & OPT_SEED)
		seed_owners_now(t);

	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), take_record, t, NULL);
	if (!t->rb) {
		snprintf(err, errlen, "creating ring buffer: %s", strerror(errno));
		goto fail;
	}
	t->ncpu = libbpf_num_possible_cpus();
	if (t->ncpu <= 0) {
		snprintf(err, errlen, "cannot count possible CPUs: %s", strerror(-t->ncpu));
		goto fail;
	}
	*out = t;
	return 0;
fail:
	rw_tracer_close(t);
	return -1;
}



size_t rw_tracer_features(const struct rw_tracer *t, struct rw_tracer_feature *out, size_t max)
{
	const struct rw_tracer_feature all[] = {
		{ "reset_reason", t->send_reset_nargs >= 3 },
		{ "error_report", t->error_report },
		{ "accept_fexit", t->optional & OPT_ACCEPT },
		{ "owner_iterator", t->optional & OPT_SEED },
		{ "time_wait_timers", t->optional & OPT_TW },
		{ "nosock_kfree_skb", t->nosock_hook },
		{ "time_wait_rst_fentry", t->optional & OPT_RESET_FENTRY },
		{ "refused_rst_kfree_skb", t->rst_hook },
		{ "peer_probe", t->peer_probe },
	};
	size_t n = sizeof(all) / sizeof(all[0]);

	if (n > max)
		n = max;
	memcpy(out, all, n * sizeof(*out));
	return n;
}

int rw_tracer_fd(const struct rw_tracer *t)
{
	return ring_buffer__epoll_fd(t->rb);
}

/*
 * A reset received that the peer probe should answer: a full socket
 * synchronised (not one tcp_reset() closed for data after shutdown(RD),
 * whose own RST follows).
 */
static bool peer_question(const struct rw_record *r)
{
	if (r->type != RW_REC_RECV_RESET || !(r->sk_flags & RW_SKF_FULL))
		return false;
	switch (r->state) {
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
		return !(r->sk_shutdown & RCV_SHUTDOWN);
	case TCP_ESTABLISHED:
	case TCP_SYN_RECV:
	case TCP_CLOSE_WAIT:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		return true;
	default:
		return false;
	}
}

/* The ring buffer's callback: records wait in the chunk (CHUNK_FULL: deliver
 * it, then drain on). */
static int take_record(void *ctx, void *data, size_t size)
{
	struct rw_tracer *t = ctx;
	struct rw_record *r = &t->chunk[t->nchunk];

	memcpy(r, data, size < sizeof(*r) ? size : sizeof(*r));
	t->chunk_size[t->nchunk++] = (uint32_t)size;
	if (t->peer_probe && size >= sizeof(*r) && peer_question(r))
		t->nasks++;
	return t->nchunk == RW_CHUNK || t->nasks == RW_PEER_ASK_MAX ? CHUNK_FULL : 0;
}

/* The question about r's other end: the tuple it would have. */
static struct rw_peer_key peer_key(const struct rw_record *r)
{
	struct rw_peer_key k;

	memset(&k, 0, sizeof(k));
	memcpy(k.laddr, r->raddr, sizeof(k.laddr));
	memcpy(k.raddr, r->laddr, sizeof(k.raddr));
	k.lport = r->rport;
	k.rport = r->lport;
	k.family = r->family;
	return k;
}

/*
 * Deliver the chunk in ring buffer order, each reset received followed by
 * the peer probe's answer (a RW_REC_PEER record stamped with the reset's
 * time), if it found the other end: the classifier decides a receiver's
 * verdict by its events' times, and the answer must come before anything
 * later.  One probe answers the whole chunk.
 */
static void deliver_chunk(struct rw_tracer *t)
{
	int fd = t->peer_probe ? bpf_map__fd(t->skel->maps.peer_ask) : -1;
	struct rw_peer_ask ask;
	bool asked[RW_CHUNK] = { false }, any = false;

	if (t->nasks && clock_boot_ns() < t->probe_next) {
		t->probe_skipped += t->nasks;	/* these stay peer_reset */
		t->nasks = 0;
	}
	for (unsigned int i = 0; t->nasks && i < t->nchunk; i++) {
		const struct rw_record *r = &t->chunk[i];
		struct rw_peer_key k;

		if (t->chunk_size[i] < sizeof(*r) || !peer_question(r))
			continue;
		k = peer_key(r);
		memset(&ask, 0, sizeof(ask));
		ask.receiver = r->skaddr;
		ask.about = r->cookie ? r->cookie : r->skaddr;	/* as rw_decode() names it */
		ask.ts_boot_ns = r->ts_boot_ns;
		/* the same tuple twice in one chunk: the first is asked */
		asked[i] = bpf_map_update_elem(fd, &k, &ask, BPF_NOEXIST) == 0;
		any |= asked[i];
	}
	if (any) {
		LIBBPF_OPTS(bpf_test_run_opts, run);
		uint64_t t0 = clock_boot_ns();

		if (bpf_prog_test_run_opts(bpf_program__fd(t->skel->progs.peer_probe), &run)) {
			if (!t->probe_failed)
				fprintf(stderr, "rstwatch: warning: the peer probe failed: %s (resets whose "
					"other end is on this host are reported as peer_reset)\n",
					strerror(errno));
			t->probe_failed = true;
		} else {
			uint64_t t1 = clock_boot_ns();	/* a raw_tp run reports no duration */

			t->probe_runs++;
			t->probe_ns += t1 - t0;
			t->probe_next = t1 + RW_PROBE_REST * (t1 - t0);
		}
	}
	for (unsigned int i = 0; i < t->nchunk; i++) {
		struct rw_peer_key k;

		t->fn(t->fn_ctx, &t->chunk[i], t->chunk_size[i]);
		if (!asked[i])
			continue;
		k = peer_key(&t->chunk[i]);
		if (bpf_map_lookup_elem(fd, &k, &ask) == 0 && ask.found.type == RW_REC_PEER)
			t->fn(t->fn_ctx, &ask.found, sizeof(ask.found));
		bpf_map_delete_elem(fd, &k);
	}
	t->nchunk = t->nasks = 0;
}

/* rc: what a poll or consume returned; deliver what it took, and drain on
 * while it stopped for a full chunk. */
static int drain(struct rw_tracer *t, int rc)
{
	while (rc == CHUNK_FULL) {
		deliver_chunk(t);
		rc = ring_buffer__consume(t->rb);
	}
	deliver_chunk(t);
	return rc;
}

int rw_tracer_poll(struct rw_tracer *t, int timeout_ms)
{
	int rc = drain(t, ring_buffer__poll(t->rb, timeout_ms));

	if (rc < 0 && rc != -EINTR)
		return rc;
	/* Records are submitted with BPF_RB_NO_WAKEUP, so poll() mostly just
	 * times out: drain explicitly. */
	rc = drain(t, ring_buffer__consume(t->rb));
	for (unsigned int i = 0; i < t->nstuck; i++)
		t->fn(t->fn_ctx, &t->stuck[i], sizeof(t->stuck[i]));
	t->nstuck = 0;
	return rc < 0 && rc != -EINTR ? rc : 0;
}

void rw_tracer_missed_by_program(const struct rw_tracer *t, char *buf, size_t len)
{
	struct bpf_program *p;
	size_t n = 0;

	buf[0] = 0;
	bpf_object__for_each_program(p, t->skel->obj) {
		int64_t m = prog_missed(p);

		if (m > 0 && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s %lld", n ? ", " : "",
					      bpf_program__name(p), (long long)m);
	}
}

void rw_tracer_counters(const struct rw_tracer *t, struct rw_tracer_counters *c)
{
	struct bpf_program *p;
	uint64_t vals[RW_CNT_MAX][t->ncpu > 0 ? t->ncpu : 1];
	int fd = bpf_map__fd(t->skel->maps.counters);

	memset(c, 0, sizeof(*c));
	for (uint32_t k = 0; k < RW_CNT_MAX; k++) {
		if (bpf_map_lookup_elem(fd, &k, vals[k]))
			memset(vals[k], 0, sizeof(vals[k]));
	}
	for (int cpu = 0; cpu < t->ncpu; cpu++) {
		c->produced += vals[RW_CNT_PRODUCED][cpu];
		c->lost += vals[RW_CNT_LOST][cpu];
		c->owner_fail += vals[RW_CNT_OWNER_FAIL][cpu];
		c->tw_entered += vals[RW_CNT_TW_ENTERED][cpu];
		c->tw_expired += vals[RW_CNT_TW_EXPIRED][cpu];
		c->tw_reused += vals[RW_CNT_TW_REUSED][cpu];
		c->tw_ended += vals[RW_CNT_TW_ENDED][cpu];
		c->tw_untracked += vals[RW_CNT_TW_UNTRACKED][cpu];
		c->close_unseen += vals[RW_CNT_CLOSE_UNSEEN][cpu];
	}
	bpf_object__for_each_program(p, t->skel->obj) {
		int64_t m = prog_missed(p);

		if (m > 0)
			c->missed += (uint64_t)m;
	}
	c->tw_ended += t->tw_reaped;
}

bool rw_tracer_usable(void *tracer)
{
	struct rw_tracer *t = tracer;
	uint64_t vals[t->ncpu > 0 ? t->ncpu : 1];
	uint32_t k = RW_CNT_PRODUCED;

	return bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.counters), &k, vals) == 0;
}

/* A socket found stuck, as the record the BPF side would have sent. */
/* A record userspace makes for what the kernel keeps (a socket stuck in
 * CLOSE_WAIT, a parked time-wait cancel): type, tuple, identity and owner as
 * the BPF side would have sent them; the caller adds the rest.  Queued in
 * t->stuck, which the caller has checked has room. */
static struct rw_record *synth_record(struct rw_tracer *t, __u8 type, __u8 state, uint64_t ts,
				      uint64_t cookie, __u16 family, const __u32 *laddr,
				      const __u32 *raddr, __u16 lport, __u16 rport, __u32 netns,
				      const struct rw_owner *own)
{
	struct rw_record *r = &t->stuck[t->nstuck++];

	memset(r, 0, sizeof(*r));
	r->type = type;
	r->family = family;
	r->state = state;
	r->ts_boot_ns = ts;
	r->cookie = cookie;
	memcpy(r->laddr, laddr, sizeof(r->laddr));
	memcpy(r->raddr, raddr, sizeof(r->raddr));
	r->lport = lport;
	r->rport = rport;
	r->netns = netns;
	r->reason = RW_REASON_NONE;
	r->sk_flags = RW_SKF_HAS_SK;
	if (own->pid) {
		r->sk_flags |= RW_SKF_OWNER;
		r->owner_pid = own->pid;
		r->owner_cgroup = own->cgroup;
		r->start_ns = own->start_ns;
		memcpy(r->owner_comm, own->comm, sizeof(r->owner_comm));
	}
	return r;
}

static void report_stuck(struct rw_tracer *t, uint64_t addr, const struct rw_sock *s, uint64_t now)
{
	struct rw_record *r = synth_record(t, RW_REC_CW_STUCK, TCP_CLOSE_WAIT, now, s->id,
					   s->family, s->laddr, s->raddr, s->lport, s->rport,
					   s->netns, &s->own);

	r->skaddr = addr;
	r->xflags = RW_XF_SINCE;
	r->since_ns = s->cw_since;
}

/* A time-wait socket cancelled in softirq that no handshake took over: the
 * RST's kill, as the record the BPF side would have sent at the cancel. */
static void report_tw_kill(struct rw_tracer *t, const struct rw_tw_pending *p)
{
	struct rw_record *r = synth_record(t, RW_REC_TW_CANCEL, TCP_TIME_WAIT, p->cancel_ns,
					   p->cookie, p->family, p->laddr, p->raddr, p->lport,
					   p->rport, p->netns, &p->own);

	r->tw_substate = p->substate;
	r->xflags = p->xflags | RW_XF_SUBSTATE;
	if (p->since) {
		r->xflags |= RW_XF_SINCE;
		r->since_ns = p->since;
	}
}

/*
 * Every entry of one of the programs' maps keyed by a u64, read in batches:
 * each(t, fd, key, value, arg) for each.  Entries added or deleted meanwhile
 * may be seen or not.  0, or -errno from the kernel (what was read before an
 * error has been handed out).
 */
typedef void (*walk_fn)(struct rw_tracer *t, int fd, uint64_t key, void *val, void *arg);

#define WALK_VALUE_MAX 256
_Static_assert(sizeof(struct rw_sock) <= WALK_VALUE_MAX && sizeof(struct rw_tw) <= WALK_VALUE_MAX &&
	       sizeof(struct rw_tw_pending) <= WALK_VALUE_MAX &&
	       sizeof(struct rw_ep) <= WALK_VALUE_MAX, "walk_map(): raise WALK_VALUE_MAX");

static int walk_map(struct rw_tracer *t, int fd, size_t value_size, walk_fn each, void *arg)
{
	enum { BATCH = 128 };
	uint64_t keys[BATCH];
	_Alignas(8) unsigned char vals[BATCH * WALK_VALUE_MAX];
	uint32_t token = 0, n;
	bool more = true;
	int rc;

	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	for (bool first = true; more; first = false) {
		n = BATCH;
		rc = bpf_map_lookup_batch(fd, first ? NULL : &token, &token, keys, vals, &n, &bo);
		if (rc && errno != ENOENT)
			return -errno;
		more = rc == 0;	/* ENOENT: this batch was the last */
		for (uint32_t i = 0; i < n; i++)
			each(t, fd, keys[i], vals + i * value_size, arg);
	}
	return 0;
}

/*
 * Whether a kernel time `then` is at least `age` before `now`.  The walks
 * take `now` once and read the maps afterwards, while the programs go on
 * writing them: an entry made after `now` was taken has then > now, and is
 * young, not 2^64 ns old.
 */
static bool aged(uint64_t now, uint64_t then, uint64_t age)
{
	return then <= now && now - then >= age;
}

/* The parked time-wait cancels (struct rw_tw_pending) that no child took
 * within age_ns are kills: report those not reported yet, forget them all.
 * *young: some were left, not that old yet. */
struct pending_walk {
	uint64_t now, age_ns;
	bool young;	/* some were left, not that old yet */
};

static void pending_one(struct rw_tracer *t, int fd, uint64_t key, void *val, void *arg)
{
	struct rw_tw_pending *p = val;
	struct pending_walk *w = arg;

	if (t->nstuck >= sizeof(t->stuck) / sizeof(t->stuck[0]))
		return;		/* the rest wait for the next walk */
	if (!aged(w->now, p->cancel_ns, w->age_ns)) {
		w->young = true;
		return;
	}
	/* taken by a child meanwhile: a reuse, nothing to say */
	if (bpf_map_delete_elem(fd, &key))
		return;
	if (!p->reported && p->wanted)
		report_tw_kill(t, p);
}

static int walk_tw_pending(struct rw_tracer *t, uint64_t now, uint64_t age_ns, bool *young)
{
	struct pending_walk w = { .now = now, .age_ns = age_ns };
	int rc = walk_map(t, bpf_map__fd(t->skel->maps.tw_pending), sizeof(struct rw_tw_pending),
			  pending_one, &w);

	*young = w.young;
	return rc;
}

/* An endpoint's count, less one time-wait socket whose end went unseen.
 * Not atomic with the programs' own updates: a reap is rare. */
static void endpoint_release(struct rw_tracer *t, uint64_t key)
{
	int fd = bpf_map__fd(t->skel->maps.endpoints);
	struct rw_ep ep;

	if (!key || bpf_map_lookup_elem(fd, &key, &ep) || !ep.count)
		return;
	if (!--ep.count)
		ep.reported = 0;
	bpf_map_update_elem(fd, &key, &ep, BPF_EXIST);
}

/*
 * Time-wait sockets whose end the programs did not see (a program run the
 * kernel skipped, see rw_tracer_counters()): after RW_TW_STALE_NS their
 * entries are deleted and counted as ended, and their endpoints released,
 * so that the table does not fill and the counts do not drift over weeks.
 * An entry whose socket does end later is simply not found then.
 */
static void reap_one(struct rw_tracer *t, int fd, uint64_t key, void *val, void *arg)
{
	const struct rw_tw *tw = val;
	uint64_t now = *(const uint64_t *)arg;

	if (!aged(now, tw->since, RW_TW_STALE_NS) || bpf_map_delete_elem(fd, &key))
		return;
	if (tw->flags & RW_TW_COUNTED)
		t->tw_reaped++;
	endpoint_release(t, tw->ep);
}

static int reap_tws(struct rw_tracer *t, uint64_t now)
{
	return walk_map(t, bpf_map__fd(t->skel->maps.tws), sizeof(struct rw_tw), reap_one, &now);
}

struct stuck_walk {
	uint64_t now;
	uint32_t seen;	/* entries in the table */
};

/* One socks entry: report it if it sits in CLOSE_WAIT past --close-wait. */
static void stuck_one(struct rw_tracer *t, int fd, uint64_t key, void *val, void *arg)
{
	const struct rw_sock *s = val;
	struct stuck_walk *w = arg;
	struct rw_sock cur;

	w->seen++;
	/* the rest wait for the next walk, unflagged */
	if (t->nstuck >= sizeof(t->stuck) / sizeof(t->stuck[0]) ||
	    !s->cw_since || !(s->flags & RW_SOCK_CW_WANTED) || (s->flags & RW_SOCK_CW_REPORTED) ||
	    !aged(w->now, s->cw_since, t->close_wait_ns))
		return;
	/* gone meanwhile (closed, destroyed, its address now another
	 * socket's): nothing to report.  The entry is read again just before
	 * it is written back, so that an old copy does not overwrite a new
	 * socket's */
	if (bpf_map_lookup_elem(fd, &key, &cur) || cur.id != s->id || cur.cw_since != s->cw_since)
		return;
	cur.flags |= RW_SOCK_CW_REPORTED;
	if (bpf_map_update_elem(fd, &key, &cur, BPF_EXIST))
		return;
	report_stuck(t, key, &cur, w->now);
}

/*
 * The CLOSE_WAIT walk.  The kernel keeps, per socket, when it entered
 * CLOSE_WAIT; a socket that stays there sends nothing, so this reads the
 * socks map in batches and reports each one past --close-wait once.  The
 * flag it sets in the entry makes the BPF side send the socket's exit.  No
 * BPF program walks the map instead: map iterators are refused on some
 * kernels that allow the rest (seen on 6.18 VMs), and this costs only the
 * walk, not every socket.
 */
int rw_tracer_walk(struct rw_tracer *t, bool final)
{
	struct stuck_walk w = { .now = clock_boot_ns() };
	uint64_t now = w.now;
	bool young = false;
	int rc;

	/* at the end, a parked cancel is given the time a handshake on a LAN
	 * takes, not the full wait: Ctrl-C must not linger */
	rc = walk_tw_pending(t, now, final ? RW_TW_PENDING_FINAL_NS : RW_TW_PENDING_NS, &young);
	if (!rc && final && young) {
		usleep(RW_TW_PENDING_FINAL_NS / 1000);
		now = clock_boot_ns();
		rc = walk_tw_pending(t, now, RW_TW_PENDING_FINAL_NS, &young);
	}
	if (!rc && (final || now >= t->next_reap)) {
		rc = reap_tws(t, now);
		t->next_reap = now + RW_REAP_NS;
	}
	/* the first TIME_WAIT entry the full table refused is said at once */
	if (!t->warned_tws) {
		struct rw_tracer_counters c;

		rw_tracer_counters(t, &c);
		if (c.tw_untracked) {
			t->warned_tws = true;
			fprintf(stderr, "rstwatch: warning: %u TIME_WAIT sockets at once fill the table: "
				"the next are not counted (raise --sock-table)\n", t->sock_table);
		}
	}
	if (rc)
		return rc;

	w.now = now;
	rc = walk_map(t, bpf_map__fd(t->skel->maps.socks), sizeof(struct rw_sock), stuck_one, &w);
	if (rc)
		return rc;
	/* an LRU map: past its size the least active sockets are dropped, a
	 * batch at a time (per-CPU free lists), so a full one holds ~90-95% */
	if (!t->warned_socks && w.seen >= t->sock_table / 8 * 7) {
		t->warned_socks = true;
		fprintf(stderr, "rstwatch: warning: %u sockets at once fill the socket table: the "
			"least active lose their owner and CLOSE_WAIT watch (raise --sock-table)\n",
			w.seen);
	}
	return 0;
}

struct top_walk {
	struct rw_tw_endpoint *out;
	unsigned int max, have;
};

/* One endpoint into the sorted top: most first, then oldest seen. */
static void top_one(struct rw_tracer *t, int fd, uint64_t key, void *val, void *arg)
{
	const struct rw_ep *ep = val;
	struct top_walk *w = arg;
	struct rw_tw_endpoint *out = w->out;
	unsigned int at;

	(void)t, (void)fd, (void)key;
	if (!ep->count)
		return;
	for (at = w->have; at > 0 && out[at - 1].count < ep->count; at--)
		;
	if (at >= w->max)
		return;
	if (w->have < w->max)
		w->have++;
	memmove(&out[at + 1], &out[at], (w->have - 1 - at) * sizeof(*out));
	out[at] = (struct rw_tw_endpoint){
		.family = ep->family == AF_INET6 ? 6 : 4, .netns = ep->netns,
		.rport = ep->rport, .count = ep->count,
	};
	memcpy(out[at].laddr, ep->laddr, 16);
	memcpy(out[at].raddr, ep->raddr, 16);
}

unsigned int rw_tracer_tw_top(struct rw_tracer *t, struct rw_tw_endpoint *out, unsigned int max)
{
	struct top_walk w = { .out = out, .max = max };

	/* an error leaves what was read before it */
	walk_map(t, bpf_map__fd(t->skel->maps.endpoints), sizeof(struct rw_ep), top_one, &w);
	return w.have;
}

void rw_tracer_detach(struct rw_tracer *t)
{
	rstwatch_bpf__detach(t->skel);
}

int rw_tracer_add_tree(struct rw_tracer *t, uint32_t pid)
{
	uint8_t one = 1;

	return bpf_map__update_elem(t->skel->maps.proc_tree, &pid, sizeof(pid), &one, sizeof(one),
				    BPF_ANY);
}

void rw_tracer_close(struct rw_tracer *t)
{
	if (!t)
		return;
	if (t->probe_runs)
		note("the peer probe ran %llu times, %llu us each on average; %llu resets received "
		     "were not asked about (it rested)", (unsigned long long)t->probe_runs,
		     (unsigned long long)(t->probe_ns / t->probe_runs / 1000),
		     (unsigned long long)t->probe_skipped);
	ring_buffer__free(t->rb);
	rstwatch_bpf__destroy(t->skel);
	btf__free(t->btf);
	free(t);
}
