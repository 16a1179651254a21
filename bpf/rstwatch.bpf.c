// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * rstwatch BPF side: follow every TCP socket's story in the kernel, and send
 * userspace a record (bpf/events.h, one ring buffer) only where the story
 * can become a verdict.  A connection that opens and closes normally costs
 * a few map operations and sends nothing.
 *
 * Where a record is born:
 *   tcp:tcp_send_reset         every RST this host sends: full sockets,
 *                              time-wait sockets, and no socket at all (6.10+)
 *   tcp:tcp_receive_reset      an RST accepted by a socket, with where its
 *                              sequence space stood and how long it had been
 *                              idle (seq_snapshot())
 *   skb:kfree_skb              an RST a socket refused (RFC 5961): in the
 *                              window (challenge ACK) or outside it; 6.11+,
 *                              one compare for every other dropped packet
 *   sock:inet_sock_set_state   a CLOSE that carries an error the resets have
 *                              not explained; a FIN_WAIT2/CLOSING -> CLOSE
 *                              with no time-wait socket and the death row
 *                              full (overflow); the end of a CLOSE_WAIT that
 *                              was reported stuck
 *   sock:inet_sk_error_report  an error delivered to the application
 *   tcp:tcp_destroy_sock       a socket whose move to CLOSE no program saw:
 *                              the kernel skipped on_set_state() (counted
 *                              as a close unseen, never silently lost)
 *   timer:timer_start,         a time-wait socket killed before its time
 *   timer_cancel,              (an RST, ss -K), or passively reused by a SYN
 *   timer_expire_entry         (filtered on tw_timer_handler first thing)
 *   iter/bpf_map_elem          the CLOSE_WAIT walk userspace runs every
 *                              second: sockets in CLOSE_WAIT past --close-wait
 * and, at a TIME_WAIT entry, a PRESSURE record once an endpoint's count
 * reaches --port-pressure.  With --time-wait every TIME_WAIT entry and end
 * is a record too (tw_events).  The peer probe (peer_probe, run by userspace
 * after a drain that brought resets received, never attached) answers, for
 * each, whether its other end is a socket of this host rstwatch watches: an
 * RST neither end sent (middlebox_reset).
 *
 * What the kernel keeps instead (maps below): per socket (socks, by address,
 * from its first owner moment to its destroy) the owner, the state it closed
 * from, whether a reset already explained its end, when it entered
 * CLOSE_WAIT; per time-wait socket (tws, by its cookie) the owner carried
 * over from the full socket and when TIME_WAIT began; per remote endpoint
 * (endpoints) the TIME_WAIT sockets it holds; counters of TIME_WAIT
 * entries and ends.
 *
 * Owner attribution: the tracepoints above often run in softirq or timer
 * context, or in an unrelated task (over veth the receiver's processing runs
 * in the sender's task).  The owner is therefore remembered per socket at
 * moments that are known to run in the owning process: connect() (CLOSE ->
 * SYN_SENT), listen() (-> LISTEN, inherited by accepted children), recvmsg()
 * (tcp:tcp_rcv_space_adjust), close()/shutdown() (-> FIN_WAIT1, CLOSE_WAIT ->
 * LAST_ACK) and, where the kernel allows fexit, accept().  It follows the
 * connection into TIME_WAIT with the socket's cookie, which the time-wait
 * socket inherits.
 *
 * Sockets that already existed when rstwatch started have had none of those
 * moments.  Once, at start-up, user/loader.c runs the iter/task_file program
 * below over every process's open files and seeds the owner (and, for a
 * listener, its listeners entry) from the process that holds the socket.
 *
 * tests/e2e/kernel-events.md lists, path by path, the orders in which the
 * kernel fires these tracepoints for one connection.
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
#define RCV_SHUTDOWN	1		/* include/net/sock.h */

/* Knobs set by user/loader.c before load; 0 means "no filter". */
const volatile __u32 filter_pid = 0;	/* owner tgid */
const volatile __u16 filter_port = 0;	/* either end */
const volatile __u16 filter_family = 0;	/* AF_INET or AF_INET6 */
const volatile __u32 filter_netns = 0;	/* netns inode */
const volatile __u8 filter_tree = 0;	/* only owners in the proc_tree map (-- CMD) */
const volatile __u64 filter_cgroup = 0;	/* --cgroup: the subtree's root cgroup id, */
const volatile __u32 filter_cgroup_level = 0;	/* ... and its level (0 the root) */
const volatile __u64 wakeup_bytes = 1 << 20;	/* force a wakeup past this fill level */
const volatile __u8 tw_tracking = 0;	/* the time-wait timer programs are loaded */
const volatile __u8 have_cookie = 0;	/* tracing programs may call bpf_get_socket_cookie() */
const volatile __u8 tw_events = 0;	/* --time-wait: a record per TIME_WAIT entry and end */
const volatile __u32 pressure_pct = 50;	/* --port-pressure */
const volatile __u64 close_wait_ns = 10000000000ull;	/* --close-wait */
const volatile __u32 tick_ns = 0;	/* ns per jiffy (clock_getres() of a coarse clock), 0 unknown */
/* enum skb_drop_reason values of a refused RST (on_kfree_skb_rst()), from
 * BTF: drop_lo..drop_lo + drop_span spans them; ~0 where a kernel lacks one */
const volatile __u32 drop_lo = ~0u;
const volatile __u32 drop_span = 0;
const volatile __u32 drop_reset = ~0u;		/* TCP_RESET: in the window, challenged */
const volatile __u32 drop_old_seq = ~0u;	/* TCP_OLD_SEQUENCE: before it */
const volatile __u32 drop_bad_seq = ~0u;	/* TCP_INVALID_SEQUENCE: beyond it */
const volatile __u32 drop_bad_end_seq = ~0u;	/* TCP_INVALID_END_SEQUENCE: ends beyond it */

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

/*
 * Each socket's story (struct rw_sock, bpf/events.h), by its address, from
 * its first owner moment (connect, an accepted child, a seeded socket) until
 * its destroy, where the entry is deleted before the address can be reused;
 * the one exception, a socket an RST may follow past its destroy, is deleted
 * by that RST (or, if none comes, aged out by the LRU).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct rw_sock);
} socks SEC(".maps");

/* struct rw_tw (bpf/events.h), by the hash of its tuple; sized by the loader */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct rw_tw);
} tws SEC(".maps");

/* struct rw_tw_pending (bpf/events.h): cancelled in softirq while hashed,
 * until the SYN's child takes it or userspace reports it as a kill. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct rw_tw_pending);
} tw_pending SEC(".maps");

/*
 * The last time-wait timer events of each CPU, which follow each other
 * there with nothing between (same call chain, BHs off):
 *  - a start, then its full socket's CLOSE: tcp_time_wait() arms the new
 *    time-wait socket's timer, then tcp_done();
 *  - a cancel, then a start of the same timer: mod_timer_pending() re-arms.
 * A start not preceded by its cancel is a new time-wait socket; no hash
 * operation is spent on it before its CLOSE, which makes its tws entry.
 * The same timer is not enough to tell: a SYN taking a time-wait socket's
 * 4-tuple over frees it in softirq (inet_twsk_deschedule_put()), and when
 * that connection closes first in turn, on the same CPU, the slab gives its
 * new time-wait socket the same memory, timer and 4-tuple.  Its cookie,
 * inherited from the new connection, differs (where the kernel gave the
 * sockets none, both are 0 and a new socket there looks re-armed).
 */
struct tw_last {
	__u64 cancel_timer;	/* the last cancel's timer, key and cookie */
	__u64 cancel_key;
	__u64 cancel_cookie;
	__u64 arm_key;		/* the last first start's key, time and substate */
	__u64 arm_ns;
	__u8 arm_substate;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tw_last);
} tw_last SEC(".maps");

static __always_inline struct tw_last *tw_last_of_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tw_last, &zero);
}

/* boot ns of the latest move to tw_pending: spares every other handshake's
 * child the lookup */
__u64 last_tw_pending_ns = 0;

/* struct rw_ep (bpf/events.h), per endpoint */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct rw_ep);
} endpoints SEC(".maps");

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

/* Owner of each listening port: accepted children inherit it until a later
 * process-context moment (accept, recvmsg) names the real owner. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rw_listen_key);
	__type(value, struct rw_owner);
} listeners SEC(".maps");

/*
 * A per-CPU slot, but still an atomic add: a program interrupted between a
 * plain load and store (IRQs stay on while it runs) by a softirq that runs
 * another of these programs on the same CPU would lose that one's count.
 * Uncontended, the locked add costs a few cycles.
 */
