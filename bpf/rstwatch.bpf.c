// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * rstwatch BPF side: snapshot sockets at the moments a TCP connection can end
 * badly and push fixed-width records (bpf/events.h) into one ring buffer.
 *
 * Where a record is born:
 *   sock:inet_sock_set_state   transitions into CLOSE (and CLOSE_WAIT in/out);
 *                              also where socket owners are learned
 *   tcp:tcp_send_reset         every RST this host sends: full sockets,
 *                              time-wait sockets, and no socket at all (6.10+)
 *   tcp:tcp_receive_reset      an RST accepted by a socket
 *   sock:inet_sk_error_report  an error delivered to the application
 *   tcp:tcp_destroy_sock       the socket is freed: userspace forgets it
 *   timer:timer_start,         a time-wait socket's timer armed, cancelled or
 *   timer_cancel,              expired: the only trace of how TIME_WAIT ends
 *   timer_expire_entry         (filtered on tw_timer_handler first thing)
 *
 * Owner attribution: the tracepoints above often run in softirq or timer
 * context, or in an unrelated task (over veth the receiver's processing runs
 * in the sender's task).  The owner is therefore remembered per socket at
 * moments that are known to run in the owning process: connect() (CLOSE ->
 * SYN_SENT), listen() (-> LISTEN, inherited by accepted children), recvmsg()
 * (tcp:tcp_rcv_space_adjust), close()/shutdown() (ESTABLISHED -> FIN_WAIT1,
 * CLOSE_WAIT -> LAST_ACK) and, where the kernel allows fexit, accept().  It
 * follows the connection into TIME_WAIT by 4-tuple.
 *
 * Sockets that already existed when rstwatch started have had none of those
 * moments.  Once, at start-up, user/loader.c runs the iter/task_file program
 * below over every process's open files and seeds the owner (and, for a
 * listener, its listeners entry) from the process that holds the socket.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "core_fixes.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ABI constants that vmlinux.h, having no #defines, does not carry. */
#define EEXIST		17		/* include/uapi/asm-generic/errno-base.h */
#define EPIPE		32
#define ECONNRESET	104		/* include/uapi/asm-generic/errno.h */
#define ECONNREFUSED	111
#define SOCK_STREAM	1		/* include/linux/net.h */
#define S_IFMT		00170000	/* include/uapi/linux/stat.h */
#define S_IFSOCK	0140000

/* Knobs set by user/loader.c before load; 0 means "no filter". */
const volatile __u32 filter_pid = 0;	/* owner tgid */
const volatile __u16 filter_port = 0;	/* either end */
const volatile __u16 filter_family = 0;	/* AF_INET or AF_INET6 */
const volatile __u32 filter_netns = 0;	/* netns inode */
const volatile __u8 filter_tree = 0;	/* only owners in the proc_tree map (-- CMD) */
const volatile __u64 wakeup_bytes = 1 << 20;	/* force a wakeup past this fill level */
const volatile __u8 tw_tracking = 0;	/* the time-wait timer programs are loaded */
const volatile __u8 have_cookie = 0;	/* tracing programs may call bpf_get_socket_cookie() */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);	/* resized by the loader */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RW_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/*
 * Before 5.12 tracing programs cannot ask for a socket's cookie (the helper
 * came with commit c5dbb89fc2ac, "bpf: Expose bpf_get_socket_cookie to
 * tracing programs").  There the identity is the socket's address with a
 * generation, renewed each time a socket's life starts at that address
 * (sk_birth()): a socket is never freed before its last event, so no event of
 * the old socket follows the new one's birth.  Unused (one entry) elsewhere.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);	/* set by the loader */
	__type(key, __u64);
	__type(value, __u64);
} sk_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_seq SEC(".maps");

struct rw_tuple {
	__u32 netns;
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 pad;
	__u32 laddr[4];
	__u32 raddr[4];
};

struct rw_owner {
	__u64 cgroup;
	__u64 start_ns;	/* when this connection was first seen (connect / accept) */
	__u32 pid;
	__u32 pad;
	char comm[RW_COMM_LEN];
};

/* Sockets that passed the filters once: they stay selected until freed, because
 * their tuple can change underneath (tcp_disconnect() zeroes inet_dport). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} selected SEC(".maps");

/* The process tree of the command rstwatch runs (-- CMD): tgids, seeded by
 * user/main.c with the command before it execs, grown on fork.  Entries are
 * kept after exit: a socket can outlive its owner (an orphan's timeout). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} proc_tree SEC(".maps");

struct rw_listen_key {
	__u32 netns;
	__u16 port;
	__u16 family;	/* an IPv4 and an IPv6 listener may share a port; a child
			   has its listener's family (v4-mapped under AF_INET6) */
};

/* Owner of every socket, by socket address; deleted when the socket is freed
 * (slab addresses are reused). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct rw_owner);
} owners SEC(".maps");

/* Owner of connections in TIME_WAIT, by 4-tuple: the time-wait socket is a
 * different object from the full socket whose owner we knew. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rw_tuple);
	__type(value, struct rw_owner);
} tw_owners SEC(".maps");

/* 4-tuples whose time-wait socket tcp_time_wait() has just armed, before its
 * tcp_done(): a FIN_WAIT2/CLOSING -> CLOSE without one overflowed
 * tcp_max_tw_buckets.  The CLOSE consumes the entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rw_tuple);
	__type(value, __u8);
} tw_armed SEC(".maps");

/* 4-tuples whose time-wait socket was cancelled in softirq: an RST killed it,
 * or a SYN took the 4-tuple over (tcp_v4_rcv()'s TCP_TW_SYN), which only the
 * child that handshake makes can tell. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rw_tuple);
	__type(value, __u8);
} tw_cancelled SEC(".maps");

/* Owner of each listening port: accepted children inherit it until a later
 * process-context moment (accept, recvmsg) names the real owner. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rw_listen_key);
	__type(value, struct rw_owner);
} listeners SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;	/* per-CPU slot: no atomics needed */
}

