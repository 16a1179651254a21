// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * flow_id: a hash of the connection's two initial sequence numbers (ISNs),
 * which both ends know and NAT leaves alone (it rewrites addresses and
 * ports, not sequence numbers).  Each end finds them in its tcp_sock:
 *
 *   bytes_received counts what tcp_rcv_nxt_update() moved rcv_nxt over,
 *   data and the peer's FIN alike, since rcv_nxt was set to the peer's
 *   ISN + 1 (tcp_rcv_synsent_state_process() writes it directly when the
 *   SYN-ACK arrives, tcp_create_openreq_child() for an accepted socket):
 *       rcv_isn = rcv_nxt - bytes_received - 1            (both sides)
 *
 *   bytes_acked counts what tcp_snd_una_update() moved snd_una over.  A
 *   connect()ing socket starts with snd_una = ISN (tcp_connect_init()) and
 *   the SYN-ACK's ACK moves it over the SYN (tcp_ack() from
 *   tcp_rcv_synsent_state_process()); an accepted socket is born with
 *   snd_una = ISN + 1 (tcp_create_openreq_child()), the handshake's last
 *   ACK moving nothing.  So our FIN counts once acked, the SYN only for
 *   the side that connected:
 *       snd_isn = snd_una - bytes_acked                   (connect()ed)
 *       snd_isn = snd_una - bytes_acked - 1               (accepted)
 *
 * All modulo 2^32.  The BPF side says which side a socket is (it saw the
 * connect() or the accepted child); a socket that existed before rstwatch
 * started is neither, and gets no flow id.  Neither does a socket still in
 * SYN_SENT: it has no peer ISN (tcp_connect_init() zeroes rcv_nxt).
 *
 * flow_id = splitmix64's finalizer over (lower ISN << 32 | higher ISN),
 * printed as 16 hex digits: the same from either end, and computable by
 * anyone who has the two numbers (from a packet capture, say).
 */
#include "flow.h"

static bool synchronized(const struct rw_event *ev)
{
	if (ev->state == RW_ST_SYN_SENT || ev->oldstate == RW_ST_SYN_SENT ||
	    ev->prevstate == RW_ST_SYN_SENT)
		return false;
	/* never synchronized: tcp_connect_init() left rcv_nxt at 0 (a real
	 * one is 0 once in 2^32 connections: that one goes without an id) */
	return !(ev->rcv_nxt == 0 && ev->bytes_received == 0);
}

bool rw_flow_isns(const struct rw_event *ev, uint32_t *snd_isn, uint32_t *rcv_isn)
{
	bool active = ev->flags & RW_EVF_ACTIVE, passive = ev->flags & RW_EVF_PASSIVE;

	if (!(ev->flags & RW_EVF_FULL) || active == passive || !synchronized(ev))
		return false;
	*rcv_isn = ev->rcv_nxt - (uint32_t)ev->bytes_received - 1;
	*snd_isn = ev->snd_una - (uint32_t)ev->bytes_acked - (passive ? 1 : 0);
	return true;
}

uint64_t rw_flow_id(const struct rw_event *ev)
{
	uint32_t a, b;
	uint64_t z;

	if (!rw_flow_isns(ev, &a, &b))
		return 0;
	z = a < b ? (uint64_t)a << 32 | b : (uint64_t)b << 32 | a;
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1;
}
