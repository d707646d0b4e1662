"""The runner side-channel of scenario 8: print "RESTART-BROKER <n>", then the runner restarts
the broker and writes "restarted" on our stdin."""

import sys
import threading

_restarts = [0]


def _read_stdin():
    for line in sys.stdin:
        if line.strip() == "restarted":
            _restarts[0] += 1


threading.Thread(target=_read_stdin, daemon=True).start()


def restarts():
    return _restarts[0]


def request_restart(phase):
    print("RESTART-BROKER %d" % phase, flush=True)