/* A generation nobody else has: the CPU in the top bits, its own count below
 * (never 2^63 or more, so never a kernel address, nor a cookie in practice). */
static __always_inline __u64 sk_birth(const struct sock *sk)
{
	__u64 key = (__u64)sk, id, *seq;
	__u32 zero = 0;

	seq = bpf_map_lookup_elem(&gen_seq, &zero);
	if (!seq)
		return 0;
	id = ((__u64)(bpf_get_smp_processor_id() + 1) << 48) | ++*seq;
	if (bpf_map_update_elem(&sk_gen, &key, &id, BPF_ANY))
		count(RW_CNT_OWNER_FAIL);
	return id;
}

/*
 * The identity userspace knows a socket by: its cookie (sock_gen_cookie(), a
 * 64-bit count the kernel assigns on first ask and never reuses; a time-wait
 * socket inherits its full socket's, inet_twsk_alloc()), or, before 5.12,
 * address and generation.  sk is a BTF pointer (a tracepoint argument).
 */
static __always_inline __u64 sk_identity(const struct sock *sk)
{
	__u64 key = (__u64)sk, *id;

	if (!sk)
		return 0;
	if (have_cookie)
		return bpf_get_socket_cookie((void *)sk);
	id = bpf_map_lookup_elem(&sk_gen, &key);
	return id ? *id : sk_birth(sk);
}

static __always_inline void tuple_from_sk(struct rw_tuple *t, const struct sock *sk, int state)
{
	const struct sock_common *skc = &sk->__sk_common;

	t->family = skc->skc_family;
	t->netns = skc->skc_net.net->ns.inum;
	/* tcp_set_state(CLOSE) -> inet_put_port() zeroes skc_num before the
	 * tracepoint; a full socket's inet_sport survives it (inet_sock lies
	 * beyond struct sock: read it, not a direct load). */
	if (rw_sk_fullsock(state))
		t->lport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	else
		t->lport = skc->skc_num;
	t->rport = bpf_ntohs(skc->skc_dport);
	if (t->family == AF_INET) {
		t->laddr[0] = skc->skc_rcv_saddr;
		t->raddr[0] = skc->skc_daddr;
	} else {
		__builtin_memcpy(t->laddr, skc->skc_v6_rcv_saddr.in6_u.u6_addr32, sizeof(t->laddr));
		__builtin_memcpy(t->raddr, skc->skc_v6_daddr.in6_u.u6_addr32, sizeof(t->raddr));
	}
}

/* The same for a time-wait socket found from its timer's address: that is
 * arithmetic on a BTF pointer, which the verifier does not let us load
 * through, so each field is a probe read. */
