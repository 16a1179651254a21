#!/usr/bin/env python3
"""rstwatch's benchmark: what tracing TCP aborts costs, side by side with the
floor and the peers, in one run on one machine.  `make bench` runs it (root).

usage: python3 tests/bench/run.py [--quick] [--reps N] [--seconds S]
                                  [--modes rst,fin] [--variants a,b,...]
                                  [--no-flood] [--no-rss] [--out FILE]

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

After the rounds, one more round per mode with kernel.bpf_stats_enabled=1
measures each tracer's in-kernel cost per program run (run_time_ns / run_cnt
from the fdinfo of the tracer's own program fds); stats stay off during the
throughput rounds because they add their own cost.  Then the flood (two
generators: raw SYNs to a closed port on CPU 0 and RST churn on CPU 1, rstwatch
-j unpinned) and the RSS check (10k vs 1M connections).  Writes BENCHMARKS.md.
"""
import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, ".output", "bench")
CHURN = os.path.join(OUT, "churn")
FLOOR = os.path.join(OUT, "floor")
RSTWATCH = os.path.join(ROOT, "rstwatch")
BT_SCRIPT = os.path.join(ROOT, "tests", "bench", "rstwatch.bt")
GEN_CPU, TRACER_CPU = 0, 1
TICK = os.sysconf("SC_CLK_TCK")

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


def run_churn(mode, seconds=None, count=None, cpu=GEN_CPU):
    cmd = [CHURN, "-m", mode, "-C", str(cpu)]
    cmd += ["-n", str(count)] if count else ["-t", str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        die(f"churn failed: {out.stderr.strip()}")
    return dict(kv.split("=") for kv in out.stdout.split())


class Tracer:
    """One tracer process, pinned, output to /dev/null or a tmpfs file."""

    def __init__(self, variant, tmp, extra=(), cpu=TRACER_CPU):
        self.variant = variant
        self.proc = None
        self.outpath = os.path.join(tmp, f"{variant}.out")
        self.errpath = os.path.join(tmp, f"{variant}.err")
        if variant == "none":
            return
        if variant == "floor":
            cmd, ready, where = [FLOOR], "floor: attached", "err"
            out = subprocess.DEVNULL
        elif variant in RSTWATCH_VARIANTS:
            cmd = [RSTWATCH, "-v", *RSTWATCH_VARIANTS[variant], *extra]
            ready, where, out = "tracing TCP aborts", "err", subprocess.DEVNULL
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
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=err,
                                     preexec_fn=pin(cpu) if cpu is not None else None)
        if out is not subprocess.DEVNULL:
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
        ns = sum(v[0] - before.get(k, (0, 0))[0] for k, v in after.items())
        cnt = sum(v[1] - before.get(k, (0, 0))[1] for k, v in after.items())
        r.update(bpf_ns=ns, bpf_runs=cnt)
    return r


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


def rss_growth(counts, tmp):
    res = []
    for n in counts:
        t = Tracer("json", tmp)
        run_churn("rst", count=n)
        time.sleep(0.3)
        rss = t.stop()
        produced, delivered, lost = t.counts()
        t.cleanup()
        res.append({"conns": n, "rss_kib": rss, "delivered": delivered, "lost": lost})
    return res


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def opt(row, key, fmt):
    return "-" if row.get(key) is None else fmt.format(row[key])


def fmt_int(x):
    return "-" if x is None else f"{x:,}"


def summarize(results, stats, modes, variants):
    """Per (mode, variant): the numbers the table shows."""
    rows = {}
    for mode in modes:
        base = med([r["cps"] for r in results if r["mode"] == mode and r["variant"] == "none"])
        base_cpu = med([r["cpu_cps"] for r in results if r["mode"] == mode and r["variant"] == "none"])
        for v in variants:
            rs = [r for r in results if r["mode"] == mode and r["variant"] == v]
            st = [s for s in stats if s["mode"] == mode and s["variant"] == v]
            cps = [r["cps"] for r in rs]
            row = {"cps_med": med(cps), "cps_min": min(cps), "cps_max": max(cps), "n": len(cps),
                   "loss_pct": 100.0 * (1 - med(cps) / base) if base else float("nan"),
                   "cpu_cps_med": med([r["cpu_cps"] for r in rs])}
            row["loss_cpu_pct"] = 100.0 * (1 - row["cpu_cps_med"] / base_cpu) if base_cpu else float("nan")
            # what the tracer adds to each connection, in generator CPU time
            row["us_per_conn"] = 1e6 * (1 / row["cpu_cps_med"] - 1 / base_cpu) if base_cpu else float("nan")
            if v != "none":
                row["produced"] = sum(r["produced"] or 0 for r in rs) if rs[0]["produced"] is not None else None
                row["delivered"] = sum(r["delivered"] or 0 for r in rs) if rs[0]["delivered"] is not None else None
                row["lost"] = sum(r["lost"] or 0 for r in rs) if rs[0]["lost"] is not None else None
                delivered = row["delivered"]
                cpu = sum(r["cpu_s"] for r in rs)
                row["us_per_event"] = 1e6 * cpu / delivered if delivered else None
                row["rss_mib"] = max(r["rss_kib"] for r in rs) / 1024
                row["events_per_conn"] = (row["produced"] / sum(r["conns"] for r in rs)
                                          if row["produced"] else None)
            if st and st[0].get("bpf_runs"):
                s = st[0]
                row["ns_per_run"] = s["bpf_ns"] / s["bpf_runs"]
                row["runs_per_conn"] = s["bpf_runs"] / s["conns"]
                row["ns_per_conn"] = s["bpf_ns"] / s["conns"]
            rows[(mode, v)] = row
    return rows


