"""Scenarios for containers, pods and filters: each registered through
SCENARIOS at the bottom, run by run.py with a fresh Case `c` (A = client,
B = server 'rw_srv').

containers: processes in cgroups named as containerd, CRI-O, Docker and
Podman name them under both cgroup drivers (made in a subtree of this
test's own in cgroup2, some before rstwatch starts, some after), with a
fake kubelet pod log directory (--pods-dir, one pod's directory made after
the start), each abort a connection; the JSON keys, the text line, the
per-owner metrics labels, a live --cgroup instance and a replay with
--cgroup are asserted.
"""
import json
import os
import re
import secrets
import subprocess
import urllib.request
import uuid

from verdicts import Failure, across_instances, contract_problems

# Joins the cgroup argv[1] (a directory), connects to argv[2]:argv[3] and
# closes with SO_LINGER {1, 0}: a linger0 verdict owned by this process.
# Prints its pid.  (nsenter, not ip netns exec: that remounts /sys, hiding
# the cgroup tree.)
JOIN_AND_ABORT = r"""
import os, socket, struct, sys
with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print(os.getpid(), flush=True)
"""


def cgroup2_root():
    for line in open("/proc/self/mounts"):
        f = line.split()
        if f[2] == "cgroup2":
            return f[1]
    raise Failure("no cgroup2 mount in /proc/self/mounts")


class Layout:
    """One container's cgroup as a runtime names it, and what rstwatch must
    make of it."""

    def __init__(self, name, parts, runtime, cid, uid=None, pod=None, early=True):
        self.name, self.parts, self.runtime, self.cid, self.uid = name, parts, runtime, cid, uid
        self.pod = pod            # (namespace, name) in --pods-dir, or None
        self.early = early        # made before rstwatch starts


def layouts():
    ids = [secrets.token_hex(32) for _ in range(8)]
    uids = [str(uuid.uuid4()) for _ in range(4)]
    us = [u.replace("-", "_") for u in uids]
    return [
        Layout("containerd/systemd", ["kubepods.slice", "kubepods-burstable.slice",
                                      f"kubepods-burstable-pod{us[0]}.slice",
                                      f"cri-containerd-{ids[0]}.scope"],
               "containerd", ids[0], uids[0], ("shop", "web-0")),
        Layout("cri-o/systemd", ["kubepods.slice", "kubepods-besteffort.slice",
                                 f"kubepods-besteffort-pod{us[1]}.slice", f"crio-{ids[1]}.scope"],
               "cri-o", ids[1], uids[1], ("kube-system", "dns-7d4b9c-x2x9q"), early=False),
        Layout("cri-o/cgroupfs", ["kubepods", "burstable", f"pod{uids[2]}", f"crio-{ids[2]}"],
               "cri-o", ids[2], uids[2], None),
        Layout("containerd/cgroupfs", ["kubepods", f"pod{uids[3]}", ids[3]],
               None, ids[3], uids[3], ("default", "db-0"), early=False),
        Layout("docker/systemd", ["system.slice", f"docker-{ids[4]}.scope"], "docker", ids[4]),
        Layout("docker/cgroupfs", ["docker", ids[5]], "docker", ids[5], early=False),
        Layout("podman/systemd", ["machine.slice", f"libpod-{ids[6]}.scope", "container"],
               "podman", ids[6]),
        Layout("podman/cgroupfs", ["libpod_parent", f"libpod-{ids[7]}"], "podman", ids[7],
               early=False),
    ]


class Tree:
    """This test's own subtree of cgroup2, and its fake pod log directory."""

    def __init__(self, c):
        self.root = cgroup2_root()
        self.base = os.path.join(self.root, f"rstwatch-e2e-{os.getpid()}-{c.n}")
        self.pods = os.path.join(c.scratch(), "pods")
        self.made = []
        self.layouts = layouts()
        os.chmod(c.scratch(), 0o1777)    # a /tmp: rstwatch may run as nobody (--caps)
        os.makedirs(self.pods)
        os.chmod(self.pods, 0o755)

    def path(self, lay):
        return os.path.join(self.base, *lay.parts)

    def cgroup_field(self, lay):
        """What the cgroup key holds: the path below the mount, 127 bytes."""
        return self.path(lay)[len(self.root):][:127]

    def make(self, early):
        for lay in self.layouts:
            if lay.early != early:
                continue
            d = self.base
            for part in [None] + lay.parts:
                d = d if part is None else os.path.join(d, part)
                if not os.path.isdir(d):
                    os.mkdir(d)
                    self.made.append(d)
            if lay.pod:
                os.mkdir(os.path.join(self.pods, f"{lay.pod[0]}_{lay.pod[1]}_{lay.uid}"))

    def remove(self):
        for d in reversed(self.made):
            try:
                os.rmdir(d)
            except OSError:
                pass


