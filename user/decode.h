/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Kernel record (bpf/events.h) -> kernel-independent event (event.h). */
#ifndef RSTWATCH_DECODE_H
#define RSTWATCH_DECODE_H

#include <stddef.h>

#include "event.h"

struct btf;
struct rw_record;

#define RW_MAX_KREASONS 64

struct rw_decoder {
	uint8_t state_map[256];		/* kernel TCP state number -> enum rw_state */
	uint8_t reason_map[RW_MAX_KREASONS];	/* kernel sk_rst_reason -> enum rw_reason */
	char reason_names[RW_MAX_KREASONS][RW_REASON_NAME_MAX];	/* kernel's own names */
	bool have_reasons;		/* this kernel has enum sk_rst_reason */
	int64_t boot_to_real_ns;	/* CLOCK_REALTIME - CLOCK_BOOTTIME */
	/* the owner's cgroup id -> ev->cgroup and ev->ctr; NULL: leave "" */
	void (*owner_cgroup)(uint64_t id, struct rw_event *ev);
};

/*
 * Learn this kernel's numbering of TCP states and reset reasons from its BTF.
 * Returns 0, or -1 with a message in err when the BTF lacks the TCP states.
 */
int rw_decoder_init(struct rw_decoder *d, const struct btf *btf, char *err, size_t errlen);

/* Returns 0, or -1 if the record is malformed (unknown type, short). */
int rw_decode(const struct rw_decoder *d, const void *data, size_t size, struct rw_event *ev);

#endif /* RSTWATCH_DECODE_H */
