#!/usr/bin/env python3
"""rstwatch end-to-end tests on the real kernel.

usage: python3 tests/e2e/run.py [-k SUBSTRING[,...]]... [--skip SUBSTRING[,...]] [--test NAME]...
                               [--rstwatch PATH] [--caps CAPS] [--no-rstwatch] [-v]

Every test builds its own pair of network namespaces (A = client, B = server)
joined by veth, starts `rstwatch -j --port PORT` with a port unique to the
test, makes the kernel abort (or close) one connection in one precise way,
and asserts rstwatch's verdicts for that port in A and B exactly, together
with the TcpExt counter deltas of both namespaces.

--no-rstwatch  developer mode: run the choreography and check only what the
               actors observed (errno) and the counters, without rstwatch.
--caps CAPS    run every rstwatch as nobody with exactly these capabilities
               (e.g. bpf,perfmon,syslog) and no other: what a least-privilege
               deployment gives it (hardening.py least_privilege_suite).
-v             print every test's non-zero TcpExt/Tcp deltas and verdicts.

Prints `PASS name` or `FAIL name: expected ... vs seen ...` per test, then
`N passed, M failed`; exits 0 iff nothing failed.  Needs root; never skips.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree

from actor import Actor  # noqa: E402
from netns import NsPair, NsRouted, counter_delta  # noqa: E402
from tracer import Rstwatch  # noqa: E402
import btf  # noqa: E402
import runner  # noqa: E402
from verdicts import (CHECKED_COUNTERS, Expect, Failure, across_instances, check,  # noqa: E402
                      check_counter_parity, contract_problems, rst_reason)

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
GRACE = 0.5          # seconds to wait for stray verdicts after the expected ones


class Case:
    """One test: a namespace pair, an rstwatch instance, actors, counters."""

    def __init__(self, opts, n, port, family, name, fn=None):
        self.opts, self.n, self.port, self.family, self.name = opts, n, port, family, name
        # a scenario may add arguments to the main instance (fn.tracer_args(c))
        # and keep out of `make traces` (fn.fixture = False)
        self.tracer_args = getattr(fn, "tracer_args", lambda c: [])
        self.recorded = bool(opts.record_fixtures) and getattr(fn, "fixture", True)
        # fn.routed: A and B on subnets of their own, router R between them
        self.pair = (NsRouted if getattr(fn, "routed", False) else NsPair)(n)
        self._scratch = None
        self.tracer = None
        self.tracers = []        # further instances a scenario starts (filters)
        self.actors = []
        self.cport = None        # the client's local port, known once bound
        self.report = []         # -v output
        # a TIME_WAIT scenario: the main instance runs with --time-wait, a
        # second one with the defaults must print only the anomalies
        self.time_wait = False
        self.default_view = None

    # -- set up / tear down
    def begin(self):
        if os.geteuid() != 0:
            raise Failure(f"not root (euid {os.geteuid()}): the e2e tests need root")
        self.t0 = time.time()
        self.pair.setup()
        self.ino = {s: self.pair.inode(s) for s in self.pair.sides}
        if not self.opts.no_rstwatch:
            rec = ["-w", self.fixture(".rwt")] if self.recorded else []
            tw = ["--time-wait"] if self.time_wait else []
            self.tracer = Rstwatch(self.opts.rstwatch,
                                   ["--port", str(self.port), *tw, *self.tracer_args(self), *rec])
            self.tracer.start(timeout=20)
            if self.time_wait:
                self.default_view = self.extra(["--port", str(self.port)])
        self.before = {s: self.pair.counters(s) for s in self.pair.sides}

    def deltas(self, after):
        """{side: {counter: delta}} since begin(): TcpExt names as they are,
        Tcp ones (OutRsts, EstabResets...) as 'Tcp.NAME'."""
        out = {}
        for s in self.pair.sides:
            out[s] = counter_delta(self.before[s], after[s])
            out[s].update({"Tcp." + k: v for k, v in
                           counter_delta(self.before[s], after[s], "Tcp").items()})
        return out

    def cleanup(self):
        for t in [self.tracer] + self.tracers:
            if t is not None:
                t.kill()
        for a in self.actors:
            a.kill()
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
        return self.pair.teardown()

    def scratch(self):
        """A directory of this test's own, removed with it."""
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix=f"rstwatch-{self.name}-")
        return self._scratch

    def fixture(self, ext):
        return os.path.join(self.opts.record_fixtures, self.name + ext)

    def save_fixture(self):
        """After a passing test: its recorded trace and, beside it, what the
        replay prints, the verdicts this test has just checked."""
        out = subprocess.run([self.opts.rstwatch, "-j", "-r", self.fixture(".rwt")],
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise Failure(f"replaying the fixture: exit {out.returncode}", out.stderr.splitlines())
        with open(self.fixture(".json"), "w") as f:
            f.write(out.stdout)

    # -- helpers for scenarios
    def addr(self, side):
        return self.pair.addr(side, self.family)

    def actor(self, side, comm):
        a = Actor(self.pair.names[side], comm)
        self.actors.append(a)
        return a

    def server(self, listen=True):
        srv = self.actor("B", "rw_srv")
        if listen:
            srv.do(f"listen {self.family} {self.addr('B')} {self.port}")
        return srv

    def client(self):
        cli = self.actor("A", "rw_cli")
        self.cport = cli.do(f"socket {self.family} {self.addr('A')}")["lport"]
        return cli

    def connect(self, cli, srv):
        cli.do(f"connect {self.addr('B')} {self.port}")
        srv.do("accept")

    def established(self):
        """Both actors' connection, A as the client."""
        srv = self.server()
        cli = self.client()
        self.connect(cli, srv)
        return cli, srv

    def expect(self, side, cls, subtype, state, origin, owner, **kw):
        e = Expect(side, cls, subtype, state, origin, owner, **kw)
        other = "B" if side == "A" else "A"
        ports = {"A": self.cport, "B": self.port}
        e.addrs = {"laddr": self.addr(side), "lport": ports[side],
                   "raddr": self.addr(other), "rport": ports[other]}
        return e

    def side_of(self, obj):
        for s, ino in self.ino.items():
            if obj.get("netns") == ino:
                return s
        return None

    def relevant(self, obj):
        return (isinstance(obj, dict) and self.side_of(obj) is not None
                and self.port in (obj.get("lport"), obj.get("rport")))

    def extra(self, args, json=True):
        """Start one more rstwatch instance now (sockets made before it exist
        only in the kernel); stopped and checked with check_extra()."""
        t = Rstwatch(self.opts.rstwatch, args, json=json)
        self.tracers.append(t)
        t.start(timeout=20)
        return t

    def check_extra(self, t, verdicts):
        """Stop instance t and compare its verdicts on this test's port, in A
        and B, with the list of Expect (the main instance is checked by finish())."""
        lines = t.stop()
        seen = [o for _, o in lines if o is not None and self.relevant(o)]
        problems = []
        check(verdicts, seen, self.side_of, self.family, problems)
        if t.argv[1:2] == ["-j"]:
            problems += [f"contract: {'; '.join(p)} in {raw}" for raw, o in lines
                         for p in [contract_problems(o, self.t0, time.time())] if p]
        if problems:
            name = f"rstwatch {' '.join(t.argv[2:])}"
            raise Failure(f"{name}: {problems[0]}",
                          problems[1:] + [f"{name} stdout (this test's port):"] +
                          ["  " + raw for raw, obj in lines if obj is None or self.relevant(obj)] +
                          [f"{name} stderr:"] + ["  " + l for l in t.stderr])
        return seen

    def sockets_check(self, side, state, count):
        lines = [l for l in self.pair.sockets(side, state)
                 if f":{self.port} " in l + " " or f":{self.cport} " in l + " "]
        if len(lines) != count:
            raise Failure(f"{side}: expected {count} {state} socket(s) on port {self.port}/"
                          f"{self.cport} vs seen {len(lines)}", lines)

    # -- the verdict
    def finish(self, verdicts, counters, tolerate=(), tw_expire=False):
        """verdicts: list of Expect; counters: {side: {TcpExt name: delta}}
        (CHECKED_COUNTERS not named must stay 0), TW and TWKilled as a
        kernel that counts a time-wait socket when it is made; tolerate:
        classes ignored; tw_expire: every time-wait socket of the test runs
        out its timer within it (else, where the kernel counts them at
        expiry, TW and TWKilled must stay 0)."""
        if btf.tw_counted_at_expiry() and not tw_expire:
            counters = {s: {k: v for k, v in kv.items() if k not in ("TW", "TWKilled")}
                        for s, kv in counters.items()}
        if self.tracer is not None:
            self.tracer.wait_for(self.relevant, len(verdicts), timeout=3)
            time.sleep(GRACE)
        after = {s: self.pair.counters(s) for s in self.pair.sides}
        deltas = self.deltas(after)
        lines = self.tracer.stop() if self.tracer is not None else []
        t1 = time.time()

        counter_problems = []
        for s in self.pair.sides:
            for c in sorted(set(CHECKED_COUNTERS) | set(counters.get(s, {}))):
                want, got = counters.get(s, {}).get(c, 0), deltas[s].get(c, 0)
                if want != got:
                    counter_problems.append(f"{'' if c.startswith('Tcp.') else 'TcpExt '}{c} delta "
                                            f"in {s}: expected {want} vs seen {got}")
        verdict_problems, contract, seen = [], [], []
        if self.tracer is not None:
            for raw, obj in lines:
                if obj is None:
                    contract.append(f"stdout line is not JSON: {raw!r}")
                    continue
                p = contract_problems(obj, self.t0, t1)
                if p:
                    contract.append(f"contract: {'; '.join(p)} in {raw}")
                if isinstance(obj, dict) and self.port not in (obj.get("lport"), obj.get("rport")):
                    contract.append(f"--port {self.port} let through: {raw}")
                complete = isinstance(obj, dict) and not any(x.startswith("missing key") for x in p)
                if complete and self.relevant(obj) and obj["class"] not in tolerate:
                    seen.append(obj)
            check(verdicts, seen, self.side_of, self.family, verdict_problems)
            check_counter_parity(seen, self.side_of, deltas, verdict_problems)

        if self.opts.verbose:
            for s in self.pair.sides:
                self.report.append(f"{s} {deltas[s]}")
            self.report += [raw for raw, obj in lines if obj is None or self.relevant(obj)]
        problems = verdict_problems + counter_problems + contract
        if problems:
            details = problems[1:]
            if self.tracer is not None:
                details += ["rstwatch stdout (this test's port):"]
                details += ["  " + raw for raw, obj in lines if obj is None or self.relevant(obj)]
                details += ["rstwatch stderr:" + ("" if self.tracer.stderr else " (empty)")]
                details += ["  " + l for l in self.tracer.stderr]
            raise Failure(problems[0], details)
        if self.default_view is not None:
            self.check_extra(self.default_view, [e for e in verdicts if not e.tw_only])


# ------------------------------------------------------------------ scenarios
# Each runs with a fresh Case `c` (A = client 'rw_cli', B = server 'rw_srv').

def linger0(c):
    """Client closes with SO_LINGER {1,0}: RST from A's close path."""
    cli, srv = c.established()
    cli.do("linger0")
    srv.send("recv")
    cli.do("close")
    srv.expect("ECONNRESET")
    c.finish([c.expect("A", "linger0", None, "ESTABLISHED", "local", cli,
                       reason=rst_reason("TCP_STATE")),
              c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)],
             {"A": {"TCPAbortOnData": 1}})


