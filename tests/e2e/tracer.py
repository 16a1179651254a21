"""Runs one `rstwatch -j ...` instance and collects its JSON lines."""
import json
import signal
import subprocess
import threading
import time

import schema
from verdicts import Failure

READY = "rstwatch: tracing"


class TracerError(Exception):
    def __init__(self, msg, stderr=()):
        super().__init__(msg)
        self.stderr = list(stderr)


class Rstwatch:
    def __init__(self, path, args, json=True):
        self.argv = [path, *(["-j"] if json else []), *args]
        self.proc = None
        self.lines = []        # (raw line, parsed object or None)
        self.stderr = []
        self._ready = threading.Event()
        self._cond = threading.Condition()
        self._threads = []

    def start(self, timeout=20):
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, bufsize=1)
        except OSError as e:
            raise TracerError(f"cannot run {' '.join(self.argv)}: {e}") from None
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._threads:
            t.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                for t in self._threads:
                    t.join(timeout=2)
                raise TracerError(f"rstwatch exited with status {self.proc.returncode} before "
                                  f"'{READY}'", self.stderr)
            if time.monotonic() > deadline:
                raise TracerError(f"no '{READY}' on rstwatch's stderr within {timeout}s", self.stderr)

    def _read_out(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            with self._cond:
                self.lines.append((line, obj))
                self._cond.notify_all()

    def _read_err(self):
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            self.stderr.append(line)
            if line.startswith(READY):
                self._ready.set()

    def wait_for(self, pred, count, timeout):
        """Wait until at least `count` parsed lines satisfy pred (or timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for _, o in self.lines if o is not None and pred(o)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout=10):
        """SIGINT, wait for a clean exit 0, return all (raw, obj) lines."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise TracerError(f"rstwatch did not exit within {timeout}s of SIGINT", self.stderr)
        for t in self._threads:
            t.join(timeout=5)
        rc = self.proc.returncode
        if rc != 0:
            raise TracerError(f"rstwatch exited with status {rc} after SIGINT"
                              f"{' (signal %d)' % -rc if rc < 0 else ''}", self.stderr)
        return list(self.lines)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for t in self._threads:
            t.join(timeout=2)


def wait_ready(proc, timeout=20):
    """Read proc's stderr (a pipe) up to the ready line; returns the lines."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if isinstance(line, bytes):
            line = line.decode(errors="replace")
        if not line:
            raise Failure(f"rstwatch exited ({proc.wait()}) before '{READY}'", lines)
        lines.append(line.rstrip("\n"))
        if line.startswith(READY):
            return lines
    raise Failure(f"no '{READY}' within {timeout}s", lines)


def json_lines(raw, what):
    """Every line of raw (bytes) is a complete JSON object; returns them."""
    if raw and not raw.endswith(b"\n"):
        raise Failure(f"{what}: the last line is cut: {raw[-120:]!r}")
    objs = []
    for n, line in enumerate(raw.split(b"\n")[:-1], 1):
        try:
            objs.append(json.loads(line))
        except ValueError:
            raise Failure(f"{what}: line {n} is not JSON: {line[:200]!r}") from None
        p = schema.problems(objs[-1])
        if p:
            raise Failure(f"{what}: line {n} breaks the JSON contract: {'; '.join(p)}",
                          [line[:400].decode(errors="replace")])
    return objs
