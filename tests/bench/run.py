#!/usr/bin/env python3
"""rstwatch's benchmark: what tracing TCP aborts costs, side by side with the
floor and the peers, in one run on one machine.  `make bench` runs it (root).

usage: python3 tests/bench/run.py [--quick] [--reps N] [--seconds S] [--stats-reps N]
                                  [--modes rst,fin] [--variants a,b,...]
                                  [--no-flood] [--no-rss] [--rss-counts N,N,...]
                                  [--no-soak] [--soak-seconds S] [--soak-abort-every N]
                                  [--no-load] [--load-conns N] [--load-only] [--out FILE]

The load is tests/bench/churn (built by `make bench-bin`), pinned to CPU 0 in
a network namespace of its own; every tracer is pinned to CPU 1.  On loopback
the whole TCP handshake and teardown run in churn's task, so everything the
tracer's BPF programs cost is taken from churn's connections per second;
the tracer's userspace runs on the other CPU and is measured by its own CPU
time.  Variants, interleaved (REPS rounds, each round every variant once, in
a rotating order, so drift in the machine's load spreads over all of them):

  none       no tracer
  floor      empty programs on rstwatch's tracepoints (tests/bench/floor)
  text       rstwatch > /dev/null
  json       rstwatch -j > /dev/null
  count      rstwatch -c > /dev/null
  bpftrace   tests/bench/rstwatch.bt (Debian's bpftrace) > file on tmpfs
  tcpstates  libbpf-tools' tcpstates > file on tmpfs

After the rounds, STATS_REPS more rounds per mode (same rotation) with
kernel.bpf_stats_enabled=1 measure each tracer's in-kernel cost (run_time_ns
and run_cnt from the fdinfo of the tracer's own program fds, per program and
summed, per connection: the median of the rounds); stats stay off during the
throughput rounds because they add their own cost.  One more round per mode
counts the records of the target variant (TARGET_VARIANT) for churn's own
connections: churn in a named network namespace, rstwatch --netns on it (the
other rounds trace the whole host, whose other traffic has records too).
Then the flood (two
generators: raw SYNs to a closed port on CPU 0 and RST churn on CPU 1, rstwatch
-j unpinned), the RSS check (one `rstwatch` with default settings through RST
churn, its resident memory read after 10k, 100k, 1M and 10M connections), the
soak (FIN churn as fast as it goes with one connection in 100 ended by
SO_LINGER {1,0}, for 5 minutes, under `rstwatch -j`: its linger0 verdicts in
churn's namespace against churn's own count of aborts, records lost, RSS
sampled throughout), and the mixed load: a million connections from
tests/load/mixload, 64 concurrent clients ending them twelve ways, through one
rstwatch, checked per class against the TcpExt counters and connection by
connection as the e2e test load_mix checks (--load-only runs just that and
replaces its section of --out).  Writes BENCHMARKS.md, whose summary table
holds the targets (TARGETS below).
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, ".output", "bench")
CHURN = os.path.join(OUT, "churn")
FLOOR = os.path.join(OUT, "floor")
RSTWATCH = os.path.join(ROOT, "rstwatch")
# the mixed load is the e2e test load_mix's machinery, at scale
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
from netns import NsPair  # noqa: E402
from scen_load import MIXLOAD, SEED, Load, LoadCheck, load_deltas, recursion_misses  # noqa: E402
BT_SCRIPT = os.path.join(ROOT, "tests", "bench", "rstwatch.bt")
GEN_CPU, TRACER_CPU = 0, 1
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

VARIANTS = ["none", "floor", "text", "json", "count", "bpftrace", "tcpstates"]
RSTWATCH_VARIANTS = {"text": [], "json": ["-j"], "count": ["-c"]}
LABELS = {
    "none": "no tracer",
    "floor": "floor (empty programs)",
    "text": "`rstwatch` > /dev/null",
    "json": "`rstwatch -j` > /dev/null",
    "count": "`rstwatch -c` > /dev/null",
    "bpftrace": "bpftrace script",
    "tcpstates": "libbpf-tools `tcpstates`",
}
# The rstwatch variant each mode's targets are about: healthy closes with the
# default options, aborts with JSON output.
TARGET_VARIANT = {"fin": "text", "rst": "json"}
# The targets (the summary table of BENCHMARKS.md)
MAX_LOSS_PCT = {"fin": 5.0, "rst": 8.0}    # conn/s lost against no tracer
MAX_FLOOR_RATIO = 2.0                       # in-kernel ns per connection against the floor's
MAX_RSS_MIB = 24.0                          # default settings
RSS_FLAT_KIB = 1024                         # growth allowed after the first checkpoint
SOAK_ABORT_EVERY = 100


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(2)


def ensure_tracefs():
    """bpftrace and tcpstates find their tracepoints in tracefs, which a
    fresh machine may not have mounted (rstwatch attaches by BTF alone)."""
    if os.path.exists("/sys/kernel/tracing/events/sock"):
        return
    r = subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"],
                       capture_output=True, text=True)
    if r.returncode or not os.path.exists("/sys/kernel/tracing/events/sock"):
        die("tracefs is not mounted and mounting it failed: "
            f"{r.stderr.strip() or 'no events/sock'}; mount -t tracefs nodev /sys/kernel/tracing")
    print("bench: mounted tracefs on /sys/kernel/tracing for bpftrace and tcpstates",
          file=sys.stderr)


def pin(cpu):
    return lambda: os.sched_setaffinity(0, {cpu})


def cpu_seconds(pid):
    """utime + stime of a live process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def prog_names():
    """{prog_id: name} of every BPF program loaded (bpftool gives the full
    name from BTF, where the kernel keeps 15 characters)."""
    try:
        out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True)
        return {p["id"]: p.get("name", "?") for p in json.loads(out.stdout)}
    except (OSError, ValueError):
        return {}


def prog_stats(pid):
    """{prog_id: (run_time_ns, run_cnt)} over the BPF program fds pid holds."""
    progs = {}
    fddir = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fddir):
        try:
            with open(os.path.join(fddir, fd)) as f:
                info = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue
        if "run_time_ns" in info and "prog_id" in info:
            progs[int(info["prog_id"])] = (int(info["run_time_ns"]), int(info["run_cnt"]))
    return progs


def has_bpf_link(pid):
    """pid holds a BPF link: its programs are attached."""
    fddir = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fddir):
        try:
            with open(os.path.join(fddir, fd)) as f:
                if "link_type:" in f.read():
                    return True
        except OSError:
            pass
    return False