def unread_data(c):
    """Client closes with 100 unread bytes: RST with TCP_ABORT_ON_CLOSE."""
    cli, srv = c.established()
    srv.do("send 100")
    cli.do("wait_readable 100")
    srv.send("recv")
    cli.do("close")
    srv.expect("ECONNRESET")
    c.finish([c.expect("A", "unread_data", None, "ESTABLISHED", "local", cli,
                       reason=rst_reason("TCP_ABORT_ON_CLOSE"), evidence={"unread_bytes": 100}),
              c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)],
             {"A": {"TCPAbortOnClose": 1}})


def timeout_retransmit(c):
    """B silently drops everything: A gives up after tcp_retries2=3 RTOs."""
    c.pair.sysctl("A", "net.ipv4.tcp_retries2", 3)
    cli, srv = c.established()
    c.pair.drop_incoming_tcp("B", c.port)
    cli.do("send 100")
    cli.send("recv")
    cli.expect("ETIMEDOUT", timeout=15)
    # B's socket stays open (ESTABLISHED, silent) until rstwatch has stopped.
    c.finish([c.expect("A", "timeout", "retransmit", "ESTABLISHED", "local", cli)],
             {"A": {"TCPAbortOnTimeout": 1}})


def timeout_syn(c):
    """B drops SYNs: connect() fails with ETIMEDOUT after tcp_syn_retries=1."""
    c.pair.sysctl("A", "net.ipv4.tcp_syn_retries", 1)
    c.pair.drop_incoming_tcp("B", c.port)
    cli = c.client()
    cli.send(f"connect {c.addr('B')} {c.port}")
    cli.expect("ETIMEDOUT", timeout=15)
    c.finish([c.expect("A", "timeout", "syn", "SYN_SENT", "local", cli)],
             {"A": {"TCPAbortOnTimeout": 1}})


