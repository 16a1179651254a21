#!/usr/bin/env python3
"""vm_startup_line: what rstwatch -v says at start-up on the guest kernel.

usage: python3 tests/vm/startup.py RSTWATCH

Runs `RSTWATCH -v --port 1` until it prints "rstwatch: tracing" (60 s at
most: TCG is slow), stops it, echoes its rstwatch: lines as
"rstwatch-vm: -v: ..." and checks them against what this kernel's BTF says
rstwatch needs (the same facts user/loader.c decides from, read by
tests/e2e/btf.py, never the release string):

- tcp_send_reset with a reason (6.10+): no stand-in hook is named;
- without it, and with kfree_skb's drop reason NO_SOCKET (5.17-6.9):
  refused and half_open come from skb:kfree_skb, time_wait_rst from fentry;
- with neither (5.8-5.16): all three come from fentry on
  tcp_v4_send_reset/tcp_v6_send_reset;
- no class is announced as unreportable, except where tests/vm/run boots
  a kernel known to refuse attaching fentry (rw.no_fentry=1 on its command
  line: Debian's arm64 6.1): there exactly the classes that lose their hook;
- the path's classes, in lines of their own: challenged_rst exactly where
  kfree_skb names no receiving socket or there is no drop reason TCP_RESET,
  middlebox_reset (one end reset) exactly where bpf_for_each_map_elem() is
  missing.

Prints `PASS vm_startup_line` or `FAIL vm_startup_line: ...`; exits 0 iff
it passed.
"""
import os
import queue
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
sys.dont_write_bytecode = True
import btf  # noqa: E402

NAME = "vm_startup_line"
KFREE = "refused and half_open come from skb:kfree_skb"
FENTRY_NOSOCK = "refused and half_open come from fentry on tcp_v4_send_reset"
FENTRY_TW = "time_wait_rst comes from fentry on tcp_v4_send_reset"


def startup(rstwatch):
    """rstwatch -v's stderr from start to a stop right after 'tracing'."""
    p = subprocess.Popen([rstwatch, "-v", "--port", "1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in p.stderr],
                              daemon=True)
    reader.start()
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        try:
            seen.append(lines.get(timeout=0.2))
        except queue.Empty:
            continue
        if seen[-1].startswith("rstwatch: tracing"):
            break
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    reader.join(timeout=5)
    while not lines.empty():
        seen.append(lines.get())
    return seen


def expected(fentry):
    """(phrases that must appear, phrases that must not, the classes the
    'cannot report' line must list, or None for no such line) on this
    kernel; fentry: whether it attaches fentry programs."""
    k = btf.kernel()
    if k.tp_nargs("tcp_send_reset") >= 3:
        return [], [KFREE, FENTRY_NOSOCK, FENTRY_TW], None
    if k.tp_nargs("kfree_skb") >= 3 and \
            "SKB_DROP_REASON_NO_SOCKET" in k.enum_names("skb_drop_reason"):
        if fentry:
            return [KFREE, FENTRY_TW], [FENTRY_NOSOCK], None
        return [KFREE], [FENTRY_NOSOCK, FENTRY_TW], "time_wait_rst"
    if fentry:
        return [FENTRY_NOSOCK, FENTRY_TW], [KFREE], None
    return [], [KFREE, FENTRY_NOSOCK, FENTRY_TW], "refused, half_open, time_wait_rst"


def fentry_attaches():
    """False where tests/vm/run booted a kernel known to refuse attaching
    fentry (kernel command line rw.no_fentry=1)."""
    with open("/proc/cmdline") as f:
        return "rw.no_fentry=1" not in f.read().split()


def main():
    lines = startup(sys.argv[1])
    said = [l for l in lines if l.startswith("rstwatch:")]
    for l in said:
        print("rstwatch-vm: -v: " + l)
    text = "\n".join(said)
    must, must_not, unreportable = expected(fentry_attaches())
    cannot = [l for l in said if "cannot report" in l]
    path = {"challenged_rst": not btf.has_refused_rst(), "middlebox_reset": not btf.has_peer_probe()}
    problems = [f"expected {'a' if due else 'no'} line that this kernel cannot report {cls}"
                for cls, due in path.items()
                if due != any(l.startswith(f"rstwatch: this kernel cannot report: {cls} ")
                              for l in cannot)]
    cannot = [l for l in cannot if not any(l.startswith(f"rstwatch: this kernel cannot report: {c} ")
                                           for c in path)]
    want = f"rstwatch: this kernel cannot report: {unreportable} (" if unreportable else None
    if want is None:
        problems += [f"expected no class this kernel cannot report vs seen: {l}" for l in cannot]
    elif len(cannot) != 1 or not cannot[0].startswith(want):
        problems += [f"expected '{want}...' vs seen {cannot}"]
    problems += [f"expected -v to say '{p}...'" for p in must if p not in text]
    problems += [f"expected -v not to say '{p}...'" for p in must_not if p in text]
    if not any(l.startswith("rstwatch: tracing") for l in said):
        problems.insert(0, "expected 'rstwatch: tracing' within 60 s")
        # a refused load: the verifier's last words name the culprit
        log = [l for l in lines if not l.startswith("rstwatch:")]
        end = next((i for i, l in enumerate(log) if l.startswith("processed ")), len(log))
        problems += log[max(0, end - 20):end + 1]
    if problems:
        print(f"FAIL {NAME}: {problems[0]}")
        for p in problems[1:]:
            print("    " + p)
        return 1
    print(f"PASS {NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
