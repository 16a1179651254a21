// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * decode: kernel numbers are mapped by name from BTF.  The BTF here is built
 * by hand with numbering that differs from any real kernel, so a decoder that
 * used a fixed table would fail.
 */
#include <bpf/btf.h>
#include <sys/socket.h>

#include "check.h"
#include "decode.h"
#include "events.h"

static struct btf *make_btf(bool with_reasons)
{
	struct btf *btf = btf__new_empty();

	btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	/* TCP states, anonymous as in vmlinux.h, shuffled */
	btf__add_enum(btf, NULL, 4);
	btf__add_enum_value(btf, "TCP_ESTABLISHED", 7);
	btf__add_enum_value(btf, "TCP_CLOSE", 1);
	btf__add_enum_value(btf, "TCP_SYN_SENT", 3);
	btf__add_enum_value(btf, "TCP_TIME_WAIT", 9);
	btf__add_enum_value(btf, "TCP_FUTURE_STATE", 20);
	if (with_reasons) {
		btf__add_enum(btf, "sk_rst_reason", 4);
		btf__add_enum_value(btf, "SK_RST_REASON_NOT_SPECIFIED", 0);
		btf__add_enum_value(btf, "SK_RST_REASON_TCP_ABORT_ON_CLOSE", 2);
		btf__add_enum_value(btf, "SK_RST_REASON_NO_SOCKET", 5);
		btf__add_enum_value(btf, "SK_RST_REASON_SOMETHING_NEW", 6);
	}
	return btf;
}

