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
};

struct rw_loader_opts {
	struct rw_filters filters;
	size_t ringbuf_bytes;	/* power of two */
	bool verbose;		/* libbpf's messages and feature notes on stderr */
	const char *btf_path;	/* --btf: the kernel's types from this file, not sysfs */
};

/* Called for each raw record, in ring buffer order. */
typedef int (*rw_record_fn)(void *ctx, void *data, size_t size);

struct rw_tracer;

/* Returns 0, or -1 with a one-line reason (and what to do) in err. */
int rw_tracer_open(struct rw_tracer **out, const struct rw_loader_opts *o, rw_record_fn fn,
		   void *ctx, char *err, size_t errlen);
const struct btf *rw_tracer_btf(const struct rw_tracer *t);
/* Wait up to timeout_ms, then drain everything available.  <0 on error. */
int rw_tracer_poll(struct rw_tracer *t, int timeout_ms);

struct rw_tracer_counters {
	uint64_t produced;	/* records the BPF programs emitted or tried to */
	uint64_t lost;		/* ... that found the ring buffer full */
	uint64_t owner_fail;	/* owner or process-tree map updates that failed */
};
void rw_tracer_counters(const struct rw_tracer *t, struct rw_tracer_counters *c);
/* Can this process still read the maps (after dropping capabilities)?
 * Takes a struct rw_tracer *, as a rw_bpf_probe_fn. */
bool rw_tracer_usable(void *tracer);
/* Detach the programs: nothing is produced after this, so counters read then
 * and one last drain account for every record exactly. */
void rw_tracer_detach(struct rw_tracer *t);
/* With filters.tree: trace sockets owned by pid and, from now on, its descendants. */
int rw_tracer_add_tree(struct rw_tracer *t, uint32_t pid);
void rw_tracer_close(struct rw_tracer *t);

#endif /* RSTWATCH_LOADER_H */
