"""e2e scenario `load_mix`: one rstwatch, tens of thousands of concurrent
connections ending a dozen ways, checked connection by connection.

tests/load/mixload (built by `make load-bin`) runs WORKERS client threads in
A against as many server threads in B; each connection picks, from the seed
and its number, one of twelve behaviours (normal closes either side first,
linger 0 either side, unread data either side, data racing a close, refused,
half open, user timeout, linger2, connect(AF_UNSPEC)) and IPv4 or IPv6, and
mixload logs its 4-tuple and times.  One `rstwatch -j -c -w TRACE --port
PORT` watches the whole run.  Asserted:

- per namespace and per abort class with a TcpExt counter, rstwatch's count
  equals the counter's delta (verdicts.COUNTER_OF_CLASS), and
  time_wait_overflow equals TCPTimeWaitOverflow;
- per namespace, rstwatch's verdicts for an RST this namespace sent equal
  its Tcp OutRsts delta (refused, half_open, killed... have no TcpExt counter);
- per namespace and class, rstwatch's count equals what mixload's plan and
  observed outcomes imply (its JSON tally);
- connection by connection (a verdict belongs to the connection with its
  4-tuple whose lifetime contains the verdict's time): every verdict the
  behaviour implies is there, once, with the owner (the client or server
  thread, or none for a reply) — and NO abort verdict for a connection that
  ended normally; lifecycle lines (time_wait, close_wait...) are not
  counted either way.  Set apart and reported, not compared: connections
  the kernel itself aborted though mixload closed them normally, each
  proven by a counter: killed for memory (TCPAbortOnMemory: the host-wide
  tcp_max_orphans) or reset after a FIN sent twice (DUP_FIN, RST parity);
- 0 events lost in rstwatch's ring buffer (-c summary, stderr); no anomaly
  in mixload (each side saw the errno its plan predicts); every line meets
  the JSON contract;
- what the kernel kept from rstwatch's programs is counted and explains
  exactly what is missing, or nothing may be: the -c summary's `missed`
  (program runs the kernel skipped and counted) is at least what bpftool
  reads of the programs' recursion_misses, and its `closes_unseen` equals
  the sockets the trace marks close_unseen (freed, their move to CLOSE seen
  by no program: skipped, counted or not).  A verdict may be missing only
  from the very socket such a mark names (its connection and side), and is
  then counted apart, not as a failure; with nothing missed or unseen every
  verdict must be there.

On failure the details end with the raw events (`rstwatch -r TRACE
--events`, the run is recorded with -w) of the first failing connections
and the last ones before them on the same kernel socket addresses;
RW_EVENTS=DIR also keeps the whole event stream, mixload's connection log and
rstwatch's output there (NAME.events, NAME.conns, NAME.json).

tests/bench/run.py imports Load and LoadCheck for its million-connection run.
RW_LOAD_CONNS overrides the connection count (the VM test uses fewer).
"""
import bisect
import calendar
import collections
import ipaddress
import json
import os
import shutil
import subprocess
import time

from netns import NetnsError
from verdicts import COUNTER_OF_CLASS, Failure, contract_problems, uncounted

HERE = os.path.dirname(os.path.abspath(__file__))
MIXLOAD = os.path.normpath(os.path.join(HERE, "..", "..", ".output", "load", "mixload"))

CONNS = 60000
WORKERS = 16
SEED = 7
COMM = {"A": "rw_lcli", "B": "rw_lsrv"}
HOSTS = {"closed": 12, "slow": 13}   # B's extra addresses (see mixload.c)
# a verdict belongs to the connection with its 4-tuple whose [t0, t1]
# (mixload's clock) holds its time, give or take this: both programs stamp
# BOOTTIME plus REALTIME - BOOTTIME taken at their start, which NTP may slew
# apart between the two starts (measured here: verdicts fall 3 us or more
# inside [t0, t1]).  A port freed by a reset may come back within
# milliseconds at 15,000 connections/s: the slack must stay below that.
SLACK_NS = 2_000_000
RAW_CONNS = 6        # failing connections whose raw events a failure shows

# Every RST a namespace sends, counted per 4-tuple and ACK flag by
# netfilter (the output hook sees tcp_v[46]_send_reset()'s replies and
# tcp_send_active_reset()'s alike): where OutRsts and the verdicts disagree,
# check() names the connections whose RSTs no verdict explains.
def rst_audit_table():
    sets, rules = [], []
    for fam, a in (("ipv4", "ip"), ("ipv6", "ip6")):
        k = f"{a} saddr . tcp sport . {a} daddr . tcp dport"
        for flags, name in (("rst", f"{fam}_R"), ("rst | ack", f"{fam}_RA")):
            sets.append(f"    set {name} {{ typeof {k}; flags dynamic; size 1048576; }}")
            rules.append(f"        meta nfproto {fam} tcp flags & (rst | ack) == {flags} "
                         f"update @{name} {{ {k} counter }}")
    return "\n".join(["table inet rwaudit {", *sets, "    chain output {",
                      "        type filter hook output priority 0; policy accept;", *rules,
                      "    }", "}", ""])


# A normal close the kernel itself turned into resets: the second closer's
# FIN went out twice (a retransmission that crossed the ACK, under a slow or
# loaded host), the first closer's time-wait socket ACKed the copy, the
# second closer, gone, answered that ACK with an RST (half_open: from no
# socket in A, from the listener in B), and the RST killed the time-wait
# socket (tcp_timewait_state_process(), RFC 1337), unless a new connection
# had taken its 4-tuple already (A reuses time-wait ports).  Seen once or
# twice in 3,000 connections on 6.1 and 5.10 under qemu.  Real resets, not
# rstwatch's: check() holds them to the RST parity.
DUP_FIN = {"fin_server": (("A", "half_open", None, None, "reply"),
                          ("B", "peer_reset", None, "TIME_WAIT", "peer")),
           "fin_client": (("B", "half_open", None, "LISTEN", "reply"),
                          ("A", "peer_reset", None, "TIME_WAIT", "peer"))}


