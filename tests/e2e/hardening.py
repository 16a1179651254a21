#!/usr/bin/env python3
"""rstwatch hardening tests: signals, pipes, privilege, hostile input.

usage: python3 tests/e2e/hardening.py [-k SUBSTRING] [--rstwatch PATH] [-v]

Each test runs the real ./rstwatch against the real kernel (root) and checks
one promise of the daemon: it stops cleanly on a signal, leaves no BPF object
behind, notices when its reader goes away, rejects bad command lines with one
line, and so on.  Traffic comes from a namespace pair (netns.NsPair) and a
port unique to the test, as in run.py.  Prints `PASS name` or `FAIL name:
what, expected vs seen` per test, then `N passed, M failed`; never skips.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

from netns import NetnsError, NsPair  # noqa: E402
from tracer import Rstwatch, TracerError  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
READY = "rstwatch: tracing"


class Failure(Exception):
    def __init__(self, msg, details=()):
        super().__init__(msg)
        self.details = list(details)


# Connects to B:PORT, where nothing listens, every GAP seconds until killed:
# each attempt gives B a `refused` and A a `peer_reset` verdict.
CHURN = r"""
import socket, sys, time
addr, port, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
n = 0
while True:
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.connect((addr, port))
    except ConnectionRefusedError:
        n += 1
    s.close()
    if n == 1:
        print("first", flush=True)
    time.sleep(gap)
