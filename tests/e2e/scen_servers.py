"""e2e scenarios with Debian's real servers and clients: every abort here
is made by a daemon's own code path with its production configuration
knob, and timed by the daemons, not by the test.

Each daemon runs in B (the server namespace) from a configuration written
to a temporary directory, in the foreground, listening on the test's port;
its real client runs in A.  The test learns each client's local port by
giving A a one-port ephemeral range (net.ipv4.ip_local_port_range, per
namespace) before the client connects, and each owner's pid from the
daemon itself (the nginx worker from the master's /proc children, the
postgres backend from pg_stat_activity).  Daemons are stopped (and their
process group killed if they linger) by Case.cleanup(), before the
namespaces go.

Where the kernel's timing decides the abort (redis's protected mode, a
pooled client hitting a closed connection), the expected class of each
connection is derived from which TcpExt counter of B moved for it alone:
TCPAbortOnClose -> unread_data, TCPAbortOnData -> data_after_close (a
full orphan), TW -> data_after_close (a time-wait socket in the FIN_WAIT2
substate, which counts no abort).

RW_EVENTS=DIR also records each scenario's raw `rstwatch --events` stream
to DIR/NAME.events (see kernel-events.md).
"""
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from actor import cgroup_v2_path
from netns import counter_delta
from scen_lifecycle import check_links, expect_ports, wait_sockets, with_events
from verdicts import Failure, check, rst_reason

TOLERATED = ("time_wait", "close_wait")   # lifecycle, not what these scenarios are about
NGINX_BODY = 8 << 20                      # bytes a client uploads: far past every limit
RACE_CONNECTIONS = 24


class Owner:
    """An expected socket owner: pid, comm and cgroup, as Expect wants them."""

    def __init__(self, pid, comm, cgroup_of="self"):
        self.pid, self.comm = pid, comm
        self.cgroup_path = cgroup_v2_path(cgroup_of)


def proc_comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


class Daemon:
    """One server started in B, in the foreground, in its own process group
    (master and workers); stopped by kill() from Case.cleanup()."""

    def __init__(self, c, name, stop=signal.SIGTERM, user=None):
        self.c, self.name, self.stop_signal = c, name, stop
        self.dir = tempfile.mkdtemp(prefix=f"rstwatch-{name}-")
        os.chmod(self.dir, 0o755)       # nginx workers and postgres do not run as root
        if user:
            shutil.chown(self.dir, user, user)
        self.user = user
        self.proc = None
        c.actors.append(self)           # Case.cleanup() kills actors before the namespaces go
        self.argv = []                  # set once the configuration is written

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        if self.user:
            shutil.chown(self.path(name), self.user, self.user)
        return self.path(name)

    def start(self, port, timeout=60):
        """Run argv in B and wait until something listens on `port` there."""
        priv = (["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--init-groups"]
                if self.user else [])
        self.log = open(self.path("daemon.log"), "w")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.c.pair.names["B"], *priv,
                                      *self.argv], stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.dir,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.c.pair.exec("B", "ss", "-Hltn", f"sport = :{port}").stdout.strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Failure(f"{self.name} did not listen on port {port} within {timeout}s "
                              f"(exit status {self.proc.poll()})", self.log_tail())
            time.sleep(0.05)
        return self

    def log_tail(self, n=15):
        try:
            with open(self.path("daemon.log")) as f:
                return [f"{self.name}: {l.rstrip()}" for l in f.readlines()[-n:]]
        except OSError:
            return []

    def children(self):
        pid = self.proc.pid
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]

    def kill(self):
        """The daemon's own stop signal (its master stops its workers); if it
        has not exited 10 s later, SIGKILL to its children (postgres's call
        setsid()) and its process group (while the leader is unreaped,
        neither id can name another process)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(self.stop_signal)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    for pid in self.children():
                        os.kill(pid, signal.SIGKILL)
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def client_port(c, index=0):
    """A's ephemeral range becomes one port, so the next client that
    connects from A binds exactly it (inet_hash_connect); returned and set
    as c.cport.  A's namespace is this test's own: no other socket there."""
    port = 40000 + index
    c.pair.sysctl("A", "net.ipv4.ip_local_port_range", f"{port} {port}")
    c.cport = port
    return port


def run_client(c, argv, comm, **kw):
    """Start a real client in A; its pid is Popen's (ip netns exec execs)."""
    p = subprocess.Popen(["ip", "netns", "exec", c.pair.names["A"], *argv],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    c.actors.append(Reaper(p))
    return p, Owner(p.pid, comm)   # in the test's cgroup: it may have exited already


class Reaper:
    """Lets Case.cleanup() kill a client process that is still running."""

    def __init__(self, proc):
        self.proc = proc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)