def timeout_keepalive(c):
    """B drops everything after the handshake: keepalive 1/1/2 gives up, RST."""
    cli, srv = c.established()
    c.pair.drop_incoming_tcp("B", c.port)
    cli.do("keepalive 1 1 2")     # armed only now: the first probe is 1 s from here
    cli.send("recv")
    cli.expect("ETIMEDOUT", timeout=15)
    c.finish([c.expect("A", "timeout", "keepalive", "ESTABLISHED", "local", cli,
                       reason=rst_reason("TCP_KEEPALIVE_TIMEOUT"))],
             {"A": {"TCPAbortOnTimeout": 1}})


def refused(c):
    """SYN to a port without listener: B answers RST from no socket."""
    cli = c.client()
    cli.send(f"connect {c.addr('B')} {c.port}")
    cli.expect("ECONNREFUSED")
    c.finish([c.expect("B", "refused", None, None, "reply", None,
                       reason=rst_reason("NO_SOCKET")),
              c.expect("A", "peer_reset", None, "SYN_SENT", "peer", cli)],
             {})


def lost_server_reset(c, listener):
    """B aborts (linger 0) but its RST is lost before A's TCP sees it; then
    A's data reaches B, whose listener is still there or not, and draws an
    RST.  Returns the (client, server) actors, A having seen ECONNRESET.

    The RST is dropped on A's input, not on B's output: an output drop makes
    tcp_send_active_reset() fail and bumps TCPAbortFailed in B, which is not
    the situation (a RST lost in the network) these tests are about."""
    cli, srv = c.established()
    if not listener:
        srv.do("close_listener")
    c.pair.drop_incoming_rst("A", c.port)
    srv.do("linger0")
    srv.do("close")
    c.pair.nft_flush("A")
    c.sockets_check("A", "established", 1)   # the RST really never arrived
    cli.do("send 10")
    cli.send("recv")
    cli.expect("ECONNRESET")
    return cli, srv