static __always_inline void tuple_from_tw(struct rw_tuple *t, const struct sock *tw)
{
	t->family = BPF_CORE_READ(tw, __sk_common.skc_family);
	t->netns = BPF_CORE_READ(tw, __sk_common.skc_net.net, ns.inum);
	t->lport = BPF_CORE_READ(tw, __sk_common.skc_num);
	t->rport = bpf_ntohs(BPF_CORE_READ(tw, __sk_common.skc_dport));
	if (t->family == AF_INET) {
		t->laddr[0] = BPF_CORE_READ(tw, __sk_common.skc_rcv_saddr);
		t->raddr[0] = BPF_CORE_READ(tw, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&t->laddr, tw, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&t->raddr, tw, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	}
}

/*
 * The tuple of the connection an incoming segment belongs to, from this
 * host's point of view (laddr = the segment's destination).  Used for resets
 * answering a segment that found no socket.
 */
static __always_inline int tuple_from_skb(struct rw_tuple *t, const struct sk_buff *skb,
					  __u8 *tcp_flags, __u32 *payload)
{
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__u16 th = skb->transport_header;
	__u8 tcp[20];
	__u8 ver;
	__u32 ip_payload, l3_len;

	if (bpf_probe_read_kernel(&ver, 1, head + nh))
		return -1;
	ver >>= 4;
	if (ver == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return -1;
		t->family = AF_INET;
		t->laddr[0] = ip.daddr;
		t->raddr[0] = ip.saddr;
		ip_payload = bpf_ntohs(ip.tot_len);
		l3_len = th - nh;	/* IP header incl. options */
	} else if (ver == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return -1;
		t->family = AF_INET6;
		__builtin_memcpy(t->laddr, &ip6.daddr, 16);
		__builtin_memcpy(t->raddr, &ip6.saddr, 16);
		ip_payload = bpf_ntohs(ip6.payload_len) + 40;
		l3_len = th - nh;	/* fixed header + extension headers */
	} else {
		return -1;
	}
	if (bpf_probe_read_kernel(tcp, sizeof(tcp), head + th))
		return -1;
	t->rport = (tcp[0] << 8) | tcp[1];
	t->lport = (tcp[2] << 8) | tcp[3];
	*tcp_flags = tcp[13];
	l3_len += (tcp[12] >> 4) * 4;
	*payload = ip_payload > l3_len ? ip_payload - l3_len : 0;
	t->netns = skb->dev->nd_net.net->ns.inum;
	return 0;
}

static __always_inline int filters_on(void)
{
	return filter_pid || filter_port || filter_family || filter_netns || filter_tree;
}

static __always_inline int wanted(const struct sock *sk, const struct rw_tuple *t,
				  const struct rw_owner *own, int state)
{
	__u64 key = (__u64)sk;
	__u8 one = 1;

	if (!filters_on())
		return 1;
	if (sk && bpf_map_lookup_elem(&selected, &key))
		return 1;
	if (filter_family && t->family != filter_family)
		return 0;
	if (filter_netns && t->netns != filter_netns)
		return 0;
	if (filter_port && t->lport != filter_port && t->rport != filter_port)
		return 0;
	if (filter_pid && (!own || own->pid != filter_pid))
		return 0;
	if (filter_tree && (!own || !bpf_map_lookup_elem(&proc_tree, &own->pid)))
		return 0;
	/* a socket already in CLOSE may be past its destroy (the RST that
	 * answers data after close comes after it), and a time-wait socket has
	 * no destroy we see: remembering either would select whatever socket
	 * reuses the address next */
	if (sk && state != TCP_CLOSE && rw_sk_fullsock(state))
		bpf_map_update_elem(&selected, &key, &one, BPF_ANY);
	return 1;
}

static __always_inline void owner_from_current(struct rw_owner *o)
{
	o->pid = bpf_get_current_pid_tgid() >> 32;
	o->cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

/* The same owner for a task that is not current: bpf_get_current_cgroup_id()
 * is the kernfs id of the task's cgroup v2 (default hierarchy) cgroup,
 * task->cgroups->dfl_cgrp->kn->id (a u64 since 5.5). */
static __always_inline void owner_from_task(struct rw_owner *o, const struct task_struct *task)
{
	o->pid = BPF_CORE_READ(task, tgid);
	o->cgroup = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	BPF_CORE_READ_INTO(&o->comm, task, comm);
}

/* Store an owner; a failed update is counted, never silent.  Under
 * BPF_NOEXIST, -EEXIST is the intended "already known", not a failure.
 * Returns 0 if the entry was written. */
static __always_inline long owner_put(void *map, const void *key, const struct rw_owner *o,
				      __u64 flags)
{
	long err = bpf_map_update_elem(map, key, o, flags);

	if (err && err != -EEXIST)
		count(RW_CNT_OWNER_FAIL);
	return err;
}

/* Listeners are known by (netns, local port, family): that is all an accepted
 * child shares with its listener when it becomes ESTABLISHED in softirq. */
static __always_inline struct rw_listen_key listen_key(const struct sock *sk)
{
	struct rw_listen_key lk = {
		.netns = sk->__sk_common.skc_net.net->ns.inum,
		.port = sk->__sk_common.skc_num,
		.family = sk->__sk_common.skc_family,
	};

	return lk;
}

/* Record the current task as the owner of sk.  A socket already known keeps
 * its start time: a later accept/recvmsg only refines who owns it. */
static __always_inline void owner_remember(const struct sock *sk, int only_if_new)
{
	struct rw_owner o = {}, *old;
	__u64 key = (__u64)sk;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	old = bpf_map_lookup_elem(&owners, &key);
	if (old) {
		if (only_if_new || old->pid == pid)
			return;
		o.start_ns = old->start_ns;
	} else {
		o.start_ns = bpf_ktime_get_boot_ns();
	}
	owner_from_current(&o);
	owner_put(&owners, &key, &o, BPF_ANY);
}

static __always_inline struct rw_owner *owner_of(const struct sock *sk, const struct rw_tuple *t,
						 int state)
{
	__u64 key = (__u64)sk;

	if (!sk)
		return NULL;
	if (state == TCP_TIME_WAIT)
		return bpf_map_lookup_elem(&tw_owners, t);
	if (state == TCP_LISTEN) {
		struct rw_listen_key lk = listen_key(sk);

		return bpf_map_lookup_elem(&listeners, &lk);
	}
	return bpf_map_lookup_elem(&owners, &key);
}

/*
 * What one record is about, filled by name at each call site; fields left out
 * are zero.  sk is the tracepoint's socket (NULL for a segment that found
 * none); emit() asks for its identity, unless the caller gives it in id (a
 * time-wait socket found from its timer is no BTF pointer: no helper takes
 * it, so the caller reads its cookie).
 */
struct rw_emit {
	const struct sock *sk;
	const struct rw_tuple *t;
	__u64 id;
	__u8 id_given;
	__u16 type;		/* enum rw_rec_type */
	__u16 reason;		/* raw enum sk_rst_reason, RW_REASON_NONE */
	__u8 state, oldstate, newstate;
	__u8 has_seg;		/* seg_flags/seg_len describe the segment answered */
	__u8 seg_flags;
	__u8 tw_substate;
	__u16 xflags;		/* RW_XF_* */
	__u32 seg_len;
	__u16 port_lo, port_hi;
};

/*
 * The socket evidence of a full socket.  Hot: it runs for most records.  The
 * tracepoint's sk is a BTF pointer, so struct sock fields are plain loads;
 * tcp_sock fields go through bpf_skc_to_tcp_sock() (5.9), which returns the
 * same socket as a tcp_sock BTF pointer.  A bpf_probe_read_kernel() per field,
 * as BPF_CORE_READ does, made a record cost ~20 helper calls: ~0.8 us of the
 * ~0.85 us per program run measured in BENCHMARKS.md.  5.8 lacks the helper
 * and keeps the reads.
 */
static __always_inline void snapshot(struct rw_record *r, const struct sock *sk)
{
	unsigned long skflags = sk->__sk_common.skc_flags;
	unsigned long lt = sk->sk_lingertime;

	r->sk_flags |= RW_SKF_FULL;
	if (skflags & (1UL << SOCK_LINGER))
		r->sk_flags |= RW_SKF_LINGER;
	if (skflags & (1UL << SOCK_DEAD))
		r->sk_flags |= RW_SKF_DEAD;
	if (skflags & (1UL << SOCK_DONE))
		r->sk_flags |= RW_SKF_DONE;
	if (skflags & (1UL << SOCK_KEEPOPEN))
		r->sk_flags |= RW_SKF_KEEPOPEN;
	r->sk_shutdown = sk->sk_shutdown;
	r->sk_err = sk->sk_err;
	r->sk_err_soft = sk->sk_err_soft;
	r->lingertime = lt > 0xffffffffUL ? 0xffffffffU : (__u32)lt;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_skc_to_tcp_sock)) {
		const struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);
		const struct inet_connection_sock *icsk;

		if (!tp)
			return;
		icsk = &tp->inet_conn;
		r->unread = tp->rcv_nxt - tp->copied_seq;
		r->unsent = tp->write_seq - tp->snd_nxt;
		r->inflight = tp->snd_nxt - tp->snd_una;
		r->total_retrans = tp->total_retrans;
		r->retransmits = icsk->icsk_retransmits;
		r->probes_out = icsk->icsk_probes_out;
		r->linger2 = tp->linger2;
		r->user_timeout = icsk->icsk_user_timeout;
		r->snd_wnd = tp->snd_wnd;
		r->bytes_received = tp->bytes_received;
		r->bytes_acked = tp->bytes_acked;
	} else {
		const struct tcp_sock *tp = (const struct tcp_sock *)sk;
		const struct inet_connection_sock *icsk = (const void *)sk;

		r->unread = BPF_CORE_READ(tp, rcv_nxt) - BPF_CORE_READ(tp, copied_seq);
		r->unsent = BPF_CORE_READ(tp, write_seq) - BPF_CORE_READ(tp, snd_nxt);
		r->inflight = BPF_CORE_READ(tp, snd_nxt) - BPF_CORE_READ(tp, snd_una);
		r->total_retrans = BPF_CORE_READ(tp, total_retrans);
		r->retransmits = BPF_CORE_READ(icsk, icsk_retransmits);
		r->probes_out = BPF_CORE_READ(icsk, icsk_probes_out);
		r->linger2 = BPF_CORE_READ(tp, linger2);
		r->user_timeout = BPF_CORE_READ(icsk, icsk_user_timeout);
		r->snd_wnd = BPF_CORE_READ(tp, snd_wnd);
		r->bytes_received = BPF_CORE_READ(tp, bytes_received);
		r->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	}
}

