#!/usr/bin/env python3
"""rstwatch as a service: --metrics against a real Prometheus and hostile clients.

usage: python3 tests/e2e/service.py [-k SUBSTRING] [--rstwatch PATH] [-v]

Each test runs the real ./rstwatch against the real kernel (root) with
--metrics on a loopback port of its own (port 0: rstwatch picks, and says
which on stderr), makes known aborts in a namespace pair (netns.NsPair,
actor.py) on a port unique to the test, and checks:

- prometheus: a real Prometheus (Debian's, started here with a temporary
  config and data directory, scraping every second) stores counters equal
  to the aborts made, as its HTTP API (/api/v1/query) answers, equal to
  rstwatch's JSON verdicts and to the namespaces' TcpExt counters; the
  TIME_WAIT and CLOSE_WAIT gauges; per-owner series; `promtool check
  metrics` on a live scrape, and a strict OpenMetrics parser.
- hostile clients (slowloris, a 1 MiB request line, garbage and bad
  requests, 1000 connections at once, a client that never reads): while
  each goes on, aborts still get their verdicts at once, a normal scrape
  still works, RSS stays flat; at the end rstwatch exits 0 within 2 s of
  SIGINT with lost = 0 in its -c total.

Prints `PASS name` or `FAIL name: what, expected vs seen` per test, then
`N passed, M failed`; never skips.  Traffic to the endpoint stays on
127.0.0.1 / ::1, every loop is bounded in count and time.
"""
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import runner  # noqa: E402
from actor import Actor  # noqa: E402
from netns import NsPair, counter_delta  # noqa: E402
from runner import Failure  # noqa: E402
from scen_lifecycle import client_closes_first  # noqa: E402
from tracer import Rstwatch  # noqa: E402
from verdicts import contract_problems  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
OM_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
             "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
RSS_GROWTH_KIB = 4096     # what a hostile client may cost at most


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failure(f"no VmRSS for pid {pid}")


def http(addr, path="/metrics", accept=None, method="GET", timeout=5):
    """(status, headers, body) of one request to rstwatch's endpoint."""
    req = urllib.request.Request(f"http://{addr}{path}", method=method)
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def parse_text(body):
    """{(name, frozenset(labels.items())): value} of a text exposition."""
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m:
            raise Failure(f"exposition line does not parse: {line!r}")
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def metric(samples, name, **labels):
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == v2 for k, v2 in labels.items()))