def half_open(c):
    """B's RST lost (lost_server_reset()), no listener: A's data hits no
    socket in B and draws a RST from no socket."""
    cli, srv = lost_server_reset(c, listener=False)
    c.finish([c.expect("B", "linger0", None, "ESTABLISHED", "local", srv,
                       reason=rst_reason("TCP_STATE")),
              c.expect("B", "half_open", None, None, "reply", None,
                       reason=rst_reason("NO_SOCKET")),
              c.expect("A", "peer_reset", None, "ESTABLISHED", "peer", cli)],
             {"B": {"TCPAbortOnData": 1}})


def half_open_listener(c):
    """As half_open, but B's listener is still there: A's data finds no
    connection and the listener answers it (tcp_rcv_state_process() in
    LISTEN, an ACK for nothing).  Not an accept queue overflow, whatever the
    kernel gives as a reason.  Its owner is the listener's (here the same
    process as the connection's)."""
    cli, srv = lost_server_reset(c, listener=True)
    c.finish([c.expect("B", "linger0", None, "ESTABLISHED", "local", srv,
                       reason=rst_reason("TCP_STATE")),
              c.expect("B", "half_open", None, "LISTEN", "reply", srv,
                       reason=rst_reason("TCP_FLAGS")),
              c.expect("A", "peer_reset", None, "ESTABLISHED", "peer", cli)],
             {"B": {"TCPAbortOnData": 1, "Tcp.OutRsts": 2}})


def time_wait(c):
    """Orderly close, client first: A's socket enters TIME_WAIT, no abort."""
    cli, srv = c.established()
    scen_lifecycle.client_closes_first(c, cli, srv)
    c.sockets_check("B", "time-wait", 0)
    c.finish([c.expect("A", "time_wait", None, "TIME_WAIT", "lifecycle", cli)],
             {"A": {"TW": 1}})


