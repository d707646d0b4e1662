"""Scenario 4 with kafka-python: one batch per codec (none, gzip, snappy, lz4, zstd; codecs from
tests/compat/requirements.txt), all mixed in one partition, consumed back in order."""

import json

import kp
from common import check_eq, run, step, topic_name

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 25


def scenario():
    topic = topic_name("compression")
    step("create")
    kp.create_topics([(topic, 1, {})])
    expected = []
    for codec in CODECS:
        step("produce-%s" % (codec or "none"))
        values = [json.dumps({"codec": codec, "i": i, "text": "compressible " * 20}).encode() for i in range(PER_CODEC)]
        producer = kp.producer(compression_type=codec, linger_ms=50)
        kp.produce_all(producer, topic, [{"key": b"%d" % i, "value": v} for i, v in enumerate(values)])
        producer.close(timeout=10)
        expected += values

    step("consume")
    records = kp.consume(topic, 1, len(expected))
    check_eq([r.value for r in records], expected, "values in order")
    check_eq([r.offset for r in records], list(range(len(expected))), "offsets")


run(scenario)
