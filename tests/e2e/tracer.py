"""Runs one `rstwatch -j ...` instance and collects its JSON lines."""
import json
import signal
import subprocess
import threading
import time

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
