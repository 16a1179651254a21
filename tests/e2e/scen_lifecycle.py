"""e2e scenarios: how connections end after close.

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

from verdicts import Expect, Failure, rst_reason

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


def server_closes_first(c, cli, srv):
    """Orderly close, B first: B ends in TIME_WAIT once A's FIN is acked."""
    srv.do("shutdown_wr")
    cli.send("recv")
    cli.expect("EOF")
    cli.do("close")
    srv.send("recv")
    srv.expect("EOF")
    srv.do("close")
    c.sockets_check("B", "time-wait", 1)
    wait_sockets(c, "A", "last-ack", 0)      # B's ACK of A's FIN is in


def tw_of_client(c):
    """A's connection closed first, orderly: a TIME_WAIT socket in A.
    Returns (cli, srv, seq): seq = the tw's rcv_nxt, the only sequence
    number tcp_timewait_state_process() takes a RST at (B's FIN + 1)."""
    cli, srv = c.established()
    cli.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    seq = srv.do("seqs")["snd_seq"] + 1      # B's FIN takes write_seq
    srv.do("close")
    cli.send("recv")
    cli.expect("EOF")
    cli.do("close")
    c.sockets_check("A", "time-wait", 1)
    return cli, srv, seq


def find_seen(c, seen, e):
    side, cls, subtype, state, origin = e.key
    for o in seen:
        if (c.side_of(o), o["class"], o["subtype"], o["state"], o["origin"]) == e.key and \
                o.get("lport") == e.addrs["lport"] and o.get("rport") == e.addrs["rport"]:
            return o
    raise Failure(f"linking: no verdict {side}:{cls}/{subtype}({state},{origin}) "
                  f"{e.addrs['lport']}->{e.addrs['rport']} to check conn_id on")