time_wait.time_wait = True


def filters(c):
    """The in-kernel filters: -p (owner pid), --netns (path form) and -4/-6,
    and --class on verdicts.  A linger-0 close makes one verdict in each
    namespace; each filtered instance must report exactly its share, the
    main one (--port) both.  Then a trace recorded with --port alone,
    replayed with each instance's filters, must print what that instance
    printed, times and the ages read from the clock aside
    (verdicts.across_instances)."""
    srv = c.server(listen=False)        # the process exists before rstwatch learns its pid
    other = "-6" if c.family == "ipv4" else "-4"
    os.chmod(c.scratch(), 0o1777)    # a /tmp: rstwatch may run as nobody (--caps)
    trace = os.path.join(c.scratch(), "port.rwt")
    args = {"pid": ["-p", str(srv.pid)], "netns": ["--netns", c.pair.path("A")],
            "family": [other, "--port", str(c.port)],
            "class": ["--class", "no-linger0", "--port", str(c.port)]}
    extra = {name: c.extra(a) for name, a in args.items()}
    recorder = c.extra(["--port", str(c.port), "-w", trace])
    srv.do(f"listen {c.family} {c.addr('B')} {c.port}")
    cli = c.client()
    c.connect(cli, srv)
    cli.do("linger0")
    srv.send("recv")
    cli.do("close")
    srv.expect("ECONNRESET")
    want_a = c.expect("A", "linger0", None, "ESTABLISHED", "local", cli)
    want_b = c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)
    c.finish([want_a, want_b], {"A": {"TCPAbortOnData": 1}})
    for name, want in (("pid", [want_b]), ("netns", [want_a]), ("family", []),
                       ("class", [want_b])):
        c.check_extra(extra[name], want)
    recorder.stop()

    for name, a in args.items():
        rep = subprocess.run([c.opts.rstwatch, "-j", "-r", trace, *a], capture_output=True,
                             text=True, timeout=20)
        live = across_instances(raw for raw, o in extra[name].lines
                                if o is not None and c.relevant(o))
        replayed = across_instances(rep.stdout.splitlines())
        if rep.returncode != 0 or replayed != live:
            raise Failure(f"replay with {' '.join(a)}: expected what the live instance printed vs "
                          f"exit {rep.returncode}", ["live:"] + live + ["replay:"] + replayed +
                          rep.stderr.splitlines())


def abort_seen_late(c, late, cli):
    """cli closes with linger 0; wait until instance `late` has both verdicts,
    so that nothing the server does afterwards can have named its owner."""
    cli.do("linger0")
    cli.do("close")     # tcp_disconnect(): ESTABLISHED -> CLOSE, no owner moment
    if not late.wait_for(c.relevant, 2, timeout=3):
        raise Failure("late rstwatch: expected 2 verdicts within 3 s of the reset vs seen "
                      f"{sum(1 for _, o in late.lines if o is not None and c.relevant(o))}",
                      ["  " + l for l in late.stderr])


def preexisting(c):
    """A connection established before an rstwatch instance starts, then
    aborted (linger 0) with no socket call in between: that instance can know
    both owners only from its start-up walk of open files (seed_owners)."""
    cli, srv = c.established()
    late = c.extra(["--port", str(c.port)])
    abort_seen_late(c, late, cli)
    srv.send("recv")    # only now: recvmsg() is an owner moment
    srv.expect("ECONNRESET")
    want = [c.expect("A", "linger0", None, "ESTABLISHED", "local", cli,
                     reason=rst_reason("TCP_STATE")),
            c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)]
    c.finish(want, {"A": {"TCPAbortOnData": 1}})
    c.check_extra(late, want)


def preexisting_listener(c):
    """A listener made before an rstwatch instance starts: a connection it
    receives afterwards inherits the listener's owner (seeded listeners
    entry).  The server never accepts: accept() would name the owner itself
    where the kernel allows fexit."""
    srv = c.server()
    late = c.extra(["--port", str(c.port)])
    cli = c.client()
    cli.do(f"connect {c.addr('B')} {c.port}")
    abort_seen_late(c, late, cli)
    want = [c.expect("A", "linger0", None, "ESTABLISHED", "local", cli,
                     reason=rst_reason("TCP_STATE")),
            c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)]
    c.finish(want, {"A": {"TCPAbortOnData": 1}})
    c.check_extra(late, want)