def churn_cmd(mode, seconds=None, count=None, cpu=GEN_CPU, abort_every=None):
    cmd = [CHURN, "-m", mode, "-C", str(cpu)]
    cmd += ["-n", str(count)] if count else ["-t", str(seconds)]
    return cmd + (["-a", str(abort_every)] if abort_every else [])


def churn_tally(stdout):
    """churn's one line of key=value"""
    return dict(kv.split("=") for kv in stdout.split())


def run_churn(mode, seconds=None, count=None, cpu=GEN_CPU):
    out = subprocess.run(churn_cmd(mode, seconds, count, cpu), capture_output=True, text=True)
    if out.returncode:
        die(f"churn failed: {out.stderr.strip()}")
    return churn_tally(out.stdout)


def rss_kib(pid):
    """(VmRSS, VmHWM) of a live process, in KiB."""
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                vals[k] = int(v.split()[0])
    return vals.get("VmRSS", 0), vals.get("VmHWM", 0)


class Tracer:
    """One tracer process, pinned, output to /dev/null or a tmpfs file."""

    def __init__(self, variant, tmp, extra=(), cpu=TRACER_CPU, pipe=False):
        self.variant = variant
        self.proc = None
        self.names = {}
        self.outpath = os.path.join(tmp, f"{variant}.out")
        self.errpath = os.path.join(tmp, f"{variant}.err")
        if variant == "none":
            return
        if variant == "floor":
            cmd, ready, where = [FLOOR], "floor: attached", "err"
            out = subprocess.DEVNULL
        elif variant in RSTWATCH_VARIANTS:
            cmd = [RSTWATCH, "-v", *RSTWATCH_VARIANTS[variant], *extra]
            ready, where = "tracing TCP aborts", "err"
            out = subprocess.PIPE if pipe else subprocess.DEVNULL
        elif variant == "bpftrace":
            cmd, ready, where = ["bpftrace", BT_SCRIPT], "Attaching", "out"
            out = open(self.outpath, "w")
        elif variant == "tcpstates":
            # its header sits in stdio's buffer until events fill it: wait
            # for its BPF link instead
            cmd, ready, where = ["tcpstates"], None, "link"
            out = open(self.outpath, "w")
        else:
            die(f"unknown variant {variant}")
        err = open(self.errpath, "w")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, errors="replace",
                                     preexec_fn=pin(cpu) if cpu is not None else None)
        if out not in (subprocess.DEVNULL, subprocess.PIPE):
            out.close()
        err.close()
        path = self.errpath if where == "err" else self.outpath
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                die(f"{variant} exited at start: {open(self.errpath).read()[-500:]}")
            if where == "link":
                if has_bpf_link(self.proc.pid):
                    break
            else:
                with open(path, errors="replace") as f:
                    if ready in f.read():
                        break
            time.sleep(0.05)
        else:
            self.stop()
            die(f"{variant} did not start within 60 s")
        time.sleep(0.5)  # let start-up work (BTF, cgroup scan, iterator) settle
        self.names = prog_names()

    def cpu(self):
        return cpu_seconds(self.proc.pid) if self.proc else 0.0

    def progs(self):
        return prog_stats(self.proc.pid) if self.proc else {}

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def stop(self):
        """SIGINT, wait; returns max RSS in KiB (0 without a process)."""
        if not self.proc:
            return 0
        self.proc.send_signal(signal.SIGINT)
        try:
            _, _, ru = os.wait4(self.proc.pid, 0)
        except ChildProcessError:
            return 0
        self.proc.returncode = 0
        return ru.ru_maxrss

    def counts(self):
        """(produced, delivered, lost) as the tool itself reports them, or Nones."""
        if self.variant in RSTWATCH_VARIANTS:
            err = open(self.errpath, errors="replace").read()
            m = re.search(r"(\d+) events, (\d+) delivered, (\d+) lost", err)
            if m:
                return int(m[1]), int(m[2]), int(m[3])
            m = re.search(r"(\d+) events, (\d+) lost", err)
            if m:
                return int(m[1]), int(m[1]) - int(m[2]), int(m[2])
            return None, None, None
        if self.variant == "bpftrace":
            produced = delivered = lost = 0
            with open(self.outpath, errors="replace") as f:
                for line in f:
                    if line[:1].isdigit():
                        delivered += 1
                    elif line.startswith("Lost "):
                        lost += int(line.split()[1])
                    elif line.startswith("@produced:"):
                        produced = int(line.split()[1])
            return produced, delivered, lost
        if self.variant == "tcpstates":
            delivered = lost = 0
            with open(self.outpath, errors="replace") as f:
                for line in f:
                    if line[:1] in "0123456789abcdef" and not line.startswith("SKADDR"):
                        delivered += 1
            for line in open(self.errpath, errors="replace"):
                m = re.match(r"lost (\d+) events", line)
                if m:
                    lost += int(m[1])
            return delivered + lost, delivered, lost  # produced: not counted by the tool
        return None, None, None

    def cleanup(self):
        for p in (self.outpath, self.errpath):
            if os.path.exists(p):
                os.unlink(p)


def measure(variant, mode, seconds, tmp, stats=False):
    t = Tracer(variant, tmp)
    before = t.progs() if stats else {}
    cpu0 = t.cpu()
    res = run_churn(mode, seconds=seconds)
    time.sleep(0.3)  # rstwatch drains every 100 ms; bpftrace and tcpstates poll
    cpu1 = t.cpu()
    after = t.progs() if stats else {}
    alive = t.alive()
    rss = t.stop()
    produced, delivered, lost = t.counts()
    t.cleanup()
    r = {
        "variant": variant, "mode": mode, "cps": float(res["cps"]), "conns": int(res["conns"]),
        "cpu_cps": float(res["cpu_cps"]),
        "seconds": float(res["seconds"]), "cpu_s": cpu1 - cpu0, "rss_kib": rss,
        "produced": produced, "delivered": delivered, "lost": lost, "alive": alive,
    }
    if stats:
        progs = {}
        for k, v in after.items():
            ns, cnt = v[0] - before.get(k, (0, 0))[0], v[1] - before.get(k, (0, 0))[1]
            name = t.names.get(k, f"id {k}")
            pns, pcnt = progs.get(name, (0, 0))   # a name twice (bpftrace): summed
            progs[name] = (pns + ns, pcnt + cnt)
        r.update(bpf_ns=sum(v[0] for v in progs.values()), bpf_runs=sum(v[1] for v in progs.values()),
                 progs=progs)
    return r


