"""e2e scenarios: how connections end after close (issue 3, CONTRACT3.md).

peer_reset in every state a RST can reach, the ends of TIME_WAIT (expired,
reused, killed), time_wait_overflow, close_wait, port_pressure, linked
verdicts, and a seeded mixed workload with exact counter parity.  Same
style as run.py: one function per scenario taking the Case `c` (A = client
'rw_cli', B = server 'rw_srv'); registered in run.py's SCENARIOS.

RW_EVENTS=DIR in the environment also runs `rstwatch --events -j --port
PORT` beside each scenario and writes the raw events to DIR/NAME.events
(to see what the kernel emits; not an assertion).
"""
import functools
import os
import random
import time

from run import Failure, rst_reason  # run.py registers itself as module 'run'
from verdicts import Expect

GRACE_TW = 75        # seconds: TCP_TIMEWAIT_LEN (60 s) + the timer wheel's slack


# ------------------------------------------------------------------ helpers

def wait_sockets(c, side, state, count, timeout=5, ports=None):
    """Poll `ss state STATE` in `side` until exactly `count` sockets on this
    test's ports are there: a state the kernel reaches on its own (a segment
    arriving, a timer) is observed, not slept for."""
    ports = ports or (c.port, c.cport)
    deadline = time.monotonic() + timeout
    while True:
        lines = [l for l in c.pair.sockets(side, state)
                 if any(f":{p} " in l + " " for p in ports if p)]
        if len(lines) == count:
            return lines
        if time.monotonic() > deadline:
            raise Failure(f"{side}: expected {count} {state} socket(s) on ports {ports} within "
                          f"{timeout}s vs seen {len(lines)}", lines)
        time.sleep(0.02)


def expect_ports(c, side, cls, subtype, state, origin, owner, lport, rport, family=None, **kw):
    """Expect with explicit ports (c.expect assumes A is the client on c.cport)."""
    fam = family or c.family
    other = "B" if side == "A" else "A"
    e = Expect(side, cls, subtype, state, origin, owner, **kw)
    e.addrs = {"laddr": c.pair.addr(side, fam), "lport": lport,
               "raddr": c.pair.addr(other, fam), "rport": rport}
    if family:
        e.family = family
    return e


def client_closes_first(c, cli, srv):
    """Orderly close, A first: A ends in TIME_WAIT, B's LAST_ACK is acked."""
    cli.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    srv.do("close")
    cli.send("recv")
    cli.expect("EOF")
    cli.do("close")
    wait_sockets(c, "A", "time-wait", 1, ports=(c.cport,))


def tw_of_client(c):
    """A's connection closed first, orderly: a TIME_WAIT socket in A.
    Returns (cli, srv, seq): seq = the tw's rcv_nxt, the only sequence
    number tcp_timewait_state_process() takes a RST at (B's FIN + 1)."""
    cli, srv = c.established()
    cli.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    seq = srv.do("seqs")["write_seq"] + 1      # B's FIN takes write_seq
    srv.do("close")
    cli.send("recv")
    cli.expect("EOF")
    cli.do("close")
    c.sockets_check("A", "time-wait", 1)
    return cli, srv, seq


def with_events(fn):
    """RW_EVENTS=DIR: record the raw decoded events of the scenario."""
    @functools.wraps(fn)
    def run(c):
        out = os.environ.get("RW_EVENTS")
        if not out:
            return fn(c)
        ev = c.extra(["--events", "--port", str(c.port)])
        try:
            return fn(c)
        finally:
            lines = ev.stop()
            c.tracers.remove(ev)
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, c.name + ".events"), "w") as f:
                f.write(f"# A netns {c.ino['A']} B netns {c.ino['B']} port {c.port} "
                        f"cport {c.cport}\n")
                f.writelines(raw + "\n" for raw, _ in lines)
    return run


# ------------------------------------------------------ peer_reset per state

@with_events
def peer_reset_close_wait(c):
    """A half-closes (B in CLOSE_WAIT), then closes with linger 0 from
    FIN_WAIT2: tcp_disconnect() resets; tcp_reset() in CLOSE_WAIT sets
    sk_err EPIPE, which B's next send() returns."""
    cli, srv = c.established()
    cli.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    c.sockets_check("B", "close-wait", 1)
    wait_sockets(c, "A", "fin-wait-2", 1)    # B's ACK of the FIN may be delayed
    cli.do("linger0")
    cli.do("close")
    wait_sockets(c, "B", "close-wait", 0)
    srv.send("send 10")
    srv.expect("EPIPE")
    c.finish([c.expect("A", "linger0", None, "FIN_WAIT2", "local", cli,
                       reason=rst_reason("TCP_STATE")),
              c.expect("B", "peer_reset", None, "CLOSE_WAIT", "peer", srv)],
             {"A": {"TCPAbortOnData": 1}})