def url_host(c):
    return c.addr("B") if c.family == "ipv4" else f"[{c.addr('B')}]"


def wait_counter(c, side, before, names, want, timeout=10):
    """Poll `side`'s TcpExt until the sum of the deltas of `names` since
    `before` reaches want; returns the full delta."""
    deadline = time.monotonic() + timeout
    while True:
        delta = counter_delta(before, c.pair.counters(side))
        if sum(delta.get(n, 0) for n in names) >= want:
            return delta
        if time.monotonic() > deadline:
            raise Failure(f"{side}: TcpExt {'+'.join(names)} did not move by {want} within "
                          f"{timeout}s: {delta}")
        time.sleep(0.01)


def seen_now(c, side, cls, key, cport):
    """The verdicts of class cls in `side` whose port `key` (lport or
    rport) is the client's port cport, among those printed so far."""
    return [o for _, o in list(c.tracer.lines)
            if o is not None and c.relevant(o) and c.side_of(o) == side and
            o.get("class") == cls and o.get(key) == cport]


def crossed_replies(c, pairs):
    """({client port: [Expect]}, {client port: [Expect]}): B's listener
    answering a client's segment that crossed the server's abort (its
    socket already unhashed, the segment found only the listener: half_open
    in LISTEN, owned by the listening process, which runs the server's
    program), and, with two RSTs of B on their way, the one the client
    refused for no longer matching its rcv_nxt (challenged_rst, where this
    kernel reports it).  Real RSTs, not rstwatch's: the caller holds them to
    B's Tcp OutRsts and A's TCPChallengeACK."""
    replies, challenged = {}, {}
    if c.tracer is None:
        return replies, challenged
    c.tracer.wait_for(c.relevant, sum(len(p) for p in pairs), timeout=3)
    time.sleep(0.5)
    for srv, cli in pairs:
        cport = cli.addrs["lport"]
        for o in seen_now(c, "B", "half_open", "rport", cport):
            if o.get("state") != "LISTEN":
                continue
            # the listener's process, not the connection's
            owner = Owner(o["pid"], o["comm"], o["pid"]) if o.get("comm") == srv.owner.comm \
                else srv.owner
            replies.setdefault(cport, []).append(
                expect_ports(c, "B", "half_open", None, "LISTEN", "reply", owner, c.port, cport))
        if cport in replies:
            challenged[cport] = [
                expect_ports(c, "A", "challenged_rst", o.get("subtype"), o.get("state"), "peer",
                             cli.owner, cport, c.port)
                for o in seen_now(c, "A", "challenged_rst", "lport", cport)]
    return replies, {k: v for k, v in challenged.items() if v}


