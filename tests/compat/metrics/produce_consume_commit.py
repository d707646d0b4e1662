"""Driven by crates/quill/tests/metrics.rs: confluent-kafka (librdkafka) produces records and
consumes them in a group that commits a chosen offset, so the broker's metrics can be checked.

Usage: produce_consume_commit.py BOOTSTRAP TOPIC GROUP PRODUCE_COUNT VALUE_BYTES EXPECT_TOTAL COMMIT_OFFSET

Produces PRODUCE_COUNT records of VALUE_BYTES bytes each (no key, no compression) to partition
0, then joins GROUP, reads until it has seen EXPECT_TOTAL records, commits COMMIT_OFFSET for
partition 0 synchronously and leaves. Prints one JSON line: {"produced": n, "consumed": n}.
Every wait is bounded; exits non-zero on failure.
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

DEADLINE_S = 60


def main():
    bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
    produce_count, value_bytes, expect_total, commit_offset = map(int, sys.argv[4:8])

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "compression.type": "none",
        "linger.ms": 5,
    })
    failures = []

    def delivered(error, _message):
        if error is not None:
            failures.append(str(error))

    for index in range(produce_count):
        value = (b"%08d" % index).ljust(value_bytes, b"x")
        producer.produce(topic, value=value, partition=0, on_delivery=delivered)
    if producer.flush(DEADLINE_S) != 0 or failures:
        sys.exit(f"produce failed: {failures or 'flush timed out'}")

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    consumed = 0
    deadline = time.monotonic() + DEADLINE_S
    while consumed < expect_total:
        if time.monotonic() > deadline:
            sys.exit(f"consumed only {consumed} of {expect_total} records")
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            sys.exit(f"consume error: {message.error()}")
        consumed += 1
    committed = consumer.commit(
        offsets=[TopicPartition(topic, 0, commit_offset)], asynchronous=False
    )
    if any(tp.error for tp in committed):
        sys.exit(f"commit failed: {committed}")
    consumer.close()
    print(json.dumps({"produced": produce_count, "consumed": consumed}))


if __name__ == "__main__":
    main()
