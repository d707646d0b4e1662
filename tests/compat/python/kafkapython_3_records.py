"""Scenario 3 with kafka-python: headers, null key, null and empty values, CreateTime
timestamps, a LogAppendTime topic, values just under / over max.message.bytes."""

import time

from kafka.errors import MessageSizeTooLargeError

import kp
from common import check, check_eq, run, step, topic_name

MAX_MESSAGE_BYTES = 20000
CLIENT_TIMESTAMP = 1600000000123


def scenario():
    topic, append_time, limited = topic_name("records"), topic_name("append-time"), topic_name("limited")
    step("create")
    kp.create_topics([(topic, 1, {}),
                      (append_time, 1, {"message.timestamp.type": "LogAppendTime"}),
                      (limited, 1, {"max.message.bytes": str(MAX_MESSAGE_BYTES)})])

    step("produce")
    producer = kp.producer()
    before = time.time() * 1000
    kp.produce_all(producer, topic, [
        {"key": b"with-headers", "value": b"h", "headers": [("source", b"my-app"), ("version", b"1.0"), ("empty", b"")]},
        {"key": None, "value": b"no key"},
        {"key": b"tombstone", "value": None},
        {"key": b"empty", "value": b""},
        {"key": b"timestamped", "value": b"t", "timestamp_ms": CLIENT_TIMESTAMP},
    ])
    kp.produce_all(producer, append_time, [{"key": b"a", "value": b"x", "timestamp_ms": CLIENT_TIMESTAMP}])

    step("max-message-bytes")
    kp.produce_all(producer, limited, [{"value": b"a" * (MAX_MESSAGE_BYTES - 200)}])
    try:
        kp.produce_all(producer, limited, [{"value": b"b" * (MAX_MESSAGE_BYTES + 1000)}])
        raise AssertionError("a value over max.message.bytes was accepted")
    except MessageSizeTooLargeError as error:
        print("over-limit value rejected: %r" % error, flush=True)
    producer.close(timeout=10)

    step("consume")
    headers, null_key, tombstone, empty, stamped = kp.consume(topic, 1, 5)
    check_eq(list(headers.headers), [("source", b"my-app"), ("version", b"1.0"), ("empty", b"")], "headers")
    check_eq(null_key.key, None, "null key")
    check_eq(null_key.value, b"no key", "value")
    check_eq(tombstone.value, None, "null value")
    check_eq(empty.value, b"", "empty value")
    check_eq((stamped.timestamp_type, stamped.timestamp), (0, CLIENT_TIMESTAMP), "CreateTime timestamp")

    step("consume-append-time")
    [appended] = kp.consume(append_time, 1, 1)
    check_eq(appended.timestamp_type, 1, "timestamp type (1 = LogAppendTime)")
    check(before - 1000 <= appended.timestamp <= time.time() * 1000 + 1000,
          "LogAppendTime %d is not the broker's clock" % appended.timestamp)

    step("consume-limited")
    [big] = kp.consume(limited, 1, 1)
    check_eq(len(big.value), MAX_MESSAGE_BYTES - 200, "size of the value just under the limit")

    step("fetch-smaller-than-batch")
    # KIP-74: a batch larger than the fetch limits still comes back, whole.
    [big] = kp.consume(limited, 1, 1, max_partition_fetch_bytes=1024, fetch_max_bytes=1024)
    check_eq(len(big.value), MAX_MESSAGE_BYTES - 200, "value read with 1 KiB fetch limits")


run(scenario)