def finish_pairs(c, pairs, counters):
    """c.finish() on every pair's verdicts (lifecycle ones tolerated), then
    each pair's conn_id; first, per connection (matched on the client's
    port), whether its verdicts alone are exact: the count goes to the -v
    report and, with each inexact connection's problems, into a failure.
    A reply from B's listener to a segment that crossed the server's abort
    (crossed_replies()) counts as exact where B's Tcp OutRsts says B sent
    it: each pair's server verdict is one RST, each such reply another.
    The client's peer_reset is then linked to whichever of them it got."""
    replies, challenged = crossed_replies(c, pairs)
    crossed = {p: replies[p] + challenged.get(p, []) for p in replies}
    counters = {s: dict(kv) for s, kv in counters.items()}
    if replies:
        counters.setdefault("B", {})["Tcp.OutRsts"] = len(pairs) + sum(map(len, replies.values()))
    if challenged:
        counters.setdefault("A", {})["TCPChallengeACK"] = sum(map(len, challenged.values()))
    try:
        c.finish([e for pair in pairs for e in pair + tuple(crossed.get(pair[1].addrs["lport"], ()))],
                 counters, tolerate=TOLERATED)
        failure = None
    except Failure as e:
        failure = e
    seen = [o for _, o in (c.tracer.lines if c.tracer else [])
            if o is not None and c.relevant(o) and o.get("class") not in TOLERATED]
    inexact, lines = [], []
    for pair in pairs:
        cport = pair[1].addrs["lport"]
        mine = [o for o in seen if cport in (o.get("lport"), o.get("rport"))]
        problems = []
        check(list(pair) + crossed.get(cport, []), mine, c.side_of, c.family, problems)
        ids = {o.get("conn_id") for o in mine}
        if cport in crossed:    # one B verdict shares the peer_reset's conn_id
            rst = next((o for o in mine if o.get("class") == "peer_reset"), {})
            if rst.get("conn_id") is None or \
                    sum(o.get("conn_id") == rst["conn_id"] for o in mine) != 2:
                problems.append(f"conn_ids {[o.get('conn_id') for o in mine]}")
        elif len(ids) != 1 or None in ids:
            problems.append(f"conn_ids {sorted(map(str, ids))}")
        if problems:
            inexact.append(f"client port {cport}: " + "; ".join(problems))
            lines += [f"  {c.side_of(o)}: {o}" for o in mine]
    summary = f"{len(pairs) - len(inexact)}/{len(pairs)} connections exact"
    if c.tracer is not None:
        c.report.append(summary)
    if c.tracer is not None and inexact:
        details = [summary] + inexact + (failure.details if failure else
                                         ["verdicts of the inexact connections:"] + lines)
        raise Failure(str(failure) if failure else summary, details)
    if failure:
        raise failure
    if crossed:
        c.report.append(f"{sum(map(len, replies.values()))} reply(ies) from B's listener to a "
                        f"segment that crossed the server's abort (Tcp OutRsts agrees), "
                        f"{sum(map(len, challenged.values()))} of the two RSTs refused by the "
                        f"client (TCPChallengeACK agrees)")
    check_links(c, [p for p in pairs if p[1].addrs["lport"] not in crossed])


def pair_of(c, srv_cls, srv_state, srv_owner, cli_state, cli_owner, cport, **kw):
    """The server's abort (B) and the client's peer_reset (A) of one connection."""
    return (expect_ports(c, "B", srv_cls, None, srv_state, "local", srv_owner, c.port, cport, **kw),
            expect_ports(c, "A", "peer_reset", None, cli_state, "peer", cli_owner, cport, c.port))


# ------------------------------------------------------------------ nginx

def nginx(c, location):
    """nginx (master + one worker) serving `location` on the test's port;
    returns (daemon, worker owner)."""
    d = Daemon(c, "nginx")
    listen = c.addr("B") if c.family == "ipv4" else f"[{c.addr('B')}]"
    conf = d.write("nginx.conf", f"""
daemon off;
master_process on;
worker_processes 1;
pid {d.path('nginx.pid')};
error_log {d.path('error.log')} info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d.path('body')};
    proxy_temp_path {d.path('proxy')};
    fastcgi_temp_path {d.path('fastcgi')};
    uwsgi_temp_path {d.path('uwsgi')};
    scgi_temp_path {d.path('scgi')};
    server {{
        listen {listen}:{c.port};
        root {d.path('www')};
        {location}
    }}
}}
""")
    os.makedirs(d.path("www/up"))
    d.argv = ["nginx", "-e", d.path("error.log"), "-p", d.dir, "-c", conf]
    d.start(c.port)
    deadline = time.monotonic() + 10
    while True:     # the worker is the master's only child; it owns the accepted sockets
        workers = [p for p in d.children() if proc_comm(p) == "nginx"]
        if len(workers) == 1:
            break
        if time.monotonic() > deadline:
            raise Failure(f"nginx: expected 1 worker process vs {workers}", d.log_tail())
        time.sleep(0.05)
    with open(d.path("nginx.pid")) as f:
        master = int(f.read())
    if master != d.proc.pid:
        raise Failure(f"nginx: pidfile says master {master} vs started {d.proc.pid}")
    return d, Owner(workers[0], "nginx", workers[0])


