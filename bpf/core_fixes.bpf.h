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

#endif /* RSTWATCH_CORE_FIXES_BPF_H */
