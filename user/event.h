/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The kernel-independent event: what user/decode.c makes of a BPF record and
 * what enters the classifier.  Everything here is in rstwatch's own terms
 * (its own state and reason numbering, wall-clock time), so a recorded stream
 * classifies the same on any machine.
 */
#ifndef RSTWATCH_EVENT_H
#define RSTWATCH_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#define RW_COMM_MAX 16

/*
 * TCP states in rstwatch's numbering; names in names.c.  Written to trace
 * files (rstwatch-trace(5) lists them; tests/unit/sync compares): a value
 * never changes, a new state takes the next number.
 */
enum rw_state {
	RW_ST_UNKNOWN = 0,
	RW_ST_ESTABLISHED = 1,
	RW_ST_SYN_SENT = 2,
	RW_ST_SYN_RECV = 3,
	RW_ST_FIN_WAIT1 = 4,
	RW_ST_FIN_WAIT2 = 5,
	RW_ST_TIME_WAIT = 6,
	RW_ST_CLOSE = 7,
	RW_ST_CLOSE_WAIT = 8,
	RW_ST_LAST_ACK = 9,
	RW_ST_LISTEN = 10,
	RW_ST_CLOSING = 11,
	RW_ST_NEW_SYN_RECV = 12,
	RW_ST_BOUND_INACTIVE = 13,
	RW_ST_COUNT
};

/* Reset reasons (enum sk_rst_reason, 6.10+) in rstwatch's numbering, written
 * to trace files: a reason keeps its number, a new one goes before COUNT. */
enum rw_reason {
	RW_RSN_NONE = 0,	/* the kernel gave no reason (older kernel, or not a send) */
	RW_RSN_OTHER,		/* a reason this build has no name for: see reason_name */
	RW_RSN_NOT_SPECIFIED,
	RW_RSN_NO_SOCKET,
	RW_RSN_TCP_INVALID_ACK_SEQUENCE,
	RW_RSN_TCP_RFC7323_PAWS,
	RW_RSN_TCP_TOO_OLD_ACK,
	RW_RSN_TCP_ACK_UNSENT_DATA,
	RW_RSN_TCP_FLAGS,
	RW_RSN_TCP_OLD_ACK,
	RW_RSN_TCP_ABORT_ON_DATA,
	RW_RSN_TCP_TIMEWAIT_SOCKET,
	RW_RSN_INVALID_SYN,
	RW_RSN_TCP_ABORT_ON_CLOSE,
	RW_RSN_TCP_ABORT_ON_LINGER,
	RW_RSN_TCP_ABORT_ON_MEMORY,
	RW_RSN_TCP_STATE,
	RW_RSN_TCP_KEEPALIVE_TIMEOUT,
	RW_RSN_TCP_DISCONNECT_WITH_DATA,
	RW_RSN_COUNT
};

/* Event kinds, written to trace files: a kind keeps its number, a new one
 * takes the next (bpf/events.h numbers the records alike: tests/unit/sync). */
enum rw_ev_kind {
	RW_EV_STATE = 1,	/* a state transition (into/out of CLOSE, CLOSE_WAIT) */
	RW_EV_SEND_RESET = 2,	/* this host sent an RST */
	RW_EV_RECV_RESET = 3,	/* a socket accepted an incoming RST */
	RW_EV_ERROR = 4,	/* an error was reported to the socket's owner */
	RW_EV_DESTROY = 5,	/* the socket was freed (live: only a close unseen,
				   RW_EVF_CLOSE_UNSEEN) */
	RW_EV_TW_ARM = 6,	/* a time-wait socket's timer was (re)armed */
	RW_EV_TW_CANCEL = 7,	/* ... cancelled: the socket dies early, or is re-armed */
	RW_EV_TW_EXPIRE = 8,	/* ... fired: TIME_WAIT (or its FIN_WAIT2 substate) ran out */
	RW_EV_TW_SYN_REUSE = 9,	/* a SYN's new connection took a time-wait socket's 4-tuple */
	RW_EV_CW_STUCK = 10,	/* in CLOSE_WAIT since since_ns, past --close-wait (kernel walk) */
	RW_EV_PRESSURE = 11,	/* a TIME_WAIT entry brought its endpoint to tw_count sockets,
				   --port-pressure percent of the ephemeral range */
	RW_EV_CHALLENGE = 12,	/* a socket refused an RST (RFC 5961): seg_seq against its
				   rcv_nxt, RW_EVF_IN_WINDOW if it answered a challenge ACK */
	RW_EV_PEER = 13,	/* the other end of reset receiver `about` is a socket of
				   this host that rstwatch watches: its state, owner, seqs */
};

