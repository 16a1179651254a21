/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Kernel drift that the BPF side has to absorb.  Each entry names the change.
 * Choices that can be made before load (which tracepoint signature to attach
 * to) are made in user/loader.c from BTF; this file holds what must be decided
 * per field at load time by CO-RE.
 */
#ifndef RSTWATCH_CORE_FIXES_BPF_H
#define RSTWATCH_CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/*
 * Address families and protocol numbers are ABI, not kernel-internal, but
 * vmlinux.h carries no #defines.
 */
#define AF_INET		2
#define AF_INET6	10
#define IPPROTO_TCP	6
#define PF_KTHREAD	0x00200000	/* include/linux/sched.h */

/*
 * TCP states are kernel-internal numbers (include/net/tcp_states.h) that have
 * not moved since 2.6; vmlinux.h has them as an anonymous enum, so CO-RE
 * cannot relocate them and we use the compile-time values.  Userspace decodes
 * names from BTF (user/decode.c) so that reporting never depends on them.
 */
#define TCPF(s) (1u << (s))

/* sk_fullsock() from include/net/sock.h: time-wait and request sockets only
 * carry struct sock_common. */
static __always_inline int rw_sk_fullsock(int state)
{
	return !(TCPF(state) & (TCPF(TCP_TIME_WAIT) | TCPF(TCP_NEW_SYN_RECV)));
}

/*
 * tcp:tcp_send_reset gained its third argument, enum sk_rst_reason, in 6.10
 * (the "rstreason" series); before that it was (sk, skb) and fired only from
 * tcp_send_active_reset() and for full sockets.  user/loader.c picks one of the
 * two programs from the parameter count of btf_trace_tcp_send_reset.
 */

/*
 * net.ipv4.ip_local_port_range: struct local_ports held int range[2] under a
 * seqlock until 6.8, then one u32 packing low | high << 16.
 */
struct local_ports___old {
	int range[2];
} __attribute__((preserve_access_index));

static __always_inline void rw_local_ports(const struct sock *sk, __u16 *lo, __u16 *hi)
{
	struct net *net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	struct local_ports *lp = &net->ipv4.ip_local_ports;

	/* Ask about the old layout: a relocation against a field whose type
	 * differs (u32 here vs int[2] there) fails to resolve instead of
	 * answering, so bpf_core_field_size(struct local_ports, range) breaks
	 * the load on the old layout (seen on 6.1).  An exists check answers 0
	 * or 1, and libbpf leaves the branch for the other layout as dead code. */
	if (bpf_core_field_exists(struct local_ports___old, range)) {
		int r[2] = {};

		BPF_CORE_READ_INTO(&r, (struct local_ports___old *)lp, range);
		*lo = r[0];
		*hi = r[1];
	} else {
		__u32 r = BPF_CORE_READ(lp, range);

		*lo = r & 0xffff;
		*hi = r >> 16;
	}
}

/*
 * The netns's time-wait death row: inet_twsk_alloc() refuses a new time-wait
 * socket once its count reaches sysctl_max_tw_buckets (tcp_time_wait() then
 * bumps TCPTimeWaitOverflow and closes without one).  Its layout moved:
 *  - up to 5.16 netns_ipv4 embeds struct inet_timewait_death_row, whose
 *    count is atomic_t tw_count;
 *  - 5.17 to 6.0 hold a pointer to it (commit fbb8295248e1, "tcp: allocate
 *    tcp_death_row outside of struct netns_ipv4"), and the count is
 *    refcount_t tw_refcount, which starts at 1: inet_twsk_alloc() compares
 *    refcount - 1;
 *  - 6.1 embeds it again (commit e9bd0cca09d1, "tcp: Don't allocate
 *    tcp_death_row outside of struct netns_ipv4."), tw_refcount kept.
 * An exists check on a flavour whose field type differs answers 0 (see
 * rw_local_ports()), so each layout is asked for by its own flavour.
 */
struct inet_timewait_death_row___atomic {
	atomic_t tw_count;
	int sysctl_max_tw_buckets;
} __attribute__((preserve_access_index));

struct netns_ipv4___dr_ptr {
	struct inet_timewait_death_row *tcp_death_row;
} __attribute__((preserve_access_index));

struct net___dr_ptr {
	struct netns_ipv4___dr_ptr ipv4;
} __attribute__((preserve_access_index));

/*
 * Whether the death row of net is full, give or take a 1/64 margin: the
 * count is read microseconds after inet_twsk_alloc() compared it, and time-wait
 * sockets of other CPUs may have expired meanwhile.  1 full, 0 not, -1 this
 * kernel's layout is unknown.  Supporting evidence only: a time-wait socket
 * that took the last slot reads the same, so the caller asks only where no
 * time-wait socket was made.
 */
