"""Scenarios for the local aborts and reply RSTs:
data_after_close, linger2, memory, killed, timeout/user_timeout,
timeout/zero_window, time_wait_rst, bad_ack, listen_overflow.

Each function takes a fresh Case `c` from run.py (A = client 'rw_cli',
B = server 'rw_srv') and is registered through SCENARIOS at the bottom.

RW_EVENTS=FILE (developer aid): beside each scenario run also
`rstwatch --events -j --port PORT` and append its raw event stream to FILE.
"""
import functools
import os
import subprocess
import time

import btf
from verdicts import Failure, rst_reason


def events_tap(fn):
    """With RW_EVENTS set, record what the classifier is fed (see above)."""
    @functools.wraps(fn)
    def run(c):
        path = os.environ.get("RW_EVENTS")
        if not path:
            return fn(c)
        tap = c.extra(["--events", "--port", str(c.port)])
        try:
            return fn(c)
        finally:
            lines = tap.stop()
            with open(path, "a") as f:
                f.write(f"## {c.name} port {c.port} A={c.ino['A']} B={c.ino['B']}\n")
                for raw, _ in lines:
                    f.write(raw + "\n")
    return run


def wait_sockets(c, side, state, count, timeout=5):
    """Wait until `side` has `count` sockets in ss state `state` on this test's ports."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return c.sockets_check(side, state, count)
        except Failure:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


# ------------------------------------------------------------ data_after_close

def peer_gone_in_close_wait(srv):
    """srv (CLOSE_WAIT) has processed a RST: poll says POLLHUP, send EPIPE."""
    srv.do("wait_hup")
    srv.send("send 1")
    srv.expect("EPIPE")


def hit_fin_wait2_tw(c, poke, cls, origin, nbytes):
    """A closes first; its orphan reaches FIN_WAIT2 and becomes a timewait
    socket in the FIN_WAIT2 substate (tcp_time_wait(), tcp_fin_timeout <= 60 s);
    B (CLOSE_WAIT) then sends what poke(srv) sends, which the tw answers with
    RST (tcp_timewait_state_process() -> TCP_TW_RST): verdict `cls` in A with
    evidence.segment_bytes nbytes, peer_reset CLOSE_WAIT in B.  No abort
    counter on this path; TW counts the tw's creation.

    A half-closes and reaches FIN_WAIT2 before close(), so that close()
    itself calls tcp_time_wait(): after a plain close(), an ACK of the FIN
    that finds the socket still locked by close() leaves a full FIN_WAIT2
    orphan for tcp_fin_timeout instead (seen on 6.1 under qemu), and the
    poke then meets that socket."""
    cli, srv = c.established()
    cli.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    cli.do("wait_state FIN_WAIT2")
    cli.do("close")
    wait_sockets(c, "A", "fin-wait-2", 1)        # ss shows the tw in its substate
    poke(srv)
    peer_gone_in_close_wait(srv)
    c.sockets_check("A", "fin-wait-2", 0)
    c.finish([c.expect("A", cls, None, "FIN_WAIT2", origin, cli,
                       reason=rst_reason("TCP_TIMEWAIT_SOCKET"),
                       evidence={"segment_bytes": nbytes}),
              c.expect("A", "time_wait", None, "FIN_WAIT2", "lifecycle", cli,
                       evidence={"substate": "FIN_WAIT2"}),
              c.expect("B", "peer_reset", None, "CLOSE_WAIT", "peer", srv)],
             {"A": {"TW": 1}})


@events_tap
def data_after_close_tw(c):
    """New data at a tw in the FIN_WAIT2 substate."""
    hit_fin_wait2_tw(c, lambda srv: srv.do("send 10"), "data_after_close", "local", 10)


@events_tap
def data_after_close_orphan(c):
    """A closes while B drops A's segments (RSTs excepted): the orphan stays
    in FIN_WAIT1, its FIN unacked; B's data then hits it: tcp_reset() on A's
    socket, TCPAbortOnData, RST with TCP_ABORT_ON_DATA."""
    cli, srv = c.established()
    c.pair.nft_input("B", f"tcp dport {c.port} tcp flags & rst == 0 drop")
    cli.do("send 10")
    cli.do("close")
    c.sockets_check("A", "fin-wait-1", 1)
    srv.do("send 10")
    srv.send("recv")
    srv.expect("ECONNRESET")
    c.sockets_check("A", "fin-wait-1", 0)
    c.finish([c.expect("A", "data_after_close", None, "FIN_WAIT1", "local", cli,
                       reason=rst_reason("TCP_ABORT_ON_DATA"),
                       evidence={"segment_bytes": 10}),
              c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)],
             {"A": {"TCPAbortOnData": 1}})


# ------------------------------------------------------------ linger2, memory

@events_tap
def linger2(c):
    """A half-closes, reaches FIN_WAIT2, sets TCP_LINGER2 -1 and closes:
    tcp_close() resets at once (TCP_ABORT_ON_LINGER)."""
    cli, srv = c.established()
    cli.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    cli.do("wait_state FIN_WAIT2")
    cli.do("linger2 -1")
    cli.do("close")
    peer_gone_in_close_wait(srv)
    c.finish([c.expect("A", "linger2", None, "FIN_WAIT2", "local", cli,
                       reason=rst_reason("TCP_ABORT_ON_LINGER")),
              c.expect("B", "peer_reset", None, "CLOSE_WAIT", "peer", srv)],
             {"A": {"TCPAbortOnLinger": 1}})


MAX_ORPHANS = "/proc/sys/net/ipv4/tcp_max_orphans"


@events_tap
def memory(c):
    """Too many orphans.  A first orphan (FIN_WAIT2, kept as a full socket by
    tcp_fin_timeout 120) makes the kernel's orphan count, cached every 100 ms,
    at least 1; then, with the GLOBAL tcp_max_orphans at 0 for a moment, the
    second client's close() finds too many orphans and resets."""
    c.pair.sysctl("A", "net.ipv4.tcp_fin_timeout", 120)
    first, srv1 = c.established()
    first.do("shutdown_wr")
    srv1.send("recv")
    srv1.expect("EOF")
    first.do("wait_state FIN_WAIT2")
    first.do("close")
    wait_sockets(c, "A", "fin-wait-2", 1)
    time.sleep(0.5)          # tcp_orphan_timer (100 ms, deferrable) caches the orphan count
    srv = c.actor("B", "rw_srv2")
    srv1.do("close_listener")
    srv.do(f"listen {c.family} {c.addr('B')} {c.port}")
    cli = c.client()
    c.connect(cli, srv)
    # B must not ACK the FIN that tcp_close() sends before it counts the
    # orphans: an ACK processed from the backlog would make it FIN_WAIT2.
    c.pair.nft_input("B", f"tcp dport {c.port} tcp flags & rst == 0 drop")
    with open(MAX_ORPHANS) as f:
        saved = f.read().strip()
    try:
        with open(MAX_ORPHANS, "w") as f:
            f.write("0")
        cli.do("close")
    finally:
        with open(MAX_ORPHANS, "w") as f:
            f.write(saved)
    # A's RST carries seq = snd_nxt past the FIN B never saw: in window but
    # not exact, so B refuses it (challenged_rst, where this kernel's
    # kfree_skb names the socket) and answers with a challenge ACK, which A
    # (no socket any more) answers with an exact RST from no socket.
    srv.send("recv")
    srv.expect("ECONNRESET")
    refused = [c.expect("B", "challenged_rst", "in_window", "ESTABLISHED", "peer", srv,
                        evidence={"seq_offset": 1, "segment_flags": "RST|ACK"})] \
        if btf.has_refused_rst() else []
    c.finish([c.expect("A", "memory", None, "FIN_WAIT1", "local", cli,
                       reason=rst_reason("TCP_ABORT_ON_MEMORY")),
              c.expect("A", "half_open", None, None, "reply", None,
                       reason=rst_reason("NO_SOCKET")),
              c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)] + refused,
             {"A": {"TCPAbortOnMemory": 1}, "B": {"TCPChallengeACK": 1}})


