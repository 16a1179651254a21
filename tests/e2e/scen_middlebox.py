"""Resets that neither end sent, and resets the kernel refused.

Each scenario runs on NsRouted (netns.py): A (client 'rw_cli') and B (server
'rw_srv') on subnets of their own, the router namespace R between them,
where the middlebox (nftables, NAT, conntrack) or the third party (scapy,
tests/e2e/inject.py, run by Debian's /usr/bin/python3) acts.  Each asserts
the verdicts of both ends and the counters of all three namespaces: Tcp
OutRsts (the RSTs each namespace's TCP sent: none, in all of them) and
TcpExt TCPChallengeACK.  Registered in run.py's SCENARIOS.
"""
import json
import os
import subprocess
import time

import btf
from verdicts import Failure

HERE = os.path.dirname(os.path.abspath(__file__))
INJECT = os.path.join(HERE, "inject.py")


def routed(fn):
    fn.routed = True
    return fn


def one_end(c, side, owner, **kw):
    """The verdict of an RST at `side` that neither end sent while the other
    end stayed open: middlebox_reset where the peer probe runs (decided from
    BTF, as rstwatch decides), else peer_reset."""
    if btf.has_peer_probe():
        return c.expect(side, "middlebox_reset", None, "ESTABLISHED", "peer", owner, **kw)
    kw["evidence"] = {k: v for k, v in kw.get("evidence", {}).items() if not k.startswith("peer_")}
    return c.expect(side, "peer_reset", None, "ESTABLISHED", "peer", owner, evidence=kw["evidence"])


def counters(challenge_acks=None):
    """No namespace's TCP sends an RST; TCPChallengeACK as given per side."""
    return {s: {"Tcp.OutRsts": 0, "TCPChallengeACK": (challenge_acks or {}).get(s, 0)}
            for s in "ABR"}


def nft_forward(c, rule, nat=""):
    """R's table inet rwtest: a forward-chain rule (and a NAT chain)."""
    c.pair.nft("R", f"""
table inet rwtest {{
    {nat}
    chain forward {{
        type filter hook forward priority 0; policy accept;
        {rule}
    }}
}}
""")


