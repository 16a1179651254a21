"""The files rstwatch writes as root (-w, -o and -o's reopen on SIGHUP),
attacked by an unprivileged local user.

Each test takes a hardening.Ctx `c`, turns the kernel's own protections off
for its duration (fs.protected_symlinks, _hardlinks, _regular, _fifos = 0,
as on many container hosts; the old values are restored after, under a lock
so that parallel runs cannot leave them off), plants the attack as `nobody`
in a sticky world-writable directory (a private /tmp), runs rstwatch as root
at it, and asserts that the victim file (root's, with known contents) is
byte for byte, mode and mtime untouched, that rstwatch exits 2 before
tracing with exactly one line `rstwatch: -w|-o PATH: why (what to do)`, and
where the rule lets something through that it works.  Registered in
hardening.py's TESTS.
"""
import fcntl
import os
import re
import select
import signal
import stat
import subprocess
import time

from tracer import READY, json_lines, wait_ready
from verdicts import Failure

PROTECTIONS = ("fs.protected_symlinks", "fs.protected_hardlinks", "fs.protected_regular",
               "fs.protected_fifos")
SYSCTL_LOCK = "/run/rstwatch-test-fs-protected.lock"
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
ONE_LINE = re.compile(r"^rstwatch: (-w|-o) \S+: [^\n]+ \([^()]+\)$")


def sysctl_path(name):
    return "/proc/sys/" + name.replace(".", "/")