/* rw_event.flags */
#define RW_EVF_SK	(1u << 0)	/* there was a socket */
#define RW_EVF_FULL	(1u << 1)	/* full socket: the snapshot fields are valid */
#define RW_EVF_LINGER	(1u << 2)	/* SO_LINGER on */
#define RW_EVF_ORPHAN	(1u << 3)	/* no file refers to the socket any more */
#define RW_EVF_FIN_RCVD	(1u << 4)	/* the peer's FIN had been received */
#define RW_EVF_KEEPALIVE (1u << 5)	/* SO_KEEPALIVE on */
#define RW_EVF_SEG	(1u << 6)	/* seg_flags/seg_len describe a segment answered */
#define RW_EVF_OWNER	(1u << 7)	/* owner fields are valid */
#define RW_EVF_HASHED	(1u << 8)	/* TW_CANCEL: the time-wait socket was still in the
					   lookup hash (connect() unhashes one it takes over) */
#define RW_EVF_HASH_KNOWN (1u << 9)	/* RW_EVF_HASHED was checked */
#define RW_EVF_SOFTIRQ	(1u << 10)	/* fired in softirq (a segment arrived), not in a task */
#define RW_EVF_CONTEXT	(1u << 11)	/* RW_EVF_SOFTIRQ was checked */
#define RW_EVF_PORTS	(1u << 12)	/* port_lo/port_hi are valid */
#define RW_EVF_SUBSTATE	(1u << 13)	/* tw_substate is valid */
#define RW_EVF_NO_TW	(1u << 14)	/* FIN_WAIT2/CLOSING -> CLOSE: no time-wait socket
					   was armed for it (time-wait timers traced) */
#define RW_EVF_ROW_KNOWN (1u << 15)	/* FIN_WAIT2/CLOSING -> CLOSE: whether the time-wait
					   death row was full is known (RW_EVF_ROW_FULL) */
#define RW_EVF_ROW_FULL	(1u << 16)	/* ... it was: no time-wait socket could be made */
#define RW_EVF_EP_COUNTED (1u << 17)	/* TIME_WAIT entry: port pressure is counted in the
					   kernel and arrives as RW_EV_PRESSURE */
#define RW_EVF_ACTIVE	(1u << 18)	/* this side sent the first SYN (connect()) */
#define RW_EVF_PASSIVE	(1u << 19)	/* this side answered it (accepted) */
#define RW_EVF_CLOSE_UNSEEN (1u << 20)	/* RW_EV_DESTROY: the socket's move to CLOSE ran no
					   program (the kernel skipped it): how it ended is
					   not known, and a verdict it made may be missing */
#define RW_EVF_SEQ	(1u << 21)	/* snd_nxt, rcv_wnd are valid (rcv_nxt: RW_EVF_FULL) */
#define RW_EVF_IDLE	(1u << 22)	/* last_sent_ms, last_recv_ms, last_ack_ms are valid */
#define RW_EVF_IN_WINDOW (1u << 23)	/* RW_EV_CHALLENGE: the RST fell in the receive window */
#define RW_EVF_SOCK_INPUT (1u << 24)	/* RW_EV_SEND_RESET by a listener: the segment went
					   through the listener's own input, not the handshake
					   check (no accept queue overflow) */

/* rw_event.seg_flags: the TCP header's flag bits (RFC 9293), as on the wire */
#define RW_SEG_FIN 0x01
#define RW_SEG_SYN 0x02
#define RW_SEG_RST 0x04
#define RW_SEG_ACK 0x10

#define RW_REASON_NAME_MAX 40
#define RW_CGROUP_MAX 128
#define RW_RUNTIME_MAX 16
#define RW_CONTAINER_ID_MAX 65	/* 64 hex digits, as every runtime here names them */
#define RW_POD_UID_MAX 37	/* 8-4-4-4-12 */
#define RW_POD_NS_MAX 64	/* a Kubernetes namespace is a DNS label: 63 */
#define RW_POD_NAME_MAX 254	/* a pod name is a DNS subdomain: 253 */

