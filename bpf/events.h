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
	RW_REC_DESTROY = 5,	/* tcp:tcp_destroy_sock */
	/* A time-wait socket's timer (timer:*, function tw_timer_handler): no
	 * tracepoint sees a time-wait socket's own life.  skaddr is the
	 * inet_timewait_sock; state TIME_WAIT, tw_substate valid. */
	RW_REC_TW_ARM = 6,	/* timer_start: (re)scheduled */
	RW_REC_TW_CANCEL = 7,	/* timer_cancel: descheduled (killed, reused) or rearmed */
	RW_REC_TW_EXPIRE = 8,	/* timer_expire_entry: the time-wait period ran out */
	RW_REC_TW_SYN_REUSE = 9,	/* a SYN took over a time-wait socket's 4-tuple: its
					   passive child became ESTABLISHED (skaddr: the child) */
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
	__u8 pad;
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
};

_Static_assert(sizeof(struct rw_record) == 208, "rw_record layout changed: update user/decode.c");

/* Indexes of the per-CPU counters map. */
enum rw_counter {
	RW_CNT_PRODUCED = 0,	/* records the programs tried to emit */
	RW_CNT_LOST = 1,	/* records lost: ring buffer full */
	RW_CNT_OWNER_FAIL = 2,	/* owner or process-tree map updates that failed */
	RW_CNT_MAX,
};

#endif /* RSTWATCH_EVENTS_H */