class Ctx:
    """One test: a namespace pair, a port for its aborts, rstwatch, cleanup."""

    def __init__(self, opts, n, port):
        self.opts, self.n, self.port = opts, n, port
        self.pair = NsPair(n)
        self.procs, self.actors, self.undo = [], [], []
        self.tracer = None
        self.tmp = tempfile.mkdtemp(prefix="rstwatch-svc-")

    def begin(self):
        if os.geteuid() != 0:
            raise Failure(f"not root (euid {os.geteuid()}): these tests need root")
        self.pair.setup()
        self.ino = {self.pair.inode(s): s for s in "AB"}

    def cleanup(self):
        if self.tracer is not None:
            self.tracer.kill()
        for a in self.actors:
            a.kill()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        for fn in reversed(self.undo):
            try:
                fn()
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        return self.pair.teardown()

    def mine(self, o):
        return (isinstance(o, dict) and "summary" not in o and o.get("netns") in self.ino
                and self.port in (o.get("lport"), o.get("rport")))

    def start(self, *args):
        """rstwatch -j -c --port PORT --metrics 127.0.0.1:0 ARGS; sets self.addr."""
        self.tracer = Rstwatch(self.opts.rstwatch, ["-c", "--port", str(self.port), *args])
        self.tracer.start(timeout=20)
        for line in self.tracer.stderr:
            m = re.match(r"^rstwatch: metrics on http://(\S+)/metrics$", line)
            if m:
                self.addr = m.group(1)
                return self.tracer
        raise Failure("no 'rstwatch: metrics on http://ADDR/metrics' line before tracing",
                      self.tracer.stderr)

    def stop(self):
        """SIGINT; exit 0 within 2 s; returns (verdicts of this test, the -c total)."""
        t0 = time.monotonic()
        lines = self.tracer.stop(timeout=10)
        took = time.monotonic() - t0
        objs = [o for _, o in lines if o is not None]
        total = [o for o in objs if o.get("summary") == "total"]
        if took > 2.0 or len(total) != 1:
            raise Failure(f"expected exit 0 within 2 s of SIGINT with one -c total vs "
                          f"{took:.2f} s, {len(total)} totals", self.tracer.stderr)
        problems = [p for _, o in lines if o is not None
                    for p in contract_problems(o, self.t0, time.time())]
        if problems:
            raise Failure(f"JSON contract: {problems[0]}", problems[1:])
        return [o for o in objs if self.mine(o)], total[0]

    def actor(self, side, comm):
        a = Actor(self.pair.names[side], comm)
        self.actors.append(a)
        return a

    def addr_of(self, side):
        return self.pair.addr(side, "ipv4")

    def refuse(self, cli):
        """A SYN to B:PORT with no listener: refused in B, peer_reset in A."""
        cli.do(f"socket ipv4 {self.addr_of('A')}")
        cli.send(f"connect {self.addr_of('B')} {self.port}")
        cli.expect("ECONNREFUSED")

    def connect(self, cli, srv):
        self.cport = cli.do(f"socket ipv4 {self.addr_of('A')}")["lport"]
        cli.do(f"connect {self.addr_of('B')} {self.port}")
        srv.do("accept")

    def unread_data(self, cli, srv):
        self.connect(cli, srv)
        srv.do("send 100")
        cli.do("wait_readable 100")
        srv.send("recv")
        cli.do("close")
        srv.expect("ECONNRESET")

    def linger0(self, cli, srv):
        self.connect(cli, srv)
        cli.do("linger0")
        srv.send("recv")
        cli.do("close")
        srv.expect("ECONNRESET")

    def aborts_flow(self, k, what):
        """k refused connections now: their 2k verdicts must come within 2 s,
        which they cannot if anything holds up the draining of the ring buffer."""
        cli = self.actor("A", "rw_cli")
        before = sum(1 for _, o in self.tracer.lines if self.mine(o))
        t0 = time.monotonic()
        for _ in range(k):
            self.refuse(cli)
        if not self.tracer.wait_for(self.mine, before + 2 * k, timeout=2):
            seen = sum(1 for _, o in self.tracer.lines if self.mine(o)) - before
            raise Failure(f"{what}: expected {2 * k} verdicts within 2 s of {k} aborts vs {seen}")
        cli.kill()
        return time.monotonic() - t0


# ------------------------------------------------------------------ Prometheus

class Prometheus:
    """Debian's prometheus, run here: temp config and data, 1 s scrapes."""

    def __init__(self, c, targets, rule_files=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        d = os.path.join(c.tmp, "prometheus")
        os.makedirs(os.path.join(d, "data"))
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: rstwatch\n    static_configs:\n"
                    f"      - targets: [{', '.join(repr(t) for t in targets)}]\n")
            if rule_files:
                f.write("rule_files:\n" + "".join(f"  - {r}\n" for r in rule_files))
        self.log = open(os.path.join(d, "log"), "w+")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={d}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        c.procs.append(self.proc)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Failure("prometheus did not become ready within 30 s", self.logs())
            time.sleep(0.2)

    def logs(self):
        self.log.seek(0)
        return self.log.read().splitlines()[-20:]

    def query(self, q):
        """[(labels, value)] of an instant query."""
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise Failure(f"query {q!r}: {body}")
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def wait(self, q, want, timeout=30):
        """Poll query q until its {labels minus job/instance: value} equals want."""
        deadline = time.monotonic() + timeout
        while True:
            got = {frozenset((k, v) for k, v in m.items() if k not in ("job", "instance", "__name__")):
                   val for m, val in self.query(q)}
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.5)


def series_text(d):
    return ", ".join(sorted("{" + ",".join(f"{k}={v}" for k, v in sorted(ls)) + f"}} {n:g}"
                            for ls, n in d.items())) or "(none)"


def verdict_key(o):
    ls = {"class": o["class"], "origin": o["origin"]}
    if o["subtype"]:
        ls["subtype"] = o["subtype"]
    if o["state"]:
        ls["state"] = o["state"]
    return frozenset(ls.items())