# ------------------------------------------------------------ killed

@events_tap
def killed_ss(c):
    """`ss -K` in A destroys the client's ESTABLISHED socket (SOCK_DESTROY ->
    tcp_abort(ECONNABORTED)): RST TCP_STATE, the killer is ss."""
    cli, srv = c.established()
    cli.send("recv")
    srv.send("recv")
    ss = subprocess.Popen(["ip", "netns", "exec", c.pair.names["A"], "ss", "-HKtn", "state",
                           "established", f"( sport = :{c.cport} )"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = ss.communicate(timeout=10)
    if ss.returncode != 0 or str(c.port) not in out:
        raise Failure(f"ss -K: expected exit 0 and the killed socket vs exit {ss.returncode}",
                      out.splitlines() + err.splitlines())
    cli.expect("ECONNABORTED")
    srv.expect("ECONNRESET")
    killer = {"by_pid": ss.pid, "by_comm": "ss"}
    c.finish([c.expect("A", "killed", None, "ESTABLISHED", "local", cli,
                       reason=rst_reason("TCP_STATE"), evidence=killer),
              c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)],
             {})


@events_tap
def killed_disconnect(c):
    """connect(AF_UNSPEC) on the client's ESTABLISHED socket: tcp_disconnect()
    resets (TCP_STATE) without any counter."""
    cli, srv = c.established()
    srv.send("recv")
    cli.do("disconnect")
    srv.expect("ECONNRESET")
    c.finish([c.expect("A", "killed", None, "ESTABLISHED", "local", cli,
                       reason=rst_reason("TCP_STATE"),
                       evidence={"by_pid": cli.pid, "by_comm": cli.comm}),
              c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)],
             {})


