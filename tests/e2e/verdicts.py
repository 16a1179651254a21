"""Checks rstwatch's JSON verdicts against a scenario's expectations."""
import datetime
import json
import re

import btf
import schema

KEYS = ("time", "class", "subtype", "origin", "reason", "state", "family", "laddr", "lport",
        "raddr", "rport", "netns", "pid", "comm", "cgroup", "evidence", "hint")
ORIGINS = ("local", "reply", "peer", "lifecycle")
TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z$")

# TcpExt counters asserted in both namespaces of every test: each one a
# scenario does not expect to move must stay put.  TW (TIMEWAITED) is bumped
# when a socket enters TIME_WAIT (__inet_twsk_schedule), not when it leaves.
CHECKED_COUNTERS = ("TCPAbortOnData", "TCPAbortOnClose", "TCPAbortOnMemory", "TCPAbortOnTimeout",
                    "TCPAbortOnLinger", "TCPAbortFailed", "TW", "TWKilled",
                    "TCPTimeWaitOverflow")
# In a private netns, rstwatch's count of a class equals its counter's delta (README, Verdicts).
COUNTER_OF_CLASS = {"linger0": "TCPAbortOnData", "data_after_close": "TCPAbortOnData",
                    "unread_data": "TCPAbortOnClose", "linger2": "TCPAbortOnLinger",
                    "memory": "TCPAbortOnMemory", "timeout": "TCPAbortOnTimeout"}
# ... except a timewait socket's RST to data (data_after_close in the
# FIN_WAIT2 substate): tcp_timewait_state_process() bumps no counter.  Known
# by its evidence, which has no full-socket snapshot (no unread_bytes), not
# by the reason TCP_TIMEWAIT_SOCKET: kernels before 6.10 give none.


def uncounted(o):
    return o["class"] == "data_after_close" and "unread_bytes" not in (o.get("evidence") or {})

ANY = object()


def rst_reason(name):
    """Reason names are asserted where this kernel's BTF says tcp_send_reset
    reports that one (3 arguments and SK_RST_REASON_<name>: 6.10+, the
    active-reset names complete in 6.12); not checked on older kernels.
    Decided from BTF as rstwatch decides, never from the release string."""
    return name if btf.has_rst_reason(name) else ANY


# Evidence a program reads from the clock at its own run: two rstwatch
# instances tracing one connection may straddle a millisecond (lifetime_ms)
# or a jiffy (the last_*_ms ages), seen under qemu.
CLOCKED = ("lifetime_ms", "last_sent_ms", "last_recv_ms", "last_ack_ms")


def across_instances(lines):
    """JSON verdict lines as two instances (or a live one and a replay of
    another's trace) must agree on them: without the time, which each
    instance converts with its own clock offset, and the CLOCKED evidence.
    Sorted, one canonical JSON string each."""
    out = []
    for line in lines:
        o = {k: v for k, v in json.loads(line).items() if k != "time"}
        o["evidence"] = {k: v for k, v in (o.get("evidence") or {}).items() if k not in CLOCKED}
        out.append(json.dumps(o, sort_keys=True))
    return sorted(out)


class Failure(Exception):
    def __init__(self, msg, details=()):
        super().__init__(msg)
        self.details = list(details)


class Expect:
    """One expected verdict. owner is an Actor (pid, comm, cgroup asserted) or
    None (pid, comm and cgroup must be null). reason/evidence are only checked
    when given; evidence is a dict of exact values (or ranges).  The caller sets .addrs
    (laddr, lport, raddr, rport as the verdict's namespace sees them).
    tw_only: printed only with --time-wait (a TIME_WAIT entry, its expiry, its
    reuse by connect()); by default a time_wait verdict with no subtype or
    "expired" is.  hint: words the hint must contain, where the scenario
    pins which one applies."""

    def __init__(self, side, cls, subtype, state, origin, owner, reason=ANY, evidence=None,
                 tw_only=None, hint=None):
        self.side, self.cls, self.subtype, self.state, self.origin = side, cls, subtype, state, origin
        self.owner, self.reason, self.evidence = owner, reason, evidence or {}
        self.hint = hint
        self.tw_only = (cls == "time_wait" and subtype in (None, "expired")) if tw_only is None \
            else tw_only

    @property
    def key(self):
        return (self.side, self.cls, self.subtype, self.state, self.origin)


def key_text(key):
    side, cls, subtype, state, origin = key
    return f"{side}:{cls}{'/' + subtype if subtype else ''}({state or 'null'},{origin})"