@with_events
def nginx_unread_data(c):
    """nginx answers 413 while a chunked upload is still arriving
    (client_max_body_size exceeded mid-body, ngx_http_request_body_chunked_filter)
    and, with `lingering_close off`, closes at once: the body left in the
    receive queue makes tcp_close() reset (TCP_ABORT_ON_CLOSE).  curl gets
    the RST while still sending, or after reading the 413 and closing
    (FIN_WAIT1; seen about once in ten runs, told apart by client_state())."""
    d, worker = nginx(c, "lingering_close off;\n"
                         "        location /up/ { dav_methods PUT; client_max_body_size 64k; }")
    body = d.path("body.bin")
    with open(body, "wb") as f:
        f.write(b"\0" * NGINX_BODY)
    cport = client_port(c)
    p, curl = run_client(c, ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:",
                             "-H", "Transfer-Encoding: chunked", "-T", body,
                             f"http://{url_host(c)}:{c.port}/up/file"], "curl")
    out, err = p.communicate(timeout=30)
    # 413 read before the RST (exit 0), or the RST while sending (55) / reading (56)
    if not ((p.returncode == 0 and out == "413") or p.returncode in (55, 56)):
        raise Failure(f"curl: expected 413 or a reset vs exit {p.returncode} {out!r} {err!r}")
    # curl, having read the 413, may close before nginx does
    pair = pair_of(c, "unread_data", "ESTABLISHED", worker,
                   client_state(c, c.before["A"], "ESTABLISHED"), curl, cport,
                   reason=rst_reason("TCP_ABORT_ON_CLOSE"))
    if pair[1].state == "FIN_WAIT1":
        settle_state(c, [pair[0]], ("ESTABLISHED", "CLOSE_WAIT"))
    finish_pairs(c, [pair], {"B": {"TCPAbortOnClose": 1}})
    c.report.append(f"curl exit {p.returncode} {out!r}; worker {worker.pid} master {d.proc.pid}")


@with_events
def nginx_linger0(c):
    """`reset_timedout_connection on`: the client stalls its upload past
    client_body_timeout; nginx sets SO_LINGER {1,0} on the timed-out
    connection (ngx_http_free_request) and closes: tcp_close() ->
    tcp_disconnect() resets (TCP_STATE) and counts TCPAbortOnData."""
    d, worker = nginx(c, "location /up/ { dav_methods PUT; client_body_timeout 1s;\n"
                         "                        reset_timedout_connection on; }")
    cport = client_port(c)
    before = c.pair.counters("B")
    p, curl = run_client(c, ["curl", "-sS", "-o", "/dev/null", "-H", "Expect:", "-T", "-",
                             f"http://{url_host(c)}:{c.port}/up/file"], "curl",
                         stdin=subprocess.PIPE)
    p.stdin.write("x" * 1000)       # one chunk, then nothing: curl's stdin stays open
    p.stdin.flush()
    wait_counter(c, "B", before, ["TCPAbortOnData"], 1)
    wait_sockets(c, "A", "all", 0, ports=(cport,))     # the RST has reached curl's socket
    p.stdin.close()                 # curl notices only when it sends its last chunk
    p.wait(timeout=10)
    err = p.stderr.read()
    if p.returncode not in (55, 56) or "reset by peer" not in err:
        raise Failure(f"curl: expected a reset (exit 55/56) vs exit {p.returncode} {err!r}")
    pair = pair_of(c, "linger0", "ESTABLISHED", worker, "ESTABLISHED", curl, cport,
                   reason=rst_reason("TCP_STATE"), evidence={"so_linger": "zero"})
    finish_pairs(c, [pair], {"B": {"TCPAbortOnData": 1}})


# ------------------------------------------------------------------ haproxy