def machine_facts():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"kernel": platform.release(), "cpu": cpu, "ncpu": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "loadavg": open("/proc/loadavg").read().split()[:3]}


def write_md(path, facts, args, rows, modes, variants, fl, rss, foreign, took, cmdline):
    L = []
    L.append("# rstwatch benchmark\n")
    L.append("Written by `tests/bench/run.py`; rerun everything and rewrite this file with:\n")
    L.append(f"```\n{cmdline}\n```\n")
    L.append(f"- date: {facts['date']}; took {took / 60:.1f} min")
    L.append(f"- kernel: {facts['kernel']}")
    L.append(f"- CPU: {facts['cpu']}, {facts['ncpu']} CPUs; generator on CPU {GEN_CPU}, tracer on CPU {TRACER_CPU}")
    L.append(f"- load average before the run: {' '.join(facts['loadavg'])}; after: {' '.join(facts['loadavg_after'])}"
             f"; other tracing BPF programs loaded at the start: {foreign[0]}, at the end: {foreign[1]}")
    L.append(f"- {args.reps} interleaved rounds of {args.seconds} s per variant and mode, "
             f"plus one round with `kernel.bpf_stats_enabled=1` for the in-kernel cost\n")
    L.append("Columns: connections/s over the rounds (median, min, max); throughput loss of the median "
             "against no tracer; events the tracer's programs produced, delivered to its userspace and "
             "lost, summed over the rounds (bpftrace: its `@produced` count, printed lines and `Lost N "
             "events`; tcpstates: printed lines and `lost N events`, so produced = delivered + lost); the "
             "tracer's user+sys CPU per delivered event (its process, pinned to CPU 1); in-kernel time per "
             "program run and per connection (bpf_stats round: run_time_ns / run_cnt summed over the "
             "tracer's programs); max RSS.  conn/CPU-s divides the connections by the generator's own "
             "user+sys CPU time (which includes the softirq work of loopback TCP done in its context): "
             "on a shared machine it is the steadier measure, as time other tasks take from CPU 0 lowers "
             "conn/s but not conn/CPU-s; `added us/conn` is the generator CPU time per connection "
             "against no tracer.\n")
    for mode in modes:
        what = {"rst": "RST churn: connect, accept, client closes with SO_LINGER {1,0}",
                "fin": "FIN churn: connect, accept, server closes first, then the client"}[mode]
        L.append(f"## {what}\n")
        L.append("| variant | conn/s median | min | max | loss | conn/CPU-s | loss (CPU) | added us/conn | "
                 "produced | delivered | lost | user+sys us/event | BPF ns/run | BPF runs/conn | BPF ns/conn | "
                 "max RSS MiB |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for v in variants:
            r = rows[(mode, v)]
            L.append("| " + " | ".join([
                LABELS[v], f"{r['cps_med']:,.0f}", f"{r['cps_min']:,.0f}", f"{r['cps_max']:,.0f}",
                "-" if v == "none" else f"{r['loss_pct']:.1f}%",
                f"{r['cpu_cps_med']:,.0f}", "-" if v == "none" else f"{r['loss_cpu_pct']:.1f}%",
                "-" if v == "none" else f"{r['us_per_conn']:.2f}",
                fmt_int(r.get("produced")), fmt_int(r.get("delivered")), fmt_int(r.get("lost")),
                opt(r, "us_per_event", "{:.2f}"), opt(r, "ns_per_run", "{:.0f}"),
                opt(r, "runs_per_conn", "{:.1f}"), opt(r, "ns_per_conn", "{:,.0f}"),
                opt(r, "rss_mib", "{:.1f}")]) + " |")
        L.append("")
    if fl:
        ev_s = fl["produced"] / fl["seconds"] if fl["produced"] else 0
        ok = (fl["delivered"] + fl["lost"] == fl["produced"])
        L.append(f"## Flood: {fl['seconds']} s of raw SYNs to a closed port (CPU 0) plus RST churn (CPU 1)\n")
        L.append("`rstwatch -j > /dev/null`, not pinned.\n")
        L.append("| SYNs/s | RST conns/s | events/s | produced | delivered | lost | delivered + lost = produced | "
                 "rstwatch still running | user+sys us/event | max RSS MiB |")
        L.append("|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")
        us = 1e6 * fl["cpu_s"] / fl["delivered"] if fl["delivered"] else float("nan")
        L.append(f"| {fl['syn_pps']:,.0f} | {fl['rst_cps']:,.0f} | {ev_s:,.0f} | {fmt_int(fl['produced'])} | "
                 f"{fmt_int(fl['delivered'])} | {fmt_int(fl['lost'])} | {'yes' if ok else 'NO'} | "
                 f"{'yes' if fl['alive'] else 'NO'} | {us:.2f} | {fl['rss_kib'] / 1024:.1f} |\n")
    if rss:
        L.append("## RSS against connections seen (`rstwatch -j`, RST churn)\n")
        L.append("| connections | max RSS MiB | delivered | lost |")
        L.append("|---:|---:|---:|---:|")
        for r in rss:
            L.append(f"| {r['conns']:,} | {r['rss_kib'] / 1024:.1f} | {fmt_int(r['delivered'])} | {fmt_int(r['lost'])} |")
        L.append("")
    L.append(targets_md(rows, modes, fl, rss))
    notes = os.path.join(ROOT, "tests", "bench", "notes.md")
    if os.path.exists(notes):
        L.append(open(notes).read())
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def targets_md(rows, modes, fl, rss):
    L = ["## Targets (RST churn)\n", "| target | measured | met |", "|---|---|---|"]
    if "rst" not in modes:
        return "\n".join(L) + "\n"
    j = rows.get(("rst", "json"), {})
    floor = rows.get(("rst", "floor"), {})
    if j:
        L.append(f"| throughput loss with `-j` <= 10% | {j['loss_pct']:.1f}% of conn/s; {j['loss_cpu_pct']:.1f}% of "
                 f"conn per generator CPU-second | {'yes' if j['loss_pct'] <= 10 else 'no'} "
                 f"({'yes' if j['loss_cpu_pct'] <= 10 else 'no'} per CPU-second) |")
        L.append(f"| zero lost events at the generator's maximum rate | {fmt_int(j.get('lost'))} lost | "
                 f"{'yes' if j.get('lost') == 0 else 'no'} |")
    if j.get("ns_per_run") and floor.get("ns_per_run"):
        ratio = j["ns_per_run"] / floor["ns_per_run"]
        L.append(f"| in-kernel cost per event <= 2x the floor | {j['ns_per_run']:.0f} ns vs {floor['ns_per_run']:.0f} "
                 f"ns per program run: {ratio:.1f}x | {'yes' if ratio <= 2 else 'no'} |")
    if j.get("us_per_event") is not None:
        L.append(f"| userspace <= 1 us per event including JSON | {j['us_per_event']:.2f} us | "
                 f"{'yes' if j['us_per_event'] <= 1 else 'no'} |")
    if len(rss) >= 2:
        a, b = rss[0], rss[-1]
        L.append(f"| RSS bounded | {a['rss_kib'] / 1024:.1f} MiB after {a['conns']:,}, {b['rss_kib'] / 1024:.1f} MiB "
                 f"after {b['conns']:,} | {'yes' if b['rss_kib'] <= a['rss_kib'] * 1.05 + 512 else 'no'} |")
    if fl:
        ok = fl["delivered"] + fl["lost"] == fl["produced"] and fl["alive"]
        L.append(f"| flood: delivered + lost = produced, still running | {fmt_int(fl['delivered'])} + "
                 f"{fmt_int(fl['lost'])} vs {fmt_int(fl['produced'])} | {'yes' if ok else 'no'} |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s, short flood and RSS check")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--modes", default="rst,fin")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--flood-seconds", type=float, default=30)
    ap.add_argument("--rss-counts", default="10000,1000000")
    ap.add_argument("--no-flood", action="store_true")
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = ap.parse_args()
    if args.quick:
        args.reps, args.seconds, args.flood_seconds, args.rss_counts = 1, 2, 5, "10000,100000"
    modes = args.modes.split(",")
    variants = args.variants.split(",")
    if "none" not in variants:
        variants.insert(0, "none")

    if os.geteuid() != 0:
        die("needs root (BPF, network namespaces, raw sockets): run as root or with sudo")
    for path in (CHURN, FLOOR, RSTWATCH):
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
    results, stats = [], []
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
            set_bpf_stats(True)
            try:
                for v in variants:
                    if v == "none":
                        continue
                    s = measure(v, mode, args.seconds, tmp, stats=True)
                    stats.append(s)
                    print(f"{mode} bpf_stats {v:10} {s['bpf_ns'] / max(s['bpf_runs'], 1):.0f} ns/run "
                          f"{s['bpf_runs'] / max(s['conns'], 1):.1f} runs/conn", flush=True)
            finally:
                set_bpf_stats(False)
        fl = None if args.no_flood else flood(args.flood_seconds, tmp)
        if fl:
            print(f"flood: {fl}", flush=True)
        rss = [] if args.no_rss else rss_growth([int(n) for n in args.rss_counts.split(",")], tmp)
        for r in rss:
            print(f"rss: {r}", flush=True)
    facts["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    rows = summarize(results, stats, modes, variants)
    write_md(args.out, facts, args, rows, modes, variants, fl, rss, (foreign0, foreign_tracers()),
             time.time() - t0, cmdline)
    print(f"bench: wrote {args.out}")


if __name__ == "__main__":
    main()
