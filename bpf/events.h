/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The kernel -> user record ABI, shared by bpf/ and user/.
 *
 * Fixed-width types only, every record starts with its type, and the size is
 * asserted on both sides so a change here breaks the build instead of the
 * decoding.  Values are raw kernel values (TCP state numbers, enum
 * sk_rst_reason numbers); user/decode.c turns them into kernel-independent
 * names using this kernel's BTF.
 */
#ifndef RSTWATCH_EVENTS_H
#define RSTWATCH_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define RW_COMM_LEN 16

enum rw_rec_type {
	RW_REC_SET_STATE = 1,	/* sock:inet_sock_set_state */
	RW_REC_SEND_RESET = 2,	/* tcp:tcp_send_reset */
	RW_REC_RECV_RESET = 3,	/* tcp:tcp_receive_reset */
	RW_REC_ERROR = 4,	/* sock:inet_sk_error_report */
	RW_REC_DESTROY = 5,	/* tcp:tcp_destroy_sock: a socket whose move to CLOSE no
				   program saw (RW_XF_CLOSE_UNSEEN) */
	/* A time-wait socket's timer (timer:*, function tw_timer_handler): no
	 * tracepoint sees a time-wait socket's own life.  skaddr is the
	 * inet_timewait_sock; state TIME_WAIT, tw_substate valid. */
	RW_REC_TW_ARM = 6,	/* timer_start: (re)scheduled */
	RW_REC_TW_CANCEL = 7,	/* timer_cancel: descheduled (killed, reused) or rearmed */
	RW_REC_TW_EXPIRE = 8,	/* timer_expire_entry: the time-wait period ran out */
	RW_REC_TW_SYN_REUSE = 9,	/* a SYN took over a time-wait socket's 4-tuple: its
					   passive child became ESTABLISHED (skaddr: the child) */
	/* The kernel keeps each socket's state (bpf/rstwatch.bpf.c): what
	 * userspace would have followed record by record arrives as one record
	 * when it becomes a verdict. */
	RW_REC_CW_STUCK = 10,	/* found by the CLOSE_WAIT walk (user/loader.c reads socks):
				   in CLOSE_WAIT since since_ns, longer than --close-wait */
	RW_REC_PRESSURE = 11,	/* a TIME_WAIT entry made count reach --port-pressure percent
				   of the ephemeral range for its endpoint */
	RW_REC_CHALLENGE = 12,	/* skb:kfree_skb: a socket refused an RST (RFC 5961): in
				   its window but not exact (challenge ACK, RW_RF_IN_WINDOW),
				   or outside it; seg_seq is the RST's sequence number */
	RW_REC_PEER = 13,	/* the peer probe (user/loader.c): the other end of a reset
				   receiver (about) is a socket of this host rstwatch
				   watches; its state, owner and sequence numbers */
};

/* rw_record.sk_flags */
#define RW_SKF_FULL	(1u << 0)	/* a full socket: the tcp_sock fields are valid */
#define RW_SKF_LINGER	(1u << 1)	/* SOCK_LINGER */
#define RW_SKF_DEAD	(1u << 2)	/* SOCK_DEAD: orphaned, no file refers to it */
#define RW_SKF_DONE	(1u << 3)	/* SOCK_DONE: the peer's FIN was received */
#define RW_SKF_KEEPOPEN	(1u << 4)	/* SO_KEEPALIVE */
#define RW_SKF_HAS_SK	(1u << 5)	/* the tracepoint had a socket at all */
#define RW_SKF_HAS_SKB	(1u << 6)	/* segment fields (seg_*) are valid */
#define RW_SKF_OWNER	(1u << 7)	/* owner_* fields are valid */

/* rw_record.seg_flags: TCP header flags of the segment an RST answers */
#define RW_TCP_FIN 0x01
#define RW_TCP_SYN 0x02
#define RW_TCP_RST 0x04
#define RW_TCP_PSH 0x08
#define RW_TCP_ACK 0x10
#define RW_TCP_URG 0x20