/* Reserve a record and fill what every record carries; NULL when the ring
 * buffer is full (counted as lost). */
static __always_inline struct rw_record *record_start(__u16 type, const struct sock *sk, __u64 id,
						      const struct rw_tuple *t, __u8 state)
{
	struct rw_record *r;

	count(RW_CNT_PRODUCED);
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count(RW_CNT_LOST);
		return NULL;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->type = type;
	r->family = t->family;
	r->state = state;
	r->ts_boot_ns = bpf_ktime_get_boot_ns();
	r->skaddr = (__u64)sk;
	r->cookie = id;
	__builtin_memcpy(r->laddr, t->laddr, sizeof(r->laddr));
	__builtin_memcpy(r->raddr, t->raddr, sizeof(r->raddr));
	r->lport = t->lport;
	r->rport = t->rport;
	r->netns = t->netns;
	if (sk)
		r->sk_flags |= RW_SKF_HAS_SK;
	return r;
}

/* Wake the reader only past wakeup_bytes; its 100 ms drain does the rest. */
static __always_inline void record_submit(struct rw_record *r)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
		BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;

	bpf_ringbuf_submit(r, flags);
}

/*
 * Fill and submit a record.  e->sk may be NULL (reset for a segment with no
 * socket) or a time-wait/request socket (only sock_common is valid then).
 */
static __always_inline int emit(const struct rw_emit *e)
{
	const struct sock *sk = e->sk;
	struct rw_owner *own;
	struct rw_record *r;

	own = owner_of(sk, e->t, e->state);
	if (!wanted(sk, e->t, own, e->state))
		return 0;

	r = record_start(e->type, sk, e->id_given ? e->id : sk_identity(sk), e->t, e->state);
	if (!r)
		return 0;
	r->oldstate = e->oldstate;
	r->newstate = e->newstate;
	r->reason = e->reason;
	r->xflags = e->xflags;
	r->tw_substate = e->tw_substate;
	r->port_lo = e->port_lo;
	r->port_hi = e->port_hi;
	if (e->has_seg) {
		r->sk_flags |= RW_SKF_HAS_SKB;
		r->seg_flags = e->seg_flags;
		r->seg_len = e->seg_len;
	}
	if (sk) {
		if (rw_sk_fullsock(e->state)) {
			snapshot(r, sk);
		} else if (e->state == TCP_TIME_WAIT && !(r->xflags & RW_XF_SUBSTATE)) {
			r->xflags |= RW_XF_SUBSTATE;
			r->tw_substate = BPF_CORE_READ((const struct inet_timewait_sock *)sk,
						       tw_substate);
		}
	}
	if (own) {
		r->sk_flags |= RW_SKF_OWNER;
		r->owner_pid = own->pid;
		r->owner_cgroup = own->cgroup;
		__builtin_memcpy(r->owner_comm, own->comm, sizeof(r->owner_comm));
		r->start_ns = own->start_ns;
	}
	r->cur_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(r->cur_comm, sizeof(r->cur_comm));
	record_submit(r);
	return 0;
}

