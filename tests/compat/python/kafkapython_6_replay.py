"""Scenario 6 with kafka-python: beginning/end offsets, offsets_for_times, seek to an offset
and to the offset found by time; then a group's offsets reset to earliest and re-consumed."""

import json

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

import kp
from common import Deadline, check_eq, run, step, topic_name

COUNT = 20
T0 = 1700000000000


def read(consumer, count, what):
    seen = []
    deadline = Deadline(30, what)
    while len(seen) < count:
        deadline.check("(%d so far)" % len(seen))
        for batch in consumer.poll(timeout_ms=500, max_records=count - len(seen)).values():
            seen += [json.loads(r.value)["i"] for r in batch]
    return seen


def scenario():
    topic = topic_name("replay")
    tp = TopicPartition(topic, 0)
    step("create")
    kp.create_topics([(topic, 1, {})])
    step("produce")
    producer = kp.producer()
    kp.produce_all(producer, topic, [{"value": json.dumps({"i": i}).encode(), "timestamp_ms": T0 + i * 1000}
                                     for i in range(COUNT)])
    producer.close(timeout=10)

    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, fetch_max_wait_ms=200, **kp.BASE)
    try:
        step("list-offsets")
        check_eq((consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp]), (0, COUNT), "offsets")

        step("offsets-by-time")
        found = consumer.offsets_for_times({tp: T0 + 10500})[tp]
        check_eq((found.offset, found.timestamp), (11, T0 + 11000), "first message at or after T0+10.5s")
        check_eq(consumer.offsets_for_times({tp: T0 + COUNT * 1000 + 1})[tp], None, "nothing after the last timestamp")

        step("seek")
        consumer.assign([tp])
        consumer.seek(tp, 7)
        check_eq(read(consumer, 3, "reading from offset 7"), [7, 8, 9], "after seek to offset 7")
        consumer.seek(tp, found.offset)
        check_eq(read(consumer, 2, "reading from the offset found by time"), [11, 12], "after seek by time")
    finally:
        consumer.close()

    step("group-reset")
    group = "%s-group" % topic
    config = dict(kp.BASE, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                  session_timeout_ms=10000, fetch_max_wait_ms=200)
    first = KafkaConsumer(topic, **config)
    try:
        check_eq(read(first, COUNT, "first pass of the group"), list(range(COUNT)), "first pass")
        first.commit()
        check_eq(first.committed(tp), COUNT, "committed offset")
        first.commit({tp: OffsetAndMetadata(0, "reset to earliest", -1)})
    finally:
        first.close()
    again = KafkaConsumer(topic, **config)
    try:
        check_eq(read(again, COUNT, "re-consuming after the reset"), list(range(COUNT)), "re-consumed")
    finally:
        again.close()


run(scenario)
