/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* BPF lifecycle: open -> knobs -> variant choice -> load -> attach -> ring buffer. */
#ifndef RSTWATCH_LOADER_H
#define RSTWATCH_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct btf;

struct rw_filters {
	uint32_t pid;		/* owner tgid, 0 any */
	uint16_t port;		/* either end, 0 any */
	uint16_t family;	/* AF_INET / AF_INET6, 0 any */
	uint32_t netns;		/* inode, 0 any */
	bool tree;		/* only sockets owned by the tree rw_tracer_add_tree() roots */
	uint64_t cgroup_id;	/* --cgroup: owners in this cgroup v2 or below, 0 any */
	uint32_t cgroup_level;	/* ... its depth (0 the root) */
};

struct rw_loader_opts {
	struct rw_filters filters;
	size_t ringbuf_bytes;	/* power of two */
	bool verbose;		/* libbpf's messages and feature notes on stderr */
	const char *btf_path;	/* --btf: the kernel's types from this file, not sysfs */
	bool tw_events;		/* --time-wait: a record per TIME_WAIT entry and end */
	/* called once with the kernel's types (from sysfs or --btf) before the
	 * programs load, the only time they are at hand: 0, or -1 and err */
	int (*types)(const struct btf *btf, void *ctx, char *err, size_t errlen);
	void *types_ctx;
	uint64_t close_wait_ns;	/* --close-wait: the CLOSE_WAIT walk reports sockets past it */
	uint32_t pressure_pct;	/* --port-pressure */
	uint32_t sock_table;	/* --sock-table: sockets, and time-wait sockets, followed at once */
};

/* Called for each raw record, in ring buffer order. */
typedef int (*rw_record_fn)(void *ctx, void *data, size_t size);

struct rw_tracer;

/* Returns 0, or -1 with a one-line reason (and what to do) in err. */
int rw_tracer_open(struct rw_tracer **out, const struct rw_loader_opts *o, rw_record_fn fn,
		   void *ctx, char *err, size_t errlen);

/* Wait up to timeout_ms, then drain everything available.  <0 on error. */
int rw_tracer_poll(struct rw_tracer *t, int timeout_ms);
/* An fd that polls readable when the ring buffer wakes its reader: to wait
 * on it beside other fds, then rw_tracer_poll(t, 0). */
int rw_tracer_fd(const struct rw_tracer *t);

/* An optional kernel feature and whether this run uses it (-v says why not). */
struct rw_tracer_feature {
	const char *name;	/* snake_case, stable: a metrics label value */
	bool on;
};
#define RW_TRACER_FEATURES_MAX 12
size_t rw_tracer_features(const struct rw_tracer *t, struct rw_tracer_feature *out, size_t max);

struct rw_tracer_counters {
	uint64_t produced;	/* records the BPF programs emitted or tried to */
	uint64_t lost;		/* ... that found the ring buffer full */
	uint64_t owner_fail;	/* socket-state or process-tree map updates that failed */
	/* counted in the kernel, no record each: TIME_WAIT entries, their ends
	 * by expiry and by reuse, and all their ends */
	uint64_t tw_entered, tw_expired, tw_reused, tw_ended;
	uint64_t tw_untracked;	/* TIME_WAIT entries the full table could not follow */
	/* what the programs never saw: runs of theirs the kernel skipped and
	 * counted (recursion_misses: one already running on that CPU), and
	 * sockets destroyed whose move to CLOSE ran no program (skipped,
	 * counted or not), a record each */
	uint64_t missed, close_unseen;
};
void rw_tracer_counters(const struct rw_tracer *t, struct rw_tracer_counters *c);
/* "on_set_state 3, on_timer_start 1": the programs whose runs the kernel
 * skipped, and how many; "" none. */
void rw_tracer_missed_by_program(const struct rw_tracer *t, char *buf, size_t len);
/* Can this process still read the maps (after dropping capabilities)?
 * Takes a struct rw_tracer *, as a rw_bpf_probe_fn. */
bool rw_tracer_usable(void *tracer);
/* Detach the programs: nothing is produced after this, so counters read then
 * and one last drain account for every record exactly. */
void rw_tracer_detach(struct rw_tracer *t);
/* The walks over what the kernel keeps without sending: sockets in
 * CLOSE_WAIT past --close-wait, and time-wait sockets cancelled in softirq
 * that no handshake took over (killed by an RST).  What they find is
 * delivered, as records, after the next poll's drain.  final: the last walk
 * before exit (waits RW_TW_PENDING_FINAL_NS).  0, or -errno. */
int rw_tracer_walk(struct rw_tracer *t, bool final);
#define RW_TW_PENDING_FINAL_NS 100000000ull
struct rw_tw_endpoint;
/* The endpoints holding most TIME_WAIT sockets now, as the kernel counts
 * them (every socket, whatever the filters: ports are the host's), most
 * first: at most max, returns how many. */
unsigned int rw_tracer_tw_top(struct rw_tracer *t, struct rw_tw_endpoint *out, unsigned int max);
/* With filters.tree: trace sockets owned by pid and, from now on, its descendants. */
int rw_tracer_add_tree(struct rw_tracer *t, uint32_t pid);
void rw_tracer_close(struct rw_tracer *t);

#endif /* RSTWATCH_LOADER_H */