def containers_args(c):
    """Before the main instance starts: half the cgroups and pods exist."""
    c.tree = Tree(c)
    c.tree.make(early=True)
    return ["--pods-dir", c.tree.pods]


def containers(c):
    """Eight processes, each in a container's cgroup as one runtime under one
    cgroup driver names it, abort a connection (linger 0) to a server in B.
    Their linger0 verdicts carry the container id, runtime and pod UID read
    from the cgroup names (the paths are cut at 127 bytes, the ids are not),
    and the pod's namespace and name from --pods-dir where it has the pod,
    including a cgroup and a pod directory made after rstwatch started; the
    server's peer_reset has none.  The text line and the metrics labels say
    the same.  A live --cgroup instance on the kubepods.slice subtree sees
    only the two systemd-driver pods' aborts, and so does a replay of the
    unfiltered trace with the same --cgroup."""
    tree = c.tree
    try:
        _containers(c, tree)
    finally:
        tree.remove()


containers.tracer_args = containers_args
containers.fixture = False


def _containers(c, tree):
    trace = os.path.join(c.scratch(), "all.rwt")
    kube = os.path.join(tree.base, "kubepods.slice")[len(tree.root):]
    port = str(c.port)
    text = c.extra(["--port", port, "--pods-dir", tree.pods], json=False)
    rec = c.extra(["--port", port, "--pods-dir", tree.pods, "-w", trace])
    scoped = c.extra(["--cgroup", kube, "--pods-dir", tree.pods])
    metrics = c.extra(["--port", port, "--pods-dir", tree.pods, "--metrics", "127.0.0.1:0",
                       "--metrics-labels", "container,pod,namespace", "-q"], json=False)
    url = next((m.group(1) for l in metrics.stderr
                for m in [re.search(r"metrics on (http://\S+)", l)] if m), None)
    if url is None:
        raise Failure("the --metrics instance did not say where it listens", metrics.stderr)
    tree.make(early=False)
    srv = c.server()
    owners = {}
    for lay in tree.layouts:
        srv.send("accept")
        p = subprocess.run(["nsenter", f"--net={c.pair.path('A')}", "python3", "-c", JOIN_AND_ABORT,
                            tree.path(lay), c.addr("B"), port],
                           capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            raise Failure(f"{lay.name}: the process in its cgroup failed", p.stderr.splitlines())
        srv.expect(None)
        owners[lay.name] = type("Owner", (), {"pid": int(p.stdout.split()[0]), "comm": "python3",
                                               "cgroup_path": tree.cgroup_field(lay)})
    want = [c.expect("A", "linger0", None, "ESTABLISHED", "local", owners[lay.name])
            for lay in tree.layouts] + \
           [c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv) for _ in tree.layouts]
    for e in want:      # each process has a port of its own: told apart by owner
        e.addrs = {"pid": e.owner.pid} if e.side == "A" else {}
    c.finish(want, {"A": {"TCPAbortOnData": len(tree.layouts)}})

    seen = [o for _, o in c.tracer.lines if o is not None and c.relevant(o)]
    problems = []
    for lay in tree.layouts:
        pid = owners[lay.name].pid
        v = [o for o in seen if o["pid"] == pid and o["class"] == "linger0"]
        ns, name = lay.pod or (None, None)
        expect = {"container": lay.cid, "runtime": lay.runtime, "pod_uid": lay.uid,
                  "pod_namespace": ns, "pod": name}
        got = {k: v[0].get(k) for k in expect} if len(v) == 1 else None
        if got != expect:
            problems.append(f"{lay.name}: expected {expect} vs seen {got}")
    for o in seen:
        if o["class"] == "peer_reset" and any(o.get(k) is not None for k in
                                              ("container", "runtime", "pod_uid", "pod_namespace",
                                               "pod")):
            problems.append(f"the server is in no container: {o}")
    # text: "(in pod NS/NAME, container RUNTIME:ID12)"
    tlines = [raw for raw, _ in text.stop()]
    for lay in tree.layouts:
        pod = f"pod {lay.pod[0]}/{lay.pod[1]}, " if lay.pod else f"pod {lay.uid}, " if lay.uid else ""
        ctr = f"container {lay.runtime + ':' if lay.runtime else ''}{lay.cid[:12]}"
        want_text = f"[{owners[lay.name].pid}]"
        if not any(f"(in {pod}{ctr})" in l and want_text in l for l in tlines):
            problems.append(f"text: expected a line with owner {want_text} and '(in {pod}{ctr})'")
    # metrics: one series per container, labelled with its pod
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    metrics.stop()
    for lay in tree.layouts:
        ns, name = lay.pod or ("", "")
        sample = (f'rstwatch_owner_verdicts_total{{class="linger0",origin="local",'
                  f'state="ESTABLISHED",container="{lay.cid}",pod="{name}",namespace="{ns}"}} 1')
        if sample not in body.splitlines():
            problems.append(f"metrics: no line {sample}")
    if problems:
        raise Failure(problems[0], problems[1:] + ["text:"] + tlines)

    # --cgroup: live in the kernel, and on replay of the unfiltered trace
    kube_owned = [lay for lay in tree.layouts if lay.parts[0] == "kubepods.slice"]
    scoped_want = [c.expect("A", "linger0", None, "ESTABLISHED", "local", owners[lay.name])
                   for lay in kube_owned]
    for e in scoped_want:
        e.addrs = {"pid": e.owner.pid}
    c.check_extra(scoped, scoped_want)
    rec.stop()
    rep = subprocess.run([c.opts.rstwatch, "-j", "-r", trace, "--cgroup", kube],
                         capture_output=True, text=True, timeout=20)
    live = across_instances(raw for raw, o in scoped.lines if o is not None)
    replayed = across_instances(rep.stdout.splitlines())
    if rep.returncode != 0 or replayed != live or len(live) != len(kube_owned):
        raise Failure(f"replay with --cgroup {kube}: expected the live instance's "
                      f"{len(kube_owned)} verdicts vs exit {rep.returncode}",
                      ["live:"] + live + ["replay:"] + replayed + rep.stderr.splitlines())
    bad = [p for l in rep.stdout.splitlines() for p in contract_problems(json.loads(l), 0, 2e9)]
    if bad:
        raise Failure(f"replay: {bad[0]}")


