"""A fresh pair of network namespaces joined by a veth pair.

A (the client) has 10.231.N.1/24 and fd00:231:N::1/64, B (the server) has
10.231.N.2/24 and fd00:231:N::2/64; both interfaces are called eth0.  Nothing
here ever routes outside the pair.
"""
import os
import subprocess
import time

NETNS_DIR = "/var/run/netns"


class NetnsError(Exception):
    pass


def sh(*argv, input=None, check=True, timeout=10):
    p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise NetnsError(f"`{' '.join(argv)}` failed ({p.returncode}): {p.stderr.strip()}")
    return p


class NsPair:
    def __init__(self, n):
        if not 1 <= n <= 254:
            raise ValueError("pair number must be 1..254")
        self.n = n
        self.names = {"A": f"rwA-{os.getpid()}-{n}", "B": f"rwB-{os.getpid()}-{n}"}
        self.created = []

    # -- addresses
    def addr(self, side, family):
        host = {"A": 1, "B": 2}[side]
        return f"10.231.{self.n}.{host}" if family == "ipv4" else f"fd00:231:{self.n}::{host}"

    def path(self, side):
        return os.path.join(NETNS_DIR, self.names[side])

    def inode(self, side):
        return os.stat(os.path.join(NETNS_DIR, self.names[side])).st_ino

    # -- life cycle
    def setup(self):
        a, b = self.names["A"], self.names["B"]
        for side in ("A", "B"):
            sh("ip", "netns", "add", self.names[side])
            self.created.append(self.names[side])
        # The veth pair is created directly inside the namespaces (no name in
        # the root netns).  Distinct ifindexes matter: when a device's ifindex
        # equals its iflink (both ends 2 in fresh namespaces), linkwatch treats
        # carrier-up as non-urgent and may delay it by up to 1 s, during which
        # the qdisc is noop and the first SYN is silently dropped.
        sh("ip", "-n", a, "link", "add", "eth0", "index", "10", "type", "veth",
           "peer", "name", "eth0", "index", "20", "netns", b)
        for side in ("A", "B"):
            ns = self.names[side]
            sh("ip", "-n", ns, "addr", "add", self.addr(side, "ipv4") + "/24", "dev", "eth0")
            sh("ip", "-n", ns, "addr", "add", self.addr(side, "ipv6") + "/64", "dev", "eth0", "nodad")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        self.wait_up()

    def wait_up(self, timeout=5):
        """Wait until both ends are operationally UP (qdisc attached)."""
        deadline = time.monotonic() + timeout
        for side in ("A", "B"):
            while True:
                out = sh("ip", "-n", self.names[side], "-o", "link", "show", "eth0").stdout
                if " state UP " in out:
                    break
                if time.monotonic() > deadline:
                    raise NetnsError(f"eth0 in {self.names[side]} not UP after {timeout}s: {out.strip()}")
                time.sleep(0.02)

    def teardown(self):
        errors = []
        for ns in reversed(self.created):
            p = sh("ip", "netns", "del", ns, check=False)
            if p.returncode != 0:
                errors.append(p.stderr.strip())
        self.created = []
        return errors

    # -- inside a namespace
    def exec(self, side, *argv, input=None, check=True):
        return sh("ip", "netns", "exec", self.names[side], *argv, input=input, check=check)

    def sysctl(self, side, key, value):
        self.exec(side, "sysctl", "-qw", f"{key}={value}")

    def nft(self, side, script):
        self.exec(side, "nft", "-f", "-", input=script)

    def nft_input(self, side, rule):
        """Table inet rwtest in `side` with one rule in an input chain."""
        self.nft(side, f"""
table inet rwtest {{
    chain input {{
        type filter hook input priority 0; policy accept;
        {rule}
    }}
}}
""")

    def drop_incoming_tcp(self, side, port):
        """Drop every TCP segment to `port` arriving in `side`."""
        self.nft_input(side, f"tcp dport {port} drop")

    def drop_incoming_rst(self, side, port):
        """Drop RSTs from `port` arriving in `side`."""
        self.nft_input(side, f"tcp sport {port} tcp flags & rst == rst drop")

    def nft_flush(self, side):
        self.exec(side, "nft", "delete", "table", "inet", "rwtest")

    def counters(self, side):
        """{'TcpExt': {...}, 'Tcp': {...}} as seen in `side`'s /proc/net."""
        text = self.exec(side, "cat", "/proc/net/netstat", "/proc/net/snmp").stdout
        out = {}
        lines = text.splitlines()
        for names, values in zip(lines[0::2], lines[1::2]):
            sect, _, names = names.partition(":")
            sect2, _, values = values.partition(":")
            if sect != sect2:
                raise NetnsError(f"cannot parse /proc/net counters near {sect!r}")
            if sect in ("TcpExt", "Tcp"):
                out[sect] = {k: int(v) for k, v in zip(names.split(), values.split())}
        return out

    def sockets(self, side, state):
        """`ss -Htan state STATE` lines in `side`."""
        return [l for l in self.exec(side, "ss", "-Htan", "state", state).stdout.splitlines() if l.strip()]


def counter_delta(before, after, section="TcpExt"):
    b, a = before[section], after[section]
    return {k: a[k] - b.get(k, 0) for k in a if a[k] != b.get(k, 0)}
