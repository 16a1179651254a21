"""The runner hardening.py and service.py share: a fresh context per test,
`PASS name` or `FAIL name: what, expected vs seen` with details, then the
tally `[SUITE: ]N passed, M failed`.  Never skips."""
import argparse
import os
import sys
import time
import traceback

import verdicts
from actor import ActorError
from netns import NetnsError
from tracer import TracerError

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class Failure(Exception):
    def __init__(self, msg, details=()):
        super().__init__(msg)
        self.details = list(details)


def attempt(c, fn, then=None):
    """c.begin(), fn(c), then() if given, and c.cleanup() whatever happened:
    (None or (what failed, detail lines), seconds taken)."""
    failure = None
    t = time.monotonic()
    try:
        c.begin()
        fn(c)
        if then is not None:
            then()
    except (Failure, verdicts.Failure) as e:    # the latter from shared scenario steps
        failure = (str(e), list(e.details))
    except (NetnsError, TracerError, ActorError) as e:
        failure = (str(e), list(getattr(e, "stderr", [])))
    except Exception as e:
        failure = (f"{type(e).__name__}: {e}", traceback.format_exc().splitlines())
    finally:
        try:
            errors = c.cleanup()
        except Exception as e:
            errors = [f"{type(e).__name__}: {e}"]
        if errors and failure is None:
            failure = ("teardown: " + "; ".join(errors), [])
    return failure, time.monotonic() - t


def run_one(opts, fn, c):
    """Run test fn with context c (begin(), cleanup(), note); print its line."""
    c.note = ""
    failure, took = attempt(c, fn)
    if failure is None:
        print(f"PASS {fn.__name__}" + (f"  ({took:.1f}s; {c.note})" if opts.verbose else ""))
    else:
        print(f"FAIL {fn.__name__}: {failure[0]}")
        for line in failure[1]:
            print("    " + str(line))
    sys.stdout.flush()
    return failure is None


def main(description, tests, make_ctx, suite=""):
    """make_ctx(opts, i) -> the context of the i-th test; suite prefixes the tally."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("-k", metavar="SUBSTRING", help="run only tests whose name contains it")
    ap.add_argument("--rstwatch", default=os.path.join(REPO, "rstwatch"))
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args()
    opts.rstwatch = os.path.abspath(opts.rstwatch)
    passed = failed = 0
    for i, fn in enumerate(tests):
        if opts.k and opts.k not in fn.__name__:
            continue
        if run_one(opts, fn, make_ctx(opts, i)):
            passed += 1
        else:
            failed += 1
    print(f"{suite + ': ' if suite else ''}{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
