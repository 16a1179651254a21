#!/usr/bin/env python3
"""Socket actor for the rstwatch end-to-end tests.

Run inside a network namespace as `actor.py COMM`: the process renames itself
to COMM (prctl PR_SET_NAME) so rstwatch's owner comm can be asserted exactly,
prints one JSON line {"pid", "comm"}, then executes one command per stdin line
and answers each with one JSON line on stdout:
    {"ok": true, ...}  or  {"ok": false, "errno": "ECONNRESET", "msg": ...}

The test driver (class Actor below, imported by run.py) sends the commands
and waits for the answers, so every step of a scenario is synchronised on an
observed result, never on a sleep.

Commands (one socket per actor: `conn`, plus `lsock` for a server):
    listen FAMILY ADDR PORT [BACKLOG [RCVBUF]]
                                bind + listen (backlog 16; SO_RCVBUF, inherited)
    accept                      accept one connection into conn
    close_listener
    socket FAMILY ADDR [PORT]   new conn bound to ADDR:PORT (0); answers its lport;
                                ADDR '-' leaves it unbound (connect() picks the port)
    connect ADDR PORT           blocking connect of conn; answers its lport
    send N                      send N bytes
    recv                        one blocking recv; answers n (0 = EOF)
    wait_readable N             wait until N bytes are queued, without reading
    linger0                     SO_LINGER {1, 0}
    keepalive IDLE INTVL CNT    TCP_KEEPIDLE/INTVL/CNT, then SO_KEEPALIVE 1
    shutdown_wr
    close
    linger2 SECS                TCP_LINGER2 (-1: abort in FIN_WAIT2 at close)
    user_timeout MS             TCP_USER_TIMEOUT
    disconnect                  connect(AF_UNSPEC): tcp_disconnect()
    send_nb N                   one non-blocking send of N bytes; answers sent
    tcp_info                    answers state, probes, backoff, unacked, snd_wnd
    wait_state STATE            poll TCP_INFO until tcpi_state is STATE (a name)
    wait_hup                    poll() until POLLHUP (e.g. a RST was processed)
    seqs                        TCP_REPAIR peek: answers snd_seq (write_seq) and
                                rcv_seq (rcv_nxt), then leaves repair without probe
    so_error                    getsockopt SO_ERROR: answers its errno name or null
    raw_rst SRC SPORT DST DPORT SEQ
                                send one crafted RST from a raw socket, from no
                                TCP socket of this host
    churn ADDR PORT N           N connections (unbound socket, connect, FIN, wait
                                for the peer's FIN, close): each client closes
                                first and ends in TIME_WAIT; answers lports
    serve N                     accept N connections, read each to EOF, close it
    craft FLAGS SEQ ACK [LEN]   send one raw TCP segment on conn's 4-tuple (FLAGS
                                like FA, PA; LEN payload bytes), no options
    pin CPU                     run on CPU only (sched_setaffinity): the softirq
                                work a send triggers then runs there too
"""
import ctypes
import errno
import fcntl
import json
import os
import queue
import select
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

PR_SET_NAME = 15
TCP_LINGER2 = 8
TCP_USER_TIMEOUT = 18
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ = 19, 20, 21
TCP_RECV_QUEUE, TCP_SEND_QUEUE = 1, 2
TCP_REPAIR_ON, TCP_REPAIR_OFF_NO_WP = 1, -1
IPV6_CHECKSUM = 7
TCP_STATES = ("", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
              "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV")
FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


# ---------------------------------------------------------------- in the netns