/* rw_record.xflags */
#define RW_XF_SOFTIRQ	(1u << 0)	/* fired while serving a softirq (packet input) */
#define RW_XF_UNHASHED	(1u << 1)	/* TW_CANCEL/EXPIRE: the socket had left the lookup hash */
#define RW_XF_SUBSTATE	(1u << 2)	/* tw_substate is valid (time-wait socket) */
#define RW_XF_PORTS	(1u << 3)	/* port_lo/port_hi hold the netns's ephemeral range */
#define RW_XF_CONTEXT	(1u << 4)	/* RW_XF_SOFTIRQ is known (else: cannot tell) */
#define RW_XF_TW_KNOWN	(1u << 5)	/* SET_STATE into CLOSE: time-wait timers are traced */
#define RW_XF_TW_ARMED	(1u << 6)	/* ... and one was armed for this 4-tuple just before */
#define RW_XF_ROW_KNOWN	(1u << 7)	/* SET_STATE into CLOSE from FIN_WAIT2/CLOSING: the
					   netns's time-wait death row was read */
#define RW_XF_ROW_FULL	(1u << 8)	/* ... and it was (nearly) full: inet_twsk_alloc()
					   refuses past tcp_max_tw_buckets */
#define RW_XF_SINCE	(1u << 9)	/* since_ns is valid */
#define RW_XF_KTHREAD	(1u << 11)	/* in a task that is a kernel thread (not ksoftirqd):
					   e.g. the netns cleanup purging time-wait sockets */
#define RW_XF_EP_COUNTED (1u << 10)	/* TIME_WAIT entry: the kernel counts it against its
					   endpoint (port pressure comes as RW_REC_PRESSURE) */
#define RW_XF_ACTIVE	(1u << 12)	/* the socket sent the first SYN (connect()) */
#define RW_XF_PASSIVE	(1u << 13)	/* the socket answered it (an accepted child) */
#define RW_XF_CLOSE_UNSEEN (1u << 14)	/* DESTROY: the socket's move to CLOSE ran no program
					   (the kernel skipped it): its end is not known */

#define RW_REASON_NONE 0xffff	/* the kernel gave no reason (pre-6.10 tcp_send_reset) */

struct rw_record {
	__u16 type;		/* enum rw_rec_type */
	__u16 family;		/* AF_INET or AF_INET6 */
	__u8 state;		/* socket state when the tracepoint fired */
	__u8 oldstate;		/* RW_REC_SET_STATE only */
	__u8 newstate;		/* RW_REC_SET_STATE only */
	__u8 sk_flags;		/* RW_SKF_* */

	__u64 ts_boot_ns;	/* bpf_ktime_get_boot_ns() */
	__u64 skaddr;		/* kernel socket address: reused once the socket is freed */
	__u64 cookie;		/* the socket's identity, never reused (0: no socket, or a
				   time-wait socket whose full socket never had one) */

	__u32 laddr[4];		/* this host's side, network byte order */
	__u32 raddr[4];
	__u16 lport;		/* host byte order */
	__u16 rport;
	__u32 netns;		/* network namespace inode */

	/* RW_REC_SEND_RESET */
	__u16 reason;		/* raw enum sk_rst_reason value or RW_REASON_NONE */
	__u8 seg_flags;		/* RW_TCP_* of the segment answered, if any */
	__u8 sk_shutdown;
	__u32 seg_len;		/* payload bytes of the segment answered */

	/* socket snapshot (valid with RW_SKF_FULL) */
	__u32 unread;		/* rcv_nxt - copied_seq */
	__u32 unsent;		/* write_seq - snd_nxt */
	__u32 inflight;		/* snd_nxt - snd_una */
	__u32 total_retrans;
	__u8 retransmits;	/* icsk_retransmits: consecutive RTO expiries */
	__u8 probes_out;	/* icsk_probes_out: keepalive / zero-window probes */
	__u8 tw_substate;	/* time-wait socket: TCP_FIN_WAIT2 or TCP_TIME_WAIT */
	__u8 prevstate;		/* RST sent in CLOSE: the state it closed from (0 unknown) */
	__u16 xflags;		/* RW_XF_* */
	__u16 pad2;
	__s32 sk_err;
	__s32 sk_err_soft;
	__s32 linger2;
	__u32 lingertime;	/* sk_lingertime in jiffies, saturated */
	__u32 user_timeout;	/* icsk_user_timeout, ms */
	__u32 snd_wnd;
	__u16 port_lo;		/* net.ipv4.ip_local_port_range of the socket's netns */
	__u16 port_hi;
	__u64 bytes_received;
	__u64 bytes_acked;