def check_links(c, pairs, alone=()):
    """After c.finish(): each pair (sender's verdict, receiver's peer_reset)
    shares one non-null conn_id, different pairs differ, and the verdicts in
    `alone` have conn_id null (rstwatch(8), JSON FIELDS: conn_id)."""
    if c.tracer is None:
        return
    seen = [o for _, o in c.tracer.lines if o is not None and c.relevant(o)]
    ids = []
    for a, b in pairs:
        oa, ob = find_seen(c, seen, a), find_seen(c, seen, b)
        if not isinstance(oa.get("conn_id"), str) or oa.get("conn_id") != ob.get("conn_id"):
            raise Failure(f"linking: expected one conn_id string on {a.side}:{a.cls} and "
                          f"{b.side}:{b.cls} vs {oa.get('conn_id')!r} and {ob.get('conn_id')!r}")
        ids.append(oa["conn_id"])
    if len(set(ids)) != len(ids):
        raise Failure(f"linking: expected distinct conn_ids per pair vs {ids}")
    for e in alone:
        o = find_seen(c, seen, e)
        if o.get("conn_id") is not None:
            raise Failure(f"linking: {e.side}:{e.cls} has no partner: expected conn_id null "
                          f"vs {o.get('conn_id')!r}")


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
    pair = (c.expect("A", "linger0", None, "FIN_WAIT2", "local", cli,
                     reason=rst_reason("TCP_STATE")),
            c.expect("B", "peer_reset", None, "CLOSE_WAIT", "peer", srv))
    c.finish(list(pair), {"A": {"TCPAbortOnData": 1}})
    check_links(c, [pair])


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
    pair = (c.expect("B", "linger0", None, "ESTABLISHED", "local", srv,
                     reason=rst_reason("TCP_STATE")),
            c.expect("A", "peer_reset", None, "FIN_WAIT1", "peer", cli))
    c.finish(list(pair), {"B": {"TCPAbortOnData": 1}})
    check_links(c, [pair])


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
    pair = (c.expect("B", "linger0", None, "CLOSE_WAIT", "local", srv,
                     reason=rst_reason("TCP_STATE")),
            c.expect("A", "peer_reset", None, "FIN_WAIT2", "peer", cli))
    c.finish(list(pair), {"B": {"TCPAbortOnData": 1}})
    check_links(c, [pair])


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
    pair = (c.expect("B", "linger0", None, "FIN_WAIT1", "local", srv,
                     reason=rst_reason("TCP_STATE")),
            c.expect("A", "peer_reset", None, "CLOSING", "peer", cli))
    c.finish(list(pair), {"B": {"TCPAbortOnData": 1}})
    check_links(c, [pair])


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
    pair = (c.expect("A", "linger0", None, "FIN_WAIT2", "local", cli,
                     reason=rst_reason("TCP_STATE")),
            c.expect("B", "peer_reset", None, "LAST_ACK", "peer", srv))
    c.finish(list(pair), {"A": {"TCPAbortOnData": 1}})
    check_links(c, [pair])


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
    """`ss -K` on a TIME_WAIT socket: tcp_abort() deschedules the tw, before
    ss returns.  Up to 5.10 tcp_abort() refused anything but a full or a
    request socket (EOPNOTSUPP, which ss does not print): there the tw stays
    and rstwatch must not call it killed."""
    cli, srv, _ = tw_of_client(c)
    c.pair.exec("A", "ss", "-K", "state", "time-wait", "dport", "=", f":{c.port}")
    want = [c.expect("A", "time_wait", None, "TIME_WAIT", "lifecycle", cli)]
    if any(f":{c.cport} " in l + " " for l in c.pair.sockets("A", "time-wait")):
        c.report.append("ss -K left the time-wait socket alone (this kernel's tcp_abort())")
    else:
        want.append(c.expect("A", "time_wait", "killed", "TIME_WAIT", "lifecycle", cli))
    c.finish(want, {"A": {"TW": 1}})


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
    # tcp_twsk_unique(): the tw's last timestamp must be older than
    # tcp_tw_reuse_delay ms (6.13+); before that sysctl, than one second
    delay = 0.01
    if os.path.exists("/proc/sys/net/ipv4/tcp_tw_reuse_delay"):
        c.pair.sysctl("A", "net.ipv4.tcp_tw_reuse_delay", 1)
    else:
        delay = 1.1       # time_after32(ktime_get_seconds(), tw_ts_recent_stamp)
    srv = c.server()
    cli = c.actor("A", "rw_cli")
    cli.do(f"socket {c.family} -")
    c.cport = cli.do(f"connect {c.addr('B')} {c.port}")["lport"]
    srv.do("accept")
    client_closes_first(c, cli, srv)
    time.sleep(delay)
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
              c.expect("A", "time_wait", "reused", "TIME_WAIT", "lifecycle", cli,
                       tw_only=True)],     # connect() reuse: the kernel working as meant
             {"A": {"TW": 1, "TWRecycled": 1}})


@with_events
def time_wait_reused_syn(c):
    """B closes first (B's TIME_WAIT); A binds the same port again and
    connects: the SYN hits B's tw, which yields to the listener
    (tcp_timewait_state_process -> TCP_TW_SYN; inet_twsk_deschedule_put)."""
    cli, srv = c.established()
    server_closes_first(c, cli, srv)
    cli2 = c.actor("A", "rw_cli2")
    cli2.do(f"socket {c.family} {c.addr('A')} {c.cport}")
    cli2.do(f"connect {c.addr('B')} {c.port}")
    srv.do("accept")
    c.sockets_check("B", "time-wait", 0)
    c.finish([c.expect("B", "time_wait", None, "TIME_WAIT", "lifecycle", srv),
              c.expect("B", "time_wait", "reused", "TIME_WAIT", "lifecycle", srv,
                       tw_only=True)],     # a SYN reusing it (RFC 6191): normal
             {"B": {"TW": 1}})


