# SPDX-License-Identifier: MIT
"""tap.py - the TAP lines of the Python protocol tests: "ok N - what" or
"not ok N - what" (with a "#" detail line), then the plan "1..N" and the
exit status (1 if anything failed) from done().  Import it after putting
this file's directory on sys.path."""
import sys
import threading

_lock = threading.Lock()  # results may come from a test's threads
_count = 0
_failed = 0


def result(good, what, detail=""):
    global _count, _failed
    with _lock:
        _count += 1
        print("%s %d - %s" % ("ok" if good else "not ok", _count, what))
        if not good:
            _failed += 1
            if detail:
                print("#   " + str(detail)[:400])
        sys.stdout.flush()


def done():
    print("1..%d" % _count)
    sys.exit(1 if _failed else 0)