def prometheus(c):
    """Known aborts and lifecycle events in a namespace pair, scraped by a
    real Prometheus: the counters it stores equal the aborts made, the JSON
    verdicts and the TcpExt deltas; gauges, per-owner series; promtool and
    a strict OpenMetrics parser on live scrapes."""
    c.t0 = time.time()
    c.start("--metrics", "127.0.0.1:0", "--metrics-labels", "comm", "--close-wait", "1")
    prom = Prometheus(c, [c.addr])
    before = {s: c.pair.counters(s) for s in "AB"}
    cli, srv = c.actor("A", "rw_cli"), c.actor("B", "rw_srv")
    for _ in range(2):
        c.refuse(cli)
    srv.do(f"listen ipv4 {c.addr_of('B')} {c.port}")
    for _ in range(3):
        c.unread_data(cli, srv)
    c.linger0(cli, srv)
    # orderly close, A first: A holds TIME_WAIT (60 s, longer than the test)
    c.connect(cli, srv)
    client_closes_first(c, cli, srv)
    # A half-closes, B never closes: B sits in CLOSE_WAIT past --close-wait 1
    c.connect(cli, srv)
    cli.do("shutdown_wr")
    srv.send("recv")
    srv.expect("EOF")
    want = {
        frozenset({"class": "refused", "origin": "reply"}.items()): 2,
        frozenset({"class": "peer_reset", "origin": "peer", "state": "SYN_SENT"}.items()): 2,
        frozenset({"class": "unread_data", "origin": "local", "state": "ESTABLISHED"}.items()): 3,
        frozenset({"class": "linger0", "origin": "local", "state": "ESTABLISHED"}.items()): 1,
        frozenset({"class": "peer_reset", "origin": "peer", "state": "ESTABLISHED"}.items()): 4,
        frozenset({"class": "close_wait", "subtype": "stuck", "origin": "lifecycle",
                   "state": "CLOSE_WAIT"}.items()): 1,
    }
    problems = []
    got = prom.wait("rstwatch_verdicts_total", want)
    if got != want:
        problems.append(f"Prometheus rstwatch_verdicts_total: expected {series_text(want)} vs "
                        f"{series_text(got)}")
    # a normal TIME_WAIT is no verdict by default: the kernel counts it
    for q, v in (("rstwatch_time_wait_sockets", 1), ("rstwatch_time_wait_entered_total", 1),
                 ("rstwatch_close_wait_stuck_sockets", 1),
                 ("rstwatch_events_lost_total", 0), ('up{job="rstwatch"}', 1)):
        got1 = prom.wait(q, {frozenset(): v}, timeout=5)
        if got1 != {frozenset(): v}:
            problems.append(f"Prometheus {q}: expected {v} vs {series_text(got1)}")
    owners = {frozenset({"comm": "rw_cli"}.items()): 6, frozenset({"comm": "rw_srv"}.items()): 5}
    got2 = prom.wait("sum by (comm) (rstwatch_owner_verdicts_total)", owners, timeout=5)
    if got2 != owners:
        problems.append(f"Prometheus per-owner sums: expected {series_text(owners)} vs "
                        f"{series_text(got2)}")
    # the live exposition, text and OpenMetrics, through real parsers
    status, hdrs, text = http(c.addr)
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    if status != 200 or not hdrs.get("Content-Type", "").startswith("text/plain; version=0.0.4") \
            or lint.returncode != 0 or lint.stdout.strip() or lint.stderr.strip():
        problems.append(f"text format: expected 200, text/plain 0.0.4, promtool silent vs "
                        f"{status}, {hdrs.get('Content-Type')}, promtool: "
                        f"{(lint.stdout + lint.stderr).strip()!r}")
    status, hdrs, om = http(c.addr, accept=OM_ACCEPT)
    parse = subprocess.run(["/usr/bin/python3", "-c",
                            "import sys\nfrom prometheus_client.openmetrics.parser import "
                            "text_string_to_metric_families as p\nprint(len(list(p(sys.stdin.read()))))"],
                           input=om, capture_output=True, text=True, timeout=30)
    if status != 200 or not hdrs.get("Content-Type", "").startswith(
            "application/openmetrics-text; version=1.0.0") or parse.returncode != 0:
        problems.append(f"OpenMetrics: expected 200, application/openmetrics-text 1.0.0, parsed vs "
                        f"{status}, {hdrs.get('Content-Type')}, {parse.stderr.strip()[-300:]!r}")
    after = {s: c.pair.counters(s) for s in "AB"}
    deltas = {s: counter_delta(before[s], after[s]) for s in "AB"}
    mine, total = c.stop()
    # JSON and Prometheus agree
    seen = {}
    for o in mine:
        seen[verdict_key(o)] = seen.get(verdict_key(o), 0) + 1
    if seen != want:
        problems.append(f"JSON verdicts: expected {series_text(want)} vs {series_text(seen)}")
    # and the kernel's own counters agree
    for side, counter, n in (("A", "TCPAbortOnClose", 3), ("A", "TCPAbortOnData", 1), ("A", "TW", 1)):
        if deltas[side].get(counter, 0) != n:
            problems.append(f"TcpExt {counter} delta in {side}: expected {n} vs {deltas[side].get(counter, 0)}")
    if total["lost"] != 0:
        problems.append(f"-c total: expected lost 0 vs {total['lost']}")
    if problems:
        raise Failure(problems[0], problems[1:] + ["prometheus log:"] + prom.logs() +
                      ["rstwatch stderr:"] + c.tracer.stderr)
    c.note = f"{sum(want.values())} verdicts agree: Prometheus, JSON, TcpExt"