@with_events
def time_wait_reused_syn_again(c):
    """As time_wait_reused_syn, three times on one 4-tuple: each connection
    B closes first leaves a TIME_WAIT socket that the next one's SYN takes
    over.  Every actor runs on CPU 0, where the SYN's softirq frees the old
    time-wait socket and B's close makes the new one: the slab hands the same
    memory back, so the new socket's timer starts at the address of the one
    just cancelled, on the same 4-tuple, as a re-arm's would.  Each new one
    must still be a TIME_WAIT entry with its owner, not a re-arm of the old."""
    srv = c.server()
    srv.do("pin 0")
    rounds = 3
    for k in range(rounds):
        cli = c.actor("A", "rw_cli")
        cli.do("pin 0")
        port = cli.do(f"socket {c.family} {c.addr('A')} {c.cport or 0}")["lport"]
        c.cport = c.cport or port
        c.connect(cli, srv)
        server_closes_first(c, cli, srv)
    entry = c.expect("B", "time_wait", None, "TIME_WAIT", "lifecycle", srv)
    reused = c.expect("B", "time_wait", "reused", "TIME_WAIT", "lifecycle", srv, tw_only=True)
    c.finish([entry] * rounds + [reused] * (rounds - 1), {"B": {"TW": rounds}})


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
    c.finish(want, {"A": {"TW": 2, "TWKilled": 1}}, tw_expire=True)


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

# ------------------------------------------------- close_wait, port_pressure

@with_events
def close_wait(c):
    """A closes first; B's application does not: an instance with
    --close-wait 1 reports B's socket stuck once 1 s has passed (waited for
    on its output, bounded), then closed when B finally closes; the main
    instance (default 10 s) reports neither.  The kernel keeps when each
    socket entered CLOSE_WAIT and rstwatch walks them every half --close-wait:
    the stuck socket is found between 1 and 1.5 s (plus a drain)."""
    cw = c.extra(["--close-wait", "1", "--port", str(c.port), "--time-wait"])
    cli, srv = c.established()
    cli.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    t0 = time.monotonic()
    if not cw.wait_for(lambda o: c.relevant(o) and o.get("class") == "close_wait", 1, timeout=5):
        raise Failure("--close-wait 1: expected close_wait/stuck within 5 s vs none",
                      ["  " + l for l in cw.stderr])
    if time.monotonic() - t0 < 0.9:
        raise Failure(f"--close-wait 1: stuck reported after {time.monotonic() - t0:.2f} s (< 1 s)")
    srv.do("close")
    cli.send("recv")
    cli.expect("EOF")
    cli.do("close")
    wait_sockets(c, "A", "time-wait", 1)
    tw = c.expect("A", "time_wait", None, "TIME_WAIT", "lifecycle", cli)
    c.finish([tw], {"A": {"TW": 1}})
    c.check_extra(cw, [tw,
                       c.expect("B", "close_wait", "stuck", "CLOSE_WAIT", "lifecycle", srv,
                                evidence={"close_wait_ms": range(1000, 1800)}),
                       c.expect("B", "close_wait", "closed", "CLOSE_WAIT", "lifecycle", srv)])


@with_events
def port_pressure(c):
    """A 10-port ephemeral range in A and 6 connections to one B endpoint,
    each closed by A first: the 5th TIME_WAIT socket reaches 50 % of the
    range (--port-pressure default), reported once, with the count and the
    range."""
    lo = 40000 + c.n * 20
    c.pair.sysctl("A", "net.ipv4.ip_local_port_range", f"{lo} {lo + 9}")
    srv = c.server()
    cli = c.actor("A", "rw_cli")
    srv.send("serve 6")
    lports = cli.do(f"churn {c.addr('B')} {c.port} 6")["lports"]
    srv.expect(None)
    wait_sockets(c, "A", "time-wait", 6, ports=lports)
    want = [expect_ports(c, "A", "time_wait", None, "TIME_WAIT", "lifecycle", cli, p, c.port)
            for p in lports]
    want.append(expect_ports(c, "A", "port_pressure", None, "TIME_WAIT", "lifecycle", cli,
                             lports[4], c.port,
                             evidence={"time_wait_count": 5, "port_range": f"{lo}-{lo + 9}"}))
    c.finish(want, {"A": {"TW": 6}})


# ------------------------------------------------------------------- linking