@with_events
def peer_reset_fin_wait1(c):
    """B drops everything from A, so A's FIN stays unacked (FIN_WAIT1);
    B closes with linger 0: its RST reaches A in FIN_WAIT1 (ECONNRESET)."""
    cli, srv = c.established()
    c.pair.drop_incoming_tcp("B", c.port)
    cli.do("shutdown_wr")
    c.sockets_check("A", "fin-wait-1", 1)
    srv.do("linger0")
    srv.do("close")
    wait_sockets(c, "A", "fin-wait-1", 0)
    c.pair.nft_flush("B")
    cli.send("recv")
    cli.expect("ECONNRESET")
    c.finish([c.expect("B", "linger0", None, "ESTABLISHED", "local", srv,
                       reason=rst_reason("TCP_STATE")),
              c.expect("A", "peer_reset", None, "FIN_WAIT1", "peer", cli)],
             {"B": {"TCPAbortOnData": 1}})


@with_events
def peer_reset_fin_wait2(c):
    """A half-closes (FIN_WAIT2), B closes with linger 0 from CLOSE_WAIT:
    A's recv() sees ECONNRESET."""
    cli, srv = c.established()
    cli.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    wait_sockets(c, "A", "fin-wait-2", 1)    # B's ACK of the FIN may be delayed
    srv.do("linger0")
    srv.do("close")
    wait_sockets(c, "A", "fin-wait-2", 0)
    cli.send("recv")
    cli.expect("ECONNRESET")
    c.finish([c.expect("B", "linger0", None, "CLOSE_WAIT", "local", srv,
                       reason=rst_reason("TCP_STATE")),
              c.expect("A", "peer_reset", None, "FIN_WAIT2", "peer", cli)],
             {"B": {"TCPAbortOnData": 1}})


@with_events
def peer_reset_closing(c):
    """Simultaneous close: B drops A's segments, both half-close; B's FIN
    reaches A in FIN_WAIT1 (A -> CLOSING, its ACK is dropped too, so B stays
    in FIN_WAIT1); B closes with linger 0 and its RST finds A in CLOSING.
    A has B's FIN (SOCK_DONE): recv() says EOF, the error is in SO_ERROR."""
    cli, srv = c.established()
    c.pair.drop_incoming_tcp("B", c.port)
    cli.do("shutdown_wr")
    srv.do("shutdown_wr")
    wait_sockets(c, "A", "closing", 1)
    c.sockets_check("B", "fin-wait-1", 1)
    srv.do("linger0")
    srv.do("close")
    wait_sockets(c, "A", "closing", 0)
    c.pair.nft_flush("B")
    r = cli.do("so_error")
    if r["so_error"] != "ECONNRESET":
        raise Failure(f"A: SO_ERROR expected ECONNRESET vs seen {r['so_error']}")
    c.finish([c.expect("B", "linger0", None, "FIN_WAIT1", "local", srv,
                       reason=rst_reason("TCP_STATE")),
              c.expect("A", "peer_reset", None, "CLOSING", "peer", cli)],
             {"B": {"TCPAbortOnData": 1}})


@with_events
def peer_reset_last_ack(c):
    """A half-closes; B closes (orphan, LAST_ACK) but its FIN never reaches
    A (dropped on A's input); A closes with linger 0 from FIN_WAIT2 and its
    RST finds B's orphan in LAST_ACK: no application left to see an errno."""
    cli, srv = c.established()
    cli.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    wait_sockets(c, "A", "fin-wait-2", 1)    # else B's FIN would carry the ACK
    c.pair.nft("A", f"""
table inet rwtest {{
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp sport {c.port} tcp flags & fin == fin drop
    }}
}}
""")
    srv.do("close")
    c.sockets_check("B", "last-ack", 1)
    cli.do("linger0")
    cli.do("close")
    wait_sockets(c, "B", "last-ack", 0)
    c.pair.nft_flush("A")
    c.finish([c.expect("A", "linger0", None, "FIN_WAIT2", "local", cli,
                       reason=rst_reason("TCP_STATE")),
              c.expect("B", "peer_reset", None, "LAST_ACK", "peer", srv)],
             {"A": {"TCPAbortOnData": 1}})


