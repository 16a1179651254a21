#!/usr/bin/python3
"""Inject TCP RSTs as a third party on the path would, with scapy.

usage: /usr/bin/python3 inject.py SRC SPORT DST DPORT SEQ[@WHEN]... [-- SRC SPORT ...]...
       /usr/bin/python3 inject.py             (the same, one command per stdin line)

Run by the e2e tests in the router namespace of NsRouted (netns.py), under
Debian's /usr/bin/python3, which has python3-scapy.  Sends, for each SEQ, one
segment with only RST set (no ACK: in a synchronised state the receiver looks
at its sequence number alone, tcp_validate_incoming()) from SRC:SPORT, an
address this namespace does not own, to DST:DPORT, through the kernel's raw
IP socket (scapy's L3RawSocket: this namespace's routes and neighbours);
after waiting until CLOCK_MONOTONIC reaches WHEN (seconds), if given.  Prints
one JSON line per RST sent: {"seq", "at"} (the monotonic time it left).
Groups separated by -- are sent one after the other, as fast as they go:
RSTs to both ends of a connection within a fraction of a millisecond.
Without arguments it prints {"ready": true} once scapy is imported (seconds
on a slow machine), then runs each line of standard input as a command line
and answers {"done": true} after its RSTs: a scenario starts it early and
times the RSTs it asks for to the millisecond.
"""
import json
import logging
import sys
import time

logging.getLogger("scapy").setLevel(logging.ERROR)
from scapy.all import IP, IPv6, TCP, L3RawSocket, L3RawSocket6  # noqa: E402


def send(group):
    if len(group) < 5:
        sys.exit(__doc__.split("\n\n")[1])
    src, sport, dst, dport = group[0], int(group[1]), group[2], int(group[3])
    v6 = ":" in dst
    sock = L3RawSocket6() if v6 else L3RawSocket()
    ip = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)
    try:
        for arg in group[4:]:
            seq, _, when = arg.partition("@")
            if when:
                time.sleep(max(0.0, float(when) - time.monotonic()))
            sock.send(ip / TCP(sport=sport, dport=dport, flags="R", seq=int(seq) & 0xffffffff,
                               window=0))
            print(json.dumps({"seq": int(seq) & 0xffffffff, "at": time.monotonic()}), flush=True)
    finally:
        sock.close()


def run(args):
    group = []
    for arg in args + ["--"]:
        if arg != "--":
            group.append(arg)
            continue
        send(group)
        group = []


def main(argv):
    if len(argv) > 1:
        run(argv[1:])
        return
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.split():
            run(line.split())
            print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    main(sys.argv)