static __always_inline void count_by(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline void count(__u32 idx)
{
	count_by(idx, 1);
}

static __always_inline int is_tcp(const struct sock *sk)
{
	return sk->sk_protocol == IPPROTO_TCP;
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

/*
 * The sock_common head of a socket known only by its address (a time-wait
 * socket found from its timer, a socket found by its key in socks): that is
 * no BTF pointer, which the verifier does not let us load through, so it is
 * probe-read: in one read of its head and one of its netns (a field-by-field
 * BPF_CORE_READ cost a dozen helper calls, on every time-wait timer event).
 * The fields are placed by CO-RE offsets into the copy; a kernel whose layout
 * put one beyond the copy fails the read (-1), never reads elsewhere.
 */
#define RW_TW_HEAD 192

struct rw_twinfo {
	struct rw_tuple t;
	__u64 cookie;		/* a time-wait socket's is inherited (inet_twsk_alloc()) */
	__u8 substate;		/* tw_substate: TCP_FIN_WAIT2 or TCP_TIME_WAIT */
	__u8 hashed;		/* still in the lookup hash (skc_nulls_node.pprev set) */
	__u8 state;		/* skc_state */
	const struct net *net;	/* t.netns is read from it by tw_read() only */
};

#define TW_FIELD(buf, type, field, off)						\
	({ __u32 __o = (off);							\
	   __o + sizeof(type) <= RW_TW_HEAD ? *(type *)((buf) + __o) : (type)0; })

static __always_inline int skc_read(const struct sock *tw, struct rw_twinfo *i)
{
	__u8 head[RW_TW_HEAD];

	if (bpf_probe_read_kernel(head, sizeof(head), tw))
		return -1;
#define SKC(type, f) TW_FIELD(head, type, f, bpf_core_field_offset(struct sock_common, f))
	i->t.family = SKC(__u16, skc_family);
	i->t.lport = SKC(__u16, skc_num);
	i->t.rport = bpf_ntohs(SKC(__u16, skc_dport));
	if (i->t.family == AF_INET) {
		i->t.laddr[0] = SKC(__u32, skc_rcv_saddr);
		i->t.raddr[0] = SKC(__u32, skc_daddr);
	} else {
		__u32 lo = bpf_core_field_offset(struct sock_common, skc_v6_rcv_saddr);
		__u32 ro = bpf_core_field_offset(struct sock_common, skc_v6_daddr);

		if (lo + 16 > RW_TW_HEAD || ro + 16 > RW_TW_HEAD)
			return -1;
		__builtin_memcpy(i->t.laddr, head + lo, 16);
		__builtin_memcpy(i->t.raddr, head + ro, 16);
	}
	i->cookie = SKC(__u64, skc_cookie);
	i->hashed = SKC(__u64, skc_nulls_node.pprev) != 0;
	i->state = SKC(__u8, skc_state);
	i->net = (const struct net *)SKC(__u64, skc_net.net);
#undef SKC
	i->substate = TW_FIELD(head, __u8, tw_substate,
			       bpf_core_field_offset(struct inet_timewait_sock, tw_substate));
	return 0;
}

/* A local copy first: a CO-RE read of i->net itself would relocate against
 * rw_twinfo, which the kernel's BTF does not have. */
static __always_inline __u32 netns_of(const struct net *net)
{
	return BPF_CORE_READ(net, ns.inum);
}

/* A time-wait socket's (tw_substate is meaningful only there), with its netns. */
static __always_inline int tw_read(const struct sock *tw, struct rw_twinfo *i)
{
	if (skc_read(tw, i))
		return -1;
	i->t.netns = netns_of(i->net);
	return 0;
}

/*
 * The tuple of the connection an incoming segment belongs to, from this
 * host's point of view (laddr = the segment's destination).  Used for resets
 * answering a segment that found no socket.
 */
static __always_inline int tuple_from_skb(struct rw_tuple *t, const struct sk_buff *skb,
					  __u8 *tcp_flags, __u32 *payload, __u32 *seq)
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
	*seq = (__u32)tcp[4] << 24 | (__u32)tcp[5] << 16 | (__u32)tcp[6] << 8 | tcp[7];
	l3_len += (tcp[12] >> 4) * 4;
	*payload = ip_payload > l3_len ? ip_payload - l3_len : 0;
	t->netns = skb->dev->nd_net.net->ns.inum;
	return 0;
}

static __always_inline __u64 mix64(__u64 h, __u64 v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 31);
}

/* A hash of a connection's tuple, with or without its local port; never 0. */
static __always_inline __u64 tuple_hash(const struct rw_tuple *t, int with_lport)
{
	__u64 h = mix64((__u64)t->netns << 16 | t->family,
			(__u64)(with_lport ? t->lport : 0) << 16 | t->rport);

	h = mix64(h, (__u64)t->laddr[0] << 32 | t->laddr[1]);
	h = mix64(h, (__u64)t->laddr[2] << 32 | t->laddr[3]);
	h = mix64(h, (__u64)t->raddr[0] << 32 | t->raddr[1]);
	h = mix64(h, (__u64)t->raddr[2] << 32 | t->raddr[3]);
	return h | 1;
}

static __always_inline int filters_on(void)
{
	return filter_pid || filter_port || filter_family || filter_netns || filter_tree ||
	       filter_cgroup;
}

/* Whether a socket of tuple t and owner own (NULL: unknown) passes the filters. */
static __always_inline int filters_pass(const struct rw_tuple *t, const struct rw_owner *own)
{
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
	return 1;
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
	if (!filters_pass(t, own))
		return 0;
	if (filter_cgroup && (!own || !(own->flags & RW_OWN_IN_CGROUP)))
		return 0;
	/* a socket already in CLOSE may be past its destroy (the RST that
	 * answers data after close comes after it), and a time-wait socket has
	 * no destroy we see: remembering either would select whatever socket
	 * reuses the address next */
	if (sk && state != TCP_CLOSE && rw_sk_fullsock(state))
		bpf_map_update_elem(&selected, &key, &one, BPF_ANY);
	return 1;
}

/*
 * --cgroup: whether task's cgroup is the subtree's root or below it, decided
 * where the owner is learned, which is where its cgroup id is read: the
 * cgroup's own ancestry answers at once, for cgroups made after rstwatch
 * started too, and needs no map (a set of ids kept by userspace would miss
 * a new container until refreshed; bpf_cgroup_from_id() at record time
 * needs 6.2 and fails for a cgroup already removed while its sockets live
 * on).  Costs nothing without --cgroup (the branch is dead code then).
 */
static __always_inline void owner_cgroup_filter(struct rw_owner *o, const struct task_struct *task)
{
	if (!filter_cgroup)
		return;
	o->flags &= ~RW_OWN_IN_CGROUP;
	if (rw_task_cgroup_ancestor(task, filter_cgroup_level) == filter_cgroup)
		o->flags |= RW_OWN_IN_CGROUP;
}

static __always_inline void owner_from_current(struct rw_owner *o)
{
	o->pid = bpf_get_current_pid_tgid() >> 32;
	o->cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(o->comm, sizeof(o->comm));
	owner_cgroup_filter(o, (const struct task_struct *)bpf_get_current_task());
}

/* The same owner for a task that is not current: bpf_get_current_cgroup_id()
 * is the kernfs id of the task's cgroup v2 (default hierarchy) cgroup,
 * task->cgroups->dfl_cgrp->kn->id (a u64 since 5.5). */
static __always_inline void owner_from_task(struct rw_owner *o, const struct task_struct *task)
{
	o->pid = BPF_CORE_READ(task, tgid);
	o->cgroup = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	BPF_CORE_READ_INTO(&o->comm, task, comm);
	owner_cgroup_filter(o, task);
}

/* Store an owner (or a socket entry holding one); a failed update is counted,
 * never silent.  Under BPF_NOEXIST, -EEXIST is the intended "already known",
 * not a failure.  Returns 0 if the entry was written. */