def records_round(mode, variant, seconds, tmp):
    """Records per connection of churn's own connections: churn in a named
    network namespace, the tracer with --netns on it (the throughput rounds
    trace the whole host, whose other traffic has records too)."""
    ns = f"rstwatch-bench-{os.getpid()}"
    for cmd in (["ip", "netns", "add", ns], ["ip", "-n", ns, "link", "set", "lo", "up"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            die(f"{' '.join(cmd)}: {r.stderr.strip()}")
    try:
        t = Tracer(variant, tmp, extra=["--netns", f"/run/netns/{ns}"])
        out = subprocess.run(["ip", "netns", "exec", ns, *churn_cmd(mode, seconds), "-N"],
                             capture_output=True, text=True)
        time.sleep(0.3)
        t.stop()
        produced, _, lost = t.counts()
        t.cleanup()
        if out.returncode:
            die(f"churn failed: {out.stderr.strip()}")
        conns = int(churn_tally(out.stdout)["conns"])
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    return {"mode": mode, "variant": variant, "produced": produced, "lost": lost, "conns": conns}


def set_bpf_stats(on):
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1" if on else "0")


def foreign_tracers():
    """Tracing BPF programs loaded on this host now (other tools, other agents' tests)."""
    try:
        out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True)
        return sum(1 for p in json.loads(out.stdout) if p.get("type") in ("tracing", "raw_tracepoint",
                                                                             "tracepoint", "kprobe"))
    except (OSError, ValueError):
        return -1


def flood(seconds, tmp):
    """Two generators as fast as they go; rstwatch -j unpinned.  Checks the books."""
    t = Tracer("json", tmp, cpu=None)
    cpu0 = t.cpu()
    gens = [subprocess.Popen([CHURN, "-m", m, "-C", str(c), "-t", str(seconds)], stdout=subprocess.PIPE,
                             text=True) for m, c in (("syn", 0), ("rst", 1))]
    outs = [dict(kv.split("=") for kv in g.communicate()[0].split()) for g in gens]
    time.sleep(0.3)
    alive = t.alive()
    cpu1 = t.cpu()
    rss = t.stop()
    produced, delivered, lost = t.counts()
    t.cleanup()
    return {"seconds": seconds, "syn_pps": float(outs[0]["cps"]), "rst_cps": float(outs[1]["cps"]),
            "produced": produced, "delivered": delivered, "lost": lost, "alive": alive,
            "cpu_s": cpu1 - cpu0, "rss_kib": rss}


def rss_check(counts, tmp):
    """One `rstwatch` with default settings through RST churn (every
    connection an abort: records, verdicts, classifier state), its resident
    memory read when the connections seen reach each of counts."""
    t = Tracer("text", tmp)
    points, done, took = [], 0, 0.0
    for n in counts:
        res = run_churn("rst", count=n - done)
        done, took = n, took + float(res["seconds"])
        time.sleep(0.3)
        rss, hwm = rss_kib(t.proc.pid)
        points.append({"conns": n, "rss_kib": rss, "hwm_kib": hwm, "cps": float(res["cps"])})
        print(f"rss: {points[-1]}", flush=True)
    alive = t.alive()
    maxrss = t.stop()
    produced, delivered, lost = t.counts()
    t.cleanup()
    return {"points": points, "max_kib": maxrss, "produced": produced, "delivered": delivered,
            "lost": lost, "alive": alive, "seconds": took}


def soak(seconds, every, tmp):
    """FIN churn as fast as it goes, one connection in `every` ended with
    SO_LINGER {1,0}, under `rstwatch -j`: churn's count of aborts against
    rstwatch's linger0 verdicts in churn's namespace (and the peer_reset of
    the other end), records lost in the ring buffer and before it, and
    rstwatch's RSS sampled every few seconds."""
    t = Tracer("json", tmp, pipe=True)
    seen = {}           # (netns, class): verdicts
    lines = [0]

    def read():
        for line in t.proc.stdout:
            lines[0] += 1
            if '"class":"linger0"' in line or '"class":"peer_reset"' in line:
                v = json.loads(line)
                key = (v["netns"], v["class"])
                seen[key] = seen.get(key, 0) + 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    gen = subprocess.Popen(churn_cmd("fin", seconds=seconds, abort_every=every), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    t0, samples, step = time.time(), [], max(1.0, min(5.0, seconds / 20))
    while gen.poll() is None:
        samples.append((time.time() - t0, rss_kib(t.proc.pid)[0]))
        deadline = time.time() + step
        while gen.poll() is None and time.time() < deadline:
            time.sleep(0.1)
    out, err = gen.communicate()
    if gen.returncode:
        die(f"churn failed: {err.strip()}")
    tally = churn_tally(out)
    time.sleep(1)       # rstwatch drains every 100 ms
    samples.append((time.time() - t0, rss_kib(t.proc.pid)[0]))
    misses = recursion_misses(t.proc.pid)
    alive = t.alive()
    maxrss = t.stop()
    reader.join(timeout=10)
    produced, delivered, lost = t.counts()
    t.cleanup()
    ns = int(tally["netns"])
    warm = min(max(30.0, seconds / 10), seconds / 2)   # the tables are touched as they fill
    after = [kib for at, kib in samples if at >= warm] or [samples[-1][1]]
    return {"seconds": float(tally["seconds"]), "conns": int(tally["conns"]), "cps": float(tally["cps"]),
            "aborted": int(tally["aborted"]), "every": every, "linger0": seen.get((ns, "linger0"), 0),
            "peer_reset": seen.get((ns, "peer_reset"), 0), "lines": lines[0], "produced": produced,
            "delivered": delivered, "lost": lost, "misses": sum(misses.values()), "alive": alive,
            "max_kib": maxrss, "warm": warm, "rss_first": after[0], "rss_peak": max(after),
            "rss_last": samples[-1][1], "samples": len(samples)}


LOAD_WORKERS = 64


def mixed_load(conns, workers):
    """One rstwatch -j -c through `conns` mixload connections between two fresh
    namespaces, checked as the e2e test load_mix checks (scen_load.LoadCheck):
    per class against the TcpExt counters and mixload's tally, connection by
    connection, and for loss.  rstwatch writes to a file on disk (about 1.4 KB
    of JSON per connection) and is not pinned, nor is mixload."""
    tmp = tempfile.mkdtemp(prefix="rstwatch-bench-load-")
    out, err, log = (os.path.join(tmp, n) for n in ("verdicts.jsonl", "stderr", "conns.log"))
    port = 32000 + os.getpid() % 700       # below the ephemeral range, apart from the e2e ports
    pair = NsPair(250)
    proc = None
    try:
        pair.setup()
        ino = {s: pair.inode(s) for s in "AB"}
        load = Load(pair, port)
        load.setup()
        with open(err, "w") as ef:
            proc = subprocess.Popen([RSTWATCH, "-j", "-c", "-o", out, "--port", str(port)],
                                    stdout=subprocess.DEVNULL, stderr=ef)
        deadline = time.time() + 60
        while "rstwatch: tracing" not in open(err).read():
            if proc.poll() is not None or time.time() > deadline:
                die(f"rstwatch did not start: {open(err).read()[-500:]}")
            time.sleep(0.05)
        before = {s: pair.counters(s) for s in "AB"}
        t = time.time()
        gen_pid, tally = load.run(conns, workers, SEED, log, timeout=7200)
        wall = time.time() - t
        time.sleep(1)      # rstwatch drains every 100 ms
        misses = recursion_misses(proc.pid)
        after = {s: pair.counters(s) for s in "AB"}
        proc.send_signal(signal.SIGINT)
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = 0
        if status:
            die(f"rstwatch exited with status {status:#x}: {open(err).read()[-500:]}")
        deltas = load_deltas(before, after)
        t = time.time()
        chk = LoadCheck(log, port, ino, gen_pid)
        with open(out) as f:
            for line in f:
                try:
                    chk.add(json.loads(line))
                except ValueError:
                    chk.add(line)
        problems, report = chk.check(tally, deltas, open(err).read().splitlines(), misses)
        print("\n".join(report), flush=True)
        return {"conns": conns, "workers": workers, "seconds": tally["seconds"], "wall": wall,
                "check_s": time.time() - t, "rss_kib": ru.ru_maxrss, "numbers": chk.numbers,
                "table": chk.table, "race": tally["race"]["orphan_data"], "problems": problems,
                "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        pair.teardown()
        shutil.rmtree(tmp, ignore_errors=True)


def load_md(ld):
    """The BENCHMARKS.md section of a mixed_load() run."""
    n = ld["numbers"]
    exact = not ld["problems"]
    L = [f"## Mixed load: {ld['conns']:,} connections through one rstwatch\n",
         f"`tests/load/mixload`: {ld['workers']} client threads in one network namespace against "
         f"{ld['workers']} server threads in another (veth), IPv4 and IPv6, each connection ending "
         "one of twelve ways (normal closes either side first, linger 0, unread data, data racing "
         "a close, refused, half open, user timeout, linger2, connect(AF_UNSPEC)); one "
         "`rstwatch -j -c` writing to a file, neither pinned.  Checked as the e2e test `load_mix` "
         "checks (tests/e2e/scen_load.py): per namespace and class against the TcpExt counters and "
         "mixload's own tally, and connection by connection (a verdict belongs to the connection "
         f"with its 4-tuple whose lifetime holds its time).  Run on {ld['date']}.\n",
         "| connections | mixload s | conn/s | events | lost | recursion misses | evictions | "
         "false verdicts | missing | unexpected | unmatched | killed for memory | rstwatch max RSS "
         "MiB | exact |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
         f"| {ld['conns']:,} | {ld['seconds']:.1f} | {ld['conns'] / ld['seconds']:,.0f} | "
         f"{fmt_int(n['events'])} | {fmt_int(n['lost'])} | {n['recursion_misses']:,} | "
         f"{fmt_int(n['evictions'])} | {n['false']:,} | {n['missing']:,} | {n['unexpected']:,} | "
         f"{n['unmatched']:,} | {n['memory']:,} | {ld['rss_kib'] / 1024:.1f} | "
         f"{'yes' if exact else 'NO'} |\n",
         "Per namespace (A clients, B servers) and class: what mixload made, what rstwatch "
         "reported, and the TcpExt counter the kernel bumps for the class.\n",
         "| side | class | mixload | rstwatch | counter | counter delta |",
         "|---|---|---:|---:|---|---:|"]
    for side, cls, want, got, counter, delta in ld["table"]:
        L.append(f"| {side} | {cls} | {want:,} | {got:,} | {counter or '-'} | "
                 f"{'-' if delta is None else f'{delta:,}'} |")
    r = ld["race"]
    L.append(f"\norphan_data (the client's close() racing the server's 10 bytes), as mixload "
             f"could tell: {r['unread']:,} unread_data (bytes queued at the close), "
             f"{r['closed_first']:,} data_after_close (the server read the FIN first), "
             f"{r['undetermined']:,} either.")
    if ld["problems"]:
        L.append("\nWhat was not exact (the first ten):\n")
        L += [f"- {p}" for p in ld["problems"][:10]]
    return "\n".join(L) + "\n"


def splice_load_md(path, section):
    """Put the mixed load's section into an existing BENCHMARKS.md in place of
    its old one (--load-only), or before the notes."""
    text = open(path).read() if os.path.exists(path) else "# rstwatch benchmark\n"
    start = text.find("## Mixed load:")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        at = text.find("## Notes")
        at = at if at >= 0 else len(text)
        text = text[:at] + section + "\n" + text[at:]
    with open(path, "w") as f:
        f.write(text)


def med(xs):
    xs = list(xs)
    return statistics.median(xs) if xs else float("nan")


def opt(row, key, fmt):
    return "-" if row.get(key) is None else fmt.format(row[key])


def fmt_int(x):
    return "-" if x is None else f"{x:,}"


def mib(kib):
    return kib / 1024


def summarize(results, stats, modes, variants):
    """Per (mode, variant): the numbers the tables show."""
    rows = {}
    for mode in modes:
        base = med(r["cps"] for r in results if r["mode"] == mode and r["variant"] == "none")
        base_cpu = med(r["cpu_cps"] for r in results if r["mode"] == mode and r["variant"] == "none")
        for v in variants:
            rs = [r for r in results if r["mode"] == mode and r["variant"] == v]
            st = [s for s in stats if s["mode"] == mode and s["variant"] == v and s["bpf_runs"] and s["conns"]]
            cps = [r["cps"] for r in rs]
            row = {"cps_med": med(cps), "cps_min": min(cps), "cps_max": max(cps), "n": len(cps),
                   "loss_pct": 100.0 * (1 - med(cps) / base) if base else float("nan"),
                   "cpu_cps_med": med(r["cpu_cps"] for r in rs)}
            row["loss_cpu_pct"] = 100.0 * (1 - row["cpu_cps_med"] / base_cpu) if base_cpu else float("nan")
            # what the tracer adds to each connection, in generator CPU time
            row["us_per_conn"] = 1e6 * (1 / row["cpu_cps_med"] - 1 / base_cpu) if base_cpu else float("nan")
            if v != "none":
                conns = sum(r["conns"] for r in rs)
                for k in ("produced", "delivered", "lost"):
                    row[k] = sum(r[k] or 0 for r in rs) if rs[0][k] is not None else None
                cpu = sum(r["cpu_s"] for r in rs)
                row["us_per_event"] = 1e6 * cpu / row["delivered"] if row["delivered"] else None
                row["rss_mib"] = mib(max(r["rss_kib"] for r in rs))
                row["events_per_conn"] = row["produced"] / conns if row["produced"] is not None else None
            if st:
                row["ns_per_run"] = med(s["bpf_ns"] / s["bpf_runs"] for s in st)
                row["runs_per_conn"] = med(s["bpf_runs"] / s["conns"] for s in st)
                row["ns_per_conn"] = med(s["bpf_ns"] / s["conns"] for s in st)
                row["stats_rounds"] = [s["bpf_ns"] / s["conns"] for s in st]
                names = sorted({n for s in st for n in s["progs"]})
                row["progs"] = {}
                for n in names:
                    per = [s["progs"].get(n, (0, 0)) + (s["conns"],) for s in st]
                    row["progs"][n] = {
                        "ns_per_conn": med(ns / c for ns, _, c in per),
                        "runs_per_conn": med(cnt / c for _, cnt, c in per),
                        "ns_per_run": med(ns / cnt for ns, cnt, _ in per if cnt) if any(p[1] for p in per) else None,
                    }
            rows[(mode, v)] = row
    return rows


def tracepoint_of(prog):
    """The tracepoint a program of rstwatch or of the floor runs on, by name."""
    for prefix in ("on_", "floor_"):
        if prog.startswith(prefix):
            prog = prog[len(prefix):]
    return {"send_reset_noreason": "send_reset"}.get(prog, prog)


def excess_by_prog(rows, mode):
    """[(rstwatch program, its ns/conn above the floor's on the same tracepoint)],
    largest first, for the mode's target variant."""
    r = rows.get((mode, TARGET_VARIANT[mode]), {})
    fl = {tracepoint_of(n): p for n, p in rows.get((mode, "floor"), {}).get("progs", {}).items()}
    out = []
    for name, p in r.get("progs", {}).items():
        f = fl.get(tracepoint_of(name), {})
        out.append((name, p["ns_per_conn"] - f.get("ns_per_conn", 0.0)))
    return sorted(out, key=lambda x: -x[1])


def machine_facts():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"kernel": platform.release(), "cpu": cpu, "ncpu": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "loadavg": open("/proc/loadavg").read().split()[:3]}


MODE_TITLE = {"rst": "RST churn: connect, accept, client closes with SO_LINGER {1,0}",
              "fin": "FIN churn: connect, accept, server closes first, then the client"}
VARIANT_OPTS = {"text": "default options", "json": "`-j`", "count": "`-c`"}


def verdict(ok, miss):
    return "met" if ok else f"**missed**: {miss}"


def summary_md(rows, modes, rss, sk, recs):
    """The summary table: one row per target, the floor and the peers beside
    rstwatch where they ran the same workload."""
    L = ["## Summary\n",
         "Targets for rstwatch; the floor (empty programs on the same tracepoints) and the peers "
         "(bpftrace, tcpstates) ran the same workload in the same rounds.  Throughput loss is of "
         "the median conn/s against no tracer (in parentheses: of conn per generator CPU-second); "
         "in-kernel time is bpf_stats' run_time_ns summed over the tracer's programs, per connection "
         "(median of the bpf_stats rounds).\n",
         "| workload | floor | rstwatch | bpftrace | tcpstates | target | |",
         "|---|---:|---:|---:|---:|---|---|"]

    def cell(mode, v, key, fmt):
        r = rows.get((mode, v))
        return "-" if not r or r.get(key) is None else fmt(r)

    for mode in ("fin", "rst"):
        if mode not in modes:
            continue
        tv = TARGET_VARIANT[mode]
        name = {"fin": "FIN churn", "rst": "RST churn"}[mode]
        t = rows.get((mode, tv), {})
        fl = rows.get((mode, "floor"), {})
        loss = lambda r: f"{r['loss_pct']:.1f}% ({r['loss_cpu_pct']:.1f}%)"
        lim = MAX_LOSS_PCT[mode]
        res = verdict(t["loss_pct"] <= lim, f"by {t['loss_pct'] - lim:.1f} points") if t else "-"
        L.append(f"| {name}, rstwatch {VARIANT_OPTS[tv]}: throughput loss | {cell(mode, 'floor', 'loss_pct', loss)} | "
                 f"{cell(mode, tv, 'loss_pct', loss)} | {cell(mode, 'bpftrace', 'loss_pct', loss)} | "
                 f"{cell(mode, 'tcpstates', 'loss_pct', loss)} | <= {lim:.0f}% | {res} |")
        nsc = lambda r: f"{r['ns_per_conn']:,.0f}"
        if t.get("ns_per_conn") and fl.get("ns_per_conn"):
            ratio = t["ns_per_conn"] / fl["ns_per_conn"]
            over = t["ns_per_conn"] - MAX_FLOOR_RATIO * fl["ns_per_conn"]
            top = ", ".join(f"`{n}` +{x:,.0f}" for n, x in excess_by_prog(rows, mode)[:3] if x > 0)
            res = verdict(ratio <= MAX_FLOOR_RATIO,
                          f"{ratio:.2f}x, {over:,.0f} ns/conn over; above the floor: {top}")
            rw = f"{t['ns_per_conn']:,.0f} ({ratio:.2f}x)"
        else:
            res, rw = "-", cell(mode, tv, "ns_per_conn", nsc)
        L.append(f"| {name}, rstwatch {VARIANT_OPTS[tv]}: in-kernel ns per connection | "
                 f"{cell(mode, 'floor', 'ns_per_conn', nsc)} | {rw} | {cell(mode, 'bpftrace', 'ns_per_conn', nsc)} | "
                 f"{cell(mode, 'tcpstates', 'ns_per_conn', nsc)} | <= {MAX_FLOOR_RATIO:.0f}x floor | {res} |")
        epc = lambda r: f"{r['events_per_conn']:.3f} (whole host)"
        rec = next((x for x in recs if x["mode"] == mode and x["variant"] == tv and x["produced"] is not None),
                   None)
        if rec:
            rw = f"{rec['produced'] / rec['conns']:.3f} ({rec['produced']:,} in {rec['conns']:,} connections)"
        else:
            rw = cell(mode, tv, "events_per_conn", epc)
        if mode == "fin":
            res = verdict(rec["produced"] == 0, f"{rec['produced']:,} records") if rec else "-"
            target = "0"
        else:
            res, target = "-", "reported"
        L.append(f"| {name}, rstwatch {VARIANT_OPTS[tv]}: records per connection (churn's namespace, `--netns`) | - | "
                 f"{rw} | {cell(mode, 'bpftrace', 'events_per_conn', epc)} | "
                 f"{cell(mode, 'tcpstates', 'events_per_conn', epc)} | {target} | {res} |")
    # memory: default settings, the churn rounds and the RSS check
    text = [rows[k]["rss_mib"] for k in rows if k[1] == "text" and rows[k].get("rss_mib") is not None]
    peak = max(text + ([mib(rss["max_kib"])] if rss else []), default=None)
    peer = lambda v: max((rows[k]["rss_mib"] for k in rows if k[1] == v and rows[k].get("rss_mib")), default=None)
    fmt = lambda x: "-" if x is None else f"{x:.1f}"
    if peak is not None:
        L.append(f"| max RSS MiB, rstwatch default options (churn rounds{', RSS check' if rss else ''}) | "
                 f"{fmt(peer('floor'))} | {peak:.1f} | {fmt(peer('bpftrace'))} | {fmt(peer('tcpstates'))} | "
                 f"<= {MAX_RSS_MIB:.0f} MiB | {verdict(peak <= MAX_RSS_MIB, f'by {peak - MAX_RSS_MIB:.1f} MiB')} |")
    if rss and len(rss["points"]) >= 2:
        a, b = rss["points"][0], rss["points"][-1]
        grow = b["hwm_kib"] - a["hwm_kib"]
        ok = grow <= RSS_FLAT_KIB and rss["alive"]
        L.append(f"| RSS (peak so far) after {a['conns']:,} and after {b['conns']:,} RST-churn connections, "
                 f"default options | - | {mib(a['hwm_kib']):.1f} -> {mib(b['hwm_kib']):.1f} | - | - | "
                 f"flat (+{RSS_FLAT_KIB // 1024} MiB at most) | {verdict(ok, f'+{mib(grow):.1f} MiB')} |")
    if sk:
        ok_lost = sk["lost"] == 0 and sk["misses"] == 0
        ok_all = sk["linger0"] == sk["aborted"]
        grow = sk["rss_peak"] - sk["rss_first"]
        ok_rss = grow <= RSS_FLAT_KIB
        misses = []
        if sk["lost"]:
            misses.append(f"{fmt_int(sk['lost'])} records lost")
        if sk["misses"]:
            misses.append(f"{sk['misses']:,} program runs skipped by the kernel (recursion)")
        if not ok_all:
            misses.append(f"{sk['aborted'] - sk['linger0']:+,} aborts not reported")
        if not ok_rss:
            misses.append(f"RSS +{mib(grow):.1f} MiB")
        L.append(f"| soak: {sk['seconds'] / 60:.1f} min of FIN churn at {sk['cps']:,.0f} conn/s, 1 in {sk['every']} "
                 f"aborted, `rstwatch -j` | - | {sk['aborted']:,} aborted, {sk['linger0']:,} linger0 verdicts; "
                 f"{fmt_int(sk['lost'])} lost; RSS {mib(sk['rss_first']):.1f} -> {mib(sk['rss_peak']):.1f} MiB | - | - | "
                 f"0 lost, every abort reported, RSS flat | {verdict(ok_lost and ok_all and ok_rss, '; '.join(misses))} |")
    return "\n".join(L) + "\n"


def progs_md(rows, modes):
    """Per program: where each mode's target variant spends its in-kernel time,
    against the floor's empty program on the same tracepoint."""
    L = []
    for mode in modes:
        tv = TARGET_VARIANT[mode]
        r = rows.get((mode, tv), {})
        if not r.get("progs"):
            continue
        fl = {tracepoint_of(n): p for n, p in rows.get((mode, "floor"), {}).get("progs", {}).items()}
        L.append(f"### {MODE_TITLE[mode].split(':')[0]}, `rstwatch` {VARIANT_OPTS[tv]}\n")
        L.append("| program | runs/conn | ns/run | ns/conn | floor ns/run | floor ns/conn | above the floor ns/conn |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        tot = [0.0, 0.0, 0.0]
        for name, p in sorted(r["progs"].items(), key=lambda x: -x[1]["ns_per_conn"]):
            if p["runs_per_conn"] < 0.005:
                continue    # start-up programs, and events of other traffic on the host
            f = fl.get(tracepoint_of(name))
            fns = f["ns_per_conn"] if f else 0.0
            tot = [tot[0] + p["runs_per_conn"], tot[1] + p["ns_per_conn"], tot[2] + fns]
            L.append(f"| `{name}` | {p['runs_per_conn']:.2f} | {opt(p, 'ns_per_run', '{:.0f}')} | "
                     f"{p['ns_per_conn']:,.0f} | {opt(f or {}, 'ns_per_run', '{:.0f}')} | "
                     f"{'-' if not f else f'{fns:,.0f}'} | {p['ns_per_conn'] - fns:,.0f} |")
        L.append(f"| all | {tot[0]:.2f} | {tot[1] / tot[0] if tot[0] else 0:.0f} | {tot[1]:,.0f} | - | "
                 f"{tot[2]:,.0f} | {tot[1] - tot[2]:,.0f} |\n")
    if L:
        L.insert(0, "## Where the in-kernel time goes\n\nbpf_stats per program (medians of the bpf_stats "
                 "rounds): the tracepoint's runs per connection, time per run and per connection, "
                 "and what the floor's empty program on the same tracepoint costs.  The timer "
                 "tracepoints fire for every timer of the connection (retransmit, delayed ACK, "
                 "keepalive...), not only the time-wait one.  A sum of medians, the `all` row can "
                 "differ a little from the median total in the summary.\n")
    return "\n".join(L) + ("\n" if L else "")


def write_md(path, facts, args, rows, modes, variants, fl, rss, sk, recs, foreign, took, cmdline, ld):
    L = []
    L.append("# rstwatch benchmark\n")
    L.append("Written by `tests/bench/run.py`; rerun everything and rewrite this file with:\n")
    L.append(f"```\n{cmdline}\n```\n")
    L.append(f"- date: {facts['date']}; took {took / 60:.1f} min")
    L.append(f"- kernel: {facts['kernel']}")
    L.append(f"- CPU: {facts['cpu']}, {facts['ncpu']} CPUs; generator on CPU {GEN_CPU}, tracer on CPU {TRACER_CPU}")
    L.append(f"- load average before the run: {' '.join(facts['loadavg'])}; after: {' '.join(facts['loadavg_after'])}"
             f"; other tracing BPF programs loaded at the start: {foreign[0]}, at the end: {foreign[1]}")
    L.append(f"- {args.reps} interleaved rounds of {args.seconds:g} s per variant and mode, "
             f"plus {args.stats_reps} with `kernel.bpf_stats_enabled=1` for the in-kernel cost\n")
    L.append(summary_md(rows, modes, rss, sk, recs))
    L.append(progs_md(rows, modes))
    L.append("## Every variant\n")
    L.append("Columns: connections/s over the rounds (median, min, max); throughput loss of the median "
             "against no tracer; events the tracer's programs produced, delivered to its userspace and "
             "lost, summed over the rounds (bpftrace: its `@produced` count, printed lines and `Lost N "
             "events`; tcpstates: printed lines and `lost N events`, so produced = delivered + lost), and "
             "produced per connection (rstwatch traces the whole host: records of other traffic count "
             "too); the tracer's user+sys CPU per delivered event (its process, pinned to CPU 1); "
             "in-kernel time per program run and per connection (bpf_stats rounds: run_time_ns / "
             "run_cnt summed over the tracer's programs, medians); max RSS.  conn/CPU-s divides the "
             "connections by the generator's own user+sys CPU time (which includes the softirq work of "
             "loopback TCP done in its context): on a shared machine it is the steadier measure, as time "
             "other tasks take from CPU 0 lowers conn/s but not conn/CPU-s; `added us/conn` is the "
             "generator CPU time per connection against no tracer.\n")
    for mode in modes:
        L.append(f"### {MODE_TITLE[mode]}\n")
        L.append("| variant | conn/s median | min | max | loss | conn/CPU-s | loss (CPU) | added us/conn | "
                 "produced | delivered | lost | produced/conn | user+sys us/event | BPF ns/run | BPF runs/conn | "
                 "BPF ns/conn | max RSS MiB |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for v in variants:
            r = rows[(mode, v)]
            L.append("| " + " | ".join([
                LABELS[v], f"{r['cps_med']:,.0f}", f"{r['cps_min']:,.0f}", f"{r['cps_max']:,.0f}",
                "-" if v == "none" else f"{r['loss_pct']:.1f}%",
                f"{r['cpu_cps_med']:,.0f}", "-" if v == "none" else f"{r['loss_cpu_pct']:.1f}%",
                "-" if v == "none" else f"{r['us_per_conn']:.2f}",
                fmt_int(r.get("produced")), fmt_int(r.get("delivered")), fmt_int(r.get("lost")),
                opt(r, "events_per_conn", "{:.3f}"),
                opt(r, "us_per_event", "{:.2f}"), opt(r, "ns_per_run", "{:.0f}"),
                opt(r, "runs_per_conn", "{:.1f}"), opt(r, "ns_per_conn", "{:,.0f}"),
                opt(r, "rss_mib", "{:.1f}")]) + " |")
        L.append("")
    if fl:
        ev_s = fl["produced"] / fl["seconds"] if fl["produced"] else 0
        ok = (fl["delivered"] + fl["lost"] == fl["produced"])
        L.append(f"## Flood: {fl['seconds']:g} s of raw SYNs to a closed port (CPU 0) plus RST churn (CPU 1)\n")
        L.append("`rstwatch -j > /dev/null`, not pinned.\n")
        L.append("| SYNs/s | RST conns/s | events/s | produced | delivered | lost | delivered + lost = produced | "
                 "rstwatch still running | user+sys us/event | max RSS MiB |")
        L.append("|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")
        us = 1e6 * fl["cpu_s"] / fl["delivered"] if fl["delivered"] else float("nan")
        L.append(f"| {fl['syn_pps']:,.0f} | {fl['rst_cps']:,.0f} | {ev_s:,.0f} | {fmt_int(fl['produced'])} | "
                 f"{fmt_int(fl['delivered'])} | {fmt_int(fl['lost'])} | {'yes' if ok else 'NO'} | "
                 f"{'yes' if fl['alive'] else 'NO'} | {us:.2f} | {mib(fl['rss_kib']):.1f} |\n")
    if rss:
        L.append("## RSS against connections seen\n")
        L.append(f"One `rstwatch > /dev/null` (default options) through RST churn, "
                 f"{rss['points'][-1]['conns']:,} connections in {rss['seconds']:.0f} s; its resident memory "
                 f"now and at its peak so far (VmRSS, VmHWM) when the count reaches each checkpoint.  "
                 f"Records: {fmt_int(rss['produced'])} produced, {fmt_int(rss['delivered'])} delivered, "
                 f"{fmt_int(rss['lost'])} lost; max RSS at exit {mib(rss['max_kib']):.1f} MiB.\n")
        L.append("| connections | RSS MiB | peak so far MiB | conn/s of the stretch |")
        L.append("|---:|---:|---:|---:|")
        for p in rss["points"]:
            L.append(f"| {p['conns']:,} | {mib(p['rss_kib']):.1f} | {mib(p['hwm_kib']):.1f} | {p['cps']:,.0f} |")
        L.append("")
    if sk:
        L.append(f"## Soak: {sk['seconds']:.0f} s of FIN churn with 1 connection in {sk['every']} aborted\n")
        L.append(f"`churn -m fin -a {sk['every']}` (CPU 0) as fast as it goes: one connection in {sk['every']} "
                 "closed by the client with SO_LINGER {1,0}, churn counting them; `rstwatch -j` (CPU 1) "
                 "read by the driver, which counts linger0 and peer_reset verdicts in churn's network "
                 f"namespace; rstwatch's RSS sampled {sk['samples']} times, judged from {sk['warm']:.0f} s on "
                 "(its tables are touched as they fill).  Recursion misses: program runs the kernel "
                 "skipped, lost before any ring buffer.\n")
        L.append("| connections | conn/s | aborted (churn) | linger0 verdicts | peer_reset verdicts | records produced | "
                 "lost | recursion misses | RSS MiB at warm-up | peak after | at the end | max RSS MiB |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        L.append(f"| {sk['conns']:,} | {sk['cps']:,.0f} | {sk['aborted']:,} | {sk['linger0']:,} | {sk['peer_reset']:,} | "
                 f"{fmt_int(sk['produced'])} | {fmt_int(sk['lost'])} | {sk['misses']:,} | {mib(sk['rss_first']):.1f} | "
                 f"{mib(sk['rss_peak']):.1f} | {mib(sk['rss_last']):.1f} | {mib(sk['max_kib']):.1f} |\n")
    if ld:
        L.append(load_md(ld))
    notes = os.path.join(ROOT, "tests", "bench", "notes.md")
    if os.path.exists(notes):
        L.append(open(notes).read())
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 round of 2 s, short flood, RSS check to 100k, 20 s soak, 100k mixed")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--stats-reps", type=int, default=3, help="bpf_stats rounds per mode")
    ap.add_argument("--modes", default="rst,fin")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--flood-seconds", type=float, default=30)
    ap.add_argument("--rss-counts", default="10000,100000,1000000,10000000",
                    help="connections seen at which the RSS check reads rstwatch's memory")
    ap.add_argument("--no-flood", action="store_true")
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--soak-seconds", type=float, default=300)
    ap.add_argument("--soak-abort-every", type=int, default=SOAK_ABORT_EVERY)
    ap.add_argument("--no-soak", action="store_true")
    ap.add_argument("--load-conns", type=int, default=1000000)
    ap.add_argument("--load-workers", type=int, default=LOAD_WORKERS)
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--load-only", action="store_true",
                    help="only the mixed load; its section replaces the one in --out")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = ap.parse_args()
    if args.quick:  # what is not given explicitly
        quick = {"reps": 1, "seconds": 2, "stats_reps": 1, "flood_seconds": 5, "rss_counts": "10000,100000",
                 "soak_seconds": 20, "load_conns": 100000}
        for k, v in quick.items():
            if getattr(args, k) == ap.get_default(k):
                setattr(args, k, v)
    modes = args.modes.split(",")
    variants = args.variants.split(",")
    if "none" not in variants:
        variants.insert(0, "none")
    rss_counts = sorted(int(n) for n in args.rss_counts.split(","))

    if os.geteuid() != 0:
        die("needs root (BPF, network namespaces, raw sockets): run as root or with sudo")
    if args.load_only:
        if not os.access(MIXLOAD, os.X_OK):
            die(f"{MIXLOAD} missing: run `make bench-bin` (or `make bench`)")
        ld = mixed_load(args.load_conns, args.load_workers)
        splice_load_md(args.out, load_md(ld))
        print(f"bench: wrote the mixed load's section of {args.out}")
        return
    for path in (CHURN, FLOOR, RSTWATCH, MIXLOAD):
        if not os.access(path, os.X_OK):
            die(f"{path} missing: run `make bench-bin` (or `make bench`)")
    for tool, v in (("bpftrace", "bpftrace"), ("tcpstates", "tcpstates")):
        if v in variants and subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            die(f"{tool} not installed: run `make bench-deps` (apt-get install bpftrace libbpf-tools)")
    if os.cpu_count() < 2:
        die("needs 2 CPUs: the generator on CPU 0, the tracer on CPU 1")
    if "bpftrace" in variants or "tcpstates" in variants:
        ensure_tracefs()

    passed, skip = [], False
    for a in sys.argv[1:]:  # the command to rerun: everything but where the file went
        if not skip and not a.startswith("--out"):
            passed.append(a)
        skip = a == "--out"
    cmdline = "make bench" + (f" BENCH_ARGS='{' '.join(passed)}'" if passed else "")
    facts = machine_facts()
    foreign0 = foreign_tracers()
    t0 = time.time()
    set_bpf_stats(False)
    results, stats, recs = [], [], []
    with tempfile.TemporaryDirectory(prefix="rstwatch-bench-", dir="/dev/shm") as tmp:
        for mode in modes:
            for rep in range(args.reps):
                k = rep % len(variants)
                for v in variants[k:] + variants[:k]:
                    r = measure(v, mode, args.seconds, tmp)
                    results.append(r)
                    print(f"{mode} round {rep + 1}/{args.reps} {v:10} {r['cps']:>9,.0f} conn/s "
                          f"cpu {r['cpu_s']:.2f}s produced {r['produced']} delivered {r['delivered']} "
                          f"lost {r['lost']}", flush=True)
            traced = [v for v in variants if v != "none"]
            set_bpf_stats(True)
            try:
                for rep in range(args.stats_reps):
                    k = rep % len(traced)
                    for v in traced[k:] + traced[:k]:
                        s = measure(v, mode, args.seconds, tmp, stats=True)
                        stats.append(s)
                        print(f"{mode} bpf_stats {rep + 1}/{args.stats_reps} {v:10} "
                              f"{s['bpf_ns'] / max(s['bpf_runs'], 1):.0f} ns/run "
                              f"{s['bpf_runs'] / max(s['conns'], 1):.1f} runs/conn "
                              f"{s['bpf_ns'] / max(s['conns'], 1):,.0f} ns/conn", flush=True)
            finally:
                set_bpf_stats(False)
            if TARGET_VARIANT[mode] in variants:
                recs.append(records_round(mode, TARGET_VARIANT[mode], args.seconds, tmp))
                print(f"{mode} records: {recs[-1]}", flush=True)
        fl = None if args.no_flood else flood(args.flood_seconds, tmp)
        if fl:
            print(f"flood: {fl}", flush=True)
        rss = None if args.no_rss else rss_check(rss_counts, tmp)
        sk = None if args.no_soak else soak(args.soak_seconds, args.soak_abort_every, tmp)
        if sk:
            print(f"soak: {sk}", flush=True)
    ld = None if args.no_load else mixed_load(args.load_conns, args.load_workers)
    facts["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    rows = summarize(results, stats, modes, variants)
    write_md(args.out, facts, args, rows, modes, variants, fl, rss, sk, recs, (foreign0, foreign_tracers()),
             time.time() - t0, cmdline, ld)
    print(summary_md(rows, modes, rss, sk, recs))
    print(f"bench: wrote {args.out}")


if __name__ == "__main__":
    main()