@with_events
def haproxy_linger0(c):
    """haproxy `option nolinger` closes an idle keep-alive connection at
    `timeout http-keep-alive`: shutdown(SHUT_WR) (its FIN), then close()
    with SO_LINGER {1,0} microseconds later, while the FIN is unacked (the
    client, now in CLOSE_WAIT, delays that ACK: pingpong mode, tcp_fin()):
    linger0 in FIN_WAIT1.  The client is curl between two requests of a
    --rate'd transfer, its connection parked in its pool."""
    d = Daemon(c, "haproxy")
    bind = c.addr("B") if c.family == "ipv4" else f"[{c.addr('B')}]"
    cfg = d.write("haproxy.cfg", f"""
global
    log stderr format raw local0 info
    nbthread 1
defaults
    mode http
    log global
    timeout client 5s
    timeout connect 5s
    timeout server 5s
    timeout http-keep-alive 300ms
    option nolinger
frontend fe
    bind {bind}:{c.port}
    http-request return status 200 content-type text/plain string ok
""")
    d.argv = ["haproxy", "-db", "-f", cfg]
    d.start(c.port)
    haproxy = Owner(d.proc.pid, "haproxy", d.proc.pid)
    cport = client_port(c)
    before = c.pair.counters("B")
    url = f"http://{url_host(c)}:{c.port}/"
    p, curl = run_client(c, ["curl", "-sS", "-o", "/dev/null", "--rate", "1/h", url, url], "curl")
    wait_counter(c, "B", before, ["TCPAbortOnData"], 1)
    wait_sockets(c, "A", "all", 0, ports=(cport,))     # the RST has reached curl's socket
    p.kill()                   # before its second request: nothing more on the wire
    p.wait(timeout=5)
    pair = pair_of(c, "linger0", "FIN_WAIT1", haproxy, "CLOSE_WAIT", curl, cport,
                   reason=rst_reason("TCP_STATE"), evidence={"so_linger": "zero"})
    finish_pairs(c, [pair], {"B": {"TCPAbortOnData": 1}})


# ------------------------------------------------------------------ redis

def redis(c, *conf):
    d = Daemon(c, "redis")
    cfg = d.write("redis.conf", "\n".join([
        f"bind {c.addr('B')}", f"port {c.port}", "daemonize no", 'save ""', "appendonly no",
        f"dir {d.dir}", 'logfile ""', *conf]) + "\n")
    d.argv = ["redis-server", cfg]
    d.start(c.port)
    return d, Owner(d.proc.pid, "redis-server", d.proc.pid)


def derived_abort(delta):
    """The server's abort of one connection, from B's TcpExt delta for it
    alone: (class, reason, counters that must have moved)."""
    moved = {k: delta.get(k, 0) for k in ("TCPAbortOnClose", "TCPAbortOnData", "TW")}
    if moved == {"TCPAbortOnClose": 1, "TCPAbortOnData": 0, "TW": 0}:
        return "unread_data", "TCP_ABORT_ON_CLOSE", {"TCPAbortOnClose": 1}
    if moved == {"TCPAbortOnClose": 0, "TCPAbortOnData": 1, "TW": 0}:
        return "data_after_close", "TCP_ABORT_ON_DATA", {"TCPAbortOnData": 1}
    if moved == {"TCPAbortOnClose": 0, "TCPAbortOnData": 0, "TW": 1}:
        return "data_after_close", "TCP_TIMEWAIT_SOCKET", {"TW": 1}
    raise Failure(f"B's counters fit no single server abort: {moved}")


def client_state(c, before, open_state):
    """The state the server's RST found the client's socket in: open_state
    (ESTABLISHED, or CLOSE_WAIT after the server's FIN) if A's Tcp
    EstabResets moved since `before` (tcp_set_state() counts a move to CLOSE
    from those two only), else the state the client's own close() left it
    in, its FIN unacknowledged because the server was inside close()."""
    moved = counter_delta(before, c.pair.counters("A"), "Tcp").get("EstabResets", 0)
    if moved == 1:
        return open_state
    if moved == 0:
        return {"ESTABLISHED": "FIN_WAIT1", "CLOSE_WAIT": "LAST_ACK"}[open_state]
    raise Failure(f"A: Tcp EstabResets moved by {moved} for one connection")