static __always_inline long owner_put(void *map, const void *key, const void *value, __u64 flags)
{
	long err = bpf_map_update_elem(map, key, value, flags);

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

/*
 * sk's entry in socks, or NULL.  An entry an earlier socket at this address
 * left (its destroy unseen: a program run the kernel skipped; or an old copy
 * userspace's walk wrote back) is deleted, so that nothing of it, owner or
 * flags, passes to this socket.
 */
static __always_inline struct rw_sock *sock_of(const struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct rw_sock *s = bpf_map_lookup_elem(&socks, &key);

	if (s && s->id && s->id != sk_identity(sk)) {
		bpf_map_delete_elem(&socks, &key);
		return NULL;
	}
	return s;
}

/*
 * A connection starts at this socket (connect(), or an accepted child that
 * became ESTABLISHED): its entry is written whole, whatever an earlier
 * socket at the address left behind.  o: its owner, or NULL (unknown);
 * role: RW_OWN_ACTIVE or RW_OWN_PASSIVE, which side sent the first SYN
 * (userspace needs it to find this side's initial sequence number).
 */
static __always_inline void sock_begin(const struct sock *sk, const struct rw_owner *o, __u8 role)
{
	struct rw_sock s = {};
	__u64 key = (__u64)sk;

	if (o)
		s.own = *o;
	s.id = sk_identity(sk);
	s.own.flags = (s.own.flags & ~(RW_OWN_ACTIVE | RW_OWN_PASSIVE)) | role;
	s.own.start_ns = bpf_ktime_get_boot_ns();
	if (bpf_map_update_elem(&socks, &key, &s, BPF_ANY))
		count(RW_CNT_OWNER_FAIL);
}

/*
 * The current task is using sk (recvmsg, accept, close, shutdown): it owns
 * it.  A known socket keeps its start time; only_if_new keeps an owner
 * already known (close() in a child process does not make it the owner).
 */
static __always_inline struct rw_sock *sock_refine(const struct sock *sk, int only_if_new)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 key = (__u64)sk;
	struct rw_sock *s = sock_of(sk), n = {};

	if (s) {
		if (s->own.pid != pid && !(only_if_new && s->own.pid))
			owner_from_current(&s->own);
		return s;
	}
	/* a socket from before rstwatch, or the seeding walk missed it */
	owner_from_current(&n.own);
	n.own.start_ns = bpf_ktime_get_boot_ns();
	n.id = sk_identity(sk);
	/* met after its move to CLOSE: no close to wait for */
	if (sk->__sk_common.skc_state == TCP_CLOSE)
		n.flags = RW_SOCK_CLOSED;
	if (bpf_map_update_elem(&socks, &key, &n, BPF_NOEXIST) && !bpf_map_lookup_elem(&socks, &key))
		count(RW_CNT_OWNER_FAIL);
	return bpf_map_lookup_elem(&socks, &key);
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
	const struct rw_owner *own;	/* NULL or pid 0: not known */
	__u64 id;
	__u64 addr;		/* the socket's address where sk is NULL (no BTF pointer) */
	__u64 since;		/* boot ns, 0 none (RW_XF_SINCE) */
	__u32 count;
	__u32 seg_len;
	__u16 type;		/* enum rw_rec_type */
	__u16 reason;		/* raw enum sk_rst_reason, RW_REASON_NONE */
	__u16 xflags;		/* RW_XF_* */
	__u16 port_lo, port_hi;
	__u8 id_given;
	__u8 state, oldstate, newstate, prevstate;
	__u8 has_seg;		/* seg_flags/seg_len describe the segment answered */
	__u8 seg_flags;
	__u8 tw_substate;
	__u8 seq;		/* a full socket's sequence space and idle times (seq_snapshot()) */
	__u16 rflags;		/* RW_RF_* */
	__u32 seg_seq;		/* the segment's sequence number */
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
		r->snd_una = tp->snd_una;
		r->rcv_nxt = tp->rcv_nxt;
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
		r->snd_una = BPF_CORE_READ(tp, snd_una);
		r->rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
	}
}

/*
 * Where a full socket's sequence space stood (RW_RF_SEQ): an RST is accepted
 * at rcv_nxt exactly, challenged inside rcv_nxt + tcp_receive_window(), and
 * dropped beyond (tcp_validate_incoming(), RFC 5961).  And how long it had
 * been idle (RW_RF_IDLE), in jiffies since lsndtime (data sent),
 * icsk_ack.lrcvtime (data received) and rcv_tstamp (an ACK received), as
 * tcp_get_info() reports them; an RST does not update them before
 * tcp_reset() (tcp_validate_incoming() runs first).  Only for resets: probe
 * reads are good enough there.
 */