@with_events
def linked(c):
    """Two aborts with both ends on this host: A's linger0 and B's
    peer_reset share a conn_id, A's unread_data and B's second peer_reset
    another; text mode prints each pair as one 'X reset Y: class (detail)'
    line."""
    text = c.extra(["--port", str(c.port)], json=False)
    cli, srv = c.established()
    cli.do("linger0")
    srv.send("recv")
    cli.do("close")
    srv.expect("ECONNRESET")
    first = (c.expect("A", "linger0", None, "ESTABLISHED", "local", cli),
             c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv))
    cli2 = c.client()
    c.connect(cli2, srv)
    srv.do("send 100")
    cli2.do("wait_readable 100")
    srv.send("recv")
    cli2.do("close")
    srv.expect("ECONNRESET")
    second = (c.expect("A", "unread_data", None, "ESTABLISHED", "local", cli2,
                       evidence={"unread_bytes": 100}),
              c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv))
    c.finish([*first, *second], {"A": {"TCPAbortOnData": 1, "TCPAbortOnClose": 1}})
    check_links(c, [first, second])
    lines = [raw for raw, _ in text.stop()]
    def reason(name):      # the detail ends with the kernel's reason where it has one
        return f" [{name}])" if rst_reason(name) == name else ""
    want = ["rw_cli reset rw_srv: linger0 (SO_LINGER {1,0} close" + reason("TCP_STATE"),
            "rw_cli reset rw_srv: unread_data (100 bytes unread" + reason("TCP_ABORT_ON_CLOSE")]
    mine = [l for l in lines if f":{c.port}" in l]
    for w in want:
        if sum(1 for l in mine if w in l) != 1:
            raise Failure(f"text: expected one line with {w!r} vs", mine)
    if len(mine) != 2:
        raise Failure(f"text: expected 2 lines (one per linked pair) vs {len(mine)}", mine)


# --------------------------------------------------------------- mixed load

MIX_SEED = 3
MIX_ITEMS = 200
MIX_KEEPALIVE = 4