	/* the process that owns the socket (RW_SKF_OWNER) */
	__u64 owner_cgroup;
	__u64 start_ns;		/* boot ns when the connection was first seen, 0 if unknown */
	__u32 owner_pid;
	/* the task that was running when the tracepoint fired */
	__u32 cur_pid;
	char owner_comm[RW_COMM_LEN];
	char cur_comm[RW_COMM_LEN];
	__u64 since_ns;		/* boot ns: TIME_WAIT (TW_*) or CLOSE_WAIT (CW_STUCK) began */
	__u32 count;		/* RW_REC_PRESSURE: TIME_WAIT sockets to the endpoint */
	/* socket snapshot (RW_SKF_FULL), raw: with bytes_acked and
	 * bytes_received they give both initial sequence numbers; rcv_nxt is
	 * also where an RST is accepted, and only there (tcp_validate_incoming()) */
	__u32 snd_una;
	__u32 rcv_nxt;
	__u32 seg_seq;		/* RW_REC_CHALLENGE: the refused RST's sequence number */
	/* a reset's socket (RW_RF_SEQ): the rest of its sequence space */
	__u32 snd_nxt;
	__u32 rcv_wnd;		/* tcp_receive_window(): what it would still accept */
	/* ms since the last data sent (lsndtime), the last data received
	 * (icsk_ack.lrcvtime) and the last ACK received (rcv_tstamp), as
	 * tcp_get_info() reports them (RW_RF_IDLE) */
	__u32 last_sent_ms;
	__u32 last_recv_ms;
	__u32 last_ack_ms;
	__u16 rflags;		/* RW_RF_* */
	__u16 pad4;
	__u64 about;		/* RW_REC_PEER: the identity of the reset receiver it answers */
};

_Static_assert(sizeof(struct rw_record) == 264, "rw_record layout changed: update user/decode.c");

/* rw_record.rflags: what a reset's record carries (xflags has no bit left) */
#define RW_RF_SEQ	(1u << 0)	/* snd_nxt, rcv_wnd are valid (rcv_nxt: RW_SKF_FULL) */
#define RW_RF_IDLE	(1u << 1)	/* last_sent_ms, last_recv_ms, last_ack_ms are valid */
#define RW_RF_IN_WINDOW	(1u << 2)	/* CHALLENGE: the RST was in the window (challenge ACK) */
#define RW_RF_SOCK_INPUT (1u << 3)	/* SEND_RESET by a listener: the segment had reached the
					   listener's own input (tcp_v[46]_rcv() clears skb->dev
					   first), not tcp_check_req()'s handshake check */
/* rw_owner.flags */
#define RW_OWN_IN_CGROUP (1u << 0)	/* --cgroup: the owner's cgroup is in the subtree */
#define RW_OWN_ACTIVE	(1u << 1)	/* the socket connect()ed (in socks: rw_sock.own) */
#define RW_OWN_PASSIVE	(1u << 2)	/* the socket was accepted */

/* A socket's owner, as the BPF side learned it. */
struct rw_owner {
	__u64 cgroup;
	__u64 start_ns;		/* boot ns the connection was first seen (connect / accept) */
	__u32 pid;		/* 0: not known */
	__u8 flags;		/* RW_OWN_* */
	__u8 pad[3];
	char comm[RW_COMM_LEN];
};

/* rw_sock.flags */
#define RW_SOCK_DECIDED	(1u << 0)	/* a reset record explained its end: its CLOSE and
					   error report need none */
#define RW_SOCK_AWAIT_RST (1u << 1)	/* closed with no time-wait socket: an RST of its own
					   may follow its destroy (kept past it) */