static __always_inline void seq_snapshot(struct rw_record *r, const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 wup = BPF_CORE_READ(tp, rcv_wup), wnd = BPF_CORE_READ(tp, rcv_wnd);
	__u32 now = (__u32)bpf_jiffies64();	/* tcp_jiffies32 */
	__s32 left;

	r->rflags |= RW_RF_SEQ;	/* snapshot() read rcv_nxt */
	r->snd_nxt = BPF_CORE_READ(tp, snd_nxt);
	left = (__s32)(wup + wnd - r->rcv_nxt);
	r->rcv_wnd = left > 0 ? (__u32)left : 0;
	if (!tick_ns)
		return;
	r->rflags |= RW_RF_IDLE;
	r->last_sent_ms = (__u64)(now - BPF_CORE_READ(tp, lsndtime)) * tick_ns / 1000000;
	r->last_recv_ms = (__u64)(now - BPF_CORE_READ(tp, inet_conn.icsk_ack.lrcvtime)) *
			  tick_ns / 1000000;
	r->last_ack_ms = (__u64)(now - BPF_CORE_READ(tp, rcv_tstamp)) * tick_ns / 1000000;
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

/*
 * Wake the reader only past wakeup_bytes; its 100 ms drain does the rest.
 * The fill level is asked only at every RW_FILL_CHECK-th record of a CPU:
 * bpf_ringbuf_query() reads the consumer position, a cache line the reader
 * on the other CPU writes as it drains: 35 to 175 ns a record under RST
 * churn, the more the busier the machine (tests/bench/notes.md).  16 records
 * are 3 KiB, nothing against the quarter of the buffer the threshold is.
 */
#define RW_FILL_CHECK 16

static __always_inline void record_submit(struct rw_record *r)
{
	__u32 idx = RW_CNT_PRODUCED;
	__u64 *produced = bpf_map_lookup_elem(&counters, &idx);	/* record_start() counted it */
	__u64 flags = BPF_RB_NO_WAKEUP;

	if ((!produced || !(*produced & (RW_FILL_CHECK - 1))) &&
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(r, flags);
}

/*
 * Fill and submit a record.  e->sk may be NULL (reset for a segment with no
 * socket) or a time-wait/request socket (only sock_common is valid then).
 */
static __always_inline int emit(const struct rw_emit *e)
{
	const struct rw_owner *own = e->own && e->own->pid ? e->own : NULL;
	const struct sock *sk = e->sk;
	struct rw_record *r;

	if (!wanted(sk, e->t, own, e->state))
		return 0;

	r = record_start(e->type, sk, e->id_given ? e->id : sk_identity(sk), e->t, e->state);
	if (!r)
		return 0;
	if (!sk)
		r->skaddr = e->addr;
	r->oldstate = e->oldstate;
	r->newstate = e->newstate;
	r->prevstate = e->prevstate;
	r->reason = e->reason;
	r->xflags = e->xflags;
	r->tw_substate = e->tw_substate;
	r->port_lo = e->port_lo;
	r->port_hi = e->port_hi;
	r->count = e->count;
	if (e->since) {
		r->xflags |= RW_XF_SINCE;
		r->since_ns = e->since;
	}
	if (e->has_seg) {
		r->sk_flags |= RW_SKF_HAS_SKB;
		r->seg_flags = e->seg_flags;
		r->seg_len = e->seg_len;
	}
	r->seg_seq = e->seg_seq;
	r->rflags = e->rflags;
	if (sk) {
		if (rw_sk_fullsock(e->state)) {
			snapshot(r, sk);
			if (e->seq)
				seq_snapshot(r, sk);
		} else if (e->state == TCP_TIME_WAIT && !(r->xflags & RW_XF_SUBSTATE)) {
			r->xflags |= RW_XF_SUBSTATE;
			r->tw_substate = BPF_CORE_READ((const struct inet_timewait_sock *)sk,
						       tw_substate);
		}
	}
	/* test the pointer itself: clang would test the pid it was chosen by,
	 * which the 6.1 verifier does not connect with the pointer's NULL */
	barrier_var(own);
	if (own) {
		r->sk_flags |= RW_SKF_OWNER;
		r->owner_pid = own->pid;
		r->owner_cgroup = own->cgroup;
		__builtin_memcpy(r->owner_comm, own->comm, sizeof(r->owner_comm));
		r->start_ns = own->start_ns;
	}
	if (e->own)	/* which side opened, known even where the owner is not */
		r->xflags |= (e->own->flags & RW_OWN_ACTIVE ? RW_XF_ACTIVE : 0) |
			     (e->own->flags & RW_OWN_PASSIVE ? RW_XF_PASSIVE : 0);
	r->cur_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(r->cur_comm, sizeof(r->cur_comm));
	record_submit(r);
	return 0;
}

/*
 * A TIME_WAIT socket holding an ephemeral port now counts against its
 * endpoint; say so once when the endpoint holds pressure_pct percent of the
 * netns's ephemeral range.  One whose local port lies outside the range (a
 * server's, on its listening port) holds no port connect(2) could pick: it
 * is not counted, and makes no endpoint entry (a busy server would make one
 * per client port, each a hash insertion, crowding out the endpoints that
 * matter).  Returns the endpoint's key, 0 for none.
 */
static __always_inline __u64 endpoint_add(const struct sock *sk, const struct rw_tuple *t,
					  const struct rw_owner *own)
{
	struct rw_ep *ep;
	__u16 lo, hi;
	__u32 range, n;
	__u64 key;

	rw_local_ports(sk, &lo, &hi);
	if (t->lport < lo || t->lport > hi)
		return 0;
	key = tuple_hash(t, 0);
	ep = bpf_map_lookup_elem(&endpoints, &key);
	if (!ep) {
		struct rw_ep fresh = { .netns = t->netns, .rport = t->rport, .family = t->family,
				       .port_lo = lo, .port_hi = hi };

		__builtin_memcpy(fresh.laddr, t->laddr, sizeof(fresh.laddr));
		__builtin_memcpy(fresh.raddr, t->raddr, sizeof(fresh.raddr));
		bpf_map_update_elem(&endpoints, &key, &fresh, BPF_NOEXIST);
		ep = bpf_map_lookup_elem(&endpoints, &key);
		if (!ep) {
			count(RW_CNT_OWNER_FAIL);
			return 0;
		}
	}
	__sync_fetch_and_add(&ep->count, 1);
	n = ep->count;
	if (ep->reported || ep->port_hi < ep->port_lo)
		return key;
	range = (__u32)ep->port_hi - ep->port_lo + 1;
	if ((__u64)n * 100 >= (__u64)range * pressure_pct) {
		struct rw_emit e = {
			.type = RW_REC_PRESSURE, .sk = sk, .t = t, .own = own, .state = TCP_CLOSE,
			.reason = RW_REASON_NONE, .count = n, .xflags = RW_XF_PORTS,
			.port_lo = ep->port_lo, .port_hi = ep->port_hi,
		};

		ep->reported = 1;
		emit(&e);
	}
	return key;
}

/* A TIME_WAIT socket of that endpoint ended. */
static __always_inline void endpoint_del(__u64 key)
{
	struct rw_ep *ep;

	if (!key)
		return;
	ep = bpf_map_lookup_elem(&endpoints, &key);
	if (!ep || !ep->count)
		return;
	__sync_fetch_and_add(&ep->count, -1);
	if (!ep->count)
		ep->reported = 0;	/* drained: it may be reported again */
}

/*
 * CLOSE_WAIT: the peer closed its side.  Remember when, who and which
 * connection: userspace's walk over socks (user/loader.c) reports a socket
 * still there past --close-wait, and only then does leaving CLOSE_WAIT make
 * a record (close_wait/closed).
 */
static __always_inline void cw_enter(const struct sock *sk)
{
	struct rw_sock *s = sock_of(sk), n = {};
	struct rw_tuple t = {};
	__u64 key = (__u64)sk;

	if (!s) {
		bpf_map_update_elem(&socks, &key, &n, BPF_NOEXIST);
		s = sock_of(sk);
		if (!s) {
			count(RW_CNT_OWNER_FAIL);
			return;
		}
	}
	tuple_from_sk(&t, sk, TCP_CLOSE_WAIT);
	s->flags &= ~(RW_SOCK_CW_REPORTED | RW_SOCK_CW_WANTED);
	if (wanted(sk, &t, s->own.pid ? &s->own : NULL, TCP_CLOSE_WAIT))
		s->flags |= RW_SOCK_CW_WANTED;
	s->id = sk_identity(sk);
	__builtin_memcpy(s->laddr, t.laddr, sizeof(s->laddr));
	__builtin_memcpy(s->raddr, t.raddr, sizeof(s->raddr));
	s->lport = t.lport;
	s->rport = t.rport;
	s->netns = t.netns;
	s->family = t.family;
	s->cw_since = bpf_ktime_get_boot_ns();
}

/* Leaving CLOSE_WAIT: whether a record is due (it was reported stuck). */
static __always_inline int cw_leave(struct rw_sock *s)
{
	int due;

	if (!s || !s->cw_since)
		return 0;
	due = s->flags & RW_SOCK_CW_REPORTED;
	s->cw_since = 0;
	s->flags &= ~RW_SOCK_CW_REPORTED;
	return due;
}

/*
 * A transition into CLOSE.  The record is sent only where userspace needs
 * it: an error no reset record has explained (timeouts, ss -K, ICMP), the
 * end of a CLOSE_WAIT reported stuck, a FIN_WAIT2/CLOSING -> CLOSE that got
 * no time-wait socket while the death row was full (an overflow, unless an
 * RST follows), and with --time-wait every TIME_WAIT entry.  Otherwise the
 * kernel keeps what a later record of this socket needs: the state it
 * closed from, and whether an RST may still follow its destroy.
 */
static __always_inline int on_close(const struct sock *sk, int oldstate)
{
	struct rw_sock *s = sock_of(sk);
	struct rw_tuple t = {};
	struct rw_emit e = {
		.type = RW_REC_SET_STATE, .sk = sk, .t = &t, .state = TCP_CLOSE,
		.oldstate = oldstate, .newstate = TCP_CLOSE, .reason = RW_REASON_NONE,
	};
	int due = 0, err = sk->sk_err;

	if (s) {
		s->prev_state = oldstate;
		s->flags |= RW_SOCK_CLOSED;
		e.own = &s->own;
		if (oldstate == TCP_CLOSE_WAIT)
			due = cw_leave(s);
	}
	if ((oldstate == TCP_FIN_WAIT2 || oldstate == TCP_CLOSING) && !err) {
		/* tcp_time_wait() -> tcp_done(): the time-wait socket that
		 * inet_twsk_alloc() made was armed just before, on this CPU;
		 * none means the death row was full, or a path that resets
		 * next (kernel-events.md) */
		struct tw_last *last = tw_tracking ? tw_last_of_cpu() : NULL;
		__u64 key;
		int full;

		tuple_from_sk(&t, sk, TCP_CLOSE);
		key = tuple_hash(&t, 1);
		e.xflags = RW_XF_PORTS;
		if (tw_tracking)
			e.xflags |= RW_XF_TW_KNOWN;
		if (last && last->arm_key == key) {
			struct rw_tw tw = { .since = last->arm_ns, .substate = last->arm_substate };

			last->arm_key = 0;
			if (s)
				tw.own = s->own;
			tw.ep = endpoint_add(sk, &t, e.own);
			if (!filters_on() || wanted(sk, &t, e.own && e.own->pid ? e.own : NULL,
						    TCP_CLOSE))
				tw.flags = RW_TW_COUNTED;
			if (bpf_map_update_elem(&tws, &key, &tw, BPF_ANY)) {
				/* the map is full: neither followed nor counted
				 * (userspace says so) */
				endpoint_del(tw.ep);
				count(RW_CNT_TW_UNTRACKED);
			} else if (tw.flags & RW_TW_COUNTED) {
				count(RW_CNT_TW_ENTERED);
			}
			if (!tw_events && !due)
				return 0;
			e.xflags |= RW_XF_TW_ARMED | RW_XF_EP_COUNTED;
			rw_local_ports(sk, &e.port_lo, &e.port_hi);
			return emit(&e);
		}
		rw_local_ports(sk, &e.port_lo, &e.port_hi);
		if (s)
			s->flags |= RW_SOCK_AWAIT_RST;
		full = rw_tw_row_full(sk->__sk_common.skc_net.net);
		if (full >= 0)
			e.xflags |= RW_XF_ROW_KNOWN | (full ? RW_XF_ROW_FULL : 0);
		if (full || tw_events || due)
			return emit(&e);
		return 0;
	}
	if (!due && !(err && !(s && (s->flags & RW_SOCK_DECIDED))))
		return 0;
	tuple_from_sk(&t, sk, TCP_CLOSE);
	return emit(&e);
}

/* A passively opened child became ESTABLISHED (softirq): it inherits the
 * listener's owner until accept()/recvmsg() names the real one; and it may
 * be the new connection a SYN made on a time-wait socket's 4-tuple, which
 * that socket's cancel left in tw_pending. */
static __always_inline int child_established(const struct sock *sk, int oldstate, int newstate)
{
	struct rw_listen_key lk = listen_key(sk);
	struct rw_tw_pending *p;
	struct rw_tuple t = {};
	__u64 key;

	sock_begin(sk, bpf_map_lookup_elem(&listeners, &lk), RW_OWN_PASSIVE);
	if (!tw_tracking ||
	    bpf_ktime_get_boot_ns() - last_tw_pending_ns > RW_TW_PENDING_NS)
		return 0;
	tuple_from_sk(&t, sk, newstate);
	key = tuple_hash(&t, 1);
	p = bpf_map_lookup_elem(&tw_pending, &key);
	if (!p)
		return 0;
	if (p->counted)
		count(RW_CNT_TW_REUSED);	/* its end was counted when it was parked */
	if (p->reported) {	/* --time-wait: the cancel was a record */
		struct rw_emit e = {
			.type = RW_REC_TW_SYN_REUSE, .sk = sk, .t = &t, .state = newstate,
			.oldstate = oldstate, .newstate = newstate, .reason = RW_REASON_NONE,
		};

		emit(&e);
	}
	bpf_map_delete_elem(&tw_pending, &key);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (!is_tcp(sk))
		return 0;
	/* a socket's life starts at this address: connect(), listen(), or a
	 * child cloned from its listener (inet_csk_clone_lock()) */
	if (!have_cookie && (newstate == TCP_SYN_RECV ||
			     (oldstate == TCP_CLOSE && (newstate == TCP_SYN_SENT ||
							newstate == TCP_LISTEN))))
		sk_birth(sk);

	switch (newstate) {
	case TCP_SYN_SENT:
		/* connect(): tcp_v[46]_connect() in the caller */
		if (oldstate == TCP_CLOSE) {
			struct rw_owner o = {};

			owner_from_current(&o);
			sock_begin(sk, &o, RW_OWN_ACTIVE);
		}
		return 0;
	case TCP_LISTEN: {
		/* listen(): inet_csk_listen_start() in the caller */
		struct rw_listen_key lk = listen_key(sk);
		struct rw_owner o = {};

		owner_from_current(&o);
		owner_put(&listeners, &lk, &o, BPF_ANY);
		return 0;
	}
	case TCP_ESTABLISHED:
		if (oldstate == TCP_SYN_RECV)
			return child_established(sk, oldstate, newstate);
		return 0;
	case TCP_FIN_WAIT1:
		/* close()/shutdown(): tcp_close_state() in the caller.  The
		 * cookie is made now, so that a time-wait socket inherits it */
		if (have_cookie)
			bpf_get_socket_cookie((void *)sk);
		sock_refine(sk, 1);
		return 0;
	case TCP_CLOSE_WAIT:
		cw_enter(sk);
		return 0;
	case TCP_LAST_ACK:
		if (oldstate == TCP_CLOSE_WAIT) {
			struct rw_sock *s;
			struct rw_tuple t = {};
			struct rw_emit e = {
				.type = RW_REC_SET_STATE, .sk = sk, .t = &t, .state = newstate,
				.oldstate = oldstate, .newstate = newstate,
				.reason = RW_REASON_NONE,
			};

			s = sock_refine(sk, 1);
			if (!cw_leave(s))
				return 0;
			e.own = &s->own;
			tuple_from_sk(&t, sk, newstate);
			return emit(&e);
		}
		return 0;
	case TCP_CLOSE:
		return on_close(sk, oldstate);
	default:
		return 0;
	}
}

static __always_inline int on_reset(const struct sock *sk, const struct sk_buff *skb, __u16 reason)
{
	struct rw_tuple t = {};
	struct rw_emit e = {
		.type = RW_REC_SEND_RESET, .sk = sk, .t = &t, .state = TCP_CLOSE, .reason = reason,
	};
	struct rw_sock *s = NULL;

	if (skb) {
		e.has_seg = tuple_from_skb(&t, skb, &e.seg_flags, &e.seg_len, &e.seg_seq) == 0;
		if (!e.has_seg && !sk)
			return 0;
	}
	if (!sk)
		return emit(&e);
	e.state = sk->__sk_common.skc_state;
	if (e.state == TCP_LISTEN) {
		/* a listener answering for a connection: the connection's tuple
		 * is the segment's.  tcp_check_req() (the handshake's ACK and a
		 * full accept queue) answers before tcp_v[46]_rcv() clears
		 * skb->dev; the listener's own input (tcp_rcv_state_process():
		 * an ACK for a connection it does not have) after, so the
		 * netns is the listener's, never the device's */
		struct rw_listen_key lk = listen_key(sk);

		if (!e.has_seg)
			tuple_from_sk(&t, sk, e.state);
		else if (!BPF_CORE_READ(skb, dev))
			e.rflags |= RW_RF_SOCK_INPUT;
		t.netns = sk->__sk_common.skc_net.net->ns.inum;
		e.own = bpf_map_lookup_elem(&listeners, &lk);
		return emit(&e);
	}
	tuple_from_sk(&t, sk, e.state);
	if (e.state == TCP_TIME_WAIT) {
		/* tcp_v4_rcv() kills the time-wait socket next: its cancel
		 * needs no record of its own */
		struct rw_tw *tw = bpf_map_lookup_elem(&tws, &(__u64){ tuple_hash(&t, 1) });

		if (tw) {
			tw->flags |= RW_TW_RESET_SENT;
			e.own = &tw->own;
			e.since = tw->since;
		}
		return emit(&e);
	}
	if (!rw_sk_fullsock(e.state))
		return emit(&e);
	s = sock_of(sk);
	if (!s)
		return emit(&e);
	e.own = &s->own;
	if (e.state == TCP_CLOSE) {
		e.prevstate = s->prev_state;
		s->flags |= RW_SOCK_DECIDED;
	}
	emit(&e);
	/* the RST that follows the destroy ends this socket's story */
	if (s->flags & RW_SOCK_AWAIT_RST)
		bpf_map_delete_elem(&socks, &(__u64){ (__u64)sk });
	return 0;
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

/* An RST accepted by a socket: tcp_reset(), which closes it next. */
SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_receive_reset, struct sock *sk)
{
	struct rw_sock *s;
	struct rw_tuple t = {};
	struct rw_emit e = { .type = RW_REC_RECV_RESET, .sk = sk, .t = &t, .reason = RW_REASON_NONE,
			     .seq = 1 };

	if (!is_tcp(sk))
		return 0;
	e.state = sk->__sk_common.skc_state;
	tuple_from_sk(&t, sk, e.state);
	s = sock_of(sk);
	if (s) {
		s->flags |= RW_SOCK_DECIDED;
		/* data after shutdown(RD) or close() in FIN_WAIT1/2: tcp_reset(),
		 * tcp_done() (a destroy, if orphaned), and only then the RST
		 * answering the data (kernel-events.md) */
		if ((e.state == TCP_FIN_WAIT1 || e.state == TCP_FIN_WAIT2) &&
		    (sk->sk_shutdown & RCV_SHUTDOWN))
			s->flags |= RW_SOCK_AWAIT_RST;
		e.own = &s->own;
	}
	return emit(&e);
}

/*
 * Only the reports userspace uses (user/classify.c on_error()): a non-zero
 * sk_err and, in CLOSE, only where no reset record has explained the close.
 * tcp_disconnect() reports after the RST it sent, with inet_dport already
 * zeroed (the tcp_send_reset record decided); tcp_reset() reports after
 * tcp_done() with ECONNRESET, EPIPE (CLOSE_WAIT) or ECONNREFUSED (SYN_SENT),
 * and its tcp_receive_reset record came first (a timeout whose sk_err is an
 * ICMP soft error, ECONNREFUSED say, has sk_err == sk_err_soft and stays).
 */
SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(on_error_report, const struct sock *sk)
{
	struct rw_sock *s;
	struct rw_tuple t = {};
	struct rw_emit e = { .type = RW_REC_ERROR, .sk = sk, .t = &t, .reason = RW_REASON_NONE };
	int err = sk->sk_err;

	if (!err || !is_tcp(sk))
		return 0;
	e.state = sk->__sk_common.skc_state;
	if (e.state == TCP_CLOSE &&
	    (sk->__sk_common.skc_dport == 0 ||
	     ((err == ECONNRESET || err == EPIPE || err == ECONNREFUSED) &&
	      err != sk->sk_err_soft)))
		return 0;
	s = sock_of(sk);
	if (s) {
		if (s->flags & RW_SOCK_DECIDED)
			return 0;
		e.own = &s->own;
		if (e.state == TCP_CLOSE)
			e.prevstate = s->prev_state;
	}
	tuple_from_sk(&t, sk, e.state);
	return emit(&e);
}

/*
 * A socket followed since its connection began is freed, and its move to
 * CLOSE never ran on_set_state(): the kernel skipped the program there
 * (tcp_v4_destroy_sock() runs on a socket in TCP_CLOSE, and a connected
 * socket gets there only through tcp_set_state(), which fires the
 * tracepoint).  __bpf_trace_run() skips
 * a program already running on the CPU (a softirq over a task in it) and
 * counts that in its recursion_misses; some kernels skip programs in chosen
 * tasks without counting.  Either way whatever that softirq or task did to
 * the socket (a timeout, an RST received) was not seen: say so, with the
 * socket, rather than let its verdict go missing in silence.  A call of
 * its own: on_destroy_sock(), run for every socket, keeps a small frame.
 */
static __noinline void close_unseen(const struct sock *sk, const struct rw_sock *s)
{
	struct rw_tuple t = {};
	struct rw_emit e = {
		.type = RW_REC_DESTROY, .sk = sk, .t = &t, .own = &s->own, .state = TCP_CLOSE,
		.reason = RW_REASON_NONE, .xflags = RW_XF_CLOSE_UNSEEN,
	};

	tuple_from_sk(&t, sk, TCP_CLOSE);
	if (!wanted(sk, &t, s->own.pid ? &s->own : NULL, TCP_CLOSE))
		return;
	count(RW_CNT_CLOSE_UNSEEN);
	emit(&e);
}

/* The socket is freed: its entry goes, unless an RST may still follow
 * (RW_SOCK_AWAIT_RST); the address can be reused only after that RST. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(on_destroy_sock, struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct rw_sock *s = bpf_map_lookup_elem(&socks, &key);

	if (s && !(s->flags & RW_SOCK_CLOSED))
		close_unseen(sk, s);
	if (s && !(s->flags & RW_SOCK_AWAIT_RST))
		bpf_map_delete_elem(&socks, &key);
	if (filters_on())
		bpf_map_delete_elem(&selected, &key);
	return 0;
}

/* recvmsg() on the socket: tcp_recvmsg_locked() -> tcp_rcv_space_adjust(), in
 * the reading process.  One hash lookup when the owner is already known. */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(on_rcv_space_adjust, struct sock *sk)
{
	sock_refine(sk, 0);
	return 0;
}

/*
 * A time-wait socket's life, seen through its timer (net/ipv4/
 * inet_timewait_sock.c): __inet_twsk_schedule() arms tw_timer when the
 * socket is created and re-arms it (mod_timer_pending: cancel + start) when
 * a FIN or a segment restarts the period; tw_timer_handler() runs when it
 * ends normally (expire_timers() detaches it first: a cancel once its time
 * has come); inet_twsk_deschedule_put() cancels it when the socket is
 * killed early: an RST (tcp_timewait_state_process()), a new connection
 * taking the 4-tuple (__inet_check_established(), or a SYN in tcp_v4_rcv()),
 * or tcp_abort() (ss -K).
 *
 * These tracepoints fire for every timer in the system, so the test on the
 * timer's function comes first and costs one load.  tw_timer_handler is
 * static: a typeless ksym from kallsyms; without it (no kallsyms access) the
 * address is 0, nothing matches, and rstwatch follows no TIME_WAIT.
 */
extern const void tw_timer_handler __ksym __weak;

/* The time-wait socket whose timer this is, or NULL. */
static __always_inline const struct sock *tw_of(const struct timer_list *timer)
{
	const struct sock *tw;
	__u16 family;

	if (!&tw_timer_handler || (const void *)timer->function != &tw_timer_handler)
		return NULL;
	tw = (const void *)timer - bpf_core_field_offset(struct inet_timewait_sock, tw_timer);
	family = BPF_CORE_READ(tw, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6 ? tw : NULL;
}

/* A record about a time-wait socket: its owner and start from its tws entry. */
static __always_inline int tw_emit(const struct sock *tw, const struct rw_twinfo *i, __u16 type,
				   __u16 xflags, const struct rw_tw *entry)
{
	struct rw_emit x = {
		.type = type, .sk = tw, .t = &i->t, .state = TCP_TIME_WAIT,
		.reason = RW_REASON_NONE, .xflags = xflags | RW_XF_SUBSTATE | RW_XF_PORTS,
		/* no helper takes a pointer found by arithmetic: the cookie
		 * inet_twsk_alloc() copied from the full socket (0 if none) */
		.id_given = 1, .id = i->cookie, .tw_substate = i->substate,
	};

	if (entry) {
		x.own = &entry->own;
		x.since = entry->since;
	}
	rw_local_ports(tw, &x.port_lo, &x.port_hi);
	return emit(&x);
}

static __always_inline void endpoint_inc(__u64 key)
{
	struct rw_ep *ep = key ? bpf_map_lookup_elem(&endpoints, &key) : NULL;

	if (ep)
		__sync_fetch_and_add(&ep->count, 1);
}

/* The time-wait socket ended here: forget it; how (RW_CNT_TW_EXPIRED,
 * _REUSED, or 0: another way) is counted if it was. */
static __always_inline void tw_end(__u64 key, const struct rw_tw *entry, __u32 how)
{
	if (entry->flags & RW_TW_COUNTED) {
		count(RW_CNT_TW_ENDED);
		if (how)
			count(how);
	}
	endpoint_del(entry->ep);
	bpf_map_delete_elem(&tws, &key);
}

/* Cancelled in softirq while hashed: an RST's kill or a SYN's reuse, which
 * only the child tells; move it to tw_pending (see struct rw_tw_pending). */
static __always_inline int tw_park(const struct sock *tw, const struct rw_twinfo *i, __u64 key,
				   const struct rw_tw *entry, __u16 xflags)
{
	struct rw_tw_pending p = {
		.cancel_ns = bpf_ktime_get_boot_ns(), .netns = i->t.netns, .family = i->t.family,
		.lport = i->t.lport, .rport = i->t.rport, .xflags = xflags, .cookie = i->cookie,
		.substate = i->substate,
	};

	__builtin_memcpy(p.laddr, i->t.laddr, sizeof(p.laddr));
	__builtin_memcpy(p.raddr, i->t.raddr, sizeof(p.raddr));
	if (entry) {
		p.own = entry->own;
		p.since = entry->since;
		p.ep = entry->ep;
		p.counted = !!(entry->flags & RW_TW_COUNTED);
	}
	p.wanted = wanted(tw, &i->t, p.own.pid ? &p.own : NULL, TCP_TIME_WAIT);
	if (tw_events) {
		p.reported = 1;
		tw_emit(tw, i, RW_REC_TW_CANCEL, xflags, entry);
	}
	if (entry)
		tw_end(key, entry, 0);
	if (bpf_map_update_elem(&tw_pending, &key, &p, BPF_ANY))
		count(RW_CNT_OWNER_FAIL);
	last_tw_pending_ns = p.cancel_ns;
	return 0;
}

/* Re-armed right after its cancel on this CPU (mod_timer_pending()): it
 * lives on.  A cancel sent as a possible kill is taken back by a record; a
 * parked one goes back to tws. */
static __always_inline int tw_rearmed(const struct sock *tw, const struct rw_twinfo *i, __u64 key)
{
	struct rw_tw *entry = bpf_map_lookup_elem(&tws, &key);
	struct rw_tw_pending *p;

	if (entry) {
		if (entry->flags & RW_TW_CANCEL_REPORTED) {
			entry->flags &= ~RW_TW_CANCEL_REPORTED;
			if (entry->flags & RW_TW_COUNTED)
				count_by(RW_CNT_TW_ENDED, -1);
			endpoint_inc(entry->ep);
			return tw_emit(tw, i, RW_REC_TW_ARM, 0, entry);
		}
		return tw_events ? tw_emit(tw, i, RW_REC_TW_ARM, 0, entry) : 0;
	}
	p = bpf_map_lookup_elem(&tw_pending, &key);
	if (p) {
		struct rw_tw n = { .own = p->own, .since = p->since, .ep = p->ep,
				   .substate = p->substate, .flags = p->counted ? RW_TW_COUNTED : 0 };

		if (bpf_map_update_elem(&tws, &key, &n, BPF_ANY)) {
			count(RW_CNT_TW_UNTRACKED);	/* filled meanwhile: it stays ended */
		} else {
			if (p->counted)
				count_by(RW_CNT_TW_ENDED, -1);	/* it did not end after all */
			endpoint_inc(p->ep);
		}
		bpf_map_delete_elem(&tw_pending, &key);
		return tw_events ? tw_emit(tw, i, RW_REC_TW_ARM, 0, &n) : 0;
	}
	return tw_events ? tw_emit(tw, i, RW_REC_TW_ARM, 0, NULL) : 0;
}

SEC("tp_btf/timer_start")
int BPF_PROG(on_timer_start, struct timer_list *timer)
{
	const struct sock *tw = tw_of(timer);
	struct rw_twinfo i;
	struct tw_last *last;
	__u64 key;

	if (!tw)
		return 0;
	__builtin_memset(&i, 0, sizeof(i));	/* only now: most timers stop above */
	if (tw_read(tw, &i))
		return 0;
	key = tuple_hash(&i.t, 1);
	last = tw_last_of_cpu();
	if (!last)
		return 0;
	if (last->cancel_timer == (__u64)timer && last->cancel_key == key &&
	    last->cancel_cookie == i.cookie) {
		last->cancel_timer = 0;
		return tw_rearmed(tw, &i, key);
	}
	/* tcp_time_wait() made it: its full socket's CLOSE comes next, here */
	last->arm_key = key;
	last->arm_ns = bpf_ktime_get_boot_ns();
	last->arm_substate = i.substate;
	return tw_events ? tw_emit(tw, &i, RW_REC_TW_ARM, 0, NULL) : 0;
}

/*
 * A cancel is one of: the expiry's (its time has come: on_timer_expire()
 * follows); connect() taking the 4-tuple over (it unhashes the time-wait
 * socket first); the time-wait socket's own RST (RW_TW_RESET_SENT); the FIN
 * that moves a FIN_WAIT2-substate socket to TIME_WAIT (re-armed at once, its
 * substate changed); in softirq, an RST's kill or a SYN's reuse (parked
 * until the child or userspace decides); in a task, ss -K (a kill, sent) or,
 * in a kernel thread, the netns going away (counted as the end it is).
 */
static __noinline int tw_cancelled(const struct timer_list *timer, const struct sock *tw,
				   __u16 xflags)
{
	struct rw_twinfo i = {};
	struct rw_tw *entry;
	struct tw_last *last;
	__u64 key;

	if ((long)(bpf_jiffies64() - timer->expires) >= 0 || tw_read(tw, &i))
		return 0;
	key = tuple_hash(&i.t, 1);
	entry = bpf_map_lookup_elem(&tws, &key);
	if (!i.hashed) {
		/* connect() took the 4-tuple (tcp_tw_reuse) */
		if (tw_events)
			tw_emit(tw, &i, RW_REC_TW_CANCEL, xflags | RW_XF_UNHASHED, entry);
		if (entry)
			tw_end(key, entry, RW_CNT_TW_REUSED);
		return 0;
	}
	/* a start of this timer right after is a re-arm (on_timer_start()) */
	last = tw_last_of_cpu();
	if (last) {
		last->cancel_timer = (__u64)timer;
		last->cancel_key = key;
		last->cancel_cookie = i.cookie;
	}
	if (entry) {
		if (entry->flags & RW_TW_RESET_SENT) {
			if (tw_events)
				tw_emit(tw, &i, RW_REC_TW_CANCEL, xflags, entry);
			tw_end(key, entry, 0);
			return 0;
		}
		if (entry->substate != i.substate) {
			entry->substate = i.substate;
			return tw_events ? tw_emit(tw, &i, RW_REC_TW_CANCEL, xflags, entry) : 0;
		}
	}
	if (xflags & RW_XF_SOFTIRQ)
		return tw_park(tw, &i, key, entry, xflags);
	if ((xflags & RW_XF_KTHREAD) && !tw_events) {
		/* inet_twsk_purge(): its netns is going away, with its sockets */
		if (entry)
			tw_end(key, entry, 0);
		return 0;
	}
	/* ss -K: a kill, sent now (a start right after takes it back) */
	if (entry) {
		entry->flags |= RW_TW_CANCEL_REPORTED;
		if (entry->flags & RW_TW_COUNTED)
			count(RW_CNT_TW_ENDED);
		endpoint_del(entry->ep);
	}
	return tw_emit(tw, &i, RW_REC_TW_CANCEL, xflags, entry);
}

/* Where the cancel runs (softirq or a task) is measured here, in a frame
 * below 64 bytes: x86-64 runs a tracing program's frames of 64 bytes or more
 * on a per-CPU private stack (6.13+), which would hide where the kernel was;
 * tw_cancelled(), a call of its own, gets the private stack, not this. */
SEC("tp_btf/timer_cancel")
int BPF_PROG(on_timer_cancel, struct timer_list *timer)
{
	const struct sock *tw = tw_of(timer);

	if (!tw)
		return 0;
	return tw_cancelled(timer, tw, rw_context());
}

SEC("tp_btf/timer_expire_entry")
int BPF_PROG(on_timer_expire, struct timer_list *timer)
{
	const struct sock *tw = tw_of(timer);
	struct rw_twinfo i;
	struct rw_tw *entry;
	__u64 key;

	if (!tw)
		return 0;
	__builtin_memset(&i, 0, sizeof(i));
	if (tw_read(tw, &i))
		return 0;
	key = tuple_hash(&i.t, 1);
	entry = bpf_map_lookup_elem(&tws, &key);
	if (tw_events)
		tw_emit(tw, &i, RW_REC_TW_EXPIRE, RW_XF_CONTEXT | RW_XF_SOFTIRQ, entry);
	if (entry)
		tw_end(key, entry, RW_CNT_TW_EXPIRED);
	return 0;
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
	sock_refine((const struct sock *)ret, 0);
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
 * than this walk.  start_ns stays 0: when the connection began is unknown;
 * a socket in CLOSE_WAIT counts as having entered it now.
 * Sockets in CLOSE are skipped: they have no connection yet, and connect()
 * or listen() will name their owner.
 */
SEC("iter/task_file")
int seed_owners(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct rw_sock n = {};
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
	owner_from_task(&n.own, task);
	if (state == TCP_LISTEN) {
		struct rw_listen_key lk = {
			.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum),
			.port = BPF_CORE_READ(sk, __sk_common.skc_num),
			.family = family,
		};

		if (!owner_put(&listeners, &lk, &n.own, BPF_NOEXIST))
			seeded_listeners++;
	} else {
		__u64 key = (__u64)sk;

		/* in CLOSE_WAIT since some time before now: stuck from here */
		if (state == TCP_CLOSE_WAIT)
			n.cw_since = bpf_ktime_get_boot_ns();
		if (!owner_put(&socks, &key, &n, BPF_NOEXIST))
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
 * 6.10 tracepoint never see a reset twice, and takes the no-socket resets
 * from one of them only (kfree_skb where it has drop reasons, fentry
 * before).
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
 * A segment that found no socket, about to be answered with an RST: the
 * record refused and half_open come from.  tcp_v[46]_send_reset() answers
 * no RST with an RST, so a segment that is itself one is skipped.
 */
static __always_inline int on_nosock_reset(const struct sk_buff *skb)
{
	struct rw_tuple t = {};
	struct rw_emit e = {
		.type = RW_REC_SEND_RESET, .t = &t, .state = TCP_CLOSE, .reason = RW_REASON_NONE,
		.has_seg = 1,
	};

	if (tuple_from_skb(&t, skb, &e.seg_flags, &e.seg_len, &e.seg_seq) ||
	    (e.seg_flags & RW_TCP_RST))
		return 0;
	return emit(&e);
}

/*
 * No socket, 5.17-6.9: tcp_v4_rcv() and tcp_v6_rcv() reach no_tcp_socket,
 * set the drop reason SKB_DROP_REASON_NO_SOCKET, call
 * tcp_v[46]_send_reset(NULL, skb) (unless the checksum is bad: the reason
 * becomes TCP_CSUM) and free the segment with kfree_skb_reason().  UDP uses
 * the same reason: only TCP segments count.  The drop reason exists since
 * 5.17 (commit c504e5c2f964, "net: skb: introduce kfree_skb_reason()");
 * user/loader.c checks the tracepoint's arguments and the enum value in BTF.
 */
SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb_nosock, struct sk_buff *skb, void *location,
	     enum skb_drop_reason reason)
{
	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET))
		return 0;
	if (skb_l4_proto(skb) != IPPROTO_TCP)
		return 0;
	return on_nosock_reset(skb);
}

/* 5.8-5.16: no drop reasons, so the fentry programs below take the resets
 * for segments with no socket too.  Set by user/loader.c only where
 * on_kfree_skb_nosock is not loaded: one record per reset. */
const volatile __u8 nosock_by_fentry = 0;

/*
 * Time-wait socket: tcp_v4_rcv()'s TCP_TW_RST case calls
 * tcp_v4_send_reset(tw, skb) (tcp_v6_send_reset() for IPv6), which has no
 * tracepoint for non-full sockets before 6.10.  No socket: the
 * no_tcp_socket path calls tcp_v4_send_reset(NULL, skb) once the checksum
 * is good, and nothing else passes it NULL (every other caller answers for
 * a socket it holds: tcp_v4_do_rcv(), tcp_check_req()'s listener).  fentry
 * on the static functions, where this kernel's BTF has them and fentry is
 * allowed (optional: where refused, rstwatch says at start-up which classes
 * it cannot report).  Full sockets are left to tcp:tcp_send_reset.
 */
static __always_inline int on_send_reset_fentry(const struct sock *sk, const struct sk_buff *skb)
{
	if (!sk)
		return nosock_by_fentry ? on_nosock_reset(skb) : 0;
	if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_TIME_WAIT)
		return 0;
	return on_reset(sk, skb, RW_REASON_NONE);
}

SEC("fentry/tcp_v4_send_reset")
int BPF_PROG(on_v4_send_reset, const struct sock *sk, struct sk_buff *skb)
{
	return on_send_reset_fentry(sk, skb);
}

SEC("fentry/tcp_v6_send_reset")
int BPF_PROG(on_v6_send_reset, const struct sock *sk, struct sk_buff *skb)
{
	return on_send_reset_fentry(sk, skb);
}

/*
 * accept() before 6.10: inet_csk_accept(sk, flags, err, kern) returned the
 * child as its fifth fexit argument.  Loaded instead of on_accept_exit()
 * where the function has those four parameters (user/loader.c, from BTF):
 * bpf_get_func_ret() only came in 5.17 (commit f92c1e183604, "bpf: Add
 * get_func_[arg|ret|arg_cnt] helpers"), and 5.8-5.16 refuse it.
 */
SEC("fexit/inet_csk_accept")
int BPF_PROG(on_accept_exit_4args, struct sock *sk, int flags, int *err, bool kern,
	     struct sock *ret)
{
	if (ret)
		sock_refine(ret, 0);
	return 0;
}

/* The states in which a socket validates an RST's sequence number
 * (tcp_validate_incoming(), via tcp_rcv_established() and
 * tcp_rcv_state_process()): a connection both ends have synchronised. */
#define RW_SYNCED (TCPF(TCP_ESTABLISHED) | TCPF(TCP_SYN_RECV) | TCPF(TCP_FIN_WAIT1) |	\
		   TCPF(TCP_FIN_WAIT2) | TCPF(TCP_CLOSE_WAIT) | TCPF(TCP_CLOSING) |	\
		   TCPF(TCP_LAST_ACK))