static __always_inline int is_tcp(const struct sock *sk)
{
	return sk->sk_protocol == IPPROTO_TCP;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct rw_tuple t = {};
	struct rw_emit e = {};
	__u64 key = (__u64)sk;

	if (!is_tcp(sk))
		return 0;
	/* a socket's life starts at this address: connect(), listen(), or a
	 * child cloned from its listener (inet_csk_clone_lock()) */
	if (!have_cookie && (newstate == TCP_SYN_RECV ||
			     (oldstate == TCP_CLOSE && (newstate == TCP_SYN_SENT ||
							newstate == TCP_LISTEN))))
		sk_birth(sk);

	/* connect(): tcp_v[46]_connect() in the caller, before the port is chosen */
	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		owner_remember(sk, 0);
		return 0;
	}
	/* listen(): inet_csk_listen_start() in the caller */
	if (newstate == TCP_LISTEN) {
		struct rw_listen_key lk = listen_key(sk);
		struct rw_owner o = {};

		owner_from_current(&o);
		owner_put(&listeners, &lk, &o, BPF_ANY);
		return 0;
	}
	/* A passively opened child becomes ESTABLISHED in softirq: inherit the
	 * listener's owner until accept()/recvmsg() names the real one. */
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		struct rw_listen_key lk = listen_key(sk);
		struct rw_owner *lo = bpf_map_lookup_elem(&listeners, &lk);

		if (lo) {
			struct rw_owner o = *lo;

			o.start_ns = bpf_ktime_get_boot_ns();
			owner_put(&owners, &key, &o, BPF_ANY);
		}
		if (tw_tracking) {
			tuple_from_sk(&t, sk, newstate);
			if (!bpf_map_delete_elem(&tw_cancelled, &t)) {
				struct rw_emit e = {
					.type = RW_REC_TW_SYN_REUSE, .sk = sk, .t = &t,
					.state = newstate, .oldstate = oldstate, .newstate = newstate,
					.reason = RW_REASON_NONE,
				};

				return emit(&e);
			}
		}
		return 0;
	}
	/* close()/shutdown() run tcp_close_state() in the caller */
	if ((oldstate == TCP_ESTABLISHED && newstate == TCP_FIN_WAIT1) ||
	    (oldstate == TCP_CLOSE_WAIT && newstate == TCP_LAST_ACK))
		owner_remember(sk, 1);

	if (newstate != TCP_CLOSE && newstate != TCP_CLOSE_WAIT && oldstate != TCP_CLOSE_WAIT)
		return 0;
	tuple_from_sk(&t, sk, newstate);
	e.sk = sk;
	e.t = &t;
	e.type = RW_REC_SET_STATE;
	e.state = sk->__sk_common.skc_state;
	e.oldstate = oldstate;
	e.newstate = newstate;
	e.reason = RW_REASON_NONE;
	/* tcp_time_wait() -> tcp_done(): the connection lives on as a time-wait
	 * socket with the same tuple; carry the owner over to it.  Its timer was
	 * armed just before (tw_armed); without it the socket got no time-wait
	 * socket: inet_twsk_alloc() found the death row full (positive evidence
	 * of an overflow, read here), or a path that resets instead. */
	if (newstate == TCP_CLOSE && (oldstate == TCP_FIN_WAIT2 || oldstate == TCP_CLOSING)) {
		struct rw_owner *o = bpf_map_lookup_elem(&owners, &key);
		int full;

		if (o)
			owner_put(&tw_owners, &t, o, BPF_ANY);
		e.xflags = RW_XF_PORTS;
		if (tw_tracking) {
			e.xflags |= RW_XF_TW_KNOWN;
			if (!bpf_map_delete_elem(&tw_armed, &t))
				e.xflags |= RW_XF_TW_ARMED;
		}
		full = rw_tw_row_full(sk->__sk_common.skc_net.net);
		if (full >= 0)
			e.xflags |= RW_XF_ROW_KNOWN | (full ? RW_XF_ROW_FULL : 0);
		rw_local_ports(sk, &e.port_lo, &e.port_hi);
	}
	return emit(&e);
}

static __always_inline int on_reset(const struct sock *sk, const struct sk_buff *skb, __u16 reason)
{
	struct rw_tuple t = {};
	struct rw_emit e = {
		.type = RW_REC_SEND_RESET, .sk = sk, .t = &t, .state = TCP_CLOSE, .reason = reason,
	};

	if (skb) {
		e.has_seg = tuple_from_skb(&t, skb, &e.seg_flags, &e.seg_len) == 0;
		if (!e.has_seg && !sk)
			return 0;
	}
	if (sk) {
		e.state = sk->__sk_common.skc_state;
		/* a listener answering for a connection (accept queue overflow):
		 * the connection's tuple is the segment's */
		if (e.state != TCP_LISTEN || !e.has_seg)
			tuple_from_sk(&t, sk, e.state);
	}
	return emit(&e);
}

