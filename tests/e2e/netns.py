"""A fresh pair of network namespaces joined by a veth pair (NsPair), or the
pair with a router namespace between them (NsRouted).

NsPair: A (the client) has 10.231.N.1/24 and fd00:231:N::1/64, B (the server)
has 10.231.N.2/24 and fd00:231:N::2/64; both interfaces are called eth0.
NsRouted: A is 10.231.N.1 behind R's eth0 (10.231.N.254, fd00:231:N::fe),
B is 10.232.N.2 (fd00:232:N::2) behind R's eth1 (10.232.N.254, fd00:232:N::fe);
R forwards between them.  Nothing here ever routes outside the namespaces.
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
    sides = "AB"

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

    def wait_up(self, timeout=5, links=(("A", "eth0"), ("B", "eth0"))):
        """Wait until the links are operationally UP (qdisc attached)."""
        deadline = time.monotonic() + timeout
        for side, dev in links:
            while True:
                out = sh("ip", "-n", self.names[side], "-o", "link", "show", dev).stdout
                if " state UP " in out:
                    break
                if time.monotonic() > deadline:
                    raise NetnsError(f"{dev} in {self.names[side]} not UP after {timeout}s: {out.strip()}")
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


class NsRouted(NsPair):
    """A - R - B: the client and the server on subnets of their own, a router
    namespace R between them, where middleboxes (nftables, NAT, conntrack)
    and third parties act on the connection."""
    sides = "ABR"
    SUBNET = {"A": 231, "B": 232}

    def __init__(self, n):
        super().__init__(n)
        self.names["R"] = f"rwR-{os.getpid()}-{n}"

    def addr(self, side, family):
        """An end's address; R's on A's side (R is 'RA') or B's side ('RB')."""
        net = self.SUBNET[side[-1]]
        if family == "ipv4":
            return f"10.{net}.{self.n}.{254 if side[0] == 'R' else {'A': 1, 'B': 2}[side]}"
        return f"fd00:{net}:{self.n}::{'fe' if side[0] == 'R' else {'A': 1, 'B': 2}[side]}"

    def setup(self):
        for side in "ABR":
            sh("ip", "netns", "add", self.names[side])
            self.created.append(self.names[side])
            # no duplicate address detection on the links to come: while
            # their link-local addresses were tentative, neighbour discovery
            # through R lost the first SYN or SYN-ACK now and then (IPv6)
            for conf in ("all", "default"):
                self.sysctl(side, f"net.ipv6.conf.{conf}.accept_dad", 0)
        a, b, r = self.names["A"], self.names["B"], self.names["R"]
        # distinct ifindexes on each pair (see NsPair.setup)
        sh("ip", "-n", a, "link", "add", "eth0", "index", "10", "type", "veth",
           "peer", "name", "eth0", "index", "30", "netns", r)
        sh("ip", "-n", b, "link", "add", "eth0", "index", "20", "type", "veth",
           "peer", "name", "eth1", "index", "40", "netns", r)
        for side, dev, addr in (("A", "eth0", "A"), ("B", "eth0", "B"),
                                ("R", "eth0", "RA"), ("R", "eth1", "RB")):
            ns = self.names[side]
            sh("ip", "-n", ns, "addr", "add", self.addr(addr, "ipv4") + "/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", self.addr(addr, "ipv6") + "/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        for side in "ABR":
            sh("ip", "-n", self.names[side], "link", "set", "lo", "up")
        for side in "AB":
            sh("ip", "-n", self.names[side], "route", "add", "default", "via",
               self.addr("R" + side, "ipv4"))
            sh("ip", "-n", self.names[side], "-6", "route", "add", "default", "via",
               self.addr("R" + side, "ipv6"))
        self.sysctl("R", "net.ipv4.ip_forward", 1)
        self.sysctl("R", "net.ipv6.conf.all.forwarding", 1)
        self.wait_up(links=(("A", "eth0"), ("B", "eth0"), ("R", "eth0"), ("R", "eth1")))


def counter_delta(before, after, section="TcpExt"):
    b, a = before[section], after[section]
    return {k: a[k] - b.get(k, 0) for k in a if a[k] != b.get(k, 0)}
