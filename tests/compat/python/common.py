"""Shared helpers of the Python scenarios (confluent-kafka and kafka-python).

Every scenario is `python <file> <bootstrap> <topic-prefix>` (or QUILL_BOOTSTRAP /
QUILL_TOPIC_PREFIX), prints what it does, exits 0 on success and non-zero with the client's
own error on failure. Every wait is bounded.
"""

import os
import signal
import sys
import time
import traceback

BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("QUILL_BOOTSTRAP", "localhost:9092")
PREFIX = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("QUILL_TOPIC_PREFIX", "compat-%d" % int(time.time()))
SCENARIO_TIMEOUT_S = int(os.environ.get("QUILL_SCENARIO_TIMEOUT_MS", "90000")) // 1000


def step(name):
    print("STEP %s" % name, flush=True)


def topic_name(suffix):
    return "%s-%s" % (PREFIX, suffix)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def check_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def murmur2(data):
    """Java's Utils.murmur2 (the default partitioner's hash), as a signed 32-bit int."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    blocks = length // 4
    for i in range(blocks):
        k = int.from_bytes(data[i * 4:i * 4 + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = blocks * 4
    rest = length & 3
    if rest >= 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key, partitions):
    if isinstance(key, str):
        key = key.encode()
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# Known values of org.apache.kafka.common.utils.Utils.murmur2 (from Kafka's UtilsTest).
for _input, _expected in [("21", -973932308), ("foobar", -790332482),
                          ("a-little-bit-long-string", -985981536),
                          ("a-little-bit-longer-string", -1486304829),
                          ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
                          ("abc", 479470107)]:
    check_eq(murmur2(_input.encode()), _expected, "murmur2(%s) self-check" % _input)


class Deadline:
    def __init__(self, seconds, what):
        self.end = time.monotonic() + seconds
        self.what = what

    def check(self, detail=""):
        if time.monotonic() > self.end:
            raise TimeoutError("timed out: %s %s" % (self.what, detail))

    def remaining(self):
        return max(0.0, self.end - time.monotonic())


def _on_alarm(signum, frame):
    raise TimeoutError("scenario timed out after %d s" % SCENARIO_TIMEOUT_S)


def run(scenario):
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(SCENARIO_TIMEOUT_S)
    try:
        scenario()
    except BaseException:
        sys.stdout.flush()
        print("FAILED:", file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    signal.alarm(0)
    print("OK", flush=True)
    sys.stdout.flush()
    # Skip interpreter teardown: client threads must not turn a pass into a hang.
    os._exit(0)