/*
 * A refused RST, once the reason said it may be one: a TCP segment with RST
 * set, dropped by a synchronised socket.  tcp_validate_incoming() drops an
 * RST inside the window but not at rcv_nxt (nor rcv_nxt - 1 after a FIN,
 * tcp_reset_check()) with TCP_RESET after tcp_send_challenge_ack() (which
 * counts TCPChallengeACK, unless its per-socket or per-netns rate limit
 * holds it back), and one outside the window with tcp_sequence()'s reason.
 * TCP_RESET also drops an RST in LISTEN and an RST without ACK in SYN_SENT
 * (tcp_rcv_state_process(), tcp_rcv_synsent_state_process()): not here.
 */
static __noinline int rst_refused(const struct sk_buff *skb, __u32 reason, const struct sock *sk)
{
	struct rw_tuple t = {}, seg = {};
	struct rw_sock *s;
	struct rw_emit e = {
		.type = RW_REC_CHALLENGE, .sk = sk, .t = &t, .reason = RW_REASON_NONE, .seq = 1,
		.has_seg = 1,
	};

	if (reason != drop_reset && reason != drop_old_seq && reason != drop_bad_seq &&
	    reason != drop_bad_end_seq)
		return 0;
	if (!sk || !is_tcp(sk))
		return 0;
	e.state = sk->__sk_common.skc_state;
	if (!(TCPF(e.state) & RW_SYNCED))
		return 0;
	if (tuple_from_skb(&seg, skb, &e.seg_flags, &e.seg_len, &e.seg_seq) ||
	    !(e.seg_flags & RW_TCP_RST))
		return 0;
	if (reason == drop_reset)
		e.rflags = RW_RF_IN_WINDOW;
	tuple_from_sk(&t, sk, e.state);
	s = sock_of(sk);
	if (s)
		e.own = &s->own;
	return emit(&e);
}

