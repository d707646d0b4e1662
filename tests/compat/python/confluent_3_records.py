"""Scenario 3 with confluent-kafka: headers, null key, null and empty values, CreateTime
timestamps, a LogAppendTime topic, values just under / over max.message.bytes."""

import time

from confluent_kafka import KafkaError, KafkaException, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME

import ck
from common import check, check_eq, run, step, topic_name

MAX_MESSAGE_BYTES = 20000
CLIENT_TIMESTAMP = 1600000000123


def scenario():
    topic, append_time, limited = topic_name("records"), topic_name("append-time"), topic_name("limited")
    step("create")
    ck.create_topics([(topic, 1, {}),
                      (append_time, 1, {"message.timestamp.type": "LogAppendTime"}),
                      (limited, 1, {"max.message.bytes": str(MAX_MESSAGE_BYTES)})])

    step("produce")
    p = ck.producer()
    before = time.time() * 1000
    ck.produce_all(p, topic, [
        {"key": "with-headers", "value": "h", "headers": [("source", b"my-app"), ("version", b"1.0"), ("empty", b""), ("null", None)]},
        {"key": None, "value": "no key"},
        {"key": "tombstone", "value": None},
        {"key": "empty", "value": b""},
        {"key": "timestamped", "value": "t", "timestamp": CLIENT_TIMESTAMP},
    ])
    ck.produce_all(p, append_time, [{"key": "a", "value": "x", "timestamp": CLIENT_TIMESTAMP}])

    step("max-message-bytes")
    ck.produce_all(p, limited, [{"value": b"a" * (MAX_MESSAGE_BYTES - 200)}])
    try:
        ck.produce_all(p, limited, [{"value": b"b" * (MAX_MESSAGE_BYTES + 1000)}])
        raise AssertionError("a value over max.message.bytes was accepted")
    except KafkaException as error:
        print("over-limit value rejected: %s" % error, flush=True)
        check_eq(error.args[0].code(), KafkaError.MSG_SIZE_TOO_LARGE, "error code")

    step("consume")
    records = ck.consume(topic, 1, 5)
    headers, null_key, tombstone, empty, stamped = records
    check_eq(headers.headers(), [("source", b"my-app"), ("version", b"1.0"), ("empty", b""), ("null", None)], "headers")
    check_eq(null_key.key(), None, "null key")
    check_eq(null_key.value(), b"no key", "value")
    check_eq(tombstone.value(), None, "null value")
    check_eq(empty.value(), b"", "empty value")
    check_eq(stamped.timestamp(), (TIMESTAMP_CREATE_TIME, CLIENT_TIMESTAMP), "CreateTime timestamp")

    step("consume-append-time")
    [appended] = ck.consume(append_time, 1, 1)
    kind, ts = appended.timestamp()
    check_eq(kind, TIMESTAMP_LOG_APPEND_TIME, "timestamp type")
    check(before - 1000 <= ts <= time.time() * 1000 + 1000, "LogAppendTime %d is not the broker's clock" % ts)

    step("consume-limited")
    [big] = ck.consume(limited, 1, 1)
    check_eq(len(big.value()), MAX_MESSAGE_BYTES - 200, "size of the value just under the limit")

    step("fetch-smaller-than-batch")
    # KIP-74: a batch larger than the fetch limits still comes back, whole.
    [big] = ck.consume(limited, 1, 1, **{"max.partition.fetch.bytes": 1024, "fetch.max.bytes": 1024,
                                                "message.max.bytes": 1024})
    check_eq(len(big.value()), MAX_MESSAGE_BYTES - 200, "value read with 1 KiB fetch limits")


run(scenario)