@with_events
def redis_timeout(c):
    """redis `timeout 1` closes idle clients (clientsCron): FIN, each client
    ACKs.  RACE_CONNECTIONS pooled clients (redis-cli REPLs, one long-lived
    connection each) idle past it, then each in turn sends a command on
    its stale connection: B's socket, closed by redis, answers the data with
    RST (data_after_close FIN_WAIT2), and redis-cli, in CLOSE_WAIT, gets it.
    Which socket answers is a race: a time-wait socket in the FIN_WAIT2
    substate if the ACK of redis's FIN found the socket released
    (tcp_time_wait(): TW counted then, nothing at the RST), else the full
    orphan (ACK processed from the backlog while close() held the socket:
    TCPAbortOnData at the RST).  Each connection's path from B's
    TCPAbortOnData around its own RST; the TW total must match."""
    d, srv = redis(c, "protected-mode no", "timeout 1")
    clients = []
    for i in range(RACE_CONNECTIONS):
        cport = client_port(c, i)
        p, cli = run_client(c, ["redis-cli", "-h", c.addr("B"), "-p", str(c.port)], "redis-cli",
                            stdin=subprocess.PIPE)
        p.stdin.write("PING\n")
        p.stdin.flush()
        if p.stdout.readline().strip() != "PONG":
            raise Failure(f"redis-cli #{i}: expected PONG to the first PING")
        clients.append((cport, p, cli))
    client_port(c, RACE_CONNECTIONS)    # redis-cli's reconnects must not take a tested port
    cports = [cport for cport, _, _ in clients]
    wait_sockets(c, "A", "close-wait", len(clients), timeout=15, ports=cports)  # timed out
    pairs, kinds, counters = [], {}, {"TCPAbortOnData": 0, "TW": 0}
    segment = len("*1\r\n$4\r\nPING\r\n")
    for cport, p, cli in clients:
        before = {s: c.pair.counters(s) for s in "AB"}
        p.stdin.write("PING\n")
        p.stdin.flush()
        wait_sockets(c, "A", "all", 0, ports=(cport,))     # the RST has reached redis-cli
        orphan = counter_delta(before["B"], c.pair.counters("B")).get("TCPAbortOnData", 0)
        reason = ("TCP_ABORT_ON_DATA", "TCP_TIMEWAIT_SOCKET")[orphan == 0]
        counters["TCPAbortOnData" if orphan else "TW"] += 1
        kinds[reason] = kinds.get(reason, 0) + 1
        # redis-cli reads EOF and closes: before the RST arrives if softirq
        # lags (seen under qemu), then it is in LAST_ACK
        pairs.append(pair_of(c, "data_after_close", "FIN_WAIT2", srv,
                             client_state(c, before["A"], "CLOSE_WAIT"), cli, cport,
                             reason=rst_reason(reason), evidence={"segment_bytes": segment}))
        p.stdin.close()        # redis-cli exits, closing first any connection it reopened
        p.wait(timeout=10)
    c.report.append(f"redis timeout, {len(clients)} connections: {kinds}")
    finish_pairs(c, pairs, {"B": counters})


def settle_state(c, ends, allowed):
    """Where no counter tells two states of the server's end apart, each
    expected end takes the state of rstwatch's verdict for it when that is
    one of `allowed`; any other state, class, owner or pairing is still
    compared exactly.  Two such races:
    - a data_after_close from an orphan is in FIN_WAIT2 if the client's
      ACK of the server's FIN came before its data, in FIN_WAIT1 if the
      data came first (the client wrote before it processed the FIN: seen
      on 6.1 under qemu);
    - an unread_data whose client closed first (client_state() gave
      FIN_WAIT1) is in CLOSE_WAIT if the client's FIN reached the server's
      socket before its close(), else ESTABLISHED."""
    if c.tracer is None:
        return
    c.tracer.wait_for(c.relevant, len(ends), timeout=3)
    for e in ends:
        states = [o["state"] for _, o in list(c.tracer.lines)
                  if o is not None and c.relevant(o) and c.side_of(o) == e.side and
                  o.get("class") == e.cls and o.get("rport") == e.addrs["rport"]]
        if len(states) == 1 and states[0] in allowed:
            e.state = states[0]