def contract_problems(obj, t0, t1):
    """Problems with one JSON object against the stable core (JSON FIELDS in
    rstwatch(8)) and deploy/rstwatch.schema.json (which also covers the -c/-i
    summaries)."""
    if not isinstance(obj, dict):
        return [f"not a JSON object: {obj!r}"]
    if "summary" in obj:
        return schema.problems(obj)
    missing = [k for k in KEYS if k not in obj]
    if missing:
        return [f"missing key(s) {', '.join(missing)}"]
    p = schema.problems(obj)

    def typed(k, types, nullable=False):
        v = obj[k]
        if v is None and nullable:
            return
        if isinstance(v, bool) or not isinstance(v, types) or (isinstance(v, str) and not v):
            p.append(f"{k}={v!r} has the wrong type")

    for k in ("class", "family", "laddr", "raddr", "hint"):
        typed(k, str)
    for k in ("subtype", "reason", "state", "comm"):
        typed(k, str, nullable=True)
    for k in ("lport", "rport", "netns"):
        typed(k, int)
    typed("pid", int, nullable=True)
    typed("evidence", dict)
    if obj["origin"] not in ORIGINS:
        p.append(f"origin={obj['origin']!r}")
    if obj["family"] not in ("ipv4", "ipv6"):
        p.append(f"family={obj['family']!r}")
    if isinstance(obj["reason"], str) and obj["reason"].startswith("SK_RST_REASON_"):
        p.append(f"reason={obj['reason']!r} keeps the SK_RST_REASON_ prefix")
    if isinstance(obj["state"], str) and obj["state"].startswith("TCP_"):
        p.append(f"state={obj['state']!r} keeps the TCP_ prefix")
    m = TIME_RE.match(obj["time"]) if isinstance(obj["time"], str) else None
    if not m:
        p.append(f"time={obj['time']!r} is not RFC 3339 UTC with nanoseconds")
    else:
        ts = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=datetime.timezone.utc).timestamp() + int(m.group(2)) / 1e9
        if not t0 - 2 <= ts <= t1 + 2:
            p.append(f"time={obj['time']} is outside the test's run "
                     f"[{_iso(t0)}, {_iso(t1)}] (+-2 s)")
    return p


def _iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:%M:%S.%f")


def check(expected, seen, where, family, problems):
    """Compare verdicts seen (JSON objects already known to be this test's
    port in A or B) with the expected list; where(obj) -> 'A'|'B'.  Appends
    human-readable problems, the multiset mismatch (if any) first."""
    def seen_key(o):
        return (where(o), o["class"], o["subtype"], o["state"], o["origin"])

    def order(key):     # subtype and state may be None
        return tuple("" if x is None else x for x in key)

    exp_keys = sorted((e.key for e in expected), key=order)
    seen_keys = sorted((seen_key(o) for o in seen), key=order)
    if exp_keys != seen_keys:
        problems.insert(0, "verdicts: expected [" + ", ".join(map(key_text, exp_keys)) +
                        "] vs seen [" + ", ".join(map(key_text, seen_keys)) + "]")
    pool = list(seen)
    for e in expected:
        # same key: prefer the one at the expected addresses (several
        # verdicts of one key differ only there)
        same = [o for o in pool if seen_key(o) == e.key]
        o = next((o for o in same if all(o.get(k) == v for k, v in e.addrs.items())),
                 same[0] if same else None)
        if o is None:
            continue
        pool.remove(o)
        name = key_text(e.key)
        want = dict(e.addrs)
        want["family"] = getattr(e, "family", family)
        if e.owner is None:
            want.update(pid=None, comm=None, cgroup=None)
        else:
            want.update(pid=e.owner.pid, comm=e.owner.comm)
        if e.reason is not ANY:
            want["reason"] = e.reason
        for k, v in want.items():
            if o.get(k) != v:
                problems.append(f"{name}: {k} expected {v!r} vs seen {o.get(k)!r}")
        if e.owner is not None:
            # cgroup: the owner's cgroup v2 path, as /proc/PID/cgroup gives it
            if o.get("cgroup") != e.owner.cgroup_path:
                problems.append(f"{name}: cgroup expected {e.owner.cgroup_path!r} "
                                f"(owner {e.owner.comm}) vs seen {o.get('cgroup')!r}")
        if e.hint is not None and e.hint not in (o.get("hint") or ""):
            problems.append(f"{name}: hint expected to say {e.hint!r} vs seen {o.get('hint')!r}")
        for k, v in e.evidence.items():
            got = (o.get("evidence") or {}).get(k)
            # a range: a duration measured by a periodic walk, within bounds
            if (got not in v) if isinstance(v, range) else (got != v):
                problems.append(f"{name}: evidence.{k} expected {v!r} vs seen {got!r}")


def check_counter_parity(seen, where, deltas, problems):
    """SPEC invariant: per namespace, verdict count per class == TcpExt delta."""
    for side, delta in deltas.items():
        for counter in sorted(set(COUNTER_OF_CLASS.values())):
            n = sum(1 for o in seen if where(o) == side and COUNTER_OF_CLASS.get(o["class"]) == counter
                    and not uncounted(o))
            if n != delta.get(counter, 0):
                problems.append(f"{side}: {n} verdict(s) counted by {counter} vs its delta "
                                f"{delta.get(counter, 0)}")