static void names_by_name(void)
{
	struct btf *btf = make_btf(true);
	struct rw_decoder d = { .boot_to_real_ns = 1000 };
	struct rw_record r = { 0 };
	struct rw_event ev;
	char err[128];

	TEST("decode by name");
	CHECK_INT("init", rw_decoder_init(&d, btf, err, sizeof(err)), 0);
	CHECK_INT("have reasons", d.have_reasons, 1);

	r.type = RW_REC_SEND_RESET;
	r.family = AF_INET6;
	r.state = 1;		/* TCP_CLOSE here */
	r.reason = 2;		/* TCP_ABORT_ON_CLOSE here */
	r.ts_boot_ns = 5;
	r.skaddr = 0xabc;
	r.lport = 1234;
	r.rport = 80;
	r.laddr[0] = 0x000031fd;
	r.sk_flags = RW_SKF_HAS_SK | RW_SKF_FULL | RW_SKF_OWNER | RW_SKF_LINGER | RW_SKF_DONE;
	r.unread = 3;
	r.sk_err = 110;
	r.owner_pid = 77;
	memcpy(r.owner_comm, "0123456789abcdef", 16);	/* no NUL: kept to 16 bytes */
	CHECK_INT("decode", rw_decode(&d, &r, sizeof(r), &ev), 0);
	CHECK_INT("kind", ev.kind, RW_EV_SEND_RESET);
	CHECK_STR("state", rw_state_name(ev.state), "CLOSE");
	CHECK_INT("reason", ev.reason, RW_RSN_TCP_ABORT_ON_CLOSE);
	CHECK_STR("reason name", ev.reason_name, "TCP_ABORT_ON_CLOSE");
	CHECK_INT("time", ev.time_ns, 1005);
	CHECK_INT("family", ev.family, 6);
	CHECK_INT("ports", ev.lport * 100000 + ev.rport, 1234 * 100000 + 80);
	CHECK_INT("laddr byte", ev.laddr[0], 0xfd);
	CHECK_INT("flags", ev.flags, RW_EVF_SK | RW_EVF_FULL | RW_EVF_OWNER | RW_EVF_LINGER |
		  RW_EVF_FIN_RCVD);
	CHECK_INT("unread", ev.unread, 3);
	CHECK_INT("sk_err", ev.sk_err, 110);
	CHECK_INT("owner", ev.pid, 77);
	CHECK_INT("comm kept to its 16 bytes", memcmp(ev.comm, "0123456789abcdef", 16), 0);

	r.reason = 6;		/* a name this build does not know */
	rw_decode(&d, &r, sizeof(r), &ev);
	CHECK_INT("unknown reason kept by name", ev.reason, RW_RSN_OTHER);
	CHECK_STR("its kernel name", ev.reason_name, "SOMETHING_NEW");

	r.reason = 40;		/* a number the BTF does not have */
	rw_decode(&d, &r, sizeof(r), &ev);
	CHECK_STR("unnamed reason as a number", ev.reason_name, "40");

	r.reason = RW_REASON_NONE;
	r.state = 20;		/* a state this build does not know */
	rw_decode(&d, &r, sizeof(r), &ev);
	CHECK_STR("no reason", ev.reason_name, "");
	CHECK_STR("unknown state", rw_state_name(ev.state), "UNKNOWN");

	/* a refused RST: its sequence number against the socket's */
	r.type = RW_REC_CHALLENGE;
	r.rflags = RW_RF_SEQ | RW_RF_IDLE | RW_RF_IN_WINDOW;
	r.seg_seq = 1100;
	r.rcv_nxt = 100;
	r.snd_nxt = 7;
	r.rcv_wnd = 65535;
	r.last_sent_ms = 1;
	r.last_recv_ms = 2;
	r.last_ack_ms = 3;
	CHECK_INT("decode challenge", rw_decode(&d, &r, sizeof(r), &ev), 0);
	CHECK_INT("kind challenge", ev.kind, RW_EV_CHALLENGE);
	CHECK_INT("seq, idle, in window", ev.flags & (RW_EVF_SEQ | RW_EVF_IDLE | RW_EVF_IN_WINDOW),
		  RW_EVF_SEQ | RW_EVF_IDLE | RW_EVF_IN_WINDOW);
	CHECK_INT("sequence numbers", ev.seg_seq - ev.rcv_nxt + ev.snd_nxt + ev.rcv_wnd,
		  1000 + 7 + 65535);
	CHECK_INT("idle times", ev.last_sent_ms * 100 + ev.last_recv_ms * 10 + ev.last_ack_ms, 123);
	r.rflags = 0;
	r.rcv_nxt = 0;
	rw_decode(&d, &r, sizeof(r), &ev);
	CHECK_INT("without the flags: not valid", ev.flags & (RW_EVF_SEQ | RW_EVF_IDLE), 0);
	CHECK_INT("... and zero", ev.rcv_nxt + ev.last_ack_ms, 0);
	r.type = RW_REC_SEND_RESET;
	r.rflags = RW_RF_SOCK_INPUT;
	rw_decode(&d, &r, sizeof(r), &ev);
	CHECK_INT("a listener's own input", ev.flags & RW_EVF_SOCK_INPUT, RW_EVF_SOCK_INPUT);
	r.type = RW_REC_CHALLENGE;
	r.rflags = 0;
	r.type = RW_REC_PEER;
	r.about = 0x2a0001;
	rw_decode(&d, &r, sizeof(r), &ev);
	CHECK_INT("kind peer", ev.kind, RW_EV_PEER);
	CHECK_INT("about: the receiver", ev.about == 0x2a0001, 1);
	r.rflags = 0;
	r.about = 0;
	r.xflags = RW_XF_CLOSE_UNSEEN;
	rw_decode(&d, &r, sizeof(r), &ev);
	CHECK_INT("close unseen only on a destroy", ev.flags & RW_EVF_CLOSE_UNSEEN, 0);
	r.type = RW_REC_DESTROY;
	rw_decode(&d, &r, sizeof(r), &ev);
	CHECK_INT("a destroy whose close no program saw", !!(ev.flags & RW_EVF_CLOSE_UNSEEN), 1);
	r.xflags = 0;
	rw_decode(&d, &r, sizeof(r), &ev);
	CHECK_INT("... not otherwise", ev.flags & RW_EVF_CLOSE_UNSEEN, 0);

	r.type = 99;
	CHECK_INT("unknown record type rejected", rw_decode(&d, &r, sizeof(r), &ev), -1);
	r.type = RW_REC_DESTROY;
	CHECK_INT("short record rejected", rw_decode(&d, &r, sizeof(r) - 1, &ev), -1);
	btf__free(btf);
}

static void old_kernel(void)
{
	struct btf *btf = make_btf(false);
	struct rw_decoder d = { 0 };
	char err[128];

	TEST("kernel without sk_rst_reason");
	CHECK_INT("init", rw_decoder_init(&d, btf, err, sizeof(err)), 0);
	CHECK_INT("no reasons", d.have_reasons, 0);
	btf__free(btf);

	TEST("BTF without TCP states");
	btf = btf__new_empty();
	btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	CHECK_INT("init fails", rw_decoder_init(&d, btf, err, sizeof(err)), -1);
	CHECK_STR("says why", err, "kernel BTF has no TCP state enum (TCP_ESTABLISHED)");
	btf__free(btf);
}

int main(void)
{
	names_by_name();
	old_kernel();
	return check_done("decode");
}