def record_replay(c):
    """-w while tracing live, then -r as an unprivileged user: the replay must
    print exactly what the live run printed, byte for byte, in JSON and in
    text, -c summary included.  The mix has all three origins seen on a linger-0 close and a
    connection to a closed port."""
    tmp = tempfile.mkdtemp(prefix="rstwatch-e2e-")
    try:
        os.chmod(tmp, 0o1777)    # a /tmp: rstwatch may run as nobody (--caps)
        trace = {fmt: os.path.join(tmp, f"{fmt}.rwt") for fmt in ("json", "text")}
        live = {fmt: c.extra(["-c", "--port", str(c.port), "-w", trace[fmt]], json=fmt == "json")
                for fmt in ("json", "text")}
        cli, srv = c.established()
        cli.do("linger0")
        srv.send("recv")
        cli.do("close")
        srv.expect("ECONNRESET")
        # expectations take the client's port now: the second client has another
        want = [c.expect("A", "linger0", None, "ESTABLISHED", "local", cli),
                c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)]
        srv.do("close_listener")
        cli2 = c.client()
        cli2.send(f"connect {c.addr('B')} {c.port}")
        cli2.expect("ECONNREFUSED")
        want += [c.expect("B", "refused", None, None, "reply", None),
                 c.expect("A", "peer_reset", None, "SYN_SENT", "peer", cli2)]
        c.finish(want, {"A": {"TCPAbortOnData": 1}})
        for fmt, t in live.items():
            lines = t.stop()
            out = "".join(raw + "\n" for raw, _ in lines)
            if fmt == "json":
                seen = [o for _, o in lines if o is not None and c.relevant(o)]
                problems = []
                check(want, seen, c.side_of, c.family, problems)
                if problems:
                    raise Failure(f"live -w -j instance: {problems[0]}", problems[1:])
                # -c: the last line is the total, counting exactly those verdicts
                total = lines[-1][1] or {}
                counts = {(x["class"], x["subtype"]): x["count"] for x in total.get("counts", [])}
                want_counts = {("linger0", None): 1, ("peer_reset", None): 2, ("refused", None): 1}
                if total.get("summary") != "total" or counts != want_counts or total.get("lost") != 0:
                    raise Failure(f"-c summary: expected counts {want_counts}, lost 0 vs seen "
                                  f"{lines[-1][0]}")
            os.chmod(trace[fmt], 0o644)
            replay = [c.opts.rstwatch, "-c", "-r", trace[fmt], *(["-j"] if fmt == "json" else [])]
            rep = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                  *replay], capture_output=True, text=True, timeout=20)
            if rep.returncode != 0:
                raise Failure(f"{fmt}: replay as nobody exited {rep.returncode}",
                              rep.stderr.splitlines())
            if rep.stdout != out:
                raise Failure(f"{fmt}: the replay differs from the live output",
                              ["live:"] + out.splitlines() + ["replay:"] + rep.stdout.splitlines())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


GATE_PROG = r"""
import os, select, socket, sys, time
print("prog", os.getpid(), open(f"/proc/{os.getpid()}/cgroup").read().split("::")[-1].strip(),
      flush=True)
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
select.select([c], [], [], 10)
time.sleep(0.2)              # all 100 bytes in: close() discards them unread
c.close()
"""