def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def cgroup_v2_path(pid):
    """The process's cgroup v2 path ('0::' line), or None."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def sockaddr(family, addr, port):
    return (addr, port) if family == socket.AF_INET else (addr, port, 0, 0)


class Sockets:
    def __init__(self):
        self.lsock = None
        self.conn = None
        self.kept = []      # replaced conns stay open: no implicit close() or FIN

    def do_listen(self, fam, addr, port, backlog="16", rcvbuf=None):
        s = socket.socket(FAMILIES[fam], socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(rcvbuf))
        s.bind(sockaddr(s.family, addr, int(port)))
        s.listen(int(backlog))
        self.lsock = s
        return {}

    def do_accept(self):
        self.kept.append(self.conn)
        self.conn, peer = self.lsock.accept()
        return {"peer": peer[0], "peer_port": peer[1]}

    def do_close_listener(self):
        self.lsock.close()
        self.lsock = None
        return {}

    def do_pin(self, cpu):
        os.sched_setaffinity(0, {int(cpu)})
        return {}

    def do_socket(self, fam, addr, port="0"):
        s = socket.socket(FAMILIES[fam], socket.SOCK_STREAM)
        self.kept.append(self.conn)
        self.conn = s
        if addr == "-":
            return {"lport": None}
        s.bind(sockaddr(s.family, addr, int(port)))
        return {"lport": s.getsockname()[1]}

    def do_connect(self, addr, port):
        self.conn.connect(sockaddr(self.conn.family, addr, int(port)))
        return {"lport": self.conn.getsockname()[1]}

    def do_send(self, n):
        self.conn.sendall(b"x" * int(n))
        return {}

    def do_recv(self):
        return {"n": len(self.conn.recv(65536))}

    def do_wait_readable(self, n, timeout="10"):
        deadline = time.monotonic() + float(timeout)
        buf = bytearray(4)
        while True:
            fcntl.ioctl(self.conn.fileno(), termios.FIONREAD, buf)
            queued = struct.unpack("i", buf)[0]
            if queued >= int(n):
                return {"queued": queued}
            left = deadline - time.monotonic()
            if left <= 0:
                raise OSError(errno.ETIMEDOUT, f"only {queued} bytes queued")
            # readable as soon as anything is queued: poll, then re-check
            if queued == 0:
                select.select([self.conn], [], [], left)
            else:
                time.sleep(0.01)

    def do_linger0(self):
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return {}

    def do_keepalive(self, idle, intvl, cnt):
        c = self.conn
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, int(idle))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, int(intvl))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, int(cnt))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return {}

    def do_shutdown_wr(self):
        self.conn.shutdown(socket.SHUT_WR)
        return {}

    def do_close(self):
        self.conn.close()
        self.conn = None
        return {}

    def do_linger2(self, secs):
        self.conn.setsockopt(socket.IPPROTO_TCP, TCP_LINGER2, int(secs))
        return {}

    def do_user_timeout(self, ms):
        self.conn.setsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT, int(ms))
        return {}

    def do_disconnect(self):
        libc = ctypes.CDLL(None, use_errno=True)
        unspec = struct.pack("H14x", socket.AF_UNSPEC)   # struct sockaddr, sa_family only
        if libc.connect(self.conn.fileno(), unspec, len(unspec)) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return {}

    def do_send_nb(self, n):
        try:
            return {"sent": self.conn.send(b"x" * int(n), socket.MSG_DONTWAIT)}
        except BlockingIOError:
            return {"sent": 0}

    def do_tcp_info(self):
        raw = self.conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        state, _, _, probes, backoff = struct.unpack_from("5B", raw, 0)
        unacked = struct.unpack_from("I", raw, 24)[0]
        # struct tcp_info: tcpi_snd_wnd (6.2+) follows tcpi_rcv_wnd ... at byte 228
        snd_wnd = struct.unpack_from("I", raw, 228)[0] if len(raw) >= 232 else None
        return {"state": TCP_STATES[state], "probes": probes, "backoff": backoff,
                "unacked": unacked, "snd_wnd": snd_wnd}

    def do_wait_state(self, want, timeout="10"):
        deadline = time.monotonic() + float(timeout)
        while True:
            info = self.do_tcp_info()
            if info["state"] == want:
                return info
            if time.monotonic() > deadline:
                raise OSError(errno.ETIMEDOUT, f"state {info['state']}, not {want}")
            time.sleep(0.005)

    def do_wait_hup(self, timeout="10"):
        p = select.poll()
        p.register(self.conn, select.POLLHUP)
        ev = p.poll(float(timeout) * 1000)
        if not ev or not ev[0][1] & select.POLLHUP:
            raise OSError(errno.ETIMEDOUT, f"no POLLHUP: {ev}")
        return {"events": ev[0][1]}

    def do_seqs(self):
        c, out = self.conn, {}
        c.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)
        try:
            for name, q in (("snd_seq", TCP_SEND_QUEUE), ("rcv_seq", TCP_RECV_QUEUE)):
                c.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, q)
                out[name] = c.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ) & 0xffffffff
        finally:
            c.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)
        return out

    def do_so_error(self):
        err = self.conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return {"so_error": errno.errorcode.get(err) if err else None}

    def do_raw_rst(self, src, sport, dst, dport, seq):
        fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
        hdr = struct.pack("!HHIIBBHHH", int(sport), int(dport), int(seq) & 0xffffffff, 0,
                          5 << 4, 0x04, 0, 0, 0)
        pseudo = (socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) +
                  (struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(hdr)) if fam == socket.AF_INET
                   else struct.pack("!IxxxB", len(hdr), socket.IPPROTO_TCP)))
        hdr = hdr[:16] + struct.pack("!H", inet_csum(pseudo + hdr)) + hdr[18:]
        with socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP) as r:
            r.bind(sockaddr(fam, src, 0))
            r.sendto(hdr, sockaddr(fam, dst, 0))
        return {}

    def do_churn(self, addr, port, n):
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        lports = []
        for _ in range(int(n)):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.connect(sockaddr(fam, addr, int(port)))
            lports.append(s.getsockname()[1])
            # FIN first, close() only after the peer's FIN: the socket is in
            # TIME_WAIT by then, whatever the timing.  A plain close() races
            # with the ACK of its FIN and may leave the time-wait socket in
            # its FIN_WAIT2 substate (seen on 6.1 under qemu).
            s.shutdown(socket.SHUT_WR)
            s.recv(1)
            s.close()
        return {"lports": lports}

    def do_serve(self, n):
        for _ in range(int(n)):
            c, _ = self.lsock.accept()
            while c.recv(65536):
                pass
            c.close()
        return {}

    def do_craft(self, flags, seq, ack, n="0"):
        """A bare TCP header (+ n bytes 'x') from conn's local end to its peer,
        through a raw socket: the kernel adds the IP header (and, for IPv6,
        the checksum)."""
        c = self.conn
        la, ra = c.getsockname(), c.getpeername()
        bits = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}
        fl = sum(bits[f] for f in flags)
        payload = b"x" * int(n)
        hdr = struct.pack("!HHIIBBHHH", la[1], ra[1], int(seq) & 0xffffffff,
                          int(ack) & 0xffffffff, 5 << 4, fl, 65535, 0, 0)
        r = socket.socket(c.family, socket.SOCK_RAW, socket.IPPROTO_TCP)
        try:
            if c.family == socket.AF_INET6:
                r.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, 16)
                seg = hdr + payload
            else:
                pseudo = (socket.inet_aton(la[0]) + socket.inet_aton(ra[0]) +
                          struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(hdr) + len(payload)))
                seg = hdr[:16] + struct.pack("!H", inet_csum(pseudo + hdr + payload)) + hdr[18:] + payload
            r.sendto(seg, (ra[0], 0) if c.family == socket.AF_INET else (ra[0], 0, 0, 0))
        finally:
            r.close()
        return {"seq": int(seq), "ack": int(ack), "flags": fl}


def inet_csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def actor_main(comm):
    set_comm(comm)
    out = sys.stdout

    def say(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    with open("/proc/self/comm") as f:
        say({"pid": os.getpid(), "comm": f.read().strip(), "cgroup": cgroup_v2_path("self")})
    socks = Sockets()
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        words = line.split()
        if not words:
            continue
        handler = getattr(socks, "do_" + words[0], None)
        if handler is None:
            say({"ok": False, "errno": None, "msg": f"unknown command {words[0]!r}"})
            continue
        try:
            say({"ok": True, **handler(*words[1:])})
        except OSError as e:
            name = errno.errorcode.get(e.errno) if e.errno else None
            say({"ok": False, "errno": name, "msg": str(e)})
        except Exception as e:  # a bug in the test, not a socket error
            say({"ok": False, "errno": None, "msg": f"{type(e).__name__}: {e}"})


# ------------------------------------------------------------ the test driver

class ActorError(Exception):
    pass


class Actor:
    """Drives one actor.py process inside network namespace `ns`."""

    def __init__(self, ns, comm, timeout=10):
        self.ns = ns
        self.comm = comm
        self.stderr = []
        self._q = queue.Queue()
        self._pending = None
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-u", os.path.abspath(__file__), comm],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1)
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._threads:
            t.start()
        self._pending = "(startup)"
        try:
            hello = self.reply(timeout)
            if "pid" not in hello:
                raise ActorError(f"actor {comm} did not start: {hello} {' | '.join(self.stderr[-5:])}")
            self.pid = hello["pid"]
            if self.pid != self.proc.pid:
                raise ActorError(f"actor {comm}: pid {self.pid} is not Popen's pid "
                                 f"{self.proc.pid} (ip netns exec did not exec?)")
            if hello["comm"] != comm:
                raise ActorError(f"actor {comm}: comm is {hello['comm']!r} after prctl")
            self.cgroup_path = hello["cgroup"]
        except BaseException:
            self.kill()
            raise

    def _read_out(self):
        for line in self.proc.stdout:
            try:
                self._q.put(json.loads(line))
            except ValueError:
                self._q.put({"ok": False, "errno": None, "msg": f"garbage: {line!r}"})
        self._q.put(None)

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def send(self, cmd):
        """Start a command without waiting for its answer (see reply())."""
        if self._pending is not None:
            raise ActorError(f"actor {self.comm}: '{cmd}' sent while '{self._pending}' is pending")
        self._pending = cmd
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout=5):
        cmd = self._pending
        try:
            r = self._q.get(timeout=timeout)
        except queue.Empty:
            raise ActorError(f"actor {self.comm}: no answer to '{cmd}' within {timeout:g}s") from None
        finally:
            self._pending = None
        if r is None:
            raise ActorError(f"actor {self.comm} exited during '{cmd}': {' | '.join(self.stderr[-5:])}")
        return r

    def do(self, cmd, timeout=5):
        """Run a command that must succeed; return its answer."""
        self.send(cmd)
        return self.expect(None, timeout)

    def expect(self, err, timeout=5):
        """Wait for the pending command's answer: success if err is None,
        else the failure with errno name `err` (or 0 bytes if err == 'EOF')."""
        cmd = self._pending
        r = self.reply(timeout)
        if err == "EOF":
            if r["ok"] and r.get("n") == 0:
                return r
        elif err is None:
            if r["ok"]:
                return r
        elif not r["ok"] and r["errno"] == err:
            return r
        seen = f"{r['errno']} ({r['msg']})" if not r["ok"] else f"success {r}"
        raise ActorError(f"{self.comm} '{cmd}': expected {err or 'success'}, got {seen}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        for t in self._threads:  # they end at EOF, then close their pipes
            t.join(timeout=2)
        self.proc.stdout.close()
        self.proc.stderr.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: actor.py COMM")
    actor_main(sys.argv[1])