# ------------------------------------------------------------ hostile clients

def hostile(c, attack):
    """Run attack(c) -> note while checking the promises: verdicts keep
    flowing during it, a normal scrape works after it, RSS grows by less than
    RSS_GROWTH_KIB, and rstwatch exits 0 within 2 s with lost = 0."""
    c.t0 = time.time()
    c.start("--metrics", "127.0.0.1:0")
    rss0 = vm_rss_kib(c.tracer.proc.pid)
    rss = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.1):
            try:
                rss.append(vm_rss_kib(c.tracer.proc.pid))
            except (OSError, Failure):
                return
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        note = attack(c)
    finally:
        stop.set()
        th.join(timeout=2)
    status, _, body = http(c.addr)
    samples = parse_text(body) if status == 200 else {}
    mine, total = c.stop()
    problems = []
    if status != 200:
        problems.append(f"a normal scrape after the attack: expected 200 vs {status}")
    if max(rss) - rss0 > RSS_GROWTH_KIB:
        problems.append(f"RSS: expected growth < {RSS_GROWTH_KIB} KiB vs {rss0} -> max {max(rss)} KiB")
    if total["lost"] != 0 or metric(samples, "rstwatch_events_lost_total") != 0:
        problems.append(f"expected lost 0 vs -c total {total['lost']}, metrics "
                        f"{metric(samples, 'rstwatch_events_lost_total')}")
    flowed = sum(1 for o in mine if o["class"] in ("refused", "peer_reset"))
    if flowed != sum(1 for o in mine):
        problems.append(f"unexpected verdicts on the test's port: {mine}")
    if problems:
        raise Failure(problems[0], problems[1:] + ["rstwatch stderr:"] + c.tracer.stderr)
    c.note = f"{note}; RSS {rss0} -> max {max(rss)} KiB, lost 0, {flowed} verdicts during"
    return samples


def connect(addr, timeout=5):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    return s