static __always_inline int rw_tw_row_full(const struct net *net)
{
	const struct inet_timewait_death_row *dr;
	int count, max;

	if (bpf_core_field_exists(struct netns_ipv4___dr_ptr, tcp_death_row))
		dr = BPF_CORE_READ((const struct net___dr_ptr *)net, ipv4.tcp_death_row);
	else
		dr = &net->ipv4.tcp_death_row;
	if (bpf_core_field_exists(struct inet_timewait_death_row, tw_refcount)) {
		count = BPF_CORE_READ(dr, tw_refcount.refs.counter) - 1;
		max = BPF_CORE_READ(dr, sysctl_max_tw_buckets);
	} else if (bpf_core_field_exists(struct inet_timewait_death_row___atomic, tw_count)) {
		const struct inet_timewait_death_row___atomic *old = (const void *)dr;

		count = BPF_CORE_READ(old, tw_count.counter);
		max = BPF_CORE_READ(old, sysctl_max_tw_buckets);
	} else {
		return -1;
	}
	/* unsigned: BPF has no signed division before cpu v4 */
	return count + (int)((__u32)max / 64) >= max;
}

/*
 * Whether the program runs in softirq (packet input, timers) or on behalf of
 * a task (a syscall such as ss -K's SOCK_DESTROY, or a kernel worker such as
 * the netns cleanup that purges time-wait sockets).  The preempt count would
 * say, but x86 keeps it in a per-CPU variable that the verifier resolves only
 * through kallsyms with CONFIG_KALLSYMS_ALL, which distribution kernels often
 * lack.  The stack says it too: on x86_64 softirqs run on the per-CPU IRQ
 * stack (do_softirq_own_stack(), or already there on IRQ exit), or in the
 * ksoftirqd and threaded-NAPI ("napi/...") kernel threads.  So: a task whose
 * own stack holds our frame is task context unless it is one of those.
 * THREAD_SIZE is at most 32 KiB (16 KiB, doubled under KASAN); the bound only
 * needs to separate the task's stack from another one.
 */
#define RW_TASK_STACK_MAX	(32u << 10)

/* "ksoftirqd/N" or "napi/..." as the first 8 bytes of comm, little-endian */
#define RW_COMM_KSOFTIRQ	0x71726974666f736bull	/* "ksoftirq" */
#define RW_COMM_NAPI		0x2f6970616eull		/* "napi/", 5 bytes */

/* bpf_get_current_task(), not bpf_get_current_task_btf(): the BTF variant came
 * in 5.11 (commit 3ca1032ab7ab, "bpf: Implement get_current_task_btf and
 * RET_PTR_TO_BTF_ID"), and 5.8-5.10 refuse the program that calls it.  Every
 * field below is a probe read, so the untyped pointer costs nothing. */
static __always_inline __u16 rw_context(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 base = (__u64)BPF_CORE_READ(task, stack);
	const void *frame = &task;	/* an address in our own frame */
	__u64 sp = 0, head = 0;

	/* the verifier allows no arithmetic on a frame pointer: copy its bits */
	bpf_probe_read_kernel(&sp, sizeof(sp), &frame);
	if (sp - base >= RW_TASK_STACK_MAX)
		return RW_XF_CONTEXT | RW_XF_SOFTIRQ;
	if (BPF_CORE_READ(task, flags) & PF_KTHREAD) {
		bpf_probe_read_kernel(&head, sizeof(head),	/* comm's first 8 bytes */
				      __builtin_preserve_access_index(&task->comm));
		if (head == RW_COMM_KSOFTIRQ || (head & 0xffffffffffull) == RW_COMM_NAPI)
			return RW_XF_CONTEXT | RW_XF_SOFTIRQ;
		return RW_XF_CONTEXT | RW_XF_KTHREAD;
	}
	return RW_XF_CONTEXT;
}

/*
 * The id of task's cgroup v2 ancestor at `level` (0: the root), 0 if its
 * cgroup is shallower.  A cgroup knows all its ancestors without a walk: it
 * held their ids, u64 ancestor_ids[], until commit 7f203bc89eb6 ("cgroup:
 * Replace cgroup->ancestor_ids[] with ->ancestors[]", 6.1) made them
 * pointers, whose kernfs node has the id.  Probe reads throughout: task may
 * come from an iterator, and the index is not a constant.
 */
struct cgroup___ids {
	int level;
	__u64 ancestor_ids[];
} __attribute__((preserve_access_index));

static __always_inline __u64 rw_task_cgroup_ancestor(const struct task_struct *task, __u32 level)
{
	const struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	struct cgroup *anc = NULL;
	__u64 id = 0;

	if (!cg || BPF_CORE_READ(cg, level) < (int)level || level > 255)
		return 0;
	if (bpf_core_field_exists(struct cgroup___ids, ancestor_ids)) {
		bpf_probe_read_kernel(&id, sizeof(id),
				      __builtin_preserve_access_index(
					      &((const struct cgroup___ids *)cg)->ancestor_ids[level]));
		return id;
	}
	bpf_probe_read_kernel(&anc, sizeof(anc), __builtin_preserve_access_index(&cg->ancestors[level]));
	return anc ? BPF_CORE_READ(anc, kn, id) : 0;
}

#endif /* RSTWATCH_CORE_FIXES_BPF_H */