containers.families = (("ipv4", "v4"),)


# ---------------------------------------------------------------- nat_flow

def flow_id(a, b):
    """flow_id as user/flow.c computes it from two ISNs."""
    m = (1 << 64) - 1
    lo, hi = min(a, b), max(a, b)
    z = ((lo << 32 | hi) + 0x9e3779b97f4a7c15) & m
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & m
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & m
    z ^= z >> 31
    return f"{z or 1:016x}"


class Router:
    """A third namespace R between A and B, doing NAT: A connects to R's
    address on the A side, R rewrites the destination to B (DNAT) and the
    source to its own address on the B side and a port of its choosing
    (SNAT).  Links: A eth1 - R toA, R toB - B eth1, each /24 (/64) on its
    own subnet, so that nothing needs a route."""

    def __init__(self, c):
        self.c, self.n = c, c.n
        self.name = f"rwR-{os.getpid()}-{c.n}"
        self.made = False

    def addr(self, where, family):
        net, host = {"A": (232, 1), "RA": (232, 254), "RB": (233, 254), "B": (233, 2)}[where]
        if family == "ipv4":
            return f"10.{net}.{self.n}.{host}"
        return f"fd00:{net}:{self.n}::{host:x}"

    def setup(self, port):
        from netns import sh
        pair = self.c.pair
        sh("ip", "netns", "add", self.name)
        self.made = True
        for side, here, idx in (("A", "toA", 30), ("B", "toB", 40)):
            sh("ip", "-n", self.name, "link", "add", here, "index", str(idx), "type", "veth",
               "peer", "name", "eth1", "index", str(idx + 1), "netns", pair.names[side])
            for ns, dev, who in ((self.name, here, "R" + side), (pair.names[side], "eth1", side)):
                sh("ip", "-n", ns, "addr", "add", self.addr(who, "ipv4") + "/24", "dev", dev)
                sh("ip", "-n", ns, "addr", "add", self.addr(who, "ipv6") + "/64", "dev", dev, "nodad")
                sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", self.name, "link", "set", "lo", "up")
        for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
            sh("ip", "netns", "exec", self.name, "sysctl", "-qw", f"{key}=1")
        a4, b4, r4 = self.addr("RA", "ipv4"), self.addr("B", "ipv4"), self.addr("RB", "ipv4")
        a6, b6, r6 = self.addr("RA", "ipv6"), self.addr("B", "ipv6"), self.addr("RB", "ipv6")
        sh("ip", "netns", "exec", self.name, "nft", "-f", "-", input=f"""
table inet rwnat {{
    chain pre {{
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr {a4} tcp dport {port} dnat ip to {b4}:{port}
        ip6 daddr {a6} tcp dport {port} dnat ip6 to [{b6}]:{port}
    }}
    chain post {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "toB" meta nfproto ipv4 meta l4proto tcp snat ip to {r4}:41000-41999
        oifname "toB" meta nfproto ipv6 meta l4proto tcp snat ip6 to [{r6}]:41000-41999
    }}
}}
""")
        for ns, dev in ((self.name, "toA"), (self.name, "toB"), (pair.names["A"], "eth1"),
                        (pair.names["B"], "eth1")):
            for _ in range(250):
                if " state UP " in sh("ip", "-n", ns, "-o", "link", "show", dev).stdout:
                    break
                __import__("time").sleep(0.02)

    def teardown(self):
        if self.made:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def nat_flow(c):
    """Both ends of a connection through NAT: A connects to R's address, R
    rewrites it to B's and the source to its own (another address, another
    port), so neither end's 4-tuple is the other's reversed.  Two rstwatch
    instances record one end each (--netns A -w a.rwt, --netns B -w b.rwt),
    as two hosts would; A's client closes with linger 0 after data both ways.
    Both verdicts carry the same flow_id, the one the two initial sequence
    numbers give (read with TCP_REPAIR on each socket right after the
    handshake); `rstwatch -r a.rwt -r b.rwt` links them under one conn_id and
    prints them as one line in text; the main instance (--port, both ends on
    this host) links them too."""
    r = Router(c)
    try:
        _nat_flow(c, r)
    finally:
        r.teardown()