class Injector:
    """inject.py in R, started early: importing scapy takes seconds on a slow
    machine (under qemu's TCG), which must not eat into a timed silence."""

    def __init__(self, c):
        self.c = c
        self.p = subprocess.Popen(["ip", "netns", "exec", c.pair.names["R"], "/usr/bin/python3",
                                   INJECT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        c.actors.append(self)    # killed with the actors at cleanup
        self.answer("ready")

    def answer(self, key):
        sent = []
        for line in self.p.stdout:
            obj = json.loads(line)
            if obj.get(key):
                return sent
            sent.append(obj)
        raise Failure(f"inject.py in R: exit {self.p.wait()} before '{key}' (python3-scapy: "
                      "make deps)", self.p.stderr.read().splitlines())

    def send(self, *groups):
        """RSTs from R, spoofed: each group (src side, sport, dst side, dport,
        seqs...) from that address and port; returns what inject.py sent."""
        argv = []
        for i, (src, sport, dst, dport, *seqs) in enumerate(groups):
            argv += (["--"] if i else []) + [self.c.addr(src), str(sport), self.c.addr(dst),
                                              str(dport), *map(str, seqs)]
        self.p.stdin.write(" ".join(argv) + "\n")
        self.p.stdin.flush()
        return self.answer("done")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


@routed
def middlebox_reject(c):
    """R's firewall rejects A's next segment with `reject with tcp reset`
    (nft_reject: an RST to A with the segment's ack_seq, exactly A's rcv_nxt):
    A is reset, B never hears of it and stays ESTABLISHED, and no namespace's
    TCP sent an RST.  rstwatch watches both ends: middlebox_reset at A, naming
    B's socket and its sequence number; an instance that watches A alone
    (--netns A) can only say peer_reset."""
    only_a = c.extra(["--netns", c.pair.path("A")])
    cli, srv = c.established()
    srv.do("send 50")
    cli.do("recv")
    snd = srv.do("seqs")["snd_seq"]
    ip = "ip6" if c.family == "ipv6" else "ip"
    nft_forward(c, f"{ip} saddr {c.addr('A')} tcp dport {c.port} reject with tcp reset")
    cli.do("send 10")
    cli.send("recv")
    cli.expect("ECONNRESET")
    c.sockets_check("B", "established", 1)
    c.finish([one_end(c, "A", cli,
                      evidence={"errno": "ECONNRESET", "peer_state": "ESTABLISHED",
                                "peer_pid": srv.pid, "peer_comm": "rw_srv",
                                "peer_netns": c.ino["B"], "rcv_nxt": snd, "peer_snd_nxt": snd},
                      hint="neither end sent this RST")],
             counters())
    c.check_extra(only_a, [c.expect("A", "peer_reset", None, "ESTABLISHED", "peer", cli,
                                    evidence={"rcv_nxt": snd})])


def conntrack_gone(c, timeout=20):
    """Wait until R's conntrack table has no entry for this test's flow."""
    fam = "ipv6" if c.family == "ipv6" else "ipv4"
    deadline = time.monotonic() + timeout
    while True:
        p = c.pair.exec("R", "conntrack", "-L", "-f", fam, "-p", "tcp", "--dport", str(c.port),
                        check=False)
        if p.returncode != 0:
            raise Failure(f"conntrack -L in R: exit {p.returncode} (conntrack: make deps)",
                          p.stderr.splitlines())
        if not p.stdout.strip():
            return
        if time.monotonic() > deadline:
            raise Failure(f"R's conntrack entry still there after {timeout} s", p.stdout.splitlines())
        time.sleep(0.2)


@routed
def middlebox_nat(c):
    """R masquerades A behind its own address on B's side and forgets the
    flow (nf_conntrack_tcp_timeout_established 6 s, no loose pickup): A's
    first segment after that silence is invalid to R, which rejects it with a
    reset.  B sees the connection from R's address, so no socket of this host
    has A's 4-tuple reversed: rstwatch sees one end, a peer_reset whose hint
    names a middlebox that forgot the idle connection (the reset answered
    the segment A had just sent, after 6 s without a word from B).  B stays
    ESTABLISHED, unaware."""
    nft_forward(c, f"ct state invalid tcp dport {c.port} reject with tcp reset",
                nat="chain post { type nat hook postrouting priority 100; policy accept; "
                    "oifname \"eth1\" masquerade; }")
    c.pair.sysctl("R", "net.netfilter.nf_conntrack_tcp_loose", 0)
    c.pair.sysctl("R", "net.netfilter.nf_conntrack_tcp_timeout_established", 6)
    cli, srv = c.established()
    cli.do("send 100")
    srv.do("recv")
    conntrack_gone(c)
    cli.do("send 10")
    cli.send("recv")
    cli.expect("ECONNRESET")
    c.sockets_check("B", "established", 1)
    c.finish([c.expect("A", "peer_reset", None, "ESTABLISHED", "peer", cli,
                       evidence={"errno": "ECONNRESET", "last_sent_ms": range(0, 250),
                                 "last_ack_ms": range(5500, 30000)},
                       hint="forgot the idle connection")],
             counters())


@routed
def middlebox_inject(c):
    """A third party in R injects RSTs into B, spoofing A: one 1000 bytes
    into B's window (B refuses it and answers a challenge ACK, RFC 5961:
    challenged_rst/in_window, TCPChallengeACK +1), one 2^30 beyond it
    (challenged_rst/out_of_window, no answer), then, after 5 s of silence,
    one at B's rcv_nxt exactly: B is reset while A, whose TCP sent no RST at
    all, stays ESTABLISHED: middlebox_reset at B, owned by the server.  An
    instance watching B alone says peer_reset, with the hint of an idle
    timeout (5 s: a round number of seconds)."""
    only_b = c.extra(["--netns", c.pair.path("B")])
    inj = Injector(c)
    cli, srv = c.established()
    cli.do("send 100")
    srv.do("recv")
    t0 = time.monotonic()
    rcv = srv.do("seqs")["rcv_seq"]
    inj.send(("A", c.cport, "B", c.port, rcv + 1000, rcv + (1 << 30), f"{rcv}@{t0 + 5.0}"))
    srv.do("wait_hup")
    srv.send("recv")
    srv.expect("ECONNRESET")
    c.sockets_check("A", "established", 1)

    def refused(sub, off):
        return c.expect("B", "challenged_rst", sub, "ESTABLISHED", "peer", srv,
                        evidence={"rst_seq": (rcv + off) & 0xffffffff, "seq_offset": off,
                                  "rcv_nxt": rcv, "segment_flags": "RST"})
    # the kernel refuses them whatever rstwatch can see (TCPChallengeACK)
    challenged = ([refused("in_window", 1000), refused("out_of_window", 1 << 30)]
                  if btf.has_refused_rst() else [])
    c.finish(challenged + [one_end(c, "B", srv,
                                   evidence={"errno": "ECONNRESET", "peer_state": "ESTABLISHED",
                                             "peer_pid": cli.pid, "peer_comm": "rw_cli",
                                             "peer_netns": c.ino["A"], "rcv_nxt": rcv,
                                             "peer_snd_nxt": rcv})],
             counters({"B": 1}))
    c.check_extra(only_b, challenged + [
        c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv,
                 evidence={"last_ack_ms": range(4900, 5400), "last_recv_ms": range(4900, 5400)},
                 hint="round number of seconds")])


@routed
def middlebox_both(c):
    """R resets both ends at once (exact RSTs to A and to B, each spoofing
    the other): two resets received, none sent, within the wait: a
    middlebox_reset at each end, each naming the other, sharing a conn_id."""
    watch = c.extra(["--port", str(c.port)])
    inj = Injector(c)
    cli, srv = c.established()
    cli.do("send 100")
    srv.do("recv")
    a, b = cli.do("seqs")["rcv_seq"], srv.do("seqs")["rcv_seq"]
    inj.send(("B", c.port, "A", c.cport, a), ("A", c.cport, "B", c.port, b))
    for actor in (cli, srv):
        actor.do("wait_hup")
        actor.send("recv")
        actor.expect("ECONNRESET")
    want = [c.expect("A", "middlebox_reset", None, "ESTABLISHED", "peer", cli,
                     evidence={"peer_state": "ESTABLISHED", "peer_pid": srv.pid, "rcv_nxt": a}),
            c.expect("B", "middlebox_reset", None, "ESTABLISHED", "peer", srv,
                     evidence={"peer_state": "ESTABLISHED", "peer_pid": cli.pid, "rcv_nxt": b})]
    c.finish(want, counters())
    seen = c.check_extra(watch, want)
    ids = {o["conn_id"] for o in seen}
    if len(ids) != 1 or None in ids:
        raise Failure(f"middlebox pair: expected one shared conn_id vs seen {sorted(map(str, ids))}")


SCENARIOS = [middlebox_reject, middlebox_nat, middlebox_inject, middlebox_both]
