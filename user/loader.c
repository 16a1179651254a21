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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "events.h"
#include "loader.h"
#include "rstwatch.skel.h"

struct rw_tracer {
	struct rstwatch_bpf *skel;
	struct ring_buffer *rb;
	struct btf *btf;
	int ncpu;
	int send_reset_nargs;	/* of btf_trace_tcp_send_reset: 3 since 6.10, 2 before */
	bool have_cookie;	/* tracing programs may call bpf_get_socket_cookie() (5.12+) */
	bool nosock_hook;	/* pre-6.10: on_kfree_skb_nosock loads (refused, half_open) */
};

static bool verbose;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	/* without -v even warnings stay quiet: our one-line errors say what failed */
	if (!verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

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

/* Whether enum `type` of this kernel has the enumerator `name`. */
static bool has_enum_value(const struct btf *btf, const char *type, const char *name)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_ENUM);
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_enum *e;

	if (!t)
		return false;
	e = btf_enum(t);
	for (int i = 0; i < btf_vlen(t); i++, e++) {
		if (strcmp(btf__name_by_offset(btf, e->name_off), name) == 0)
			return true;
	}
	return false;
}

/* Optional programs, as a bit set: each adds evidence, none is needed. */
enum {
	OPT_ACCEPT = 1u << 0,	/* fexit/inet_csk_accept: the accepting process owns the child */
	OPT_SEED = 1u << 1,	/* iter/task_file: owners of sockets that predate rstwatch */
	OPT_TW = 1u << 2,	/* timer:* on tw_timer: how TIME_WAIT ends */
	OPT_TW_RESET = 1u << 3,	/* pre-6.10: fentry on tcp_v[46]_send_reset for time_wait_rst */
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
	bpf_program__set_autoload(skel->progs.on_fork, o->filters.tree);
	/* a forced wakeup past a quarter of the buffer; otherwise the drain timer */
	skel->rodata->wakeup_bytes = o->ringbuf_bytes / 4;
	bpf_map__set_max_entries(skel->maps.events, o->ringbuf_bytes);
	/* identity: the socket cookie, or before 5.12 address and generation */
	skel->rodata->have_cookie = t->have_cookie;
	if (t->have_cookie)
		bpf_map__set_max_entries(skel->maps.sk_gen, 1);