/* The owner's container and pod: runtime, id and pod UID from its cgroup
 * path (container.c), the pod's namespace and name from the kubelet's pod
 * log directories (pods.c); "" where unknown. */
struct rw_container {
	char runtime[RW_RUNTIME_MAX];	/* "containerd", "cri-o", "docker", "podman" */
	char id[RW_CONTAINER_ID_MAX];
	char pod_uid[RW_POD_UID_MAX];
	char pod_ns[RW_POD_NS_MAX];
	char pod[RW_POD_NAME_MAX];
};

struct rw_event {
	uint64_t time_ns;	/* CLOCK_REALTIME, ns */
	uint64_t sk;		/* socket identity, never reused: its cookie (traces of
				   format 1: its address); 0 no socket */
	uint64_t skaddr;	/* the socket's kernel address (reused once freed) */
	uint8_t kind;		/* enum rw_ev_kind */
	uint8_t state;		/* enum rw_state when the event fired */
	uint8_t oldstate, newstate;	/* RW_EV_STATE */
	uint8_t reason;		/* enum rw_reason */
	uint8_t family;		/* 4 or 6 */
	uint8_t seg_flags;	/* TCP flags of the segment answered (RW_SEG_*) */
	uint8_t shutdown;	/* sk_shutdown bits */
	uint32_t flags;		/* RW_EVF_* */
	uint8_t laddr[16], raddr[16];	/* network order; IPv4 in the first 4 bytes */
	uint16_t lport, rport;
	uint32_t netns;
	uint32_t seg_len;

	uint32_t unread, unsent, inflight, total_retrans;
	uint8_t retransmits, probes_out;
	int32_t sk_err, sk_err_soft;
	int32_t linger2;
	uint32_t lingertime;
	uint32_t user_timeout_ms;
	uint32_t snd_wnd;
	uint64_t bytes_received, bytes_acked;

	uint64_t start_ns;	/* CLOCK_REALTIME when the connection was first seen, 0 unknown */
	uint32_t pid;		/* owner */
	uint32_t cur_pid;	/* the task running when the event fired */
	char comm[RW_COMM_MAX];
	char cur_comm[RW_COMM_MAX];
	char cgroup[RW_CGROUP_MAX];	/* owner's cgroup path, "" unknown */
	char reason_name[RW_REASON_NAME_MAX];	/* kernel name without SK_RST_REASON_, "" none */
	uint8_t tw_substate;	/* time-wait socket: RW_ST_FIN_WAIT2 or RW_ST_TIME_WAIT */
	uint16_t port_lo, port_hi;	/* the netns's ephemeral port range */
	uint8_t prevstate;	/* RST sent in CLOSE: the state it closed from (RW_ST_UNKNOWN) */
	uint64_t since_ns;	/* CLOCK_REALTIME: TIME_WAIT (tw events) or CLOSE_WAIT
				   (RW_EV_CW_STUCK) began, 0 unknown */
	uint32_t tw_count;	/* RW_EV_PRESSURE: TIME_WAIT sockets to the endpoint */
	struct rw_container ctr;	/* the owner's container and pod (RW_EVF_OWNER) */
	uint32_t snd_una, rcv_nxt;	/* RW_EVF_FULL: raw, for the initial sequence numbers;
					   an RST is accepted at rcv_nxt only */
	uint32_t seg_seq;	/* RW_EV_CHALLENGE: the refused RST's sequence number */
	uint32_t snd_nxt, rcv_wnd;	/* RW_EVF_SEQ: the rest of the socket's sequence space */
	/* RW_EVF_IDLE: ms since the last data sent, data received, ACK received */
	uint32_t last_sent_ms, last_recv_ms, last_ack_ms;
	uint64_t about;		/* RW_EV_PEER: the reset receiver's identity (its sk) */

	/* not in trace files: which of the files given to -r it came from (0
	 * live); the classifier keeps the sockets of each apart */
	uint8_t source;
};

const char *rw_state_name(enum rw_state s);
enum rw_state rw_state_from_name(const char *name);	/* "ESTABLISHED" -> RW_ST_ESTABLISHED */
const char *rw_reason_name(enum rw_reason r);
enum rw_reason rw_reason_from_name(const char *name);	/* "NO_SOCKET" -> ... */

#endif /* RSTWATCH_EVENT_H */