/* 6.10+: tcp_send_reset(sk, skb, reason); sk may be NULL or a time-wait sock */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	return on_reset(sk, skb, (__u16)reason);
}

/* before 6.10: tcp_send_reset(sk, skb), full sockets only */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset_noreason, const struct sock *sk, const struct sk_buff *skb)
{
	return on_reset(sk, skb, RW_REASON_NONE);
}

static __always_inline int emit_sk(__u16 type, const struct sock *sk)
{
	struct rw_tuple t = {};
	struct rw_emit e = { .type = type, .sk = sk, .t = &t, .reason = RW_REASON_NONE };

	if (!is_tcp(sk))
		return 0;
	e.state = sk->__sk_common.skc_state;
	tuple_from_sk(&t, sk, e.state);
	return emit(&e);
}

/* The same with the socket's address and tuple only (no owner lookup, no
 * snapshot, no task helpers), where userspace needs no more: a destroy only
 * makes it forget the socket. */
static __always_inline void emit_sk_bare(__u16 type, const struct sock *sk)
{
	struct rw_tuple t = {};
	struct rw_record *r;
	int state;

	if (!is_tcp(sk))
		return;
	state = sk->__sk_common.skc_state;
	tuple_from_sk(&t, sk, state);
	r = record_start(type, sk, sk_identity(sk), &t, state);
	if (r)
		record_submit(r);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_receive_reset, struct sock *sk)
{
	return emit_sk(RW_REC_RECV_RESET, sk);
}

/*
 * Only the reports userspace uses (user/classify.c on_error()): a non-zero
 * sk_err and, in CLOSE, only where no reset record has explained the close.
 * tcp_disconnect() reports after the RST it sent, with inet_dport already
 * zeroed (the tcp_send_reset record decided); tcp_reset() reports after
 * tcp_done() with ECONNRESET, EPIPE (CLOSE_WAIT) or ECONNREFUSED (SYN_SENT),
 * and its tcp_receive_reset record came first (a timeout whose sk_err is an
 * ICMP soft error, ECONNREFUSED say, has sk_err == sk_err_soft and stays).
 * Both ends of a linger-0 close, the commonest abort, each save a record.
 */
SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(on_error_report, const struct sock *sk)
{
	int err = sk->sk_err;

	if (!err)
		return 0;
	if (sk->__sk_common.skc_state == TCP_CLOSE &&
	    (sk->__sk_common.skc_dport == 0 ||
	     ((err == ECONNRESET || err == EPIPE || err == ECONNREFUSED) &&
	      err != sk->sk_err_soft)))
		return 0;
	return emit_sk(RW_REC_ERROR, sk);
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(on_destroy_sock, struct sock *sk)
{
	__u64 key = (__u64)sk;

	if (filters_on()) {
		emit_sk(RW_REC_DESTROY, sk);	/* wanted() needs the owner */
		bpf_map_delete_elem(&selected, &key);
	} else {
		emit_sk_bare(RW_REC_DESTROY, sk);
	}
	bpf_map_delete_elem(&owners, &key);
	return 0;
}

/* recvmsg() on the socket: tcp_recvmsg_locked() -> tcp_rcv_space_adjust(), in
 * the reading process.  One hash lookup when the owner is already known. */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(on_rcv_space_adjust, struct sock *sk)
{
	owner_remember(sk, 0);
	return 0;
}

/*
 * A time-wait socket's life, seen through its timer (net/ipv4/
 * inet_timewait_sock.c): __inet_twsk_schedule() arms tw_timer when the
 * socket is created and re-arms it (mod_timer_pending: cancel + start) when
 * a FIN or a segment restarts the period; tw_timer_handler() runs when it
 * ends normally; inet_twsk_deschedule_put() cancels it when the socket is
 * killed early: an RST (tcp_timewait_state_process()), a new connection
 * taking the 4-tuple (__inet_check_established(), or a SYN in tcp_v4_rcv()),
 * or tcp_abort() (ss -K).  userspace tells a re-arm (cancel then start) from
 * an end, and an RST (softirq) from ss -K (a task).
 *
 * These tracepoints fire for every timer in the system, so the test on the
 * timer's function comes first and costs one load.  tw_timer_handler is
 * static: a typeless ksym from kallsyms; without it (no kallsyms access) the
 * address is 0, nothing matches, and rstwatch reports TIME_WAIT entries only.
 */
extern const void tw_timer_handler __ksym __weak;

/*
 * Where a time-wait timer's cancel runs (softirq or a task), measured by a
 * program of its own: x86-64 runs tracing programs whose stack reaches 64
 * bytes on a per-CPU private stack (6.13+), which would hide where the kernel
 * was.  This one stays below that, runs first (attached first: it comes first
 * in this file), and leaves its finding for on_timer_cancel() below.
 */
struct tw_cancel_ctx {
	__u64 timer;
	__u16 xflags;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tw_cancel_ctx);
} tw_ctx SEC(".maps");