/*
 * 6.11+: kfree_skb(skb, location, reason, rx_sk), the receiving socket named
 * by sk_skb_reason_drop() (commit c53795d48ee8, "net: add rx_sk to
 * trace_kfree_skb").  Every packet the host drops comes through here, so the
 * reason is checked first, in one compare against the range of the reasons
 * above; a refused RST is rare enough for the rest.  user/loader.c loads it
 * where BTF gives the tracepoint that argument and enum skb_drop_reason
 * TCP_RESET.
 */
SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb_rst, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	if ((__u32)reason - drop_lo > drop_span)
		return 0;
	return rst_refused(skb, reason, rx_sk);
}

/*
 * The peer probe.  A reset received by one end of a connection whose other
 * end is a socket of this host, alive and silent, was sent by neither end.
 * No index by 4-tuple exists that a healthy connection would not pay for, so
 * the question is asked only when resets were received: user/loader.c puts
 * the tuple each receiver's other end would have in peer_ask (its netns is
 * unknown: the two ends may live in different namespaces) and runs this
 * program (BPF_PROG_TEST_RUN, never attached) once per drain; it walks the
 * sockets whose story the kernel keeps (socks) and answers each question
 * with the socket that has that tuple, in a synchronised state, passing the
 * filters: what rstwatch watches.  Where it cannot run (no
 * bpf_for_each_map_elem() before 5.13), rstwatch says so at start-up.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);	/* RW_PEER_ASK_MAX in user/loader.c */
	__type(key, struct rw_peer_key);
	__type(value, struct rw_peer_ask);
} peer_ask SEC(".maps");