def protections_off(c):
    """fs.protected_* = 0 for this test, restored by cleanup."""
    lock = open(SYSCTL_LOCK, "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    old = {n: open(sysctl_path(n)).read().strip() for n in PROTECTIONS}

    def restore():
        try:
            for n, v in old.items():
                with open(sysctl_path(n), "w") as f:
                    f.write(v)
        finally:
            lock.close()
    c.on_cleanup(restore)
    for n in PROTECTIONS:
        with open(sysctl_path(n), "w") as f:
            f.write("0")


def as_nobody(*argv):
    p = subprocess.run(NOBODY + list(argv), capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        raise Failure(f"planting as nobody: `{' '.join(argv)}` failed: {p.stderr.strip()}")


def snapshot(path):
    """What must not change about a victim: contents, mode, owner, mtime."""
    st = os.lstat(path)
    with open(path, "rb") as f:
        return (f.read(), stat.filemode(st.st_mode), st.st_uid, st.st_mtime_ns)


class Scene:
    """A private sticky world-writable directory (shared), a root directory
    others can search (rootdir) and in it root's victim file, 0644."""

    def __init__(self, c):
        protections_off(c)
        self.c = c
        self.shared = c.path("shared")
        os.mkdir(self.shared)
        os.chmod(self.shared, 0o1777)
        self.rootdir = c.path("root")
        os.mkdir(self.rootdir)
        os.chmod(self.rootdir, 0o755)
        self.victim = os.path.join(self.rootdir, "victim")
        with open(self.victim, "w") as f:
            f.write("root's file: must stay exactly as it is\n")
        os.chmod(self.victim, 0o644)
        old = time.time() - 3600      # an mtime any write would move
        os.utime(self.victim, (old, old))

    def at(self, name):
        return os.path.join(self.shared, name)

    def refused(self, what, args, want, victims=None, created=()):
        """rstwatch ARGS must exit 2 with one line containing want, write
        nothing to stdout, leave the victims untouched and create none of
        the paths in created."""
        victims = victims or [self.victim]
        before = {v: snapshot(v) for v in victims}
        p = self.c.popen(self.c.rw(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        problems = []
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=5)
            problems.append(f"{what}: expected a refusal vs rstwatch still running 20 s later")
        lines = err.splitlines()
        if (p.returncode != 2 or out or len(lines) != 1 or not ONE_LINE.match(lines[0])
                or want not in lines[0]):
            problems.append(f"{what}: expected exit 2, nothing on stdout and one line "
                            f"'rstwatch: -w|-o PATH: why (what to do)' with {want!r} vs exit "
                            f"{p.returncode}, stdout {out[:100]!r}, stderr {lines}")
        for v, snap in before.items():
            now = snapshot(v)
            if now != snap:
                problems.append(f"{what}: {v} changed: expected {snap} vs {now}")
        for path in created:
            if os.path.lexists(path):
                problems.append(f"{what}: expected no {path} vs one was created")
        if problems:
            raise Failure(problems[0], problems[1:])

    def works(self, what, args, **kw):
        """rstwatch ARGS must start tracing, then exit 0 on SIGINT; returns
        (stdout bytes, stderr lines)."""
        p = self.c.popen(self.c.rw(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
        err = []
        deadline = time.monotonic() + 20
        while not any(l.startswith(READY.encode()) for l in err):
            line = p.stderr.readline()
            if not line or time.monotonic() > deadline:
                p.kill()
                raise Failure(f"{what}: expected rstwatch to trace vs exit {p.wait()}",
                              [l.decode(errors="replace") for l in err + p.stderr.readlines()])
            err.append(line.rstrip(b"\n"))
        p.send_signal(signal.SIGINT)
        out, e = p.communicate(timeout=10)
        err = [l.decode(errors="replace") for l in err + e.splitlines()]
        if p.returncode != 0:
            raise Failure(f"{what}: expected exit 0 after SIGINT vs {p.returncode}", err)
        return out, err


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def rotated(c, args, out):
    """rstwatch ARGS (with -o out) tracing, then out moved to out.1 and
    SIGHUP (logrotate), then, once out exists again, SIGINT: (the process,
    its stderr lines)."""
    p = c.popen(c.rw(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = wait_ready(p)
    os.rename(out, out + ".1")
    p.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not os.path.exists(out) and time.monotonic() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    _, e = p.communicate(timeout=10)
    return p, err + e.splitlines()


def read_stderr_line(p, timeout):
    """The next line rstwatch writes to stderr (a text pipe), or None."""
    r, _, _ = select.select([p.stderr], [], [], timeout)
    return p.stderr.readline().rstrip("\n") if r else None


# ------------------------------------------------------------------- tests

def files_symlink(c):
    """A symlink planted at the name, to root's file (and a dangling one into
    root's directory): -w and -o refuse it; rstwatch never follows the last
    component, whatever fs.protected_symlinks says."""
    s = Scene(c)
    evil, dangling = s.at("evil.rwt"), s.at("dangling.rwt")
    as_nobody("ln", "-s", s.victim, evil)
    as_nobody("ln", "-s", os.path.join(s.rootdir, "planted"), dangling)
    port = ["-j", "--port", str(c.port)]
    s.refused("-w symlink", [*port, "-w", evil], "is a symbolic link")
    s.refused("-o symlink", [*port, "-o", evil], "is a symbolic link")
    s.refused("-w dangling symlink", [*port, "-w", dangling], "is a symbolic link",
              created=[os.path.join(s.rootdir, "planted")])
    s.refused("-o dangling symlink", [*port, "-o", dangling], "is a symbolic link",
              created=[os.path.join(s.rootdir, "planted")])


def files_symlink_sighup(c):
    """-o FILE, then logrotate moves FILE away and, before the SIGHUP, the
    attacker puts a symlink to root's file at the name: the reopen refuses
    it in one line, rstwatch keeps tracing into the old file (the next
    verdicts land there), the victim is untouched, SIGINT exits 0."""
    s = Scene(c)
    log = s.at("v.jsonl")
    before = snapshot(s.victim)
    p = c.popen(c.rw("-j", "-o", log, "--port", str(c.port)), stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
    err = wait_ready(p)

    def verdicts(path, want):
        deadline = time.monotonic() + 5
        while True:
            got = [o for o in json_lines(open(path, "rb").read(), path) if c.mine(o)]
            if len(got) >= want or time.monotonic() > deadline:
                return len(got)
            time.sleep(0.05)

    c.refuse_once()
    if verdicts(log, 2) != 2:
        raise Failure("first file: expected 2 verdicts vs fewer", err)
    os.rename(log, log + ".1")
    as_nobody("ln", "-s", s.victim, log)
    p.send_signal(signal.SIGHUP)
    line = read_stderr_line(p, 5)
    if line is None or not ONE_LINE.match(line) or "is a symbolic link" not in line:
        raise Failure(f"SIGHUP onto a symlink: expected one line 'rstwatch: -o {log}: is a "
                      f"symbolic link ... (...)' vs {line!r}", err)
    if p.poll() is not None:
        raise Failure(f"the refused reopen stopped rstwatch (exit {p.returncode})")
    c.refuse_once()
    n = verdicts(log + ".1", 4)
    p.send_signal(signal.SIGINT)
    _, e = p.communicate(timeout=10)
    if n != 4 or p.returncode != 0 or e.strip():
        raise Failure(f"expected 4 verdicts in the old file, exit 0 and no more on stderr vs {n}, "
                      f"exit {p.returncode}", e.splitlines())
    if snapshot(s.victim) != before or not os.path.islink(log):
        raise Failure(f"victim changed: expected {before} vs {snapshot(s.victim)}")


def files_symlink_dir(c):
    """A symlink in the directory part is followed only if it belongs to the
    opening user or to the owner of the directory that holds it: nobody's
    link in the sticky directory to root's directory is refused (nothing
    created there, the victim untouched), a link root made (as /var/run ->
    /run) is followed."""
    s = Scene(c)
    link = s.at("d")
    as_nobody("ln", "-s", s.rootdir, link)
    port = ["-j", "--port", str(c.port)]
    s.refused("-o through nobody's directory link", [*port, "-o", os.path.join(link, "victim")],
              "belongs to uid 65534")
    s.refused("-w through nobody's directory link", [*port, "-w", os.path.join(link, "new.rwt")],
              "belongs to uid 65534", created=[os.path.join(s.rootdir, "new.rwt")])
    os.symlink(s.rootdir, c.path("rootlink"))       # root's link in root's directory
    out = os.path.join(c.path("rootlink"), "ok.jsonl")
    s.works("-o through root's link", [*port, "-o", out])
    if mode_of(os.path.join(s.rootdir, "ok.jsonl")) != 0o600:
        raise Failure("-o through root's directory link: expected the file created, 0600")


def files_hardlink(c):
    """nobody hard-links root's file into the sticky directory (possible
    with fs.protected_hardlinks=0): -w would truncate it, -o append to it;
    both refuse a file with more than one link."""
    s = Scene(c)
    hl = s.at("hl.rwt")
    as_nobody("ln", s.victim, hl)
    port = ["-j", "--port", str(c.port)]
    s.refused("-w hard link", [*port, "-w", hl], "has 2 hard links")
    s.refused("-o hard link", [*port, "-o", hl], "has 2 hard links")


def files_foreign(c):
    """A regular file nobody made at the name beforehand, world-writable so
    root could write it: whatever rstwatch wrote there (every connection on
    the host) nobody could read.  Refused: it belongs neither to root nor to
    the directory's owner (fs.protected_regular's rule, applied always)."""
    s = Scene(c)
    mine = s.at("mine.rwt")
    as_nobody("sh", "-c", f"umask 0; : > '{mine}'")
    port = ["-j", "--port", str(c.port)]
    s.refused("-w nobody's file", [*port, "-w", mine], "belongs to uid 65534", victims=[mine])
    s.refused("-o nobody's file", [*port, "-o", mine], "belongs to uid 65534", victims=[mine])


def files_fifo(c):
    """A FIFO nobody made at the name, with nobody reading it: refused at
    once (nothing read, rstwatch does not block), and without a reader
    too.  Meant explicitly (--allow-special) a FIFO root made, with a
    reader, gets the trace; nobody's FIFO stays refused even then."""
    s = Scene(c)
    fifo, got = s.at("f.rwt"), s.at("got")
    as_nobody("mkfifo", fifo)
    port = ["-j", "--port", str(c.port)]
    s.refused("-w FIFO, no reader", [*port, "-w", fifo], "is a FIFO")
    reader = c.popen(NOBODY + ["sh", "-c", f"exec cat '{fifo}' > '{got}'"])
    deadline = time.monotonic() + 5
    while not os.path.exists(got) and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    s.refused("-w FIFO with nobody reading", [*port, "-w", fifo], "is a FIFO")
    s.refused("-o FIFO with nobody reading", [*port, "-o", fifo], "is a FIFO")
    s.refused("--allow-special, nobody's FIFO", [*port, "--allow-special", "-w", fifo],
              "belongs to uid 65534")
    took = time.monotonic() - t0
    reader.kill()
    reader.wait()
    if os.path.getsize(got) != 0 or took > 10:
        raise Failure(f"nobody's reader: expected 0 bytes and refusals without delay vs "
                      f"{os.path.getsize(got)} bytes, {took:.1f}s")
    ours = c.path("ours.fifo")
    os.mkfifo(ours, 0o600)
    s.refused("root's FIFO without --allow-special", [*port, "-w", ours], "is a FIFO")
    s.refused("--allow-special, root's FIFO, no reader", [*port, "--allow-special", "-w", ours],
              "no process reads")
    rd = os.open(ours, os.O_RDONLY | os.O_NONBLOCK)
    c.on_cleanup(lambda: os.close(rd))
    s.works("--allow-special -w FIFO", [*port, "--allow-special", "-w", ours])
    head = os.read(rd, 8)
    if head != b"RSTWATCH":
        raise Failure(f"--allow-special -w FIFO: expected the trace's magic vs {head!r}")


def files_special(c):
    """Devices and descriptors: -w /dev/null is a character device, refused
    unless meant (--allow-special); -w /dev/fd/N writes to the descriptor
    the caller passed (a shell's process substitution, no path followed);
    -o - is standard output; -w and -o cannot both take it."""
    s = Scene(c)
    port = ["-j", "--port", str(c.port)]
    s.refused("-w /dev/null", [*port, "-w", "/dev/null"], "is a character device")
    s.works("--allow-special -w /dev/null", [*port, "--allow-special", "-w", "/dev/null"])
    r, w = os.pipe()
    c.on_cleanup(lambda: os.close(r))
    try:
        s.works("-w /dev/fd/N", [*port, "-w", f"/dev/fd/{w}"], pass_fds=[w])
    finally:
        os.close(w)
    head = os.read(r, 8)
    if head != b"RSTWATCH":
        raise Failure(f"-w /dev/fd/{w}: expected the trace's magic on the pipe vs {head!r}")
    s.refused("-w /dev/fd/N not open", [*port, "-w", "/dev/fd/9"], "descriptor 9 is not open")
    p = subprocess.run(c.rw(*port, "-o", "-", "-w", "-"), capture_output=True, text=True, timeout=10)
    if p.returncode != 2 or len(p.stderr.splitlines()) != 1 or "same descriptor" not in p.stderr:
        raise Failure(f"-o - -w -: expected exit 2 and one line vs {p.returncode} {p.stderr!r}")
    out, _ = s.works("-o -", ["--port", str(c.port), "-o", "-"])
    if not out.startswith(b"TIME"):
        raise Failure(f"-o -: expected the text header on stdout vs {out[:80]!r}")


def files_mode(c):
    """New files are 0600 (-w, -o, and the file SIGHUP makes), whatever the
    umask; --file-mode gives exactly the mode asked for, even under umask
    077; a mode with execute or set-id bits is refused.  An existing file
    of root's is truncated by -w (as tcpdump -w does) and appended to by -o,
    and keeps its mode."""
    s = Scene(c)
    port = ["-j", "--port", str(c.port)]
    w, o = c.path("t.rwt"), c.path("v.jsonl")
    s.works("new files", [*port, "-w", w, "-o", o])
    s.works("--file-mode 0640 under umask 077", [*port, "--file-mode", "0640", "-w", w + "2",
                                                 "-o", o + "2"],
            preexec_fn=lambda: os.umask(0o077))
    modes = {p: mode_of(p) for p in (w, o, w + "2", o + "2")}
    want = {w: 0o600, o: 0o600, w + "2": 0o640, o + "2": 0o640}
    if modes != want:
        raise Failure(f"modes: expected { {k: oct(v) for k, v in want.items()} } vs "
                      f"{ {k: oct(v) for k, v in modes.items()} }")
    bad = subprocess.run(c.rw(*port, "--file-mode", "4755", "-w", w), capture_output=True,
                         text=True, timeout=10)
    if bad.returncode != 2 or "not a file mode" not in bad.stderr:
        raise Failure(f"--file-mode 4755: expected exit 2 vs {bad.returncode} {bad.stderr!r}")
    # existing files of root's: -w starts over, -o appends, modes stay
    with open(o, "w") as f:
        f.write('{"kept":true}\n')
    with open(w, "ab") as f:
        f.write(b"X" * 100000)
    os.chmod(o, 0o640)
    s.works("existing files", [*port, "-w", w, "-o", o])
    first = open(o).readline()
    trace = open(w, "rb").read()
    if (first != '{"kept":true}\n' or mode_of(o) != 0o640 or not trace.startswith(b"RSTWATCH")
            or b"XXXX" in trace):
        raise Failure(f"existing files: expected -o appended to (first line kept), its mode 0640 "
                      f"kept, -w rewritten from the start vs first line {first!r}, mode "
                      f"{oct(mode_of(o))}, -w {len(trace)} bytes starting {trace[:8]!r}")
    # the file SIGHUP makes
    rotated(c, [*port, "-o", o], o)
    if not os.path.exists(o) or mode_of(o) != 0o600:
        raise Failure(f"SIGHUP: expected a new file, 0600 vs "
                      f"{oct(mode_of(o)) if os.path.exists(o) else 'none'}")


def files_user(c):
    """--user nobody: -w and -o are opened as nobody, as tcpdump -Z does, so
    a path only root may write is refused (one line, exit 2, nothing
    created), a directory of nobody's gets files of nobody's (0600), and
    the reopen on SIGHUP, made as nobody, too."""
    s = Scene(c)
    port = ["-j", "--port", str(c.port), "--user", "nobody"]
    private = c.path("private")
    os.mkdir(private, 0o700)
    s.refused("--user nobody -w in root's directory", [*port, "-w", os.path.join(private, "t.rwt")],
              "Permission denied", created=[os.path.join(private, "t.rwt")])
    s.refused("--user nobody -o in root's directory", [*port, "-o", os.path.join(private, "v")],
              "Permission denied", created=[os.path.join(private, "v")])
    s.refused("--user nobody -o onto root's file", [*port, "-o", s.victim], "Permission denied")
    home = c.path("nobody")
    os.mkdir(home, 0o755)
    os.chown(home, 65534, 65534)
    w, o = os.path.join(home, "t.rwt"), os.path.join(home, "v.jsonl")
    p, err = rotated(c, [*port, "-w", w, "-o", o], o)
    seen = {f: (os.stat(f).st_uid, mode_of(f)) if os.path.exists(f) else None
            for f in (w, o + ".1", o)}
    if p.returncode != 0 or set(seen.values()) != {(65534, 0o600)}:
        raise Failure(f"--user nobody: expected exit 0 and files of uid 65534, 0600 vs exit "
                      f"{p.returncode}, {seen}", err)


TESTS = [files_symlink, files_symlink_sighup, files_symlink_dir, files_hardlink, files_foreign,
         files_fifo, files_special, files_mode, files_user]