static __always_inline int on_tw_timer(struct timer_list *timer, __u16 type)
{
	const struct sock *tw;
	struct rw_tuple t;
	struct rw_emit x = {};

	if (!&tw_timer_handler || (const void *)timer->function != &tw_timer_handler)
		return 0;
	__builtin_memset(&t, 0, sizeof(t));	/* only now: most timers stop above */
	tw = (const void *)timer - bpf_core_field_offset(struct inet_timewait_sock, tw_timer);
	if (BPF_CORE_READ(tw, __sk_common.skc_family) != AF_INET &&
	    BPF_CORE_READ(tw, __sk_common.skc_family) != AF_INET6)
		return 0;
	tuple_from_tw(&t, tw);
	/* no helper takes a pointer found by arithmetic: read the cookie
	 * inet_twsk_alloc() copied from the full socket (0 if it had none) */
	x.id = BPF_CORE_READ(tw, __sk_common.skc_cookie.counter);
	x.id_given = 1;
	x.xflags = RW_XF_SUBSTATE;
	x.tw_substate = BPF_CORE_READ((const struct inet_timewait_sock *)tw, tw_substate);
	if (type == RW_REC_TW_ARM) {
		__u8 one = 1;

		bpf_map_update_elem(&tw_armed, &t, &one, BPF_ANY);
	} else {
		struct tw_cancel_ctx *c;
		__u32 zero = 0;
		__u8 one = 1;

		x.xflags |= RW_XF_PORTS;
		c = bpf_map_lookup_elem(&tw_ctx, &zero);
		if (c && c->timer == (__u64)timer)	/* on_timer_cancel_ctx() ran first */
			x.xflags |= c->xflags;
		else if (type == RW_REC_TW_EXPIRE)
			x.xflags |= RW_XF_CONTEXT | RW_XF_SOFTIRQ;	/* the timer softirq */
		/* connect() unhashes a time-wait socket it takes over before the
		 * cancel; a kill unhashes it after */
		if (!BPF_CORE_READ(tw, __sk_common.skc_nulls_node.pprev))
			x.xflags |= RW_XF_UNHASHED;
		else if (type == RW_REC_TW_CANCEL && (x.xflags & RW_XF_SOFTIRQ))
			bpf_map_update_elem(&tw_cancelled, &t, &one, BPF_ANY);
		rw_local_ports(tw, &x.port_lo, &x.port_hi);
	}
	x.type = type;
	x.sk = tw;
	x.t = &t;
	x.state = TCP_TIME_WAIT;
	x.reason = RW_REASON_NONE;
	emit(&x);
	if (type == RW_REC_TW_EXPIRE) {
		bpf_map_delete_elem(&tw_owners, &t);
		bpf_map_delete_elem(&tw_cancelled, &t);	/* expire_timers() cancels first */
	}
	return 0;
}

SEC("tp_btf/timer_start")
int BPF_PROG(on_timer_start, struct timer_list *timer)
{
	return on_tw_timer(timer, RW_REC_TW_ARM);
}

SEC("tp_btf/timer_cancel")
int BPF_PROG(on_timer_cancel_ctx, struct timer_list *timer)
{
	struct tw_cancel_ctx *c;
	__u32 zero = 0;

	if (!&tw_timer_handler || (const void *)timer->function != &tw_timer_handler)
		return 0;
	c = bpf_map_lookup_elem(&tw_ctx, &zero);
	if (c) {
		c->timer = (__u64)timer;
		c->xflags = rw_context();
	}
	return 0;
}

SEC("tp_btf/timer_cancel")
int BPF_PROG(on_timer_cancel, struct timer_list *timer)
{
	return on_tw_timer(timer, RW_REC_TW_CANCEL);
}

SEC("tp_btf/timer_expire_entry")
int BPF_PROG(on_timer_expire, struct timer_list *timer)
{
	return on_tw_timer(timer, RW_REC_TW_EXPIRE);
}

/* accept(): optional, loaded only where fexit on inet_csk_accept works.  Its
 * argument list changed in 6.10, so read the return value with
 * bpf_get_func_ret() instead of naming arguments. */
SEC("fexit/inet_csk_accept")
int BPF_PROG(on_accept_exit)
{
	__u64 ret = 0;

	if (bpf_get_func_ret(ctx, &ret) || !ret)
		return 0;
	owner_remember((const struct sock *)ret, 0);
	return 0;
}

/* What seed_owners() did, read by user/loader.c for -v. */
__u64 seeded_sockets = 0;
__u64 seeded_listeners = 0;

/*
 * The socket behind an open file, or NULL.  The kernel's own test is
 * sock_from_file(): f_op == &socket_file_ops.  That is static data, absent
 * from BTF (which holds only per-CPU variables) and from /proc/kallsyms
 * without CONFIG_KALLSYMS_ALL, so an extern __ksym for it does not resolve
 * everywhere; bpf_sock_from_file() (5.11) runs the test for us.  On 5.8-5.10
 * rely on what sock_alloc_file() sets up instead: a sockfs inode (S_IFSOCK)
 * whose file's private_data is a struct socket pointing back at the same
 * file.  No other open file matches: opening any other S_IFSOCK inode fails
 * with ENXIO (bad_sock_fops), and an O_PATH open leaves private_data NULL.
 */
static __always_inline struct socket *socket_of(struct file *file)
{
	struct socket *sock;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_sock_from_file))
		return bpf_sock_from_file(file);
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != file)
		return NULL;
	return sock;
}