# ------------------------------------------------------------ timeouts

@events_tap
def timeout_user_timeout(c):
    """TCP_USER_TIMEOUT 500 ms and B drops everything: the first RTO after
    500 ms of unacknowledged data gives up (ETIMEDOUT), no RST."""
    cli, srv = c.established()
    c.pair.drop_incoming_tcp("B", c.port)
    cli.do("user_timeout 500")
    cli.do("send 100")
    cli.send("recv")
    cli.expect("ETIMEDOUT", timeout=10)
    c.finish([c.expect("A", "timeout", "user_timeout", "ESTABLISHED", "local", cli,
                       evidence={"sk_err": "ETIMEDOUT"})],
             {"A": {"TCPAbortOnTimeout": 1}})


@events_tap
def timeout_zero_window(c):
    """B never reads (SO_RCVBUF 4096): A's data fills B's window, A probes
    the zero window; then B drops everything, A's probes go unanswered and
    A gives up after tcp_retries2=2 probes (tcp_probe_timer), no RST."""
    c.pair.sysctl("A", "net.ipv4.tcp_retries2", 2)
    srv = c.server(listen=False)
    srv.do(f"listen {c.family} {c.addr('B')} {c.port} 16 4096")
    cli = c.client()
    c.connect(cli, srv)
    cli.do("send_nb 200000")
    deadline = time.monotonic() + 5
    while True:             # zero window, nothing in flight, a probe sent and answered
        info = cli.do("tcp_info")
        if info["unacked"] == 0 and info["snd_wnd"] == 0 and info["backoff"] >= 1:
            break
        if time.monotonic() > deadline:
            raise Failure(f"A never saw B's zero window: {info}")
        time.sleep(0.01)
    c.pair.drop_incoming_tcp("B", c.port)
    cli.send("recv")
    cli.expect("ETIMEDOUT", timeout=15)
    c.finish([c.expect("A", "timeout", "zero_window", "ESTABLISHED", "local", cli,
                       evidence={"sk_err": "ETIMEDOUT", "inflight_bytes": 0, "probes": 2})],
             {"A": {"TCPAbortOnTimeout": 1}})


# ------------------------------------------------------------ reply RSTs

def out_of_window_fin(srv):
    """A bare FIN|ACK from srv 1000 bytes beyond what srv has sent, with the
    right ACK and no options (so no PAWS): its end_seq is not the tw's
    rcv_nxt + 1.  The sequence numbers come from TCP_REPAIR."""
    seq = srv.do("seqs")
    srv.do(f"craft FA {seq['snd_seq'] + 1000} {seq['rcv_seq']}")


