// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The floor: empty programs on the very tracepoints rstwatch attaches to
 * (the TCP ones and, for TIME_WAIT, the timer ones),
 * with the same program type (tp_btf) and built by the same Makefile rules.
 * What they cost is what any BPF tracer of these events pays before it does
 * any work; tests/bench/run.py compares rstwatch against it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(floor_set_state)
{
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(floor_send_reset)
{
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(floor_receive_reset)
{
	return 0;
}

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(floor_error_report)
{
	return 0;
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(floor_destroy_sock)
{
	return 0;
}

SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(floor_rcv_space_adjust)
{
	return 0;
}

/* rstwatch follows TIME_WAIT through the time-wait timer on these */
SEC("tp_btf/timer_start")
int BPF_PROG(floor_timer_start)
{
	return 0;
}

SEC("tp_btf/timer_cancel")
int BPF_PROG(floor_timer_cancel)
{
	return 0;
}

SEC("tp_btf/timer_expire_entry")
int BPF_PROG(floor_timer_expire)
{
	return 0;
}