#define RW_SOCK_CW_REPORTED (1u << 2)	/* reported stuck in CLOSE_WAIT (set by userspace's
					   walk): its exit is a record */
#define RW_SOCK_CW_WANTED (1u << 3)	/* at CLOSE_WAIT entry it passed the filters: the walk
					   may report it */
#define RW_SOCK_CLOSED	(1u << 4)	/* its move to CLOSE was seen (or it was in CLOSE when
					   first met): a destroy without it is a close unseen */

/*
 * A socket's story in the socks map, by its kernel address, from its first
 * owner moment to its destroy.  The address is reused once the socket is
 * freed, so the entry also keeps the socket's identity: an entry whose id
 * is not the socket's at hand was left by an earlier socket (its destroy
 * unseen, or an old copy written back) and is dropped, never inherited.
 * Userspace reads it too: its CLOSE_WAIT walk
 * finds the sockets there past --close-wait (no program may iterate a map on
 * every kernel rstwatch runs on), hence the tuple kept from CLOSE_WAIT entry.
 */
struct rw_sock {
	struct rw_owner own;
	__u64 cw_since;		/* boot ns it entered CLOSE_WAIT, 0 not there */
	__u64 id;		/* the socket's identity (cookie), 0 not known */
	__u32 laddr[4];		/* its tuple at CLOSE_WAIT entry, as in rw_record */
	__u32 raddr[4];
	__u16 lport, rport;
	__u32 netns;
	__u16 family;
	__u8 prev_state;	/* the state it left for CLOSE */
	__u8 flags;		/* RW_SOCK_* */
	__u32 pad;
};

_Static_assert(sizeof(struct rw_sock) == 104, "rw_sock layout changed: update user/loader.c");

/*
 * A time-wait socket cancelled while still hashed, in softirq: an RST killed
 * it (TIME_WAIT assassination), or a SYN took its 4-tuple over
 * (tcp_v4_rcv()'s TCP_TW_SYN, normal), which only the child that handshake
 * makes, later, can tell.  The tw_pending map holds it, by its tuple's hash:
 * the child's ESTABLISHED takes it (reuse, no record by default); userspace's
 * walk (user/loader.c) reports what no child took within RW_TW_PENDING_NS as
 * a kill.  A re-arm right after the cancel (a FIN retransmitted into
 * TIME_WAIT) puts it back.
 */
struct rw_tw_pending {
	struct rw_owner own;
	__u64 since;		/* boot ns its timer was first armed */
	__u64 cancel_ns;	/* boot ns of the cancel */
	__u64 ep;		/* its endpoints key */
	__u64 cookie;
	__u32 laddr[4];
	__u32 raddr[4];
	__u16 lport, rport;
	__u32 netns;
	__u16 family;
	__u16 xflags;		/* RW_XF_* of the cancel (context) */
	__u8 substate;		/* tw_substate (raw) */
	__u8 reported;		/* the cancel was a record already (--time-wait) */
	__u8 wanted;		/* it passed the filters: a kill is reported */
	__u8 counted;		/* counted as a TIME_WAIT entry (RW_CNT_TW_*) */
	__u8 pad[8];
};

_Static_assert(sizeof(struct rw_tw_pending) == 128, "rw_tw_pending layout changed: update user/loader.c");

#define RW_TW_PENDING_NS 1000000000ull	/* a handshake on the 4-tuple completes within this */

/* rw_tw.flags */
#define RW_TW_CANCEL_REPORTED (1u << 0)	/* a task cancelled it while hashed (ss -K): sent as a
					   kill; a start that follows makes it a re-arm */
#define RW_TW_RESET_SENT (1u << 1)	/* it answered a segment with RST: tcp_v4_rcv() kills
					   it next (the reset record said so) */
#define RW_TW_COUNTED	(1u << 2)	/* it passed the filters: counted in RW_CNT_TW_* */

