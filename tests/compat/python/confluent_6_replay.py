"""Scenario 6 with confluent-kafka: watermarks, offsets_for_times, seek to an offset and to
the offset found by time; then a group's offsets reset to earliest and re-consumed."""

import json

from confluent_kafka import Consumer, KafkaException, TopicPartition

import ck
from common import BOOTSTRAP, Deadline, check_eq, run, step, topic_name

COUNT = 20
T0 = 1700000000000


def read(consumer, count, what):
    seen = []
    deadline = Deadline(30, what)
    while len(seen) < count:
        deadline.check("(%d so far)" % len(seen))
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            raise KafkaException(message.error())
        seen.append(json.loads(message.value())["i"])
    return seen


def scenario():
    topic = topic_name("replay")
    step("create")
    ck.create_topics([(topic, 1, {})])
    step("produce")
    ck.produce_all(ck.producer(), topic, [{"value": json.dumps({"i": i}), "timestamp": T0 + i * 1000} for i in range(COUNT)])

    consumer = Consumer(dict(ck.BASE, **{"group.id": "%s-seek" % topic, "enable.auto.commit": False}))
    try:
        step("list-offsets")
        check_eq(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10), (0, COUNT), "watermarks")

        step("offsets-by-time")
        [found] = consumer.offsets_for_times([TopicPartition(topic, 0, T0 + 10500)], timeout=10)
        check_eq(found.offset, 11, "offset of the first message at or after T0+10.5s")
        [past] = consumer.offsets_for_times([TopicPartition(topic, 0, T0 + COUNT * 1000 + 1)], timeout=10)
        check_eq(past.offset, -1, "offsets_for_times past the last timestamp (end)")

        step("seek")
        consumer.assign([TopicPartition(topic, 0, 7)])
        check_eq(read(consumer, 3, "reading from offset 7"), [7, 8, 9], "after seek to offset 7")
        consumer.seek(TopicPartition(topic, 0, found.offset))
        check_eq(read(consumer, 2, "reading from the offset found by time"), [11, 12], "after seek by time")
    finally:
        consumer.close()

    step("group-reset")
    group = "%s-group" % topic
    config = dict(ck.BASE, **{"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                              "session.timeout.ms": 10000})
    first = Consumer(config)
    try:
        first.subscribe([topic])
        check_eq(read(first, COUNT, "first pass of the group"), list(range(COUNT)), "first pass")
        first.commit(asynchronous=False)
        committed = first.committed([TopicPartition(topic, 0)], timeout=10)
        check_eq(committed[0].offset, COUNT, "committed offset")
        # Reset to earliest: commit offset 0 for the group.
        first.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    finally:
        first.close()
    again = Consumer(config)
    try:
        again.subscribe([topic])
        check_eq(read(again, COUNT, "re-consuming after the reset"), list(range(COUNT)), "re-consumed")
    finally:
        again.close()


run(scenario)