"""


class Ctx:
    """One test: a namespace pair, a port, the processes it started."""

    def __init__(self, opts, n, port):
        self.opts, self.n, self.port = opts, n, port
        self.pair = NsPair(n)
        self.procs = []
        self.undo = []
        self.tmp = tempfile.mkdtemp(prefix="rstwatch-hard-")
        os.chmod(self.tmp, 0o755)

    def begin(self):
        if os.geteuid() != 0:
            raise Failure(f"not root (euid {os.geteuid()}): these tests need root")
        self.pair.setup()
        self.ino = {self.pair.inode(s) for s in "AB"}

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        subprocess.run(["rm", "-rf", self.tmp])
        for fn in reversed(self.undo):
            try:
                fn()
            except OSError:
                pass
        return self.pair.teardown()

    def mine(self, obj):
        """A verdict about this test's traffic: its port, in its namespaces."""
        return (isinstance(obj, dict) and self.port in (obj.get("lport"), obj.get("rport"))
                and obj.get("netns") in self.ino)

    def on_cleanup(self, fn):
        self.undo.append(fn)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def popen(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def rw(self, *args):
        return [self.opts.rstwatch, *args]

    def churn(self, gap=0.002, port=None):
        """Refused connections A -> B:port every gap seconds; returns once the
        first one was refused."""
        p = self.popen(["ip", "netns", "exec", self.pair.names["A"], "python3", "-c", CHURN,
                        self.pair.addr("B", "ipv4"), str(port or self.port), str(gap)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.stdout.readline().strip() != "first":
            raise Failure("churn: no connection refused", p.stderr.read().splitlines())
        return p

    def refuse_once(self, port=None):
        """One refused connection A -> B:port: two verdicts."""
        self.pair.exec("A", "python3", "-c",
                       "import socket,sys\ns=socket.socket()\ntry: s.connect((sys.argv[1], int(sys.argv[2])))\n"
                       "except ConnectionRefusedError: pass\nelse: sys.exit('connected')",
                       self.pair.addr("B", "ipv4"), str(port or self.port))

    def tracer(self, args, json=True):
        t = Rstwatch(self.opts.rstwatch, args, json=json)
        t.start(timeout=20)
        self.procs.append(t.proc)
        return t


def wait_ready(proc, timeout=20):
    """Read proc's stderr (a text pipe) up to the ready line; returns the lines."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise Failure(f"rstwatch exited ({proc.wait()}) before '{READY}'", lines)
        lines.append(line.rstrip("\n"))
        if line.startswith(READY):
            return lines
    raise Failure(f"no '{READY}' within {timeout}s", lines)


def bpf_ids(pid):
    """{'prog': {...}, 'map': {...}, 'link': {...}}: the BPF objects whose file
    descriptors process pid holds (from /proc/PID/fdinfo)."""
    ids = {"prog": set(), "map": set(), "link": set()}
    d = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            text = open(os.path.join(d, fd)).read()
        except OSError:
            continue
        for kind in ids:
            m = re.search(rf"^{kind}_id:\s+(\d+)$", text, re.M)
            if m:
                ids[kind].add(int(m.group(1)))
    return ids


def bpf_alive():
    """The ids of every BPF program, map and link in the kernel now."""
    out = {}
    for kind in ("prog", "map", "link"):
        p = subprocess.run(["bpftool", "-j", kind, "list"], capture_output=True, text=True,
                           timeout=30)
        if p.returncode != 0:
            raise Failure(f"bpftool {kind} list failed: {p.stderr.strip()}")
        out[kind] = {o["id"] for o in json.loads(p.stdout or "[]")}
    return out


def check_released(ids, timeout=2.0):
    """None of ids may remain (maps are freed shortly after the last reference)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = bpf_alive()
        left = {k: sorted(ids[k] & alive[k]) for k in ids if ids[k] & alive[k]}
        if not left:
            return
        if time.monotonic() > deadline:
            raise Failure(f"BPF objects left behind {timeout}s after exit: expected none vs "
                          f"seen {left}")
        time.sleep(0.1)


def check_ids_found(ids):
    n = {k: len(v) for k, v in ids.items()}
    if not (n["prog"] >= 5 and n["map"] >= 5 and n["link"] >= 5):
        raise Failure(f"expected rstwatch to hold >= 5 programs, maps, links vs seen {n}")


def json_lines(raw, what):
    """Every line of raw (bytes) is a complete JSON object; returns them."""
    if raw and not raw.endswith(b"\n"):
        raise Failure(f"{what}: the last line is cut: {raw[-120:]!r}")
    objs = []
    for n, line in enumerate(raw.split(b"\n")[:-1], 1):
        try:
            objs.append(json.loads(line))
        except ValueError:
            raise Failure(f"{what}: line {n} is not JSON: {line[:200]!r}") from None
    return objs


# ------------------------------------------------------------------- tests

def stop_mid_stream(c, sig):
    """A signal in the middle of a stream of verdicts: exit 0 within 2 s, every
    verdict decoded so far written (the replay of the -w trace it recorded
    prints exactly the same lines), the last line complete, and none of its
    BPF programs, maps or links left in the kernel."""
    trace = c.path("t.rwt")
    p = c.popen(c.rw("-j", "--port", str(c.port), "-w", trace), stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
    stderr = []
    deadline = time.monotonic() + 20
    while not any(l.startswith(READY.encode()) for l in stderr):
        line = p.stderr.readline()
        if not line or time.monotonic() > deadline:
            raise Failure("rstwatch did not start", [l.decode(errors="replace") for l in stderr])
        stderr.append(line.rstrip(b"\n"))
    ids = bpf_ids(p.pid)
    check_ids_found(ids)
    churn = c.churn(gap=0.001)
    time.sleep(1.0)
    t0 = time.monotonic()
    p.send_signal(sig)
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        raise Failure(f"{signal.Signals(sig).name}: rstwatch still running 10 s later") from None
    took = time.monotonic() - t0
    churn.kill()
    errlines = [l.decode(errors="replace") for l in stderr + err.splitlines()]
    if p.returncode != 0 or took > 2.0:
        raise Failure(f"{signal.Signals(sig).name}: expected exit 0 within 2 s vs exit "
                      f"{p.returncode} after {took:.2f}s", errlines)
    live = json_lines(out, "live output")
    mine = [o for o in live if c.mine(o)]
    if len(mine) < 20:
        raise Failure(f"expected a stream (>= 20 verdicts on port {c.port}) vs {len(mine)}", errlines)
    rep = subprocess.run(c.rw("-j", "-r", trace), capture_output=True, timeout=60)
    if rep.returncode != 0:
        raise Failure(f"replay exited {rep.returncode}", rep.stderr.decode().splitlines())
    if rep.stdout != out:
        a, b = out.split(b"\n"), rep.stdout.split(b"\n")
        raise Failure(f"live output is not what its own trace replays to: {len(a) - 1} vs "
                      f"{len(b) - 1} lines (verdicts not flushed at exit?)",
                      [f"live last: {a[-2][:200]!r}", f"replay last: {b[-2][:200]!r}"] + errlines)
    check_released(ids)
    c.note = f"{len(mine)} verdicts, exit in {took:.2f}s"


def sigint_mid_stream(c):
    stop_mid_stream(c, signal.SIGINT)


def sigterm_mid_stream(c):
    stop_mid_stream(c, signal.SIGTERM)


def sigint_with_cmd(c):
    """rstwatch -- CMD, SIGINT to rstwatch alone (not from a terminal, so CMD
    did not get it): CMD gets it passed on, rstwatch exits within 2 s with
    CMD's status (130, killed by SIGINT) and releases its BPF objects.  CMD
    here ignores SIGINT and SIGTERM, so only the SIGKILL at 1.5 s ends it."""
    for name, cmd, want in (("sleep", ["sleep", "30"], 130),
                            ("stubborn", ["sh", "-c", "trap '' INT TERM; sleep 30 & wait; sleep 30"],
                             137)):
        # CMD's orphans keep inherited pipes open: CMD's output goes elsewhere
        wrap = ["sh", "-c", 'exec "$@" >/dev/null 2>&1 </dev/null', "sh", *cmd]
        p = c.popen(c.rw("-j", "--port", str(c.port), "--", *wrap), stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True, start_new_session=True)
        err = wait_ready(p)
        ids = bpf_ids(p.pid)
        check_ids_found(ids)
        time.sleep(0.2)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise Failure(f"{name}: rstwatch -- CMD still running 10 s after SIGINT") from None
        took = time.monotonic() - t0
        err += p.stderr.read().splitlines()
        if p.returncode != want or took > 2.0:
            raise Failure(f"{name}: expected exit {want} within 2 s of SIGINT vs exit "
                          f"{p.returncode} after {took:.2f}s", err)
        check_released(ids)


def sigkill(c):
    """SIGKILL leaves nothing attached or pinned (rstwatch pins nothing: its
    objects live only as long as its file descriptors), and a new instance
    starts at once and traces."""
    before = set(os.listdir("/sys/fs/bpf")) if os.path.isdir("/sys/fs/bpf") else set()
    t = c.tracer(["--port", str(c.port)])
    ids = bpf_ids(t.proc.pid)
    check_ids_found(ids)
    t.proc.kill()
    t.proc.wait(timeout=5)
    check_released(ids, timeout=2.0)
    after = set(os.listdir("/sys/fs/bpf")) if os.path.isdir("/sys/fs/bpf") else set()
    if after - before:
        raise Failure(f"new entries in /sys/fs/bpf: {sorted(after - before)}")
    t0 = time.monotonic()
    t2 = c.tracer(["--port", str(c.port)])
    took = time.monotonic() - t0
    c.refuse_once()
    if not t2.wait_for(lambda o: o.get("class") == "refused" and c.mine(o), 1, 5):
        raise Failure("restarted instance: expected a refused verdict vs none", t2.stderr)
    t2.stop()
    c.note = f"restart ready in {took:.2f}s"


def head_1(c):
    """`rstwatch -j | head -1`: once head has its line and exits, rstwatch
    exits promptly (it has nothing more to write, so no EPIPE would tell it),
    with status 0 and nothing on stderr but its start line."""
    p = c.popen(["bash", "-o", "pipefail", "-c", f"'{c.opts.rstwatch}' -j --port {c.port} | head -1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = wait_ready(p)
    c.refuse_once()      # two verdicts: head takes the first and exits
    first = p.stdout.readline()
    t0 = time.monotonic()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise Failure("rstwatch still running 10 s after head -1 exited") from None
    took = time.monotonic() - t0
    err += p.stderr.read().splitlines()
    obj = json.loads(first)
    if not c.mine(obj):
        raise Failure(f"head got an unrelated line: {first!r}")
    if p.returncode != 0 or took > 1.0:
        raise Failure(f"expected exit 0 within 1 s of head's exit vs {p.returncode} after "
                      f"{took:.2f}s", err)
    if [l for l in err if not l.startswith(READY)]:
        raise Failure(f"expected a quiet exit vs stderr {err}")
    c.note = f"exit {took:.2f}s after head"


BAD_ARGS = [
    (["--bogus"], "unknown option '--bogus'"),
    (["-x"], "unknown option '-x'"),
    (["-jx"], "unknown option '-x'"),
    (["--port", "0"], "'0' is not a port"),
    (["--port", "65536"], "'65536' is not a port"),
    (["--port", "http"], "'http' is not a port"),
    (["--port"], "needs an argument"),
    (["-p", "abc"], "'abc' is not a process id"),
    (["-p", "12x"], "'12x' is not a process id"),
    (["-p", "-5"], "'-5' is not a process id"),
    (["--fail-on", "nosuch", "--", "true"], "unknown class 'nosuch'"),
    (["--fail-on", "linger0,bogus", "--", "true"], "unknown class 'bogus'"),
    (["-b", "3"], "not a power of two"),
    (["-i", "0"], "'0' is not a number of seconds"),
    (["-4", "-6"], "-4 and -6 exclude each other"),
    (["--netns", "/nonexistent"], "/nonexistent"),
    (["-r", "/nonexistent"], "/nonexistent"),
    (["--user", "no-such-user-rw"], "no user 'no-such-user-rw'"),
    (["--user"], "needs an argument"),
]


def bad_command_lines(c):
    """Each bad command line: exit 2, nothing on stdout, exactly one line on
    stderr, starting 'rstwatch: ' and naming the problem; never a crash."""
    problems = []
    for args, want in BAD_ARGS:
        p = subprocess.run(c.rw(*args), capture_output=True, text=True, timeout=10)
        lines = p.stderr.splitlines()
        if (p.returncode != 2 or p.stdout or len(lines) != 1 or not lines[0].startswith("rstwatch: ")
                or want not in lines[0]):
            problems.append(f"{' '.join(args)}: expected exit 2 and one line with {want!r} vs exit "
                            f"{p.returncode}, stdout {p.stdout[:80]!r}, stderr {lines}")
    if problems:
        raise Failure(problems[0], problems[1:])
    c.note = f"{len(BAD_ARGS)} command lines"


def output_file_sighup(c):
    """-o FILE gets the verdicts (stdout nothing); after the file is moved
    away and SIGHUP sent (logrotate), new verdicts go to a new FILE and the
    moved one keeps exactly the old ones.  Text output starts each file with
    its header.  SIGHUP does not stop rstwatch; SIGINT then does, exit 0."""
    for fmt in ("json", "text"):
        out = c.path(f"v.{fmt}")
        args = ["-o", out, "--port", str(c.port)] + (["-j"] if fmt == "json" else [])
        p = c.popen(c.rw(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        err = wait_ready(p)

        def lines(path, want, what):
            # text shows a linked pair (both ends on this host) as one line
            want = want if fmt == "json" else want // 2
            deadline = time.monotonic() + 5
            while True:
                text = open(path).read()
                if fmt == "json":
                    got = [o for o in json_lines(text.encode(), what) if c.mine(o)]
                else:
                    net = c.pair.addr("B", "ipv4").rsplit(".", 1)[0] + "."
                    got = [l for l in text.splitlines() if f":{c.port} " in l and net in l]
                if len(got) >= want or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if len(got) != want:
                raise Failure(f"{fmt}: {what}: expected {want} verdict lines vs {len(got)}",
                              open(path).read().splitlines() + err)
            text = open(path).read()
            if fmt == "text" and not text.startswith("TIME"):
                raise Failure(f"{fmt}: {what}: expected the text header first vs {text[:80]!r}")
            if fmt == "json":
                json_lines(text.encode(), what)

        c.refuse_once()
        lines(out, 2, "first file")
        os.rename(out, out + ".1")
        p.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while not os.path.exists(out) and time.monotonic() < deadline:
            time.sleep(0.02)
        if p.poll() is not None:
            raise Failure(f"{fmt}: SIGHUP stopped rstwatch (exit {p.returncode})")
        c.refuse_once()
        lines(out, 2, "reopened file")
        lines(out + ".1", 2, "rotated file")
        p.send_signal(signal.SIGINT)
        so, se = p.communicate(timeout=5)
        if p.returncode != 0 or so:
            raise Failure(f"{fmt}: expected exit 0 and nothing on stdout vs {p.returncode}, {so[:200]!r}",
                          se.splitlines())
    bad = subprocess.run(c.rw("-o", "/nonexistent/dir/file", "--port", str(c.port)),
                         capture_output=True, text=True, timeout=20)
    if bad.returncode != 2 or len(bad.stderr.splitlines()) != 1:
        raise Failure(f"-o to an impossible path: expected exit 2, one line vs {bad.returncode}, "
                      f"{bad.stderr!r}")


# Sets its comm to argv[1] (hex bytes) with prctl(PR_SET_NAME), joins the
# cgroup argv[2] (hex path, or -), connects to argv[3]:argv[4] and closes with
# SO_LINGER {1, 0}: a linger0 verdict owned by that comm.  Prints its pid.
HOSTILE = r"""
import ctypes, os, socket, struct, sys
name, cg, addr, port = bytes.fromhex(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
if cg != "-":
    with open(os.path.join(bytes.fromhex(cg), b"cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
if ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0) != 0:
    sys.exit("prctl failed")
with open("/proc/self/comm", "rb") as f:
    got = f.read()[:-1]
s = socket.create_connection((addr, port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print(os.getpid(), got.hex(), flush=True)
"""

SERVER = r"""
import socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(64)
print("ready", flush=True)
keep = []
while True:
    keep.append(l.accept()[0])
"""

HOSTILE_COMMS = [
    b'q"uo\\te',                     # quotes and backslashes
    b"new\nline\rret",                 # a forged line
    b"\x1b[31mred\x1b]0;t\x07",       # terminal escape sequences (SGR, OSC title)
    b"bad\xff\xfe\xc3(\xed\xa0\x80",  # invalid UTF-8: stray bytes, cut sequence, surrogate
    b"\xc2\x9b31m\xc2\x85x",           # C1 controls (CSI, NEL) encoded in UTF-8
    b"ABCDEFGHIJKLMNO",                # 15 bytes: the comm has no NUL of its own
    b"\ttab\x7fdel\x01",              # tab, DEL, SOH
]


def utf8_len(b, i):
    """Length of the valid UTF-8 sequence at b[i], 0 if invalid (the rule
    rstwatch applies: every byte of an invalid sequence is replaced alone)."""
    for n in (1, 2, 3, 4):
        try:
            ch = b[i:i + n].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return n if len(ch) == 1 else 0
    return 0


def json_expect(b):
    out, i = "", 0
    while i < len(b):
        n = utf8_len(b, i)
        out += "\ufffd" if n == 0 else b[i:i + n].decode()
        i += n or 1
    return out


def hostile_strings(c):
    """Processes whose comm (and cgroup name) holds quotes, backslashes,
    newlines, terminal escapes, C1 controls, invalid UTF-8, or all 15 bytes
    abort a connection each under rstwatch -j and rstwatch (text).  Every
    JSON line parses with jq, each comm and cgroup decodes to what the kernel
    holds (an invalid byte to U+FFFD); the text output has no control byte,
    C1 control or raw byte sequence of the
    input, every line but the header starting with a time and a class (none
    forged), and each comm in its escaped form."""
    jq = subprocess.run(["jq", "--version"], capture_output=True)
    if jq.returncode != 0:
        raise Failure("jq is not installed (make deps)")
    cg_root = next((l.split()[1] for l in open("/proc/self/mounts") if l.split()[2] == "cgroup2"),
                   None)
    if cg_root is None:
        raise Failure("no cgroup2 mount in /proc/self/mounts")
    cg_name = b"rw\thostile\x1b[2J\"\\\xff"    # cgroup_mkdir() refuses only '\n'
    cg_path = os.path.join(cg_root.encode(), cg_name + str(os.getpid()).encode())
    os.mkdir(cg_path)
    c.on_cleanup(lambda: os.rmdir(cg_path))
    srv = c.popen(["ip", "netns", "exec", c.pair.names["B"], "python3", "-c", SERVER,
                   c.pair.addr("B", "ipv4"), str(c.port)], stdout=subprocess.PIPE, text=True)
    if srv.stdout.readline().strip() != "ready":
        raise Failure("server did not start")
    jt = c.tracer(["--port", str(c.port)], json=True)
    tt = c.popen(c.rw("--port", str(c.port)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    terr = []
    while not any(l.startswith(READY.encode()) for l in terr):
        line = tt.stderr.readline()
        if not line:
            raise Failure("text instance did not start", terr)
        terr.append(line)
    owners = {}
    for i, comm in enumerate(HOSTILE_COMMS):
        cg = cg_path.hex() if i == 0 else "-"
        # nsenter, not ip netns exec: that remounts /sys, hiding the cgroup tree
        p = subprocess.run(["nsenter", f"--net={c.pair.path('A')}", "python3", "-c", HOSTILE,
                            comm.hex(), cg, c.pair.addr("B", "ipv4"), str(c.port)],
                           capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            raise Failure(f"hostile process {comm!r} failed", p.stderr.splitlines())
        out = p.stdout.split()
        got = bytes.fromhex(out[1]) if len(out) > 1 else b""
        if got != comm[:15]:
            raise Failure(f"prctl: comm {comm!r} became {got!r}")
        owners[int(out[0])] = got
    if not jt.wait_for(lambda o: o.get("class") == "linger0", len(owners), 5):
        raise Failure("expected a linger0 verdict per hostile process vs fewer", jt.stderr)
    time.sleep(0.5)
    tt.send_signal(signal.SIGINT)
    text, _ = tt.communicate(timeout=5)
    lines = jt.stop()
    raw = "".join(l + "\n" for l, _ in lines).encode("utf-8", "surrogateescape")
    parsed = subprocess.run(["jq", "-c", "."], input=raw, capture_output=True, timeout=10)
    if parsed.returncode != 0:
        raise Failure(f"jq rejects rstwatch's JSON: {parsed.stderr.decode().strip()}",
                      raw.decode(errors="replace").splitlines())
    objs = [json.loads(l) for l in parsed.stdout.decode().split("\n")[:-1]]
    if len(objs) != len(lines):
        raise Failure(f"expected {len(lines)} JSON values from jq vs {len(objs)}")
    problems = []
    for pid, comm in owners.items():
        v = [o for o in objs if o.get("class") == "linger0" and o.get("pid") == pid]
        if len(v) != 1 or v[0].get("comm") != json_expect(comm):
            problems.append(f"pid {pid}: expected one linger0 with comm {json_expect(comm)!r} vs "
                            f"{[o.get('comm') for o in v]}")
        elif comm == HOSTILE_COMMS[0] and v[0].get("cgroup") != json_expect(cg_path[len(cg_root):]):
            problems.append(f"pid {pid}: expected cgroup {json_expect(cg_path[len(cg_root):])!r} vs "
                            f"{v[0].get('cgroup')!r}")
    tlines = text.split(b"\n")
    if tlines[-1] != b"":
        problems.append(f"text: the last line is cut: {tlines[-1]!r}")
    tlines = tlines[:-1]
    # linked verdicts may share a line: count lines by their shape instead
    shape = re.compile(rb"^\d\d:\d\d:\d\d\.\d{6} [a-z0-9_/]+ ")
    forged = [l for l in tlines[1:] if not shape.match(l)]
    if not tlines or not tlines[0].startswith(b"TIME") or forged or len(tlines) < 1 + len(owners):
        problems.append(f"text: expected the header, then >= {len(owners)} lines each starting "
                        f"with a time and a class vs {len(tlines)} lines, these not: {forged}")
    for n, l in enumerate(tlines):
        bad = [ch for ch in l if ch < 0x20 or ch == 0x7f]
        if bad or b"\xc2\x9b" in l or b"\xc2\x85" in l:
            problems.append(f"text line {n}: raw control bytes {bytes(bad)!r}: {l!r}")
    for pid, comm in owners.items():
        esc = b""
        i = 0
        while i < len(comm):
            k = utf8_len(comm, i)
            ch = comm[i]
            if k == 0 or ch < 0x20 or ch == 0x7f or ch == 0x5c or (k == 2 and ch == 0xc2 and comm[i + 1] < 0xa0):
                esc += b"\\x%02x" % ch
                i += 1
            else:
                esc += comm[i:i + k]
                i += k
        if not any(esc + b"[%d]" % pid in l for l in tlines):
            problems.append(f"text: expected owner {esc + b'[%d]' % pid!r} in a line vs none")
    if problems:
        raise Failure(problems[0], problems[1:] + [l.decode(errors="replace") for l in tlines])
    c.note = f"{len(owners)} hostile owners, {len(objs)} JSON lines"


CAP_KILL, CAP_BPF = 5, 39


def proc_status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        out[k] = v.split()
    return out


def privilege_case(c, what, argv, want_uid, allowed, want=("peer_reset", "refused"), want_rc=0,
                   trigger=True, **kw):
    """Start argv (an rstwatch command line), check its privileges once it
    says it is tracing, that it still traces (a refused connection gives its
    two verdicts) and reads its counters (the -c summary at SIGINT)."""
    p = c.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    err = wait_ready(p)
    st = proc_status(p.pid)
    eff, prm = int(st["CapEff"][0], 16), int(st["CapPrm"][0], 16)
    problems = []
    if eff & ~allowed or prm & ~allowed:
        problems.append(f"{what}: expected CapEff/CapPrm within {allowed:#x} once attached vs "
                        f"{eff:#x}/{prm:#x}")
    if st["NoNewPrivs"] != ["1"]:
        problems.append(f"{what}: expected NoNewPrivs 1 vs {st['NoNewPrivs']}")
    if [int(x) for x in st["Uid"]] != [want_uid] * 4:
        problems.append(f"{what}: expected uid {want_uid} (real, effective, saved, fs) vs {st['Uid']}")
    if trigger:
        c.refuse_once()
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, e = p.communicate(timeout=5)
    err += e.splitlines()
    objs = json_lines(out.encode(), what)
    verdicts = sorted(o.get("class") for o in objs if c.mine(o))
    total = [o for o in objs if o.get("summary") == "total"]
    if p.returncode != want_rc or verdicts != list(want):
        problems.append(f"{what}: expected exit {want_rc} and verdicts {list(want)} vs exit "
                        f"{p.returncode}, {verdicts}")
    if len(total) != 1 or total[0].get("lost") != 0 or total[0].get("events", 0) < len(want):
        problems.append(f"{what}: expected a -c total with the kernel's counters (lost 0, events "
                        f">= 2) vs {total}")
    if [l for l in err if l.startswith("rstwatch:") and not l.startswith(READY)]:
        problems.append(f"{what}: unexpected stderr {err}")
    if problems:
        raise Failure(problems[0], problems[1:] + err)
    return eff


def least_privilege(c):
    """Once attached rstwatch holds no capability (at most CAP_BPF, where a
    kernel before 6.5 wants it for bpf() on its own maps, and CAP_KILL with
    -- CMD, to pass signals on) and NoNewPrivs is set; it works with only
    CAP_BPF and CAP_PERFMON as nobody; --user NAME switches real, effective
    and saved uid.  Each still traces and reads its loss counters."""
    base = ["-j", "-c", "--port", str(c.port)]
    effs = [privilege_case(c, "root", c.rw(*base), 0, 1 << CAP_BPF)]
    effs.append(privilege_case(
        c, "nobody with CAP_BPF+CAP_PERFMON",
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all,+bpf,+perfmon",
         "--ambient-caps=-all,+bpf,+perfmon", "--bounding-set=-all,+bpf,+perfmon", *c.rw(*base)],
        65534, 1 << CAP_BPF))
    effs.append(privilege_case(c, "--user nobody", c.rw("--user", "nobody", *base), 65534,
                               1 << CAP_BPF))
    # CMD (traced alone) makes the refused connection, then waits for SIGINT
    cmd = ["nsenter", f"--net={c.pair.path('A')}", "python3", "-c",
           "import socket, sys, time\ntry: socket.create_connection((sys.argv[1], int(sys.argv[2])))\n"
           "except ConnectionRefusedError: pass\ntime.sleep(30)",
           c.pair.addr("B", "ipv4"), str(c.port)]
    effs.append(privilege_case(c, "-- CMD", c.rw(*base, "--", *cmd), 0,
                               (1 << CAP_BPF) | (1 << CAP_KILL), want=["peer_reset"], want_rc=130,
                               trigger=False, start_new_session=True))
    c.note = "CapEff " + ", ".join(f"{e:#x}" for e in effs)


def one_line_exit_2(argv, want, what):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    lines = p.stderr.splitlines()
    if p.returncode != 2 or len(lines) != 1 or not lines[0].startswith("rstwatch: ") or want not in lines[0]:
        raise Failure(f"{what}: expected exit 2 and one line with {want!r} vs exit {p.returncode}, "
                      f"{lines}")


def traces_with(c, argv, what, want_warning=None):
    """argv starts an rstwatch -j --port PORT: it must trace (a refused
    connection, both verdicts) and say nothing on stderr but want_warning."""
    p = c.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = wait_ready(p)
    c.refuse_once()
    time.sleep(0.4)
    p.send_signal(signal.SIGINT)
    out, e = p.communicate(timeout=5)
    err += e.splitlines()
    got = sorted(o.get("class") for o in json_lines(out.encode(), what) if c.mine(o))
    notes = [l for l in err if not l.startswith(READY)]
    if p.returncode != 0 or got != ["peer_reset", "refused"]:
        raise Failure(f"{what}: expected exit 0, [peer_reset, refused] vs {p.returncode}, {got}", err)
    if (want_warning is None and notes) or (want_warning is not None and
                                            (len(notes) != 1 or want_warning not in notes[0])):
        raise Failure(f"{what}: expected warnings {[want_warning] if want_warning else []} vs {notes}")


def environment(c):
    """What the host may lack.  No BTF (hidden in a private mount namespace):
    one line, exit 2, with or without --btf (tp_btf needs the kernel's own).
    --btf FILE, a copy of the kernel's BTF, works; a missing or non-BTF file
    is one line, exit 2.  A BTF without a required tracepoint (what a kernel
    before 5.8 looks like): one line naming it, exit 2; without the optional
    inet_sk_error_report (before 5.12): a one-line warning, and it traces.
    No tracefs (unmounted in a private mount namespace): traces, silently (tp_btf
    needs none).  Not root and no capabilities: one line, exit 2."""
    btf = open("/sys/kernel/btf/vmlinux", "rb").read()
    copies = {}
    for name, old in (("copy", None), ("no_send_reset", b"btf_trace_tcp_send_reset"),
                      ("no_error_report", b"btf_trace_inet_sk_error_report")):
        data = btf
        if old:
            new = old[:-1] + b"X"
            if data.count(b"\0" + old + b"\0") != 1:
                raise Failure(f"kernel BTF: expected the string {old!r} once")
            data = data.replace(b"\0" + old + b"\0", b"\0" + new + b"\0")
        copies[name] = c.path(name + ".btf")
        with open(copies[name], "wb") as f:
            f.write(data)
    with open(c.path("garbage.btf"), "wb") as f:
        f.write(b"\x9f\xeb" + os.urandom(200))
    port = ["-j", "--port", str(c.port)]
    hide = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /sys/kernel/btf && exec "$@"', "sh"]
    one_line_exit_2(hide + c.rw(*port), "cannot read kernel BTF", "no BTF")
    one_line_exit_2(hide + c.rw("--btf", copies["copy"], *port), "no BTF of its own", "no BTF, --btf")
    one_line_exit_2(c.rw("--btf", c.path("nonexistent"), *port), "No such file", "--btf missing")
    one_line_exit_2(c.rw("--btf", c.path("garbage.btf"), *port), "not a BTF file", "--btf garbage")
    one_line_exit_2(c.rw("--btf", copies["no_send_reset"], *port),
                    "no tracepoint tcp_send_reset (rstwatch needs Linux 5.8", "missing tracepoint")
    one_line_exit_2(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all",
                     "--bounding-set=-all", *c.rw(*port)], "run as root, or with CAP_BPF and CAP_PERFMON",
                    "not root")
    traces_with(c, c.rw("--btf", copies["copy"], *port), "--btf copy")
    traces_with(c, c.rw("--btf", copies["no_error_report"], *port), "no inet_sk_error_report",
                "warning: this kernel has no tracepoint inet_sk_error_report")
    traces_with(c, ["unshare", "-m", "sh", "-c",
                    "for m in $(awk '$3 == \"tracefs\" || $3 == \"debugfs\" { print $2 }' /proc/mounts "
                    "| sort -r); do umount -l $m || exit 1; done; "
                    "! grep -qE ' (tracefs|debugfs) ' /proc/mounts && exec \"$@\"", "sh", *c.rw(*port)],
                "no tracefs")


def vm_rss_kib(pid):
    return int(proc_status(pid)["VmRSS"][0])


def start_unread(c, args):
    """rstwatch with stdout into a pipe nobody reads yet: (proc, read fd, stderr lines)."""
    r, w = os.pipe()
    p = c.popen(c.rw(*args), stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    c.on_cleanup(lambda: os.close(r))
    return p, r, wait_ready(p)


def read_all(fd, into, stop_at=None):
    """Thread body: read fd to EOF, appending bytes to the list into."""
    while True:
        b = os.read(fd, 65536)
        if not b:
            return
        into.append(b)


def stalled_reader_stop(c):
    """The reader of stdout stops reading while verdicts keep coming; then
    SIGTERM.  rstwatch must not hang in write(): exit 0 within 2 s, say how
    many lines it dropped, and what did reach the pipe is whole lines."""
    p, r, err = start_unread(c, ["-j", "--port", str(c.port)])
    churn = c.churn(gap=0.001)
    time.sleep(3)          # the pipe (64 KiB) is long full
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise Failure("rstwatch still running 10 s after SIGTERM with a stalled reader "
                      "(blocked writing stdout?)") from None
    took = time.monotonic() - t0
    churn.kill()
    err += p.stderr.read().splitlines()
    data = []
    read_all(r, data)
    objs = json_lines(b"".join(data), "what reached the pipe")
    dropped = [l for l in err if "output lines dropped" in l]
    if p.returncode != 0 or took > 2.0 or len(dropped) != 1:
        raise Failure(f"expected exit 0 within 2 s, one 'output lines dropped' line vs exit "
                      f"{p.returncode} after {took:.2f}s, {dropped}", err)
    c.note = f"exit {took:.2f}s, {len(objs)} lines delivered, {dropped[0]}"


def slow_consumer(c):
    """stdout into a pipe nobody reads for 30 s under churn (~1000 refused
    connections a second): RSS stays flat, the kernel counts what could not
    be delivered (the -c total's lost > 0), output resumes once the reader
    does, and every verdict rstwatch made is on stdout (verdict lines ==
    the total's counts)."""
    import threading
    p, r, err = start_unread(c, ["-j", "-c", "-b", "1", "--port", str(c.port)])
    churn = c.churn(gap=0.0005)
    rss = []
    for _ in range(30):
        time.sleep(1)
        rss.append(vm_rss_kib(p.pid))
        if p.poll() is not None:
            raise Failure(f"rstwatch exited ({p.returncode}) while its reader was stalled")
    resume = time.time()
    data = []
    th = threading.Thread(target=read_all, args=(r, data), daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    resumed = False
    while not resumed and time.monotonic() < deadline:
        time.sleep(0.2)
        for line in b"".join(data).split(b"\n")[-50:-1]:
            o = json.loads(line)
            if o.get("time", "") > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(resume + 1)):
                resumed = True
    churn.kill()
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=5)
    th.join(timeout=5)
    err += p.stderr.read().splitlines()
    objs = json_lines(b"".join(data), "stdout")
    verdicts = [o for o in objs if "summary" not in o]
    total = [o for o in objs if o.get("summary") == "total"]
    problems = []
    if not resumed:
        problems.append("output did not resume within 10 s of the reader resuming")
    growth = max(rss[5:]) - rss[5]
    if max(rss) > 64 * 1024 or growth > 4096:
        problems.append(f"RSS: expected < 64 MiB and < 4 MiB growth after 5 s vs max {max(rss)} KiB, "
                        f"growth {growth} KiB ({rss})")
    if p.returncode != 0 or len(total) != 1:
        problems.append(f"expected exit 0 and a -c total vs {p.returncode}, {len(total)} totals")
    else:
        made = sum(x["count"] for x in total[0]["counts"])
        if total[0]["lost"] <= 0 or made != len(verdicts):
            problems.append(f"expected kernel losses > 0 and every verdict made delivered vs lost "
                            f"{total[0]['lost']}, {made} made, {len(verdicts)} delivered")
        if not [l for l in err if "events lost" in l]:
            problems.append(f"expected the loss on stderr vs {err}")
    if problems:
        raise Failure(problems[0], problems[1:] + err)
    c.note = (f"RSS {rss[0]}..{max(rss)} KiB, {len(verdicts)} delivered, lost {total[0]['lost']}, "
              f"events {total[0]['events']}")


# Keeps every connection it accepts on argv[1]:argv[2]; prints "ready".
KEEPER = r"""
import resource, socket, sys
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(4096)
print("ready", flush=True)
keep = []
while True:
    keep.append(l.accept()[0])
"""

# Opens argv[3] connections to argv[1]:argv[2], printing "open K" every
# 1000 and waiting for a line on stdin; then closes them all with SO_LINGER
# {1, 0} and prints "closed".
OPENER = r"""
import resource, socket, struct, sys
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
conns = []
for i in range(int(sys.argv[3])):
    conns.append(socket.create_connection((sys.argv[1], int(sys.argv[2]))))
    if len(conns) % 1000 == 0:
        print("open", len(conns), flush=True)
        sys.stdin.readline()
for s in conns:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print("closed", flush=True)
"""


def state_table_overflow(c):
    """--conn-table 1000 and 10000 live connections (the clients' sockets
    enter the table as they connect), then all aborted with linger 0: RSS
    flat while the table overflows, evictions counted (-c total) and
    reported (stderr), and every abort still has its verdict, those of
    evicted connections marked evidence.partial."""
    cap, n = 1000, 10000
    srv = c.popen(["ip", "netns", "exec", c.pair.names["B"], "python3", "-c", KEEPER,
                   c.pair.addr("B", "ipv4"), str(c.port)], stdout=subprocess.PIPE, text=True)
    if srv.stdout.readline().strip() != "ready":
        raise Failure("server did not start")
    t = c.tracer(["-c", "-b", "16", "--conn-table", str(cap), "--port", str(c.port)])
    cli = c.popen(["ip", "netns", "exec", c.pair.names["A"], "python3", "-c", OPENER,
                   c.pair.addr("B", "ipv4"), str(c.port), str(n)], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, text=True)
    rss = []
    for k in range(n // 1000):
        line = cli.stdout.readline().split()
        if line != ["open", str((k + 1) * 1000)]:
            raise Failure(f"opener: expected 'open {(k + 1) * 1000}' vs {line}")
        time.sleep(0.15)       # drained (DRAIN_MS 100)
        rss.append(vm_rss_kib(t.proc.pid))
        cli.stdin.write("\n")
        cli.stdin.flush()
    if cli.stdout.readline().strip() != "closed":
        raise Failure("opener did not close its connections")
    mine = lambda o: c.mine(o) and o.get("class") in ("linger0", "peer_reset")
    t.wait_for(mine, 2 * n, timeout=20)
    time.sleep(0.3)
    lines = t.stop()
    objs = [o for _, o in lines if o is not None]
    lin = [o for o in objs if c.mine(o) and o.get("class") == "linger0"]
    peer = [o for o in objs if c.mine(o) and o.get("class") == "peer_reset"]
    partial = [o for o in lin if o.get("evidence", {}).get("partial") is True]
    total = [o for o in objs if o.get("summary") == "total"]
    problems = []
    if len(lin) != n or len(peer) != n:
        problems.append(f"expected {n} linger0 and {n} peer_reset vs {len(lin)}, {len(peer)}")
    if len(partial) < n - cap:
        problems.append(f"expected >= {n - cap} linger0 marked evidence.partial vs {len(partial)}")
    if len(total) != 1 or total[0].get("evictions", 0) < n - cap or total[0].get("lost") != 0:
        problems.append(f"expected a -c total with >= {n - cap} evictions, lost 0 vs {total}")
    if not [l for l in t.stderr if "evicted from the state table" in l]:
        problems.append(f"expected the evictions on stderr vs {t.stderr}")
    if max(rss) - rss[1] > 1024:
        problems.append(f"RSS: expected flat (< 1 MiB growth from 2000 to {n} connections) vs {rss} KiB")
    if problems:
        raise Failure(problems[0], problems[1:] + t.stderr)
    c.note = (f"RSS {rss} KiB, {len(partial)}/{n} partial, evictions "
              f"{total[0]['evictions']}")


TESTS = [sigint_mid_stream, sigterm_mid_stream, sigint_with_cmd, sigkill, head_1,
         bad_command_lines, output_file_sighup, hostile_strings, least_privilege, environment,
         stalled_reader_stop, state_table_overflow, slow_consumer]


def run_one(opts, i, fn):
    # apart from run.py's 20000-31999 and below the ephemeral ports (32768-)
    port = 15000 + (os.getpid() % 150) * 30 + i
    c = Ctx(opts, 200 + i, port)
    c.note = ""
    failure = None
    t = time.monotonic()
    try:
        c.begin()
        fn(c)
    except Failure as e:
        failure = (str(e), e.details)
    except (NetnsError, TracerError) as e:
        failure = (str(e), getattr(e, "stderr", []))
    except Exception as e:
        failure = (f"{type(e).__name__}: {e}", traceback.format_exc().splitlines())
    finally:
        try:
            errors = c.cleanup()
        except Exception as e:
            errors = [f"{type(e).__name__}: {e}"]
        if errors and failure is None:
            failure = ("teardown: " + "; ".join(errors), [])
    took = time.monotonic() - t
    if failure is None:
        print(f"PASS {fn.__name__}" + (f"  ({took:.1f}s; {c.note})" if opts.verbose else ""))
    else:
        print(f"FAIL {fn.__name__}: {failure[0]}")
        for line in failure[1]:
            print("    " + str(line))
    sys.stdout.flush()
    return failure is None


def main():
    ap = argparse.ArgumentParser(description="rstwatch hardening tests (root, real kernel)")
    ap.add_argument("-k", metavar="SUBSTRING", help="run only tests whose name contains it")
    ap.add_argument("--rstwatch", default=os.path.join(REPO, "rstwatch"))
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args()
    opts.rstwatch = os.path.abspath(opts.rstwatch)
    passed = failed = 0
    for i, fn in enumerate(TESTS):
        if opts.k and opts.k not in fn.__name__:
            continue
        if run_one(opts, i, fn):
            passed += 1
        else:
            failed += 1
    print(f"hardening: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