@with_events
def peer_reset_time_wait(c):
    """TIME_WAIT assassination (RFC 1337; tcp_rfc1337=0): a RST crafted on
    a raw socket in B with seq = the tw's rcv_nxt kills A's TIME_WAIT socket
    (tcp_timewait_state_process -> inet_twsk_deschedule_put).  No TCP
    socket of B is involved: B's connection has already gone (LAST_ACK acked)."""
    cli, srv, seq = tw_of_client(c)
    srv.do(f"raw_rst {c.addr('B')} {c.port} {c.addr('A')} {c.cport} {seq}")
    wait_sockets(c, "A", "time-wait", 0)
    c.finish([c.expect("A", "time_wait", None, "TIME_WAIT", "lifecycle", cli),
              c.expect("A", "peer_reset", None, "TIME_WAIT", "peer", cli),
              c.expect("A", "time_wait", "killed", "TIME_WAIT", "lifecycle", cli)],
             {"A": {"TW": 1}})


# ------------------------------------------------------------ TIME_WAIT ends

@with_events
def time_wait_killed_ss(c):
    """`ss -K` on a TIME_WAIT socket: tcp_abort() deschedules the tw."""
    cli, srv, _ = tw_of_client(c)
    c.pair.exec("A", "ss", "-K", "state", "time-wait", "dport", "=", f":{c.port}")
    wait_sockets(c, "A", "time-wait", 0)
    c.finish([c.expect("A", "time_wait", None, "TIME_WAIT", "lifecycle", cli),
              c.expect("A", "time_wait", "killed", "TIME_WAIT", "lifecycle", cli)],
             {"A": {"TW": 1}})


@with_events
def time_wait_reused(c):
    """tcp_tw_reuse=1 and a one-port ephemeral range in A: the second
    connect() to the same B endpoint must take the TIME_WAIT socket's
    4-tuple (__inet_check_established -> tcp_twsk_unique; TWRecycled).
    Both sockets are left unbound so connect() picks the port: a bucket made
    by bind() is skipped by __inet_hash_connect."""
    lport = 40000 + c.n * 2
    c.pair.sysctl("A", "net.ipv4.ip_local_port_range", f"{lport} {lport}")
    c.pair.sysctl("A", "net.ipv4.tcp_tw_reuse", 1)
    c.pair.sysctl("A", "net.ipv4.tcp_tw_reuse_delay", 1)   # ms after the tw's last timestamp
    srv = c.server()
    cli = c.actor("A", "rw_cli")
    cli.do(f"socket {c.family} -")
    c.cport = cli.do(f"connect {c.addr('B')} {c.port}")["lport"]
    srv.do("accept")
    client_closes_first(c, cli, srv)
    time.sleep(0.01)     # tcp_tw_reuse_delay: the tw's timestamp must be older than 1 ms
    cli2 = c.actor("A", "rw_cli2")
    cli2.do(f"socket {c.family} -")
    got = cli2.do(f"connect {c.addr('B')} {c.port}")["lport"]
    if got != c.cport:
        raise Failure(f"second connect: expected local port {c.cport} vs {got}")
    srv.do("accept")
    c.sockets_check("A", "time-wait", 0)
    # one tw in a one-port range is 100 % >= --port-pressure 50: reported once
    c.finish([c.expect("A", "time_wait", None, "TIME_WAIT", "lifecycle", cli),
              c.expect("A", "port_pressure", None, "TIME_WAIT", "lifecycle", cli,
                       evidence={"time_wait_count": 1, "port_range": f"{lport}-{lport}"}),
              c.expect("A", "time_wait", "reused", "TIME_WAIT", "lifecycle", cli)],
             {"A": {"TW": 1, "TWRecycled": 1}})


@with_events
def time_wait_reused_syn(c):
    """B closes first (B's TIME_WAIT); A binds the same port again and
    connects: the SYN hits B's tw, which yields to the listener
    (tcp_timewait_state_process -> TCP_TW_SYN; inet_twsk_deschedule_put)."""
    cli, srv = c.established()
    srv.do("shutdown_wr")
    cli.send("recv")
    cli.expect("EOF")
    cli.do("close")
    srv.send("recv")
    srv.expect("EOF")
    srv.do("close")
    c.sockets_check("B", "time-wait", 1)
    wait_sockets(c, "A", "last-ack", 0)      # B's ACK of A's FIN is in
    cli2 = c.actor("A", "rw_cli2")
    cli2.do(f"socket {c.family} {c.addr('A')} {c.cport}")
    cli2.do(f"connect {c.addr('B')} {c.port}")
    srv.do("accept")
    c.sockets_check("B", "time-wait", 0)
    c.finish([c.expect("B", "time_wait", None, "TIME_WAIT", "lifecycle", srv),
              c.expect("B", "time_wait", "reused", "TIME_WAIT", "lifecycle", srv)],
             {"B": {"TW": 1}})