def _nat_flow(c, r):
    port = str(c.port)
    r.setup(port)
    d = c.scratch()
    os.chmod(d, 0o1777)     # a /tmp: rstwatch may run as nobody (--caps)
    traces = {s: os.path.join(d, f"{s.lower()}.rwt") for s in "AB"}
    one = {s: c.extra(["--netns", c.pair.path(s), "-w", traces[s]]) for s in "AB"}
    srv = c.server(listen=False)
    srv.do(f"listen {c.family} {r.addr('B', c.family)} {port}")
    cli = c.actor("A", "rw_cli")
    cli.do(f"socket {c.family} {r.addr('A', c.family)}")
    c.cport = cli.do(f"connect {r.addr('RA', c.family)} {port}")["lport"]
    peer = srv.do("accept")
    seq = {"A": cli.do("seqs"), "B": srv.do("seqs")}
    isn_a, isn_b = (seq["A"]["snd_seq"] - 1) % 2**32, (seq["B"]["snd_seq"] - 1) % 2**32
    if (seq["A"]["rcv_seq"] - 1) % 2**32 != isn_b or (seq["B"]["rcv_seq"] - 1) % 2**32 != isn_a:
        raise Failure(f"TCP_REPAIR: the ends disagree on the ISNs: {seq}")
    want_flow = flow_id(isn_a, isn_b)
    cli.do("send 100")
    srv.do("wait_readable 100")
    srv.do("recv")
    srv.do("send 50")
    cli.do("wait_readable 50")
    cli.do("recv")
    cli.do("linger0")
    srv.send("recv")
    cli.do("close")
    srv.expect("ECONNRESET")
    a = c.expect("A", "linger0", None, "ESTABLISHED", "local", cli)
    b = c.expect("B", "peer_reset", None, "ESTABLISHED", "peer", srv)
    a.addrs = {"laddr": r.addr("A", c.family), "lport": c.cport, "raddr": r.addr("RA", c.family),
               "rport": int(port)}
    b.addrs = {"laddr": r.addr("B", c.family), "lport": int(port), "raddr": r.addr("RB", c.family),
               "rport": peer["peer_port"]}
    if not 41000 <= peer["peer_port"] <= 41999:
        raise Failure(f"SNAT: expected B to see a port in 41000-41999 vs {peer}")
    c.finish([a, b], {"A": {"TCPAbortOnData": 1}})

    problems = []
    main = [o for _, o in c.tracer.lines if o is not None and c.relevant(o)]
    if len(main) != 2 or any(o["flow_id"] != want_flow for o in main) or \
            main[0]["conn_id"] is None or main[0]["conn_id"] != main[1]["conn_id"]:
        problems.append(f"main instance (both ends): expected one conn_id and flow_id {want_flow} "
                        f"vs {[(o['class'], o['conn_id'], o['flow_id']) for o in main]}")
    live = {}
    for s, t in one.items():
        got = [o for _, o in t.stop() if o is not None and c.relevant(o)]
        live[s] = got
        if len(got) != 1 or got[0]["flow_id"] != want_flow or got[0]["conn_id"] is not None:
            problems.append(f"--netns {s}: expected one verdict, flow_id {want_flow}, no conn_id "
                            f"vs {[(o['class'], o['conn_id'], o['flow_id']) for o in got]}")
    if problems:
        raise Failure(problems[0], problems[1:])
    for path in traces.values():
        os.chmod(path, 0o644)
    # the two hosts' traces merged: linked by the flow id alone
    both = subprocess.run([c.opts.rstwatch, "-j", "-r", traces["A"], "-r", traces["B"]],
                          capture_output=True, text=True, timeout=20)
    objs = [json.loads(l) for l in both.stdout.splitlines()]
    pairs = sorted((o["class"], o["netns"]) for o in objs)
    if both.returncode != 0 or pairs != sorted([("linger0", c.ino["A"]), ("peer_reset", c.ino["B"])]) \
            or objs[0]["conn_id"] is None or objs[0]["conn_id"] != objs[1]["conn_id"] or \
            any(o["flow_id"] != want_flow for o in objs):
        raise Failure(f"-r a.rwt -r b.rwt: expected linger0 (A) and peer_reset (B) with one conn_id "
                      f"and flow_id {want_flow} vs exit {both.returncode}",
                      both.stdout.splitlines() + both.stderr.splitlines())
    for o in objs:
        side = "A" if o["netns"] == c.ino["A"] else "B"
        bad = [p for p in contract_problems(o, c.t0, __import__("time").time())]
        same = {k: v for k, v in o.items() if k != "conn_id"} == \
            {k: v for k, v in live[side][0].items() if k != "conn_id"}
        if bad or not same:
            raise Failure(f"-r a.rwt -r b.rwt: {side}'s verdict differs from its live one "
                          f"(but for conn_id) or breaks the contract: {bad}",
                          [json.dumps(o), json.dumps(live[side][0])])
    readme_join(c, live, want_flow)
    text = subprocess.run([c.opts.rstwatch, "-r", traces["A"], "-r", traces["B"]],
                          capture_output=True, text=True, timeout=20)
    lines = text.stdout.splitlines()
    if text.returncode != 0 or len(lines) != 2 or "rw_cli reset rw_srv: linger0" not in lines[1]:
        raise Failure("text, -r a.rwt -r b.rwt: expected the header and one line "
                      "'rw_cli reset rw_srv: linger0 ...'", lines + text.stderr.splitlines())