def dup_fin(beh, got):
    """Do the verdicts `got` of a normal close of behaviour beh fit DUP_FIN:
    the reply RST, and the time-wait socket's peer_reset or nothing?"""
    if beh not in DUP_FIN:
        return False
    keys = collections.Counter(g[:5] for g in got)
    reply, killed = DUP_FIN[beh]
    return keys in (collections.Counter([reply, killed]), collections.Counter([reply]))


def expected(beh, race):
    """The abort verdicts (side, class, subtype, state or None for any) that
    behaviour `beh` makes; `race` is how orphan_data's race went."""
    est = "ESTABLISHED"
    return {
        "fin_client": [],
        "fin_server": [],
        "linger0_cli": [("A", "linger0", None, est), ("B", "peer_reset", None, est)],
        "linger0_srv": [("B", "linger0", None, est), ("A", "peer_reset", None, est)],
        "unread_cli": [("A", "unread_data", None, est), ("B", "peer_reset", None, est)],
        "unread_srv": [("B", "unread_data", None, est), ("A", "peer_reset", None, est)],
        # closed_first: the FIN reached B before the RST; A's orphan was in
        # FIN_WAIT1 or FIN_WAIT2 (a full socket or a time-wait one) when the
        # bytes came.  undetermined: either way (see mixload.c)
        "orphan_data": {
            "unread": [("A", "unread_data", None, est), ("B", "peer_reset", None, est)],
            "closed_first": [("A", "data_after_close", None, None),
                             ("B", "peer_reset", None, "CLOSE_WAIT")],
            "undetermined": [("A", ("unread_data", "data_after_close"), None, None),
                             ("B", "peer_reset", None, None)]}.get(race, []),
        "refused": [("B", "refused", None, None), ("A", "peer_reset", None, "SYN_SENT")],
        "half_open": [("A", "linger0", None, est), ("A", "half_open", None, None),
                      ("B", "peer_reset", None, est)],
        "user_timeout": [("A", "timeout", "user_timeout", est), ("B", "linger0", None, est)],
        "linger2": [("A", "linger2", None, "FIN_WAIT2"), ("B", "peer_reset", None, "CLOSE_WAIT")],
        "disconnect": [("A", "killed", None, est), ("B", "peer_reset", None, est)],
    }[beh]


def fits(w, side, cls, sub, state):
    """Does a seen verdict fit the expected w (class may be a tuple of
    alternatives, state None for any)?"""
    wcls = w[1] if isinstance(w[1], tuple) else (w[1],)
    return w[0] == side and cls in wcls and w[2] == sub and w[3] in (None, state)


def sends_rst(o):
    """Verdicts for which this namespace sent one RST: each bumps its Tcp
    OutRsts (tcp_v[46]_send_reset(), tcp_send_active_reset()).  Timeouts send
    none, but keepalive's."""
    return (o["origin"] in ("local", "reply") and o["class"] != "timeout") or \
        (o["class"] == "timeout" and o["subtype"] == "keepalive")


REPLIES = ("refused", "half_open", "time_wait_rst", "bad_ack", "listen_overflow")


def origin_of(cls):
    """The origin of a verdict of class cls (a tuple: alternatives of one
    origin) other than the lifecycle ones."""
    cls = cls[0] if isinstance(cls, tuple) else cls
    return "reply" if cls in REPLIES else "peer" if cls == "peer_reset" else "local"


def is_abort(o):
    """Counted either way: every verdict but the lifecycle ones, and
    time_wait_overflow (an anomaly with its own counter)."""
    return o.get("origin") != "lifecycle" or o.get("class") == "time_wait_overflow"


def name_of(cls, sub):
    return ("|".join(cls) if isinstance(cls, tuple) else cls) + ("/" + sub if sub else "")


def load_deltas(before, after):
    """{side: {counter: delta}} of TcpExt and Tcp (OutRsts, RetransSegs...;
    no name is in both)."""
    out = {}
    for s in "AB":
        out[s] = {k: after[s][sect][k] - before[s][sect].get(k, 0)
                  for sect in ("TcpExt", "Tcp") for k in after[s][sect]}
    return out