@events_tap
def time_wait_rst(c):
    """An out-of-window FIN, no data, at a tw in the FIN_WAIT2 substate: the
    RST lands in B's CLOSE_WAIT socket (its seq is B's own ACK, exact)."""
    hit_fin_wait2_tw(c, out_of_window_fin, "time_wait_rst", "reply", 0)


@events_tap
def bad_ack(c):
    """A aborts (linger 0) but B never gets the RST (dropped on B's input),
    so B still holds the ESTABLISHED 4-tuple; a new client on the same local
    port sends a SYN; B's old socket answers with a challenge ACK, which A's
    SYN_SENT socket finds unacceptable (tcp_rcv_synsent_state_process) and
    answers with RST (TCP_INVALID_ACK_SEQUENCE); that RST, whose seq is the
    challenge ACK's ack, kills B's old socket.  A's SYN goes out again after
    TCP_TIMEOUT_MIN and connects normally."""
    old, srv = c.established()
    port = c.cport
    c.pair.drop_incoming_rst("B", port)
    old.do("linger0")
    old.do("close")
    c.pair.nft_flush("B")
    c.sockets_check("B", "established", 1)   # the RST really never arrived
    want = [c.expect("A", "linger0", None, "ESTABLISHED", "local", old,
                     reason=rst_reason("TCP_STATE"))]
    srv.send("recv")
    cli = c.actor("A", "rw_cli2")
    c.cport = cli.do(f"socket {c.family} {c.addr('A')} {port}")["lport"]
    cli.send(f"connect {c.addr('B')} {c.port}")
    srv.expect("ECONNRESET")
    cli.expect(None, timeout=5)
    c.finish(want + [c.expect("A", "bad_ack", None, "SYN_SENT", "reply", cli,
                              reason=rst_reason("TCP_INVALID_ACK_SEQUENCE")),
                     c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)],
             {"A": {"TCPAbortOnData": 1},
              "B": {"TCPChallengeACK": 1, "TCPSYNChallenge": 1}})


@events_tap
def listen_overflow(c):
    """Backlog 1 and tcp_abort_on_overflow=1 in B.  One connection waits in
    the accept queue; two more get past the SYN checks while B drops their
    final ACKs; the first to send data fills the queue, the second's data
    overflows it: tcp_check_req() answers RST from the listener."""
    c.pair.sysctl("B", "net.ipv4.tcp_abort_on_overflow", 1)
    srv = c.server(listen=False)
    srv.do(f"listen {c.family} {c.addr('B')} {c.port} 1")
    first = c.client()
    first.do(f"connect {c.addr('B')} {c.port}")
    wait_sockets(c, "B", "established", 1)
    c.pair.nft_input("B", f"tcp dport {c.port} tcp flags & syn == 0 drop")
    second = c.actor("A", "rw_cli2")
    c.cport = second.do(f"socket {c.family} {c.addr('A')}")["lport"]
    second.do(f"connect {c.addr('B')} {c.port}")
    cli = c.actor("A", "rw_cli3")
    c.cport = cli.do(f"socket {c.family} {c.addr('A')}")["lport"]
    cli.do(f"connect {c.addr('B')} {c.port}")
    c.pair.nft_flush("B")
    second.do("send 1")
    wait_sockets(c, "B", "established", 2)    # second's data made its child
    cli.do("send 1")
    cli.send("recv")
    cli.expect("ECONNRESET")
    c.finish([c.expect("B", "listen_overflow", None, "LISTEN", "reply", srv,
                       reason=rst_reason("INVALID_SYN")),
              c.expect("A", "peer_reset", None, "ESTABLISHED", "peer", cli)],
             {"B": {"ListenOverflows": 1, "ListenDrops": 1, "EmbryonicRsts": 1}})


# also checked without --time-wait (run.py: Case.time_wait)
for _fn in (data_after_close_tw, time_wait_rst):
    _fn.time_wait = True

SCENARIOS = [data_after_close_tw, data_after_close_orphan, linger2, memory, killed_ss,
             killed_disconnect, timeout_user_timeout, timeout_zero_window, time_wait_rst,
             bad_ack, listen_overflow]