def readme_join(c, live, want_flow):
    """The README's jq query that joins two hosts' logs on flow_id, run as
    printed there on the two live instances' lines."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    m = re.search(r"```sh\n(jq -n -c '\[inputs \| select\(\.flow_id\).*?)\n```", readme, re.S)
    if not m:
        raise Failure("README.md: no jq query joining hosts on flow_id (update this test)")
    logs = {}
    for s in "AB":
        logs[s] = os.path.join(c.scratch(), f"host{s}.jsonl")
        with open(logs[s], "w") as f:
            f.write("".join(json.dumps(o) + "\n" for o in live[s]))
    cmd = m.group(1).replace("hostA.jsonl", logs["A"]).replace("hostB.jsonl", logs["B"])
    p = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=20)
    out = [json.loads(l) for l in p.stdout.splitlines()] if p.returncode == 0 else []
    if len(out) != 1 or out[0].get("flow_id") != want_flow or \
            [e.get("class") for e in out[0].get("ends", [])] != ["linger0", "peer_reset"]:
        raise Failure(f"README's jq join: expected one flow {want_flow} with its linger0 and "
                      f"peer_reset vs exit {p.returncode}", p.stdout.splitlines() +
                      p.stderr.splitlines() + [cmd])


nat_flow.fixture = False

SCENARIOS = [containers, nat_flow]