@with_events
def redis_protected(c):
    """redis's protected mode (no password, a client from a non-loopback
    address) answers `-DENIED ...` at accept and closes in beforeSleep.
    redis-cli sends its command right after connecting, racing that close:
    the command arrived first -> unread_data (ESTABLISHED) and redis-cli's
    peer_reset in ESTABLISHED; it arrived after -> data_after_close in
    FIN_WAIT2 (the orphan had its FIN acked) and redis-cli's peer_reset in
    CLOSE_WAIT.  RACE_CONNECTIONS connections, one at a time, under one
    rstwatch; each one's class from B's counters for it alone, redis-cli's
    state from A's (client_state: it may have closed first)."""
    d, srv = redis(c, "protected-mode yes")
    pairs, counters, kinds = [], {}, {}
    for i in range(RACE_CONNECTIONS):
        cport = client_port(c, i)
        before = {s: c.pair.counters(s) for s in "AB"}
        p, cli = run_client(c, ["redis-cli", "-h", c.addr("B"), "-p", str(c.port), "PING"],
                            "redis-cli")
        out, err = p.communicate(timeout=10)
        if not out.startswith("DENIED"):
            raise Failure(f"redis-cli #{i}: expected -DENIED vs {out[:60]!r} {err[:60]!r}")
        wait_sockets(c, "A", "all", 0, ports=(cport,))     # the RST has reached redis-cli's socket
        cls, reason, moved = derived_abort(counter_delta(before["B"], c.pair.counters("B")))
        for k, v in moved.items():
            counters[k] = counters.get(k, 0) + v
        if cls == "unread_data":
            pairs.append(pair_of(c, cls, "ESTABLISHED", srv,
                                 client_state(c, before["A"], "ESTABLISHED"), cli, cport,
                                 reason=rst_reason(reason)))
        else:
            pairs.append(pair_of(c, cls, "FIN_WAIT2", srv,
                                 client_state(c, before["A"], "CLOSE_WAIT"), cli, cport,
                                 reason=rst_reason(reason)))
        kind = f"{cls} (redis-cli {pairs[-1][1].state})"
        kinds[kind] = kinds.get(kind, 0) + 1
    settle_state(c, [srv for srv, _ in pairs if srv.cls == "data_after_close"],
                 ("FIN_WAIT1", "FIN_WAIT2"))
    settle_state(c, [srv for srv, cli in pairs if srv.cls == "unread_data" and
                     cli.state == "FIN_WAIT1"], ("ESTABLISHED", "CLOSE_WAIT"))
    c.report.append(f"redis protected mode, {RACE_CONNECTIONS} connections: {kinds}")
    finish_pairs(c, pairs, {"B": counters})


# ------------------------------------------------------------------ curl

@with_events
def curl_refused(c):
    """curl to a port nothing listens on: B's stack answers the SYN with RST
    from no socket, curl's connect() fails with ECONNREFUSED (exit 7)."""
    cport = client_port(c)
    p, curl = run_client(c, ["curl", "-sS", f"http://{url_host(c)}:{c.port}/"], "curl")
    _, err = p.communicate(timeout=10)
    if p.returncode != 7 or "Couldn't connect" not in err:
        raise Failure(f"curl: expected exit 7 (refused) vs {p.returncode} {err!r}")
    pair = (expect_ports(c, "B", "refused", None, None, "reply", None, c.port, cport,
                         reason=rst_reason("NO_SOCKET")),
            expect_ports(c, "A", "peer_reset", None, "SYN_SENT", "peer", curl, cport, c.port))
    finish_pairs(c, [pair], {})


# ------------------------------------------------------------------ postgresql

PG_BIN = "/usr/lib/postgresql/15/bin"
PSQL = os.path.join(PG_BIN, "psql")     # not /usr/bin/psql, a perl wrapper


def postgres(c):
    """A fresh cluster (initdb, trust for the test's addresses), the
    postmaster in B as user postgres; its unix socket serves the admin's psql."""
    d = Daemon(c, "postgres", stop=signal.SIGQUIT, user="postgres")   # SIGQUIT: immediate shutdown
    data = d.path("data")
    init = subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                           os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "postgres",
                           "--auth=trust", "--no-locale", "-N"], capture_output=True, text=True,
                          timeout=300)   # minutes under qemu (make test-vm)
    if init.returncode != 0:
        raise Failure(f"initdb: exit {init.returncode}", init.stderr.splitlines()[-10:])
    with open(os.path.join(data, "pg_hba.conf"), "a") as f:
        f.write(f"host all all {c.addr('A')}/128 trust\n" if c.family == "ipv6"
                else f"host all all {c.addr('A')}/32 trust\n")
    d.argv = [os.path.join(PG_BIN, "postgres"), "-D", data, "-k", d.dir, "-h", c.addr("B"),
              "-p", str(c.port), "-c", "fsync=off", "-c", "logging_collector=off", "-c", "jit=off"]
    d.start(c.port)
    deadline = time.monotonic() + 60
    while psql_admin(c, d, "SELECT 1", check=False) is None:    # it listens before recovery ends
        if time.monotonic() > deadline:
            raise Failure("postgres: not ready within 60 s", d.log_tail())
        time.sleep(0.1)
    return d