	n = t->send_reset_nargs;
	bpf_program__set_autoload(skel->progs.on_send_reset, n >= 3);
	bpf_program__set_autoload(skel->progs.on_send_reset_noreason, n == 2);
	/* before 6.10 the resets without a full socket need other hooks */
	bpf_program__set_autoload(skel->progs.on_kfree_skb_nosock, t->nosock_hook);
	bpf_program__set_autoload(skel->progs.on_tw_reset_v4, optional & OPT_TW_RESET);
	bpf_program__set_autoload(skel->progs.on_tw_reset_v6, optional & OPT_TW_RESET);
	if (tp_nargs(t->btf, "inet_sk_error_report") < 0)
		/* added in 5.12; the classifier does not depend on it */
		bpf_program__set_autoload(skel->progs.on_error_report, false);
	bpf_program__set_autoload(skel->progs.on_accept_exit, optional & OPT_ACCEPT);
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
static int load_best(struct rw_tracer *t, const struct rw_loader_opts *o, char *err, size_t errlen)
{
	unsigned int avail = 0, tried = 0;	/* bit n of tried: subset n attempted */
	/* the order of the timer programs, iterator and accept, each first
	 * with, then without, the pre-6.10 fentry for time_wait_rst: where
	 * fentry is refused, that costs one more attempt per step */
	static const unsigned int order[] = {
		OPT_ACCEPT | OPT_SEED | OPT_TW | OPT_TW_RESET, OPT_ACCEPT | OPT_SEED | OPT_TW,
		OPT_SEED | OPT_TW | OPT_TW_RESET, OPT_SEED | OPT_TW,
		OPT_ACCEPT | OPT_TW | OPT_TW_RESET, OPT_ACCEPT | OPT_TW,
		OPT_TW | OPT_TW_RESET, OPT_TW,
		OPT_ACCEPT | OPT_SEED | OPT_TW_RESET, OPT_ACCEPT | OPT_SEED,
		OPT_SEED | OPT_TW_RESET, OPT_SEED,
		OPT_ACCEPT | OPT_TW_RESET, OPT_ACCEPT,
		OPT_TW_RESET, 0,
	};

	if (has_func(t->btf, "inet_csk_accept"))
		avail |= OPT_ACCEPT;
	if (has_func(t->btf, "bpf_iter_task_file"))	/* the iterator's BTF target, 5.8+ */
		avail |= OPT_SEED;
	if (tp_nargs(t->btf, "timer_cancel") == 1 && has_ksym_addr("tw_timer_handler"))
		avail |= OPT_TW;
	/* the functions are static: present in BTF only where not inlined; a
	 * modular IPv6 would carry tcp_v6_send_reset in its own BTF, so then
	 * neither is attached and time_wait_rst is reported unavailable */
	if (t->send_reset_nargs == 2 && has_func(t->btf, "tcp_v4_send_reset") &&
	    has_func(t->btf, "tcp_v6_send_reset"))
		avail |= OPT_TW_RESET;
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
 * Before 6.10: with -v, which hooks stand in for the reset tracepoint; and
 * always (not only with -v) which verdict classes this kernel cannot give
 * because a hook is missing.  The e2e tests parse this line:
 * "rstwatch: this kernel cannot report: CLASS[, CLASS...] (why)".
 */
static void say_reset_hooks(const struct rw_tracer *t, unsigned int optional)
{
	const char *nosock = "", *tw = "", *sep = "";

	if (t->send_reset_nargs >= 3)
		return;
	if (t->nosock_hook)
		note("tcp_send_reset has no reason and no socketless resets here: refused and "
		     "half_open come from skb:kfree_skb (drop reason NO_SOCKET)");
	if (optional & OPT_TW_RESET)
		note("time_wait_rst comes from fentry on tcp_v4_send_reset and tcp_v6_send_reset");
	if (!t->nosock_hook)
		nosock = "refused, half_open";
	if (!(optional & OPT_TW_RESET))
		tw = "time_wait_rst";
	if (!*nosock && !*tw)
		return;
	if (*nosock && *tw)
		sep = ", ";
	fprintf(stderr, "rstwatch: this kernel cannot report: %s%s%s (its tcp_send_reset tracepoint "
		"misses resets sent%s%s%s)\n", nosock, sep, tw,
		*nosock ? " for segments with no socket (no kfree_skb drop reason NO_SOCKET)" : "",
		*nosock && *tw ? " and" : "",
		*tw ? " by time-wait sockets (fentry on tcp_v4_send_reset/tcp_v6_send_reset refused "
		      "or absent)" : "");
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
	optional = load_best(t, o, err, errlen);
	if (optional < 0)
		goto fail;
	if (tp_nargs(t->btf, "inet_sk_error_report") < 0)
		fprintf(stderr, "rstwatch: warning: this kernel has no tracepoint inet_sk_error_report "
			"(5.12+): errors reported before a close are not traced\n");
	if (!(optional & OPT_ACCEPT))
		note("fexit on inet_csk_accept unavailable: accepted sockets are attributed to the "
		     "listener's owner until they are read");
	if (!(optional & OPT_SEED))
		note("open-files iterator (iter/task_file) unavailable: %s", no_seed);
	if (!(optional & OPT_TW))
		note("time-wait timer tracing unavailable (tw_timer_handler has no address in "
		     "/proc/kallsyms, or the timer programs were refused): TIME_WAIT entries are "
		     "reported, not how they end, and TIME_WAIT assassination is not seen");
	say_reset_hooks(t, optional);
	rc = rstwatch_bpf__attach(t->skel);
	if (rc) {
		snprintf(err, errlen, "attaching BPF programs: %s%s", strerror(-rc),
			 rc == -EPERM ? " (run as root, or with CAP_BPF and CAP_PERFMON)" : "");
		goto fail;
	}
	if (optional & OPT_SEED)
		seed_owners_now(t);
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), fn, ctx, NULL);
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

const struct btf *rw_tracer_btf(const struct rw_tracer *t)
{
	return t->btf;
}

int rw_tracer_poll(struct rw_tracer *t, int timeout_ms)
{
	int rc = ring_buffer__poll(t->rb, timeout_ms);

	if (rc < 0 && rc != -EINTR)
		return rc;
	/* Records are submitted with BPF_RB_NO_WAKEUP, so poll() mostly just
	 * times out: drain explicitly. */
	rc = ring_buffer__consume(t->rb);
	return rc < 0 && rc != -EINTR ? rc : 0;
}

void rw_tracer_counters(const struct rw_tracer *t, struct rw_tracer_counters *c)
{
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
	}
}

bool rw_tracer_usable(void *tracer)
{
	struct rw_tracer *t = tracer;
	uint64_t vals[t->ncpu > 0 ? t->ncpu : 1];
	uint32_t k = RW_CNT_PRODUCED;

	return bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.counters), &k, vals) == 0;
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
	ring_buffer__free(t->rb);
	rstwatch_bpf__destroy(t->skel);
	btf__free(t->btf);
	free(t);
}