def gate(c):
    """rstwatch --fail-on unread_data -- CMD: CMD (in A) closes with unread
    data, so rstwatch exits 3 and repeats the verdict on stderr; only CMD's
    process tree is traced, so the server's peer_reset (B, not in the tree)
    is absent.  A clean CMD's own exit status passes through, and under sudo
    CMD runs as the invoking user."""
    env = {k: v for k, v in os.environ.items() if k not in ("SUDO_UID", "SUDO_GID")}
    srv = c.server()
    srv.send("accept")
    argv = [c.opts.rstwatch, "-j", "--fail-on", "unread_data", "--",
            "ip", "netns", "exec", c.pair.names["A"], "python3", "-c", GATE_PROG,
            c.addr("B"), str(c.port)]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    srv.expect(None, timeout=15)
    srv.do("send 100")
    out, err = p.communicate(timeout=30)
    lines = out.splitlines()
    prog = next((l.split() for l in lines if l.startswith("prog ")), None)
    if p.returncode != 3 or prog is None:
        raise Failure(f"--fail-on: expected exit 3 and the program's pid vs exit {p.returncode}",
                      lines + err.splitlines())
    cli = type("Prog", (), {"pid": int(prog[1]), "comm": "python3", "cgroup_path": prog[2]})
    c.cport = next(json.loads(l)["lport"] for l in lines if '"unread_data"' in l)
    want = c.expect("A", "unread_data", None, "ESTABLISHED", "local", cli,
                    evidence={"unread_bytes": 100})
    seen = [json.loads(l) for l in lines if l.startswith("{")]
    problems = []
    check([want], [o for o in seen if c.relevant(o)], c.side_of, c.family, problems)
    if len(seen) != 1:
        problems.append(f"only CMD's tree is traced: expected 1 verdict vs seen {len(seen)}")
    if "rstwatch: --fail-on: 1 forbidden verdict:" not in err or "unread_data" not in err:
        problems.append(f"stderr does not repeat the forbidden verdict: {err!r}")
    if problems:
        raise Failure(problems[0], problems[1:] + lines + err.splitlines())
    # the main instance (--port) sees both ends, the counter moved once
    c.finish([want, c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)],
             {"A": {"TCPAbortOnClose": 1}})

    clean = subprocess.run([c.opts.rstwatch, "--fail-on", "unread_data", "--", "sh", "-c", "exit 5"],
                           capture_output=True, text=True, timeout=30, env=env)
    if clean.returncode != 5:
        raise Failure(f"clean CMD: expected its exit status 5 vs {clean.returncode}",
                      clean.stderr.splitlines())
    sudo = subprocess.run([c.opts.rstwatch, "--", "id", "-u"], capture_output=True, text=True,
                          timeout=30, env=dict(env, SUDO_UID="65534", SUDO_GID="65534"))
    if sudo.returncode != 0 or "65534" not in sudo.stdout.splitlines():
        raise Failure(f"under sudo CMD runs as SUDO_UID: expected uid 65534 and exit 0 vs "
                      f"{sudo.stdout.split()} exit {sudo.returncode}", sudo.stderr.splitlines())


import scen_aborts  # noqa: E402  (after Failure & co: it imports them)
import scen_lifecycle  # noqa: E402
import scen_servers  # noqa: E402
import scen_load  # noqa: E402
import scen_fleet  # noqa: E402
import scen_middlebox  # noqa: E402

SCENARIOS = [linger0, unread_data, timeout_retransmit, timeout_syn, timeout_keepalive,
             refused, half_open, half_open_listener, time_wait, filters, preexisting,
             preexisting_listener, record_replay, gate] + scen_aborts.SCENARIOS + scen_lifecycle.SCENARIOS + scen_servers.SCENARIOS + \
            scen_load.SCENARIOS + scen_fleet.SCENARIOS + scen_middlebox.SCENARIOS


def tests():
    out = []
    for fn in SCENARIOS:
        for fam, suffix in getattr(fn, "families", (("ipv4", "v4"), ("ipv6", "v6"))):
            out.append((f"{fn.__name__}_{suffix}", fn, fam))
    return out


def matches(name, pattern):
    """-k/--skip: a substring of the name, or with a leading ^ its start."""
    return name.startswith(pattern[1:]) if pattern.startswith("^") else pattern in name


def run_one(opts, i, name, fn, family, verdict="FAIL"):
    """Run one test and print its line: PASS, or `verdict` (FAIL; RETRY when
    it runs again; XFAIL for a failure --known names) with the details."""
    port = 20000 + (os.getpid() % 120) * 100 + i   # < 32768: never an ephemeral port
    c = Case(opts, i + 1, port, family, name, fn)
    c.time_wait = getattr(fn, "time_wait", False)
    failure, took = runner.attempt(c, fn, lambda: c.recorded and c.save_fixture())
    if failure is not None and c.tracer is not None and "rstwatch stderr:" not in failure[1]:
        failure[1].append("rstwatch stderr:" + ("" if c.tracer.stderr else " (empty)"))
        failure[1].extend("  " + l for l in c.tracer.stderr)
    if failure is None:
        print(f"PASS {name}  ({took:.1f}s)")
    else:
        print(f"{verdict} {name}: {failure[0]}  ({took:.1f}s)")
        for line in failure[1]:
            print("    " + line)
    if opts.verbose:
        for line in c.report:
            print("    " + line)
    sys.stdout.flush()
    return failure is None