/*
 * Start-up seeding: called by bpf_iter_task_file for each open file of each
 * task in rstwatch's pid namespace (threads that share their leader's file
 * table are skipped by the kernel, or on the first iterator kernels only
 * repeat the leader's entries, which BPF_NOEXIST ignores).  A TCP socket held
 * by a process gets that process as owner; a listener gets its listeners
 * entry, so children accepted later inherit it.  BPF_NOEXIST:
 * the tracepoints are already attached, and an owner they learned is fresher
 * than this walk.  start_ns stays 0: when the connection began is unknown.
 * Sockets in CLOSE are skipped: they have no connection yet, and connect()
 * or listen() will name their owner.
 */
SEC("iter/task_file")
int seed_owners(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct rw_owner o = {};
	struct socket *sock;
	struct sock *sk;
	__u16 family;
	int state;

	if (!task || !file || (BPF_CORE_READ(task, flags) & PF_KTHREAD))
		return 0;
	sock = socket_of(file);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	/* SOCK_RAW sockets may have sk_protocol IPPROTO_TCP too */
	/* sk came from a probe read, not a BTF pointer: read, no direct loads */
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP ||
	    BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;

	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (state == TCP_CLOSE)
		return 0;
	owner_from_task(&o, task);
	if (state == TCP_LISTEN) {
		struct rw_listen_key lk = {
			.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum),
			.port = BPF_CORE_READ(sk, __sk_common.skc_num),
			.family = family,
		};

		if (!owner_put(&listeners, &lk, &o, BPF_NOEXIST))
			seeded_listeners++;
	} else {
		__u64 key = (__u64)sk;

		if (!owner_put(&owners, &key, &o, BPF_NOEXIST))
			seeded_sockets++;
	}
	return 0;
}

/* -- CMD: a process forked inside the traced tree joins it.  Loaded only then. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ppid = BPF_CORE_READ(parent, tgid), cpid = BPF_CORE_READ(child, tgid);
	__u8 one = 1;

	if (ppid != cpid && bpf_map_lookup_elem(&proc_tree, &ppid) &&
	    bpf_map_update_elem(&proc_tree, &cpid, &one, BPF_ANY))
		count(RW_CNT_OWNER_FAIL);
	return 0;
}

/*
 * Before 6.10 tcp:tcp_send_reset has no reason and fires only for full
 * sockets (tcp_send_active_reset(), and tcp_v[46]_send_reset() when sk is
 * full): the resets answering a segment that found no socket (refused,
 * half_open) or a time-wait socket (time_wait_rst) never reach it.  The
 * programs below fill those two gaps there; user/loader.c loads them only
 * where btf_trace_tcp_send_reset has two arguments, so kernels with the
 * 6.10 tracepoint never see a reset twice.
 */

/* IP protocol of the segment at skb's network header, or -1. */
static __always_inline int skb_l4_proto(const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u8 b[7];

	if (bpf_probe_read_kernel(b, sizeof(b), head + nh))
		return -1;
	switch (b[0] >> 4) {
	case 4:
		if (bpf_probe_read_kernel(b, 1, head + nh + 9))	/* iphdr.protocol */
			return -1;
		return b[0];
	case 6:
		return b[6];					/* ipv6hdr.nexthdr */
	default:
		return -1;
	}
}

/*
 * No socket: tcp_v4_rcv() and tcp_v6_rcv() reach no_tcp_socket, set the drop
 * reason SKB_DROP_REASON_NO_SOCKET, call tcp_v[46]_send_reset(NULL, skb)
 * (unless the checksum is bad: the reason becomes TCP_CSUM) and free the
 * segment with kfree_skb_reason().  tcp_v[46]_send_reset() answers no RST,
 * so a segment that is itself an RST is skipped here too.  UDP uses the same
 * reason: only TCP segments count.  The drop reason exists since 5.17;
 * user/loader.c checks the tracepoint's arguments and the enum value in BTF.
 */
SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb_nosock, struct sk_buff *skb, void *location,
	     enum skb_drop_reason reason)
{
	struct rw_tuple t = {};
	struct rw_emit e = {
		.type = RW_REC_SEND_RESET, .t = &t, .state = TCP_CLOSE, .reason = RW_REASON_NONE,
		.has_seg = 1,
	};

	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET))
		return 0;
	if (skb_l4_proto(skb) != IPPROTO_TCP)
		return 0;
	if (tuple_from_skb(&t, skb, &e.seg_flags, &e.seg_len) || (e.seg_flags & RW_TCP_RST))
		return 0;
	return emit(&e);
}

/*
 * Time-wait socket: tcp_v4_rcv()'s TCP_TW_RST case calls
 * tcp_v4_send_reset(tw, skb) (tcp_v6_send_reset() for IPv6), which has no
 * tracepoint for non-full sockets before 6.10.  fentry on the static
 * functions, where this kernel's BTF has them and fentry is allowed (optional:
 * where refused, rstwatch says at start-up that it cannot report
 * time_wait_rst).  Full sockets are left to tcp:tcp_send_reset, and sk NULL
 * to on_kfree_skb_nosock.
 */
static __always_inline int on_tw_reset(const struct sock *sk, const struct sk_buff *skb)
{
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_TIME_WAIT)
		return 0;
	return on_reset(sk, skb, RW_REASON_NONE);
}

SEC("fentry/tcp_v4_send_reset")
int BPF_PROG(on_tw_reset_v4, const struct sock *sk, struct sk_buff *skb)
{
	return on_tw_reset(sk, skb);
}

SEC("fentry/tcp_v6_send_reset")
int BPF_PROG(on_tw_reset_v6, const struct sock *sk, struct sk_buff *skb)
{
	return on_tw_reset(sk, skb);
}