static long peer_match(void *map, __u64 *key, struct rw_sock *s, void *ctx)
{
	const struct tcp_sock *tp = (const void *)*key;
	struct rw_peer_key k = {};
	struct rw_peer_ask *a;
	struct rw_record *r;
	struct rw_twinfo i;

	__builtin_memset(&i, 0, sizeof(i));
	if (skc_read((const struct sock *)tp, &i) || !(TCPF(i.state) & RW_SYNCED))
		return 0;
	__builtin_memcpy(k.laddr, i.t.laddr, sizeof(k.laddr));
	__builtin_memcpy(k.raddr, i.t.raddr, sizeof(k.raddr));
	k.lport = i.t.lport;
	k.rport = i.t.rport;
	k.family = i.t.family;
	a = bpf_map_lookup_elem(&peer_ask, &k);
	if (!a || a->receiver == *key || a->found.type)
		return 0;
	i.t.netns = netns_of(i.net);
	if (!filters_pass(&i.t, s->own.pid ? &s->own : NULL))
		return 0;
	r = &a->found;
	r->type = RW_REC_PEER;
	r->family = i.t.family;
	r->state = i.state;
	r->ts_boot_ns = a->ts_boot_ns;
	r->skaddr = *key;
	r->cookie = i.cookie;
	r->about = a->about;
	__builtin_memcpy(r->laddr, i.t.laddr, sizeof(r->laddr));
	__builtin_memcpy(r->raddr, i.t.raddr, sizeof(r->raddr));
	r->lport = i.t.lport;
	r->rport = i.t.rport;
	r->netns = i.t.netns;
	r->reason = RW_REASON_NONE;
	r->sk_flags = RW_SKF_HAS_SK;
	r->rflags = RW_RF_SEQ;
	r->rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
	r->snd_nxt = BPF_CORE_READ(tp, snd_nxt);
	if (s->own.pid) {
		r->sk_flags |= RW_SKF_OWNER;
		r->owner_pid = s->own.pid;
		r->owner_cgroup = s->own.cgroup;
		r->start_ns = s->own.start_ns;
		__builtin_memcpy(r->owner_comm, s->own.comm, sizeof(r->owner_comm));
	}
	return 0;
}

SEC("raw_tp")
int peer_probe(void *ctx)
{
	bpf_for_each_map_elem(&socks, peer_match, NULL, 0);
	return 0;
}