def caps_wrapper(rstwatch, caps):
    """An executable that runs rstwatch as nobody with exactly the
    capabilities caps (inheritable, ambient and bounding set: nothing else
    can be gained); every test then starts that instead.  It execs, so the
    pid the tests signal is rstwatch's.  Started by a user other than root
    (a replay as nobody) it runs rstwatch as it is."""
    want = ",".join("+" + c for c in caps.split(","))
    d = tempfile.mkdtemp(prefix="rstwatch-caps-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "rstwatch")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"   # already unprivileged (a replay as nobody): as it is
                f"[ \"$(id -u)\" = 0 ] || exec '{rstwatch}' \"$@\"\n"
                f"exec setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all,{want} "
                f"--ambient-caps=-all,{want} --bounding-set=-all,{want} '{rstwatch}' \"$@\"\n")
    os.chmod(path, 0o755)
    import atexit
    atexit.register(shutil.rmtree, d, True)
    return path


def main():
    ap = argparse.ArgumentParser(description="rstwatch end-to-end tests (root, real kernel)")
    ap.add_argument("-k", metavar="SUBSTRING[,...]", action="append",
                    help="run only tests whose name contains one of them (^X: starts with X; "
                         "repeat for more)")
    ap.add_argument("--skip", metavar="SUBSTRING[,...]",
                    help="leave out tests whose name contains one of them")
    ap.add_argument("--test", metavar="NAME", action="append",
                    help="run only the test of exactly this name (repeat for several)")
    ap.add_argument("--rstwatch", default=os.path.join(REPO, "rstwatch"),
                    help="the rstwatch binary (default: the repository's ./rstwatch)")
    ap.add_argument("--caps", metavar="CAPS",
                    help="run rstwatch as nobody with exactly these capabilities, e.g. "
                         "bpf,perfmon,syslog")
    ap.add_argument("--no-rstwatch", action="store_true",
                    help="developer mode: check only errno and counters, without rstwatch")
    ap.add_argument("--retries", type=int, default=0, metavar="N",
                    help="run a failed test up to N times more; it fails only if every run "
                         "fails (make test-vm: the racy orders TCG widens)")
    ap.add_argument("--known", metavar="NAME[,...]",
                    help="failures of these tests are known on this kernel (README, Kernel "
                         "support): printed as XFAIL and counted apart, not failed")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--record-fixtures", metavar="DIR",
                    help="also record each test's trace to DIR/NAME.rwt and, once the test "
                         "passed, its replayed verdicts to DIR/NAME.json (make traces)")
    opts = ap.parse_args()
    opts.rstwatch = os.path.abspath(opts.rstwatch)
    if opts.caps:
        opts.rstwatch = caps_wrapper(opts.rstwatch, opts.caps)
    if opts.record_fixtures:
        opts.record_fixtures = os.path.abspath(opts.record_fixtures)
        os.makedirs(opts.record_fixtures, exist_ok=True)

    known = set((opts.known or "").split(",")) - {""}
    passed = failed = 0
    retried, xfail = [], []
    for i, (name, fn, fam) in enumerate(tests()):
        ks = [k for arg in opts.k or [] for k in arg.split(",")]
        if (ks and not any(matches(name, k) for k in ks)) or (opts.test and name not in opts.test):
            continue
        if opts.skip and any(matches(name, k) for k in opts.skip.split(",")):
            continue
        final = "XFAIL" if name in known else "FAIL"
        retries = 0 if name in known else opts.retries     # its failure is no surprise
        for attempt in range(retries + 1):
            last = attempt == retries
            if run_one(opts, i, name, fn, fam, final if last else "RETRY"):
                passed += 1
                if attempt:
                    retried.append(name)
                break
        else:
            if name in known:
                xfail.append(name)
            else:
                failed += 1
    extra = [f"{len(xfail)} known failure(s): {','.join(xfail)}"] if xfail else []
    extra += [f"{len(retried)} passed on a retry: {','.join(retried)}"] if retried else []
    print(f"{passed} passed, {failed} failed" + (f" ({'; '.join(extra)})" if extra else ""))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