@with_events
def time_wait_expired(c):
    """The tw timers run out: an IPv4 and an IPv6 TIME_WAIT socket (60 s,
    TCP_TIMEWAIT_LEN), and a FIN_WAIT2-substate tw after tcp_fin_timeout=1
    (its peer never sends FIN).  One test for both families: 60 s is long."""
    c.pair.sysctl("A", "net.ipv4.tcp_fin_timeout", 1)
    want = []
    tws = []
    srvs = {}
    for fam in ("ipv4", "ipv6"):
        c.family = fam
        cli, srvs[fam] = c.established()
        client_closes_first(c, cli, srvs[fam])
        tws.append(c.cport)
        want += [expect_ports(c, "A", "time_wait", None, "TIME_WAIT", "lifecycle", cli,
                              c.cport, c.port, family=fam),
                 expect_ports(c, "A", "time_wait", "expired", "TIME_WAIT", "lifecycle", cli,
                              c.cport, c.port, family=fam)]
    # FIN_WAIT2 substate: B keeps its side open (CLOSE_WAIT) past the test
    c.family = "ipv4"
    cli, srv = c.client(), srvs["ipv4"]
    c.connect(cli, srv)
    cli.do("close")
    srv.send("recv")
    srv.expect("EOF")
    wait_sockets(c, "A", "fin-wait-2", 1, ports=(c.cport,))
    wait_sockets(c, "A", "fin-wait-2", 0, ports=(c.cport,), timeout=5)
    want += [expect_ports(c, "A", "time_wait", None, "FIN_WAIT2", "lifecycle", cli,
                          c.cport, c.port, family="ipv4"),
             expect_ports(c, "A", "time_wait", "expired", "FIN_WAIT2", "lifecycle", cli,
                          c.cport, c.port, family="ipv4"),
             # B sits in CLOSE_WAIT for the whole 60 s: > --close-wait 10
             expect_ports(c, "B", "close_wait", "stuck", "CLOSE_WAIT", "lifecycle", srv,
                          c.port, c.cport, family="ipv4")]
    wait_sockets(c, "A", "time-wait", 0, ports=tws, timeout=GRACE_TW)
    c.finish(want, {"A": {"TW": 2, "TWKilled": 1}})


time_wait_expired.families = (("ipv4", "v46"),)


# ------------------------------------------------------------------ overflow

@with_events
def time_wait_overflow(c):
    """tcp_max_tw_buckets=0 in A: inet_twsk_alloc() fails, tcp_time_wait()
    counts TCPTimeWaitOverflow and closes the socket at once.  Once for an
    orphan entering the FIN_WAIT2 substate, once for a socket entering
    TIME_WAIT on the peer's FIN."""
    c.pair.sysctl("A", "net.ipv4.tcp_max_tw_buckets", 0)
    cli, srv = c.established()
    cli.do("close")                 # orphan: FIN_WAIT1 -> (ACK) -> FIN_WAIT2 tw
    srv.send("recv")
    srv.expect("EOF")               # B stays in CLOSE_WAIT past the test
    wait_sockets(c, "A", "fin-wait-2", 0)
    c.sockets_check("A", "time-wait", 0)
    want = [c.expect("A", "time_wait_overflow", None, "FIN_WAIT2", "lifecycle", cli)]
    cli2 = c.client()
    cli2.do(f"connect {c.addr('B')} {c.port}")
    srv.do("accept")
    cli2.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    srv.do("close")
    cli2.send("recv")
    cli2.expect("EOF")
    wait_sockets(c, "B", "last-ack", 0)
    c.sockets_check("A", "time-wait", 0)
    want.append(c.expect("A", "time_wait_overflow", None, "TIME_WAIT", "lifecycle", cli2))
    c.finish(want, {"A": {"TCPTimeWaitOverflow": 2}})


SCENARIOS = [peer_reset_close_wait, peer_reset_fin_wait1, peer_reset_fin_wait2,
             peer_reset_closing, peer_reset_last_ack, peer_reset_time_wait,
             time_wait_killed_ss, time_wait_reused, time_wait_reused_syn, time_wait_overflow,
             time_wait_expired]