class Load:
    """The namespace pair's setup for mixload, and one run of it."""

    def __init__(self, pair, port):
        self.pair, self.port = pair, port

    def addr(self, side, family, host=None):
        a = self.pair.addr(side, family)
        if host is None:
            return a
        return a.rsplit(".", 1)[0] + f".{host}" if family == "ipv4" else a.rsplit("::", 1)[0] + f"::{host}"

    def setup(self):
        p, port = self.pair, self.port
        for fam, plen in (("ipv4", "/24"), ("ipv6", "/64")):
            for host in HOSTS.values():
                p.exec("B", "ip", "addr", "add", self.addr("B", fam, host) + plen, "dev", "eth0",
                       *(["nodad"] if fam == "ipv6" else []))
            # user_timeout's connections go to B's slow address: a small RTO
            # on that route alone, so they give up in ~40 ms, not ~400
            p.exec("A", "ip", "-6" if fam == "ipv6" else "-4", "route", "add",
                   self.addr("B", fam, HOSTS["slow"]) + ("/128" if fam == "ipv6" else "/32"),
                   "dev", "eth0", "rto_min", "5ms")
        # DSCP CS1: user_timeout's segments after the handshake, lost;
        # CS2: half_open's linger-0 RST, lost (the RST A's stack later sends
        # from no socket copies the TOS of the segment it answers: 0)
        p.nft("B", f"""
table inet rwtest {{
    chain input {{
        type filter hook input priority 0; policy accept;
        ip dscp cs1 tcp dport {port} drop
        ip6 dscp cs1 tcp dport {port} drop
        ip dscp cs2 tcp dport {port} tcp flags & rst == rst drop
        ip6 dscp cs2 tcp dport {port} tcp flags & rst == rst drop
    }}
}}
""")
        self.audit = None       # why there is no RST audit, or None
        for side in "AB":
            try:
                p.nft(side, rst_audit_table())
            except NetnsError as e:
                self.audit = str(e).splitlines()[0]
        # A's TIME_WAIT sockets to B:PORT would hold every port within a
        # minute of a long run: let connect() reuse them (tcp_twsk_unique())
        p.sysctl("A", "net.ipv4.tcp_tw_reuse", 1)
        # never skip TIME_WAIT (an overflow turns normal closes into resets)
        for side in "AB":
            p.sysctl(side, "net.ipv4.tcp_max_tw_buckets", 1 << 20)

    def rsts_sent(self, side):
        """Counter {(src, sport, dst, dport): RSTs} of every RST `side` sent
        during the run, as its netfilter output hook saw them, and
        {(src, sport, dst, dport): {TCP flags: RSTs}}."""
        out, flags = collections.Counter(), {}
        text = self.pair.exec(side, "nft", "-j", "list", "table", "inet", "rwaudit").stdout
        for item in json.loads(text)["nftables"]:
            fl = item.get("set", {}).get("name", "").partition("_")[2]     # R or RA
            for e in item.get("set", {}).get("elem", []):
                src, sport, dst, dport = e["elem"]["val"]["concat"]
                key = (str(ipaddress.ip_address(src)), sport, str(ipaddress.ip_address(dst)), dport)
                n = e["elem"]["counter"]["packets"]
                out[key] += n
                flags.setdefault(key, collections.Counter())[fl] += n
        return out, flags

    def argv(self, conns, workers, seed, log):
        fams = []
        for fam, opt in (("ipv4", "-4"), ("ipv6", "-6")):
            fams += [opt, ",".join([self.addr("A", fam), self.addr("B", fam),
                                    self.addr("B", fam, HOSTS["closed"]),
                                    self.addr("B", fam, HOSTS["slow"])])]
        return [MIXLOAD, "-a", self.pair.path("A"), "-b", self.pair.path("B"), "-p", str(self.port),
                *fams, "-n", str(conns), "-w", str(workers), "-s", str(seed), "-l", log]

    def run(self, conns, workers, seed, log, timeout):
        """Run mixload to its end; returns (its pid, its JSON tally)."""
        if not os.access(MIXLOAD, os.X_OK):
            raise Failure(f"{MIXLOAD} missing: run `make load-bin`")
        p = subprocess.Popen(self.argv(conns, workers, seed, log), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise Failure(f"mixload did not finish {conns} connections within {timeout} s")
        if p.returncode != 0:
            raise Failure(f"mixload exited {p.returncode}", err.splitlines())
        return p.pid, json.loads(out)


class LoadCheck:
    """rstwatch's verdicts against mixload's log and tally and the counters.
    Feed every JSON object of rstwatch's output to add(), then call check()."""

    def __init__(self, log, port, ino, pid, contract=None):
        self.port, self.ino, self.pid = port, ino, pid
        self.contract = contract            # (t0, t1) to check each line's contract
        self.conns = []                     # i -> (beh, family, caddr, cport, saddr, t0, t1, race)
        self.by_key = {}                    # (caddr, cport, saddr) -> [(t0, t1, i)] by t0
        self.anomalous = set()
        self.seen = {}                      # i -> [(side, class, subtype, state, origin, owner ok)]
        self.counts = {"A": {}, "B": {}}    # rstwatch's abort verdicts per side, class name
        self.counted = {"A": {}, "B": {}}   # ... per TcpExt counter they bump
        self.lifecycle = 0
        self.rsts = {"A": 0, "B": 0}      # verdicts for which the namespace sent an RST
        self.rst_tuples = {"A": collections.Counter(), "B": collections.Counter()}   # ... per 4-tuple
        self.audit_conns = []               # connections rst_audit() named
        self.late = 0                       # verdicts after their connection's end
        self.unmatched, self.ambiguous, self.ambiguous_eg, self.problems = [], 0, None, []
        self.summary, self.foreign = None, 0
        self.unseen = set()                 # (i, side): the socket's close no program saw
        self.unseen_marks, self.unseen_unmatched = 0, []
        self._events = None                 # the replayed event stream (replay_events())
        self._sec = {}
        with open(log) as f:
            for line in f:
                i, beh, fam, caddr, cport, saddr, t0, t1, race, an = line.rstrip("\n").split("\t")
                i = int(i)
                while len(self.conns) <= i:
                    self.conns.append(None)
                self.conns[i] = (beh, fam, caddr, int(cport), saddr, int(t0), int(t1), race)
                self.by_key.setdefault((caddr, int(cport), saddr), []).append((int(t0), int(t1), i))
                if an != "-":
                    self.anomalous.add(i)
        for v in self.by_key.values():
            v.sort()

    def ns(self, t):
        """RFC 3339 UTC with nanoseconds -> ns since the epoch."""
        sec = self._sec.get(t[:19])
        if sec is None:
            sec = self._sec[t[:19]] = calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S"))
        return sec * 1_000_000_000 + int(t[20:29])

    def add(self, o):
        if not isinstance(o, dict):
            self.problems.append(f"stdout line is not a JSON object: {o!r}")
            return
        if "summary" in o:
            self.summary = o
            return
        if self.contract:
            p = contract_problems(o, *self.contract)
            if p:
                self.problems.append(f"contract: {'; '.join(p)} in {json.dumps(o)}")
                return
        side = next((s for s, ino in self.ino.items() if o.get("netns") == ino), None)
        if side is None:
            self.foreign += 1
            return
        if not is_abort(o):
            self.lifecycle += 1
            return
        cls, sub = o["class"], o["subtype"]
        n = name_of(cls, sub)
        self.counts[side][n] = self.counts[side].get(n, 0) + 1
        self.rsts[side] += sends_rst(o)
        if sends_rst(o):
            self.rst_tuples[side][(str(ipaddress.ip_address(o["laddr"])), o["lport"],
                                   str(ipaddress.ip_address(o["raddr"])), o["rport"])] += 1
        counter = "TCPTimeWaitOverflow" if cls == "time_wait_overflow" else COUNTER_OF_CLASS.get(cls)
        if counter and not uncounted(o):
            self.counted[side][counter] = self.counted[side].get(counter, 0) + 1
        if side == "A":
            key, ok = (o["laddr"], o["lport"], o["raddr"]), o["rport"] == self.port
        else:
            key, ok = (o["raddr"], o["rport"], o["laddr"]), o["lport"] == self.port
        t = self.ns(o["time"])
        i = self.match(key, t) if ok else None
        if i is None:
            self.unmatched.append(o)
            return
        if o["origin"] == "reply":
            owner_ok = o["pid"] is None and o["comm"] is None
        else:
            owner_ok = o["pid"] == self.pid and o["comm"] == COMM[side]
        self.seen.setdefault(i, []).append((side, cls, sub, o["state"], o["origin"], owner_ok,
                                            o["pid"], o["comm"]))

    def match(self, key, t):
        """The connection a verdict at time t on this 4-tuple belongs to: the
        latest one that had started by t, inside its lifetime or after it (an
        answer to a retransmission); the next one only if t is within the
        slack before its start, the nearer of the two if within both."""
        cands = self.by_key.get(key)
        if not cands:
            return None
        k = bisect.bisect_right(cands, (t, float("inf"), 0))
        cur = cands[k - 1] if k else None
        nxt = cands[k] if k < len(cands) else None
        if cur and t <= cur[1]:
            return cur[2]
        if nxt and nxt[0] - t <= SLACK_NS:
            if cur is None or t - cur[1] > SLACK_NS:
                return nxt[2]
            if not self.ambiguous:
                self.ambiguous_eg = (f"{key} at {t}: conn {cur[2]} [{cur[0]}, {cur[1]}], "
                                     f"conn {nxt[2]} [{nxt[0]}, {nxt[1]}]")
            self.ambiguous += 1
            return (cur if t - cur[1] <= nxt[0] - t else nxt)[2]
        if cur is None:
            return None
        if t > cur[1] + SLACK_NS:
            self.late += 1
        return cur[2]

    # ------------------------------------------------------------ verdict
    def per_connection(self):
        """{kind: [(i, detail)]} for kind in missing, unexpected, false
        (abort verdict on a normal connection), owner; and set apart, not
        compared: memory (the connections the kernel killed for memory),
        dup_fin (the kernel's own resets after a FIN sent twice), crossed
        (i, detail, sides: half_open replies beyond the plan, see below) and unseen
        (i, (side, class, subtype, state)): a verdict missing from a socket
        whose close the kernel showed no program (self.unseen), never a reply
        (those come from no socket)."""
        out = {"missing": [], "unexpected": [], "false": [], "owner": [], "memory": [],
               "dup_fin": [], "crossed": [], "unseen": []}
        for i, c in enumerate(self.conns):
            if c is None or i in self.anomalous:
                continue
            beh, race = c[0], c[7]
            want = list(expected(beh, race))
            got = self.seen.get(i, [])
            # tcp_max_orphans is one for the whole host (the e2e scenario
            # `memory` sets it to 0 for a moment): an orphan of this load may
            # be killed (tcp_check_oom()) whatever it planned.  check()
            # holds these to TCPAbortOnMemory.
            if any(g[1] == "memory" for g in got):
                out["memory"].append((i, ", ".join(f"{g[0]}:{name_of(g[1], g[2])}" for g in got)))
                continue
            if dup_fin(beh, got):
                out["dup_fin"].append((i, ", ".join(f"{g[0]}:{name_of(g[1], g[2])}({g[3]})"
                                                    for g in got)))
                continue
            extra = []
            for g in got:
                side, cls, sub, state = g[:4]
                m = next((w for w in want if fits(w, side, cls, sub, state)), None)
                if m is None:
                    extra.append(g)
                    continue
                want.remove(m)
                if not g[5]:
                    out["owner"].append((i, f"{side}:{name_of(cls, sub)} owner pid={g[6]} comm={g[7]}"))
            # an RST answering a segment of the other end that crossed this
            # connection's reset: an ACK or data in flight, or queued on
            # another CPU's backlog, when the socket went away, answered
            # from no socket (A) or by B's listener (half_open in LISTEN;
            # seen under qemu, where the crossing is wide).  Only on top of
            # every verdict the plan makes; check() holds them to OutRsts.
            if extra and not want and expected(beh, race) and \
                    all(g[1] == "half_open" and g[4] == "reply" for g in extra):
                out["crossed"].append((i, ", ".join(f"{g[0]}:half_open" for g in extra),
                                       [g[0] for g in extra]))
                continue
            for g in extra:
                what = f"{g[0]}:{name_of(g[1], g[2])}({g[3]},{g[4]})"
                out["false" if not expected(beh, race) else "unexpected"].append((i, what))
            for w in want:
                if (i, w[0]) in self.unseen and origin_of(w[1]) != "reply":
                    out["unseen"].append((i, w))
                    continue
                out["missing"].append((i, f"{w[0]}:{name_of(w[1], w[2])}({w[3] or 'any'})"))
        return out

    def rst_audit(self, side, sent):
        """Report lines on the 4-tuples where `side`'s RSTs, as netfilter
        counted them (Load.rsts_sent()), and its verdicts for an RST sent
        disagree, each with the RSTs' TCP flags and the connections mixload
        made on it (whose raw events a failure then shows)."""
        out = []
        sent, flags = sent
        for what, diff in (("RST(s) sent with no verdict", sent - self.rst_tuples[side]),
                           ("verdict(s) for an RST netfilter did not see",
                            self.rst_tuples[side] - sent)):
            if not diff:
                continue
            out.append(f"{side}: {sum(diff.values())} {what}, by 4-tuple (all its RSTs' flags):")
            for (src, sport, dst, dport), n in sorted(diff.items())[:RAW_CONNS * 2]:
                key = (src, sport, dst) if side == "A" else (dst, dport, src)
                conns = [i for _, _, i in self.by_key.get(key, [])]
                self.audit_conns += conns
                fl = flags.get((src, sport, dst, dport), {})
                out.append(f"  {src}:{sport} > {dst}:{dport} x{n} "
                           f"({', '.join(f'{k} x{v}' for k, v in sorted(fl.items())) or 'none'}): "
                           f"{', '.join(f'conn {i} {self.conns[i][0]}' for i in conns) or 'no connection'}")
        return out

    def check(self, tally, deltas, stderr, misses, sent=None):
        """All problems (empty: pass) and a report (lines) of the numbers.
        misses: recursion_misses() of rstwatch just before it stopped;
        sent: {side: Load.rsts_sent()}, named where the RSTs disagree."""
        problems = list(self.problems)
        report = []
        if tally["anomalies"]:
            problems.append(f"mixload: {tally['anomalies']} connection(s) did not go as planned: "
                            f"{tally['first_anomalies']}")
        if len([c for c in self.conns if c]) != tally["connections"]:
            problems.append(f"mixload logged {len([c for c in self.conns if c])} connections of "
                            f"{tally['connections']}")
        pc = self.per_connection()
        # verdicts missing from a socket whose close no program saw (the
        # kernel skipped them): counted apart, as if seen, in every total
        # below; where the class leaves it open whether TcpExt counted it
        # (data_after_close, or either class), within a range
        unseen_n = {"A": collections.Counter(), "B": collections.Counter()}
        unseen_counted = {"A": collections.Counter(), "B": collections.Counter()}
        unseen_open = {"A": 0, "B": 0}
        unseen_rsts = {"A": 0, "B": 0}
        for i, (side, cls, sub, _) in pc["unseen"]:
            unseen_n[side][name_of(cls, sub)] += 1
            unseen_rsts[side] += sends_rst({"origin": origin_of(cls),
                                            "class": cls[0] if isinstance(cls, tuple) else cls,
                                            "subtype": sub})
            if isinstance(cls, tuple) or cls == "data_after_close":
                unseen_open[side] += 1
            elif COUNTER_OF_CLASS.get(cls):
                unseen_counted[side][COUNTER_OF_CLASS[cls]] += 1
        # connections the kernel killed for memory: their verdicts stand
        # apart from mixload's plan (what it expected of them is taken out)
        killed = {"A": {}, "B": {}}
        for i, _ in pc["memory"]:
            for g in self.seen[i]:
                n = name_of(g[1], g[2])
                killed[g[0]][n] = killed[g[0]].get(n, 0) + 1
            for side, cls, sub, _ in expected(self.conns[i][0], self.conns[i][7]):
                n = name_of(cls, sub)
                killed[side][n] = killed[side].get(n, 0) - 1
        # and the kernel's own resets beyond the plan (dup_fin, crossed)
        for i, _ in pc["dup_fin"]:
            for g in self.seen[i]:
                n = name_of(g[1], g[2])
                killed[g[0]][n] = killed[g[0]].get(n, 0) + 1
        for _, _, sides in pc["crossed"]:
            for side in sides:
                killed[side]["half_open"] = killed[side].get("half_open", 0) + 1
        # -- per class: rstwatch vs TcpExt counters vs mixload's tally
        self.table = []     # (side, class, mixload, rstwatch, counter or None, its delta)
        report.append("side class                     mixload  rstwatch  counter")
        for side in "AB":
            for counter in sorted(set(COUNTER_OF_CLASS.values()) | {"TCPTimeWaitOverflow"}):
                n = self.counted[side].get(counter, 0) + unseen_counted[side][counter]
                d = deltas[side].get(counter, 0)
                slack = unseen_open[side] if counter in ("TCPAbortOnClose", "TCPAbortOnData") else 0
                if not n <= d <= n + slack:
                    problems.append(f"{side}: {n} verdict(s) counted by {counter} vs its delta {d}"
                                    + (f" ({slack} unseen may be either)" if slack else ""))
            for c in ("TCPAbortFailed",):
                if deltas[side].get(c, 0):
                    problems.append(f"{side}: TcpExt {c} moved by {deltas[side][c]}")
            # every RST this namespace sent is one verdict, and the converse
            if self.rsts[side] + unseen_rsts[side] != deltas[side].get("OutRsts", 0):
                problems.append(f"{side}: {self.rsts[side] + unseen_rsts[side]} verdict(s) for an "
                                f"RST sent (with those unseen) vs Tcp "
                                f"OutRsts delta {deltas[side].get('OutRsts', 0)}; its counters "
                                f"that moved: {dict(sorted((k, v) for k, v in deltas[side].items() if v))}")
                if sent is not None:
                    report += self.rst_audit(side, sent[side])
            want = dict(tally["expect"][side])
            either = want.pop("unread_data|data_after_close", 0)
            if either:      # orphan_data races whose outcome mixload could not tell
                got = {n: self.counts[side].get(n, 0) - killed[side].get(n, 0) + unseen_n[side][n]
                       for n in ("unread_data", "data_after_close")}
                extra = {n: got[n] - want.get(n, 0) for n in got}
                if min(extra.values()) < 0 or \
                        sum(extra.values()) + unseen_n[side]["unread_data|data_after_close"] != either:
                    problems.append(f"{side}: {got['unread_data']} unread_data and "
                                    f"{got['data_after_close']} data_after_close verdicts vs "
                                    f"{want.get('unread_data', 0)} and "
                                    f"{want.get('data_after_close', 0)} made by mixload, plus "
                                    f"{either} that may be either")
                report.append(f"{side}    (unread_data|data_after_close: {either} undetermined, "
                              f"{extra['unread_data']} and {extra['data_after_close']} by rstwatch)")
                for n in got:      # compared above
                    want[n] = got[n]
            for n in sorted(set(want) | set(self.counts[side])):
                got = self.counts[side].get(n, 0) - killed[side].get(n, 0) + unseen_n[side][n]
                counter = ("TCPTimeWaitOverflow" if n == "time_wait_overflow"
                           else COUNTER_OF_CLASS.get(n.split("/")[0]))
                report.append(f"{side}    {n:24} {want.get(n, 0):8} {got:9}  "
                              f"{counter + ' ' + str(deltas[side].get(counter, 0)) if counter else '-'}")
                self.table.append((side, n, want.get(n, 0), self.counts[side].get(n, 0), counter,
                                   deltas[side].get(counter, 0) if counter else None))
                if got != want.get(n, 0):
                    problems.append(f"{side}: {got} {n} verdict(s) vs {want.get(n, 0)} made by mixload")
        # -- losses
        s = self.summary or {}
        lost = s.get("lost")
        if lost != 0:
            problems.append(f"events lost: expected 0 vs {lost} (-c summary {s or 'missing'})")
        lost_lines = [l for l in stderr if " lost" in l and "0 lost" not in l]
        if lost_lines:
            problems.append(f"rstwatch's stderr reports a loss: {lost_lines[0]}")
        # what the kernel kept from the programs: counted by rstwatch (read
        # at its exit, after bpftool's reading, so never less), and each
        # close unseen is a record that names its socket
        missed, unseen = s.get("missed"), s.get("closes_unseen")
        if missed is None or missed < sum(misses.values()):
            problems.append(f"program runs the kernel skipped: rstwatch counts {missed} (-c "
                            f"summary) vs bpftool's recursion_misses {misses}")
        if unseen != self.unseen_marks:
            problems.append(f"closes unseen: rstwatch counts {unseen} (-c summary) vs "
                            f"{self.unseen_marks} close_unseen mark(s) in the trace")
        if self.unseen_unmatched:
            problems.append(f"{len(self.unseen_unmatched)} close_unseen mark(s) match no "
                            f"connection, e.g. {self.unseen_unmatched[0]}")
        # a socket makes at most one verdict of its own in this load
        twice = [k for k, v in collections.Counter((i, w[0]) for i, w in pc["unseen"]).items()
                 if v > 1]
        if twice:
            problems.append(f"{len(twice)} socket(s) whose close no program saw miss more than "
                            f"one verdict each, e.g. conn {twice[0][0]} side {twice[0][1]}")
        if pc["unseen"] or unseen:
            report.append(f"{unseen} close(s) the kernel showed no program ({missed} program "
                          f"run(s) it skipped and counted: "
                          f"{', '.join(f'{k} {v}' for k, v in misses.items()) or 'none'}): "
                          f"{len(pc['unseen'])} verdict(s) missing from exactly those sockets, "
                          f"e.g. " + "; ".join(f"conn {i} {self.conns[i][0]}: {w[0]}:"
                                               f"{name_of(w[1], w[2])}" for i, w in pc["unseen"][:3]))
        # -- connection by connection
        if pc["dup_fin"]:
            report.append(f"{len(pc['dup_fin'])} normal close(s) the kernel reset after a FIN "
                          f"sent twice (half_open, then the time-wait socket killed), e.g. " +
                          "; ".join(f"conn {i} {self.conns[i][0]}: {d}" for i, d in pc["dup_fin"][:3]))
            # proven only where the half_open's namespace sent as many RSTs
            # as rstwatch says
            for i, d in list(pc["dup_fin"]):
                x = "A" if self.conns[i][0] == "fin_server" else "B"
                if self.rsts[x] != deltas[x].get("OutRsts", 0):
                    pc["dup_fin"].remove((i, d))
                    pc["false"].append((i, d))
        if pc["crossed"]:
            report.append(f"{len(pc['crossed'])} connection(s) with a reply RST from no socket to "
                          f"a segment that crossed their reset (half_open beyond the plan), e.g. " +
                          "; ".join(f"conn {i} {self.conns[i][0]}: {d}" for i, d, _ in pc["crossed"][:3]))
            for item in list(pc["crossed"]):
                if any(self.rsts[x] != deltas[x].get("OutRsts", 0) for x in item[2]):
                    pc["crossed"].remove(item)
                    pc["unexpected"].append(item[:2])
        if pc["memory"]:
            report.append(f"{len(pc['memory'])} connection(s) killed by the kernel for memory "
                          f"(host-wide tcp_max_orphans or tcp_mem; TCPAbortOnMemory A "
                          f"{deltas['A'].get('TCPAbortOnMemory', 0)}, B "
                          f"{deltas['B'].get('TCPAbortOnMemory', 0)}), not compared: " +
                          "; ".join(f"conn {i} {self.conns[i][0]}: {d}" for i, d in pc["memory"][:3]))
        for kind, what in (("false", "abort verdict(s) on connections that ended normally"),
                           ("missing", "verdict(s) missing"),
                           ("unexpected", "verdict(s) the behaviour does not make"),
                           ("owner", "verdict(s) with the wrong owner")):
            if pc[kind]:
                problems.append(f"{len(pc[kind])} {what}, e.g. " +
                                "; ".join(f"conn {i} {self.conns[i][0]}: {d}" for i, d in pc[kind][:3]))
        if self.unmatched:
            problems.append(f"{len(self.unmatched)} abort verdict(s) match no connection, e.g. "
                            f"{json.dumps(self.unmatched[0])}")
        if self.ambiguous:
            # the nearer lifetime took it; a wrong pick would show above as a
            # verdict missing on one connection and unexpected on the other
            report.append(f"{self.ambiguous} verdict(s) within {SLACK_NS // 1_000_000} ms of two "
                          f"lifetimes of one 4-tuple, e.g. {self.ambiguous_eg}")
        race = tally["race"]["orphan_data"]
        full = deltas["A"].get("TCPAbortOnData", 0) - tally["expect"]["A"].get("linger0", 0)
        report.append(f"orphan_data race: {race['unread']} unread_data (bytes queued at close), "
                      f"{race['closed_first']} data_after_close (the server saw the FIN first), "
                      f"{race['undetermined']} undetermined; A's TCPAbortOnData counts {full} "
                      f"data_after_close on a full orphan, the rest met a time-wait socket")
        report.append(f"RSTs: A {self.rsts['A']} verdicts, OutRsts {deltas['A'].get('OutRsts', 0)}; "
                      f"B {self.rsts['B']}, OutRsts {deltas['B'].get('OutRsts', 0)}; "
                      + (f"netfilter saw A {sum(sent['A'][0].values())}, B {sum(sent['B'][0].values())}; "
                         if sent is not None else "") +
                      f"{self.late} verdict(s) after their connection's end")
        report.append(f"verdicts: {sum(sum(c.values()) for c in self.counts.values())} aborts, "
                      f"{self.lifecycle} lifecycle; events {s.get('events')}, lost {lost}, "
                      f"missed {missed} (recursion_misses {sum(misses.values())}), closes unseen "
                      f"{unseen}, evictions {s.get('evictions')}; false {len(pc['false'])}, "
                      f"missing {len(pc['missing'])} (+{len(pc['unseen'])} unseen), unexpected "
                      f"{len(pc['unexpected'])}, unmatched {len(self.unmatched)}")
        self.failing = [i for kind in ("false", "missing", "unexpected", "owner") for i, _ in pc[kind]]
        self.failing += self.audit_conns
        self.numbers = {"false": len(pc["false"]), "missing": len(pc["missing"]),
                        "unexpected": len(pc["unexpected"]), "owner": len(pc["owner"]),
                        "unmatched": len(self.unmatched), "lost": lost,
                        "recursion_misses": sum(misses.values()), "memory": len(pc["memory"]),
                        "dup_fin": len(pc["dup_fin"]), "crossed": len(pc["crossed"]),
                        "late": self.late,
                        "missed": missed, "closes_unseen": unseen, "unseen": len(pc["unseen"]),
                        "events": s.get("events"), "evictions": s.get("evictions")}
        return problems, report

    def replay_events(self, rstwatch, trace):
        """`rstwatch -r TRACE --events`, run once: (exit status, stdout, stderr)."""
        if self._events is None:
            out = subprocess.run([rstwatch, "-r", trace, "--events"], capture_output=True,
                                 text=True, timeout=600)
            self._events = (out.returncode, out.stdout, out.stderr)
        return self._events

    def mark_unseen(self, rstwatch, trace):
        """The sockets the trace marks close_unseen (freed, their move to
        CLOSE seen by no program), as (connection, side) in self.unseen,
        matched as verdicts are; call before check()."""
        rc, out, err = self.replay_events(rstwatch, trace)
        if rc != 0:
            self.problems.append(f"rstwatch -r {trace} --events: exit {rc}: {err.strip()}")
            return
        for line in out.splitlines():
            f = line.split()
            if len(f) < 2 or f[1] != "destroy" or "close_unseen" not in f:
                continue
            self.unseen_marks += 1
            ns = int(next(x for x in f if x.startswith("netns="))[6:])
            # the two endpoints, ADDR:PORT or [ADDR]:PORT, come before netns=
            ends = [x.rsplit(":", 1) for x in f[3:f.index(next(x for x in f if x.startswith(
                "netns=")))] if ":" in x and not x.startswith("cookie=")]
            if len(ends) != 2:
                self.unseen_unmatched.append(line)
                continue
            (la, lp), (ra, rp) = ((a.strip("[]"), int(p)) for a, p in ends)
            sec, _, nsec = f[0].partition(".")
            t = int(sec) * 1_000_000_000 + int(nsec)
            side = next((s for s, ino in self.ino.items() if ns == ino), None)
            key, ok = ((la, lp, ra), rp == self.port) if side == "A" else ((ra, rp, la), lp == self.port)
            i = self.match(key, t) if side and ok else None
            if i is None:
                self.unseen_unmatched.append(line)
            else:
                self.unseen.add((i, side))

    def raw_events(self, rstwatch, trace, keep=None, n=RAW_CONNS):
        """The raw events (`rstwatch -r TRACE --events`) of the first n
        failing connections, each followed by the last events before it of
        every kernel socket address it used (a socket's memory is soon
        reused, by any namespace).  keep: a file for the whole stream."""
        rc, stdout, err = self.replay_events(rstwatch, trace)
        if keep:
            with open(keep, "w") as f:
                f.write(stdout)
        if rc != 0:
            return [f"rstwatch -r {trace} --events: exit {rc}: {err.strip()}"]
        events = []                 # (time, sk, line)
        resets = {s: 0 for s in self.ino}
        for line in stdout.splitlines():
            f = line.split(None, 3)
            sec, _, nsec = f[0].partition(".")
            events.append((int(sec) * 1_000_000_000 + int(nsec or 0), f[2], line))
            if f[1] == "send_reset":
                ns = int(line.split(" netns=", 1)[1].split(None, 1)[0])
                for side, ino in self.ino.items():
                    resets[side] += ns == ino
        # an RST parity failure: did the records come (the classifier made no
        # verdict of some) or not (no hook saw those RSTs)?
        res = [f"send_reset records in the trace: A {resets['A']} (verdicts for an RST sent "
               f"{self.rsts['A']}), B {resets['B']} ({self.rsts['B']})"]
        shown = []
        for i in self.failing:
            if i in shown:
                continue
            shown.append(i)
            if len(shown) > n:
                break
            beh, fam, caddr, cport, saddr, t0, t1, race = self.conns[i]
            ep = f"{caddr}:{cport} " if fam == "ipv4" else f"[{caddr}]:{cport} "
            res.append(f"raw events of conn {i} {beh} ({race}) {ep.strip()} -> {saddr}, "
                       f"verdicts {[g[0] + ':' + name_of(g[1], g[2]) for g in self.seen.get(i, [])]}:")
            mine = [e for e in events if t0 - SLACK_NS <= e[0] <= t1 + SLACK_NS and ep in e[2] + " "]
            res += ["  " + e[2] for e in mine]
            first = mine[0][0] if mine else t0
            for sk in dict.fromkeys(e[1] for e in mine if e[1] != "sk=0"):
                before = [e for e in events if e[1] == sk and e[0] < first][-4:]
                if before:
                    res.append(f"  before it, the last events on {sk}:")
                    res += ["    " + e[2] for e in before]
        return res


def recursion_misses(pid):
    """{program: runs the kernel skipped} for the BPF programs process pid
    holds.  __bpf_trace_run() skips a program that is already running on
    this CPU (a softirq firing its tracepoint while it runs in process
    context) and counts it only in the program's recursion_misses: an event
    lost before any ring buffer, which rstwatch's own loss counter does not
    see."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids.update(int(l.split()[1]) for l in f if l.startswith("prog_id:"))
        except OSError:
            pass
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True)
    if out.returncode != 0:
        raise Failure(f"bpftool prog show: exit {out.returncode}: {out.stderr.strip()}")
    return {p["name"]: p["recursion_misses"] for p in json.loads(out.stdout)
            if p["id"] in ids and p.get("recursion_misses")}


def counters_vs_tally(tally, deltas):
    """--no-rstwatch: the kernel's own counters against what mixload made.
    A's TCPAbortOnData holds the linger-0 closes and the data_after_close of
    a full orphan, not those that met a time-wait socket; an undetermined
    race may be either counter's: ranges there."""
    problems = []
    for side in "AB":
        want = tally["expect"][side]
        either = want.get("unread_data|data_after_close", 0)
        ranges = {"TCPAbortOnLinger": (want.get("linger2", 0),) * 2,
                  "TCPAbortOnTimeout": (want.get("timeout/user_timeout", 0),) * 2,
                  "TCPAbortOnClose": (want.get("unread_data", 0), want.get("unread_data", 0) + either),
                  "TCPAbortOnData": (want.get("linger0", 0), want.get("linger0", 0) +
                                     want.get("data_after_close", 0) + either)}
        for counter, (lo, hi) in ranges.items():
            if not lo <= deltas[side].get(counter, 0) <= hi:
                problems.append(f"{side}: TcpExt {counter} delta {deltas[side].get(counter, 0)} vs "
                                f"{lo}{'' if lo == hi else f'..{hi}'} made by mixload")
    return problems


def wait_aborts(tracer, want, timeout):
    """Poll until rstwatch has printed `want` abort verdicts (or timeout)."""
    deadline = time.monotonic() + timeout
    n = k = 0
    while time.monotonic() < deadline:
        lines = tracer.lines[k:]
        k += len(lines)
        n += sum(1 for _, o in lines if isinstance(o, dict) and "class" in o and is_abort(o))
        if n >= want:
            return True
        time.sleep(0.1)
    return False


def trace_path(c):
    return os.path.join(c.scratch(), "load.rwt")


def load_mix(c):
    """One rstwatch, CONNS connections from 16 concurrent workers, both
    families, twelve behaviours: exact per class, per connection, 0 lost."""
    conns = int(os.environ.get("RW_LOAD_CONNS", CONNS))
    load = Load(c.pair, c.port)
    load.setup()
    log = os.path.join(c.scratch(), "conns.log")
    before = {s: c.pair.counters(s) for s in "AB"}
    t = time.monotonic()
    pid, tally = load.run(conns, WORKERS, SEED, log, timeout=900)
    took = time.monotonic() - t
    made = sum(sum(v.values()) for v in tally["expect"].values())
    if c.tracer is not None:
        wait_aborts(c.tracer, made, timeout=10)
        time.sleep(0.5)      # anything beyond what mixload made would show now
    after = {s: c.pair.counters(s) for s in "AB"}
    sent = None if load.audit else {s: load.rsts_sent(s) for s in "AB"}
    deltas = load_deltas(before, after)
    c.report.append(f"mixload: {conns} connections, {WORKERS} workers, seed {SEED}: {took:.1f} s "
                    f"({tally['seconds']:.1f} s in mixload); {tally['behaviours']}")
    if load.audit:
        c.report.append(f"no RST audit by netfilter: {load.audit}")
    if c.tracer is None:
        problems = counters_vs_tally(tally, deltas)
        if tally["anomalies"]:
            problems.insert(0, f"mixload: {tally['anomalies']} anomalies: {tally['first_anomalies']}")
        if problems:
            raise Failure(problems[0], problems[1:])
        return
    misses = recursion_misses(c.tracer.proc.pid)
    lines = c.tracer.stop()
    chk = LoadCheck(log, c.port, c.ino, pid, contract=(c.t0, time.time()))
    for raw, o in lines:
        chk.add(o if o is not None else raw)
    if (chk.summary or {}).get("closes_unseen"):
        chk.mark_unseen(c.opts.rstwatch, trace_path(c))
    problems, report = chk.check(tally, deltas, c.tracer.stderr, misses, sent)
    c.report += report
    if problems:
        n = chk.numbers
        headline = (f"{conns} connections: {n['false']} false abort verdicts, {n['missing']} missing, "
                    f"{n['unexpected']} unexpected, {n['owner']} wrong owners, {n['unmatched']} "
                    f"unmatched, {n['lost']} lost, {n['missed']} program runs missed, "
                    f"{n['closes_unseen']} closes unseen (set apart: {n['memory']} killed by the "
                    f"kernel for memory, {n['dup_fin']} reset by the kernel after a FIN sent "
                    f"twice, {n['crossed']} reply RSTs to a segment crossing a reset, "
                    f"{n['unseen']} verdicts missing from a close unseen); "
                    f"{len(problems)} problem(s)")
        details = problems + report + ["rstwatch stderr:"] + ["  " + l for l in c.tracer.stderr]
        keep = os.environ.get("RW_EVENTS")
        if keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(log, os.path.join(keep, c.name + ".conns"))
            with open(os.path.join(keep, c.name + ".json"), "w") as f:
                f.writelines(raw + "\n" for raw, _ in lines)
        details += chk.raw_events(c.opts.rstwatch, trace_path(c),
                                  keep and os.path.join(keep, c.name + ".events"))
        raise Failure(headline, details)


load_mix.families = (("ipv4", "v46"),)
# -c: the loss in the summary; -w: the event stream, for the raw events of
# failing connections
load_mix.tracer_args = lambda c: ["-c", "-w", trace_path(c)]
load_mix.fixture = False     # far too big for tests/traces

SCENARIOS = [load_mix]