def psql_admin(c, d, sql, check=True):
    """psql as the administrator, over the unix socket in B (no TCP); None
    if it failed and check is False."""
    out = c.pair.exec("B", PSQL, "-h", d.dir, "-p", str(c.port), "-U", "postgres", "-Atc", sql,
                      check=check)
    return out.stdout.strip() if out.returncode == 0 else None


class Feeder(threading.Thread):
    """Writes COPY rows to a client's stdin until the client is gone."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc = proc

    def run(self):
        rows = ("1\t" + "x" * 200 + "\n") * 1000
        try:
            while True:
                self.proc.stdin.write(rows)
        except (BrokenPipeError, ValueError, OSError):
            pass


@with_events
def postgres_terminate(c):
    """psql streams a COPY FROM STDIN; the administrator's
    pg_terminate_backend() makes the backend exit (FATAL "terminating
    connection due to administrator command") with the rest of the upload
    unread in its socket: the kernel resets at the exiting process's close
    (TCP_ABORT_ON_CLOSE), owned by that backend, not the postmaster; psql
    gets the RST while still sending.  If the backend had read everything
    that had arrived by then, the rows that follow meet the orphan instead:
    data_after_close (TCP_ABORT_ON_DATA) in FIN_WAIT1 or FIN_WAIT2, still the
    backend's; B's counters say which."""
    d = postgres(c)
    psql_admin(c, d, "CREATE TABLE t (a int, b text)")
    cport = client_port(c)
    p, cli = run_client(c, [PSQL, "-h", c.addr("B"), "-p", str(c.port), "-U", "postgres",
                            "-c", "COPY t FROM STDIN"], "psql", stdin=subprocess.PIPE)
    feeder = Feeder(p)
    feeder.start()
    deadline = time.monotonic() + 60
    while True:
        backend = psql_admin(c, d, "SELECT pid FROM pg_stat_activity WHERE client_port = "
                                   f"{cport} AND query LIKE 'COPY%' AND state = 'active'")
        if backend:
            break
        if time.monotonic() > deadline:
            raise Failure("postgres: psql's COPY never became active", d.log_tail())
        time.sleep(0.05)
    backend = Owner(int(backend), "postgres", int(backend))
    if backend.pid not in d.children():
        raise Failure(f"postgres: backend {backend.pid} is not a child of the postmaster "
                      f"{d.proc.pid}")
    if psql_admin(c, d, f"SELECT pg_terminate_backend({backend.pid})") != "t":
        raise Failure(f"pg_terminate_backend({backend.pid}) failed")
    p.wait(timeout=60)
    feeder.join(timeout=5)
    err = p.stderr.read()
    if p.returncode == 0:
        raise Failure(f"psql: expected a failure vs exit 0 {err!r}")
    cls, reason, counters = derived_abort(counter_delta(c.before["B"], c.pair.counters("B")))
    if cls == "unread_data":
        pair = pair_of(c, cls, "ESTABLISHED", backend,
                       client_state(c, c.before["A"], "ESTABLISHED"), cli, cport,
                       reason=rst_reason(reason))
        if pair[1].state == "FIN_WAIT1":
            settle_state(c, [pair[0]], ("ESTABLISHED", "CLOSE_WAIT"))
    else:
        # the backend had read all that had arrived when it closed: the
        # next rows met the orphan (its FIN acked or not yet)
        pair = pair_of(c, cls, "FIN_WAIT2", backend,
                       client_state(c, c.before["A"], "CLOSE_WAIT"), cli, cport,
                       reason=rst_reason(reason))
        settle_state(c, [pair[0]], ("FIN_WAIT1", "FIN_WAIT2"))
    finish_pairs(c, [pair], {"B": counters})
    c.report.append(f"psql exit {p.returncode}: {err.strip()[:120]!r}")


SCENARIOS = [nginx_unread_data, nginx_linger0, haproxy_linger0, redis_timeout, redis_protected,
             curl_refused, postgres_terminate]