def read_response(s, timeout=5):
    """Status code of the response on s, read to EOF or the end of its body."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(65536)
        if not b:
            break
        data += b
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    return int(m.group(1)) if m else None


def slowloris(c):
    """20 clients send a request head one byte every 0.3 s and never finish
    it: each is dropped (5 s deadline, or evicted by a newer connection);
    scrapes and verdicts go on meanwhile."""
    def attack(c):
        socks = [connect(c.addr) for _ in range(20)]
        for s in socks:
            s.setblocking(False)
        head = b"GET /metrics HTTP/1.1\r\nX-" + b"a" * 100
        t0, i, scrapes, tries = time.monotonic(), 0, 0, 0
        while time.monotonic() - t0 < 7:
            for s in socks:
                try:
                    s.send(head[i:i + 1] if i < len(head) else b"a")
                except OSError:
                    pass
            i += 1
            if i % 5 == 0:
                status, _, _ = http(c.addr)     # displaces the oldest slowloris
                scrapes += status == 200
                tries += 1
                c.aborts_flow(2, "during slowloris")
            time.sleep(0.3)
        # every one of them times out (5 s) or is displaced by a newer connection
        dropped, deadline = 0, time.monotonic() + 10
        while dropped < 20 and time.monotonic() < deadline:
            m = parse_text(http(c.addr)[2])
            dropped = sum(metric(m, "rstwatch_http_clients_dropped_total", reason=r)
                          for r in ("timeout", "evicted"))
            time.sleep(0.2)
        for s in socks:
            s.close()
        if scrapes != tries or tries < 3:
            raise Failure(f"scrapes during slowloris: expected every one of >= 3 to succeed vs "
                          f"{scrapes} of {tries}")
        if dropped < 20:
            raise Failure(f"expected >= 20 slowloris clients dropped (timeout or evicted) vs {dropped}")
        return f"{scrapes} scrapes succeeded during it, {dropped:g} dropped"
    hostile(c, attack)


def huge_request_line(c):
    """A 1 MiB request line: 431 after 4 KiB, the rest never buffered."""
    def attack(c):
        s = connect(c.addr)
        sent = [0]

        def send():
            try:
                s.sendall(b"GET /" + b"a" * (1 << 20))
                sent[0] = 1
            except OSError:
                pass
        th = threading.Thread(target=send, daemon=True)
        th.start()
        code = read_response(s)
        c.aborts_flow(3, "after a 1 MiB request line")
        th.join(timeout=5)
        s.close()
        if code != 431:
            raise Failure(f"1 MiB request line: expected 431 vs {code}")
        return "431"
    samples = hostile(c, attack)
    if metric(samples, "rstwatch_http_requests_total", code="431") != 1:
        raise Failure("expected rstwatch_http_requests_total{code=\"431\"} 1")


BAD_REQUESTS = [
    (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
    (b"DELETE / HTTP/1.1\r\n\r\n", 405),
    (b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400),
    (b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\n folded: header\r\n\r\n", 400),
    (b"GET /met\x00rics HTTP/1.1\r\n\r\n", 400),
    (b"GET\r\n\r\n", 400),
    (b"\r\n\r\n", 400),
    (b"GET /metrics FTP/1.0\r\n\r\n", 400),
    (b"GET /nope HTTP/1.1\r\n\r\n", 404),
    (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", 200),
    (b"HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 200),
    (b"GET /metrics HTTP/1.1\nAccept: application/openmetrics-text\n\n", 200),
]


def garbage(c):
    """Malformed requests get their status and a close; 200 KiB of random
    bytes on 10 connections get 400 or 431; nothing else happens."""
    def attack(c):
        for req, want in BAD_REQUESTS:
            s = connect(c.addr)
            s.sendall(req)
            code = read_response(s)
            s.close()
            if code != want:
                raise Failure(f"{req[:60]!r}: expected {want} vs {code}")
        rnd = random.Random(1)
        for i in range(10):
            s = connect(c.addr)
            try:
                s.sendall(bytes(rnd.getrandbits(8) for _ in range(20000)))
            except OSError:
                pass        # reset once rstwatch stopped reading: fine
            code = read_response(s)
            s.close()
            if code not in (400, 431, None):
                raise Failure(f"random bytes #{i}: expected 400 or 431 (or a reset) vs {code}")
        # pipelined: two requests in one segment, two responses, kept alive
        s = connect(c.addr)
        s.sendall(b"GET / HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n")
        s.settimeout(5)
        data = b""
        while data.count(b"HTTP/1.1 ") < 2:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        if not re.match(rb"HTTP/1\.1 200 .*HTTP/1\.1 404 ", data, re.S):
            raise Failure(f"pipelined requests: expected 200 then 404 vs {data[:200]!r}")
        c.aborts_flow(3, "after garbage")
        return f"{len(BAD_REQUESTS)} malformed requests, 10 x 20000 random bytes, a pipeline"
    hostile(c, attack)


def thousand_connections(c):
    """1000 connections opened at once and held: rstwatch serves 8 at a time
    and displaces the oldest; a normal scrape still gets through."""
    def attack(c):
        host, port = c.addr.rsplit(":", 1)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        socks = []
        for _ in range(1000):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect((host, int(port)))
            except BlockingIOError:
                pass
            socks.append(s)
        c.aborts_flow(3, "with 1000 connections open")
        ok = 0
        deadline = time.monotonic() + 20
        while not ok and time.monotonic() < deadline:
            try:
                ok = http(c.addr, timeout=2)[0] == 200
            except OSError:
                pass
        c.aborts_flow(3, "with 1000 connections open, after a scrape")
        # the kernel hands the queued connections over as rstwatch accepts
        evicted, deadline = 0, time.monotonic() + 20
        while ok and evicted < 100 and time.monotonic() < deadline:
            evicted = metric(parse_text(http(c.addr)[2]), "rstwatch_http_clients_dropped_total",
                             reason="evicted")
        for s in socks:
            s.close()
        if not ok:
            raise Failure("no successful scrape within 20 s while 1000 connections were open")
        if evicted < 100:
            raise Failure(f"expected the held connections displaced (evicted >= 100) vs {evicted}")
        return f"a scrape got through, {evicted:g} displaced"
    hostile(c, attack)


def never_reads(c):
    """A client pipelines requests and never reads the responses: once the
    socket buffers are full it is dropped after the 10 s write deadline,
    with one response buffered at most."""
    def attack(c):
        s = connect(c.addr)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 100
        sent, t0, dropped = 0, time.monotonic(), 0
        # until rstwatch gives up on it (10 s after its last response stalled)
        while not dropped and time.monotonic() - t0 < 30:
            try:
                sent += s.send(req)
            except BlockingIOError:
                pass
            except OSError:
                pass        # reset: rstwatch closed it
            c.aborts_flow(1, "while a client never reads")
            dropped = metric(parse_text(http(c.addr)[2]), "rstwatch_http_clients_dropped_total",
                             reason="timeout")
            time.sleep(0.5)
        took = time.monotonic() - t0
        s.close()
        if not dropped:
            raise Failure("expected the client that never reads dropped (reason timeout) within "
                          "30 s vs still served")
        return f"{sent} bytes of requests sent, nothing read, dropped after {took:.0f} s"
    hostile(c, attack)


def command_line(c):
    """--metrics forms and errors: [::1]:0 serves over IPv6; a taken port,
    a bad address, --metrics-labels without --metrics, -q with -j, --metrics
    with -r: one line, exit 2, before anything is loaded; -q writes nothing."""
    problems = []
    c.t0 = time.time()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    tport = taken.getsockname()[1]
    for args, want in ((["--metrics", f"127.0.0.1:{tport}"], "Address already in use"),
                       (["--metrics", "1.2.3:9100"], "not a numeric IPv4 or IPv6 address"),
                       (["--metrics", "::1:9100"], "goes in brackets"),
                       (["--metrics", "[::1]9100"], "is not [IPV6]:PORT"),
                       (["--metrics", "70000"], "is not a port"),
                       (["--metrics-labels", "comm"], "go with --metrics"),
                       (["--metrics", "0", "--metrics-labels", "pid"], "unknown label 'pid'"),
                       (["-q", "-j"], "excludes -j"),
                       (["--metrics", "0", "-r", "/dev/null"], "-r replays and exits")):
        p = subprocess.run([c.opts.rstwatch, *args], capture_output=True, text=True, timeout=20)
        err = p.stderr.splitlines()
        if p.returncode != 2 or len(err) != 1 or want not in err[0] or not err[0].startswith("rstwatch: "):
            problems.append(f"{' '.join(args)}: expected exit 2 and one line with {want!r} vs "
                            f"{p.returncode}, {err}")
    taken.close()
    t = Rstwatch(c.opts.rstwatch, ["-q", "--port", str(c.port), "--metrics", "[::1]:0"], json=False)
    c.tracer = t
    t.start(timeout=20)
    addr = next((m.group(1) for l in t.stderr
                 for m in [re.match(r"^rstwatch: metrics on http://(\S+)/metrics$", l)] if m), None)
    if not addr or not addr.startswith("[::1]:"):
        problems.append(f"--metrics [::1]:0: expected to listen on [::1] vs {t.stderr}")
    else:
        c.addr = addr
        cli = c.actor("A", "rw_cli")
        c.refuse(cli)
        deadline = time.monotonic() + 5
        n = 0
        while n != 2 and time.monotonic() < deadline:
            n = metric(parse_text(http(addr)[2]), "rstwatch_verdicts_total")
            time.sleep(0.1)
        if n != 2:
            problems.append(f"-q --metrics [::1]:0: expected 2 verdicts counted vs {n}")
    lines = t.stop()
    if lines:
        problems.append(f"-q: expected no output vs {lines[:3]}")
    if problems:
        raise Failure(problems[0], problems[1:])


UNIT = os.path.join(REPO, "deploy", "systemd", "rstwatch.service")


def unit_settings():
    """{key: [values]} of deploy/systemd/rstwatch.service's [Service] section."""
    out, section = {}, None
    for line in open(UNIT):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def syscall_group(name, seen=None):
    """The syscalls of a systemd group (@system-service...), expanded."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                         text=True, timeout=30).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        w = line.strip()
        if w and not w.startswith("#"):
            calls |= syscall_group(w) if w.startswith("@") else {w}
    return calls


def unit_syscalls(lines):
    """The syscalls a SystemCallFilter= sequence (allow list first) allows."""
    allowed = set()
    for line in lines:
        deny = line.startswith("~")
        names = set()
        for w in line.lstrip("~").split():
            names |= syscall_group(w) if w.startswith("@") else {w}
        allowed = allowed - names if deny else allowed | names
    return allowed


# What systemd.exec(5) says some options do besides their name: capabilities
# they take from the bounding set, and /proc/kallsyms (which rstwatch and
# libbpf read for the time-wait timer tracing) they hide.
IMPLIED_CAPS = {"ProtectKernelLogs": {"CAP_SYSLOG"}, "ProtectKernelModules": {"CAP_SYS_MODULE"},
                "ProtectClock": {"CAP_SYS_TIME", "CAP_WAKE_ALARM"},
                "PrivateDevices": {"CAP_MKNOD", "CAP_SYS_RAWIO"}}


def unit_sandbox(u):
    """(capabilities the unit leaves rstwatch, whether it hides /proc/kallsyms)."""
    yes = lambda k: u.get(k, ["no"])[-1] in ("yes", "true", "1", "on")
    caps = set(u["AmbientCapabilities"][0].split()) & set(u["CapabilityBoundingSet"][0].split())
    for opt, taken in IMPLIED_CAPS.items():
        if yes(opt):
            caps -= taken
    hidden = yes("ProtectKernelTunables") or u.get("ProcSubset", [""])[-1] == "pid" or \
        any("/proc/kallsyms" in v for v in u.get("InaccessiblePaths", []))
    return sorted(caps), hidden


def as_nobody(caps, hide_kallsyms=False):
    """The command prefix: uid/gid 65534 with only caps, ambient (as the unit
    gives them), and /proc/kallsyms hidden as systemd would hide it."""
    some = ",".join("+" + x.lower().replace("cap_", "") for x in caps) or "-all"
    pre = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", f"--inh-caps={some}",
           f"--ambient-caps={some}", f"--bounding-set=-all,{some}" if caps else "--bounding-set=-all"]
    if hide_kallsyms:
        pre = ["unshare", "-m", "sh", "-c", "mount --bind /dev/null /proc/kallsyms && exec \"$@\"",
               "sh"] + pre
    return pre


def features_with(c, prefix):
    """rstwatch_kernel_feature of `rstwatch -q --metrics 127.0.0.1:0` run
    under prefix, or None if it cannot start."""
    p = subprocess.Popen(prefix + [c.opts.rstwatch, "-q", "--port", str(c.port), "--metrics",
                                   "127.0.0.1:0"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    c.procs.append(p)
    err = []
    for line in p.stderr:
        err.append(line.rstrip("\n"))
        if line.startswith("rstwatch: tracing"):
            break
    a = next((m.group(1) for l in err
              for m in [re.match(r"^rstwatch: metrics on http://(\S+)/metrics$", l)] if m), None)
    feats = None
    if a:
        feats = {dict(ls)["feature"]: v for (n, ls), v in parse_text(http(a)[2]).items()
                 if n == "rstwatch_kernel_feature"}
        p.send_signal(signal.SIGINT)
    p.wait(timeout=10)
    return feats


def unit_privilege(c):
    """deploy/systemd/rstwatch.service's privilege, measured: its ExecStart,
    run as an unprivileged user with the capabilities the unit leaves (its
    ambient ones, less what its Protect*= options take, as systemd.exec(5)
    says) and /proc/kallsyms hidden if the unit hides it, gets every kernel
    feature root gets, writes its log and serves metrics, drops to CapEff 0,
    reopens its log on SIGHUP (ExecReload) and exits 0; every system call it
    makes is one the unit's SystemCallFilter allows, every socket family one
    RestrictAddressFamilies allows.  And each of its capabilities is needed:
    without it rstwatch cannot start, or loses a kernel feature."""
    u = unit_settings()
    caps, hidden = unit_sandbox(u)
    root = features_with(c, [])
    argv = u["ExecStart"][0].split()[1:]
    log_dir = os.path.join(c.tmp, "log")
    os.mkdir(log_dir)
    os.chown(log_dir, 65534, 65534)
    os.chmod(c.tmp, 0o755)
    log = os.path.join(log_dir, "rstwatch.jsonl")
    argv = [log if a.startswith("/var/log/rstwatch/") else "127.0.0.1:0" if a.startswith("127.0.0.1:")
            else a for a in argv]
    trace = os.path.join(c.tmp, "strace")
    c.t0 = time.time()
    c.tracer = t = Rstwatch("strace", ["-f", "-qq", "-o", trace, *as_nobody(caps, hidden),
                                       c.opts.rstwatch, *argv], json=False)
    t.start(timeout=30)
    addr = next((m.group(1) for l in t.stderr
                 for m in [re.match(r"^rstwatch: metrics on http://(\S+)/metrics$", l)] if m), None)
    problems = []
    # strace's child: unshare, sh, setpriv and rstwatch in turn, by exec
    pid = int(subprocess.run(["pgrep", "-P", str(t.proc.pid)], capture_output=True,
                             text=True).stdout.split()[0])
    status = open(f"/proc/{pid}/status").read()
    capeff = re.search(r"^CapEff:\s+(\S+)$", status, re.M).group(1)
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)
    if capeff != "0000000000000000" or uid != "65534":
        problems.append(f"expected uid 65534 with CapEff 0 once attached vs uid {uid}, CapEff {capeff}")
    samples = parse_text(http(addr)[2]) if addr else {}
    features = {dict(ls)["feature"]: v for (n, ls), v in samples.items() if n == "rstwatch_kernel_feature"}
    if features != root:
        problems.append(f"kernel features under the unit's sandbox (capabilities {caps}"
                        f"{', /proc/kallsyms hidden' if hidden else ''}): expected root's {root} "
                        f"vs {features}")
    cli = c.actor("A", "rw_cli")
    c.refuse(cli)
    os.rename(log, log + ".1")          # logrotate
    os.kill(pid, signal.SIGHUP)         # ExecReload
    # what rstwatch decoded before it saw the signal still goes to the old file
    deadline = time.monotonic() + 2
    while not os.path.exists(log) and time.monotonic() < deadline:
        time.sleep(0.02)
    c.refuse(cli)
    deadline = time.monotonic() + 5
    new = old = []
    while time.monotonic() < deadline and not (len(new) == 2 and len(old) == 2):
        time.sleep(0.2)
        read = lambda p: [json.loads(l) for l in open(p)] if os.path.exists(p) else []
        old = [o for o in read(log + ".1") if c.mine(o)]
        new = [o for o in read(log) if c.mine(o)]
    if len(old) != 2 or len(new) != 2:
        problems.append(f"expected 2 verdicts in the rotated log and 2 in the reopened one vs "
                        f"{len(old)}, {len(new)}")
    os.kill(pid, signal.SIGINT)
    try:
        rc = t.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    if rc != 0:
        problems.append(f"expected exit 0 on SIGINT vs {rc}")
    allowed = unit_syscalls(u["SystemCallFilter"])
    used, families, mine = set(), set(), False
    for line in open(trace):
        m = re.match(r"(\d+)\s+([a-z0-9_]+)\(", line)
        if m and int(m.group(1)) == pid and f'execve("{c.opts.rstwatch}"' in line:
            mine = True         # setpriv's own calls came before
        if m and int(m.group(1)) == pid and mine:
            used.add(m.group(2))
            f = re.match(r"\d+\s+socket\((AF_[A-Z0-9]+)", line)
            if f:
                families.add(f.group(1))
    if not used or used - allowed:
        problems.append(f"system calls the unit's SystemCallFilter denies: {sorted(used - allowed)}"
                        f" (of {len(used)} used)")
    if families - set(u["RestrictAddressFamilies"][0].split()):
        problems.append(f"socket families beyond RestrictAddressFamilies: {sorted(families)}")
    c.tracer = None
    # and each capability is needed: without it rstwatch cannot start, or
    # loses a feature
    lost = {}
    for drop in caps:
        feats = features_with(c, as_nobody([x for x in caps if x != drop], hidden))
        lost[drop] = "cannot start" if feats is None else \
            sorted(f for f, v in feats.items() if root.get(f) == 1 and v == 0)
        if not lost[drop]:
            problems.append(f"without {drop}: expected a failure or a lost feature vs none")
    if problems:
        raise Failure(problems[0], problems[1:] + t.stderr)
    c.note = (f"{len(used)} system calls, all allowed; families {sorted(families)}; caps {caps}; "
              f"without each: {lost}")


TESTS = [prometheus, slowloris, huge_request_line, garbage, thousand_connections, never_reads,
         command_line, unit_privilege]


def make_ctx(opts, i):
    # apart from run.py's 20000-31999 and hardening.py's 15000-19499
    return Ctx(opts, 180 + i, 12000 + (os.getpid() % 150) * 20 + i)


def main():
    return runner.main("rstwatch service tests (root, real kernel)", TESTS, make_ctx)


if __name__ == "__main__":
    sys.exit(main())
