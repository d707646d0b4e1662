"""Scenario 4 with confluent-kafka: one batch per codec (none, gzip, snappy, lz4, zstd), all
mixed in one partition, consumed back in order."""

import json

import ck
from common import check_eq, run, step, topic_name

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 25


def scenario():
    topic = topic_name("compression")
    step("create")
    ck.create_topics([(topic, 1, {})])
    expected = []
    for codec in CODECS:
        step("produce-%s" % codec)
        values = [json.dumps({"codec": codec, "i": i, "text": "compressible " * 20}) for i in range(PER_CODEC)]
        ck.produce_all(ck.producer(compression_type=codec, linger_ms=50), topic,
                       [{"key": "%s-%d" % (codec, i), "value": v} for i, v in enumerate(values)])
        expected += values

    step("consume")
    messages = ck.consume(topic, 1, len(expected))
    check_eq([m.value().decode() for m in messages], expected, "values in order")
    check_eq([m.offset() for m in messages], list(range(len(expected))), "offsets")


run(scenario)