/*
 * A time-wait socket (tws map), by the hash of its 4-tuple and netns
 * (tuple_hash(), computed alike from the full socket at its CLOSE and from
 * the time-wait socket at its timer), from its timer's first start to its
 * end: expiry, connect() taking the 4-tuple, its own RST, or a cancel while
 * hashed (moved to tw_pending, or sent as a kill).  The owner comes from the
 * full socket at its CLOSE.  Not an LRU map: an entry evicted unseen would
 * leave its entry counted and its endpoint's count up for good.  An entry
 * whose end the programs missed is reaped by userspace (user/loader.c)
 * after RW_TW_STALE_NS.
 */
struct rw_tw {
	struct rw_owner own;
	__u64 since;		/* boot ns its timer was first armed */
	__u64 ep;		/* its endpoints key, 0 none */
	__u8 substate;		/* tw_substate when last seen */
	__u8 flags;		/* RW_TW_* */
	__u8 pad[6];
};

_Static_assert(sizeof(struct rw_tw) == 64, "rw_tw layout changed: update user/loader.c");

/* Far beyond any TIME_WAIT period (60 s, or tcp_fin_timeout for the
 * FIN_WAIT2 substate): an entry this old lost its end. */
#define RW_TW_STALE_NS (600ull * 1000000000ull)

/* TIME_WAIT sockets of one endpoint (endpoints map, by a hash of netns, local
 * address, remote address and port): where they compete for ephemeral
 * ports.  Userspace reads the largest for -c/-i.  Entries stay at count 0. */
struct rw_ep {
	__u32 count;
	__u16 port_lo, port_hi;	/* the netns's ephemeral range when first seen */
	__u32 laddr[4];		/* as in rw_record */
	__u32 raddr[4];
	__u32 netns;
	__u16 rport;
	__u16 family;
	__u8 reported;		/* PRESSURE sent; again once it has drained to 0 */
	__u8 pad[7];
};

_Static_assert(sizeof(struct rw_ep) == 56, "rw_ep layout changed: update user/loader.c");

/*
 * The peer probe (user/loader.c runs bpf/rstwatch.bpf.c peer_probe() after a
 * drain that brought resets received): the other end of each, looked up by
 * the tuple it would have (the receiver's, reversed; its netns unknown) among
 * the sockets the kernel keeps a story for.
 */
struct rw_peer_key {
	__u32 laddr[4];		/* the wanted socket's own view, as in rw_record */
	__u32 raddr[4];
	__u16 lport, rport;
	__u16 family;
	__u16 pad;
};

struct rw_peer_ask {
	__u64 receiver;		/* the receiver's kernel address: never its own peer */
	__u64 about;		/* its identity, copied to the answer */
	__u64 ts_boot_ns;	/* when it was reset: the answer's time */
	struct rw_record found;	/* the answer (type RW_REC_PEER), or type 0: none */
};

_Static_assert(sizeof(struct rw_peer_key) == 40, "rw_peer_key layout changed: update user/loader.c");

/* Indexes of the per-CPU counters map. */
enum rw_counter {
	RW_CNT_PRODUCED = 0,	/* records the programs tried to emit */
	RW_CNT_LOST = 1,	/* records lost: ring buffer full */
	RW_CNT_OWNER_FAIL = 2,	/* socket-state or process-tree map updates that failed */
	/* what the kernel counts instead of sending a record per connection */
	RW_CNT_TW_ENTERED = 3,	/* connections that entered TIME_WAIT (through the filters) */
	RW_CNT_TW_EXPIRED = 4,	/* ... whose TIME_WAIT ran out */
	RW_CNT_TW_REUSED = 5,	/* ... whose 4-tuple a new connection took (connect(), a SYN) */
	RW_CNT_TW_ENDED = 6,	/* ... that left TIME_WAIT, however: in it now = entered - ended */
	RW_CNT_TW_UNTRACKED = 7,	/* TIME_WAIT entries the full tws map could not take */
	RW_CNT_CLOSE_UNSEEN = 8,	/* sockets destroyed whose move to CLOSE ran no program
					   (through the filters): a RW_REC_DESTROY each */
	RW_CNT_MAX,
};

#endif /* RSTWATCH_EVENTS_H */