def mixed(c):
    """One namespace pair, a seeded random mix of 200 aborts of five kinds
    (linger0, unread_data on either side, refused, half_open) plus 4
    keepalive timeouts running meanwhile: rstwatch must report exactly what
    the choreography made, and per class exactly the TcpExt deltas.

    B's nft drops what must not arrive, by A's source address: everything
    from A's .3 (keepalive) and the active RST (RST|ACK) from A's .4
    (half_open; the RST A's stack later sends from no socket answers B's
    data and so carries no ACK flag: it passes)."""
    rng = random.Random(MIX_SEED)
    # A's extra addresses: .3 (keepalive: B drops all from it once they are
    # connected), .4
    # (half_open: B drops its RST|ACK).  Matching addresses, not ports: an
    # ephemeral port is soon reused by another item.
    quiet = {k: c.addr("A").replace("::1", f"::{k}") if c.family == "ipv6"
             else c.addr("A").rsplit(".", 1)[0] + f".{k}" for k in (3, 4)}
    ip = "ip" if c.family == "ipv4" else "ip6"
    plen = "/24" if c.family == "ipv4" else "/64"
    for a in quiet.values():
        c.pair.exec("A", "ip", "addr", "add", a + plen, "dev", "eth0",
                    *(["nodad"] if c.family == "ipv6" else []))
    c.pair.nft("B", f"""
table inet rwtest {{
    chain input {{
        type filter hook input priority 0; policy accept;
        {ip} saddr {quiet[4]} tcp dport {c.port} tcp flags & (rst | ack) == rst | ack drop
    }}
}}
""")
    want = []
    made = {"A": {}, "B": {}}

    def count(side, counter):
        made[side][counter] = made[side].get(counter, 0) + 1

    def at(e, addr):        # the A end's address is `addr`
        e.addrs["laddr" if e.side == "A" else "raddr"] = addr
        return e

    srv = c.server()
    cli = c.actor("A", "rw_cli")
    bcli = c.actor("B", "rw_bcli")
    kas = []
    for i in range(MIX_KEEPALIVE):
        ka = c.actor("A", "rw_ka")
        port = ka.do(f"socket {c.family} {quiet[3]}")["lport"]
        ka.do(f"connect {c.addr('B')} {c.port}")
        srv.do("accept")
        ka.do("keepalive 1 1 1")
        kas.append(ka)
        want.append(at(expect_ports(c, "A", "timeout", "keepalive", "ESTABLISHED", "local", ka,
                                    port, c.port), quiet[3]))
        count("A", "TCPAbortOnTimeout")
    # now that their handshakes are done, B hears nothing more from .3
    c.pair.exec("B", "nft", "add", "rule", "inet", "rwtest", "input", ip, "saddr", quiet[3],
                "tcp", "dport", str(c.port), "drop")
    for ka in kas:
        ka.send("recv")

    kinds = ["linger0", "unread_a", "unread_b", "refused", "half_open"]
    done = {k: 0 for k in kinds}
    for _ in range(MIX_ITEMS):
        kind = rng.choice(kinds)
        done[kind] += 1
        if kind == "refused":
            bport = bcli.do(f"socket {c.family} {c.addr('B')}")["lport"]
            bcli.send(f"connect {c.addr('A')} {c.port}")
            bcli.expect("ECONNREFUSED")
            want += [expect_ports(c, "A", "refused", None, None, "reply", None, c.port, bport),
                     expect_ports(c, "B", "peer_reset", None, "SYN_SENT", "peer", bcli,
                                  bport, c.port)]
            continue
        laddr = quiet[4] if kind == "half_open" else c.addr("A")
        port = cli.do(f"socket {c.family} {laddr}")["lport"]
        cli.do(f"connect {c.addr('B')} {c.port}")
        srv.do("accept")
        a = lambda *k, **kw: at(expect_ports(c, "A", *k, port, c.port, **kw), laddr)
        b = lambda *k, **kw: at(expect_ports(c, "B", *k, c.port, port, **kw), laddr)
        if kind == "linger0":
            cli.do("linger0")
            srv.send("recv")
            cli.do("close")
            srv.expect("ECONNRESET")
            want += [a("linger0", None, "ESTABLISHED", "local", cli),
                     b("peer_reset", None, "ESTABLISHED", "peer", srv)]
            count("A", "TCPAbortOnData")
        elif kind == "unread_a":
            srv.do("send 100")
            cli.do("wait_readable 100")
            srv.send("recv")
            cli.do("close")
            srv.expect("ECONNRESET")
            want += [a("unread_data", None, "ESTABLISHED", "local", cli),
                     b("peer_reset", None, "ESTABLISHED", "peer", srv)]
            count("A", "TCPAbortOnClose")
        elif kind == "unread_b":
            cli.do("send 50")
            srv.do("wait_readable 50")
            cli.send("recv")
            srv.do("close")
            cli.expect("ECONNRESET")
            want += [b("unread_data", None, "ESTABLISHED", "local", srv),
                     a("peer_reset", None, "ESTABLISHED", "peer", cli)]
            count("B", "TCPAbortOnClose")
        else:   # half_open: A's linger-0 RST is lost, B's data meets no socket in A
            cli.do("linger0")
            cli.do("close")
            srv.do("send 10")
            srv.send("recv")
            srv.expect("ECONNRESET")
            want += [a("linger0", None, "ESTABLISHED", "local", cli),
                     a("half_open", None, None, "reply", None),
                     b("peer_reset", None, "ESTABLISHED", "peer", srv)]
            count("A", "TCPAbortOnData")
    for ka in kas:
        ka.expect("ETIMEDOUT", timeout=15)
    c.report.append(f"mix (seed {MIX_SEED}): {done} + {MIX_KEEPALIVE} keepalive timeouts")
    c.finish(want, made)


# Each also checks a second instance with the default options (no
# --time-wait): it prints the same verdicts but those of a normal TIME_WAIT.
for _fn in (peer_reset_time_wait, time_wait_killed_ss, time_wait_reused, time_wait_reused_syn,
            time_wait_reused_syn_again, time_wait_overflow, close_wait, port_pressure, time_wait_expired):
    _fn.time_wait = True

SCENARIOS = [peer_reset_close_wait, peer_reset_fin_wait1, peer_reset_fin_wait2,
             peer_reset_closing, peer_reset_last_ack, peer_reset_time_wait,
             time_wait_killed_ss, time_wait_reused, time_wait_reused_syn, time_wait_reused_syn_again,
             time_wait_overflow,
             close_wait, port_pressure, linked, mixed, time_wait_expired]
