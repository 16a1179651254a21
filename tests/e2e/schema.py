"""The JSON contract as a file: every line checked against
deploy/rstwatch.schema.json by schema_check.py, run once under Debian's
/usr/bin/python3 (which has python3-jsonschema) and fed line by line."""
import json
import os
import subprocess
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
_proc = None
_lock = threading.Lock()


def problems(obj):
    """Schema problems of one decoded JSON line ([] if none)."""
    global _proc
    with _lock:
        if _proc is None or _proc.poll() is not None:
            _proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "schema_check.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)
        _proc.stdin.write(json.dumps(obj) + "\n")
        _proc.stdin.flush()
        answer = _proc.stdout.readline()
    if not answer:
        return ["schema: the validator (/usr/bin/python3 schema_check.py, python3-jsonschema) "
                "did not answer: make deps"]
    return json.loads(answer)
