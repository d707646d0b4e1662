"""Scenario 2 with confluent-kafka: keyed JSON events consumed from the beginning; with
partitioner=murmur2_random a key's partition equals Java's; with librdkafka's default
(consistent_random) a key still always lands in one partition; explicit partitions win."""

import json
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

import ck
from common import Deadline, check, check_eq, java_partition, run, step, topic_name

PARTITIONS = 3
PIPELINED = 2000


def scenario():
    topic = topic_name("keyed")
    step("create")
    ck.create_topics([(topic, PARTITIONS, {})])

    step("produce")
    murmur = ck.producer(partitioner="murmur2_random")
    default = ck.producer()
    expected = 0
    for round_ in range(3):
        messages = [{"key": "user-%d" % user, "value": json.dumps({"user": user, "round": round_})}
                    for user in range(10)]
        ck.produce_all(murmur, topic, messages)
        ck.produce_all(default, topic, [dict(m, key="crc-" + m["key"]) for m in messages])
        expected += 2 * len(messages)
    ck.produce_all(murmur, topic, [{"key": "explicit", "partition": p, "value": json.dumps({"explicit": p})}
                                   for p in range(PARTITIONS)])
    expected += PARTITIONS

    step("consume")
    messages = ck.consume(topic, PARTITIONS, expected)
    check_eq(len(messages), expected, "messages consumed")

    step("verify")
    last_offset, last_round, crc_partition = {}, {}, {}
    for m in messages:
        check(m.offset() > last_offset.get(m.partition(), -1), "offsets increase")
        last_offset[m.partition()] = m.offset()
        key = m.key().decode()
        value = json.loads(m.value())
        if key == "explicit":
            check_eq(m.partition(), value["explicit"], "explicit partition")
        elif key.startswith("crc-"):
            crc_partition.setdefault(key, m.partition())
            check_eq(m.partition(), crc_partition[key], "consistent_random keeps %s in one partition" % key)
        else:
            check_eq(m.partition(), java_partition(key, PARTITIONS), "partition of %s (Java murmur2)" % key)
            check(value["round"] > last_round.get(key, -1), "order of %s" % key)
            last_round[key] = value["round"]
    print("verified %d messages" % len(messages))

    consumer = Consumer(dict(ck.BASE, **{"group.id": "%s-tail" % topic, "enable.auto.commit": False,
                                         "fetch.wait.max.ms": 500}))
    try:
        step("acks-0")
        tp = TopicPartition(topic, 0)
        _, before = consumer.get_watermark_offsets(tp, timeout=10)
        ck.produce_all(ck.producer(acks=0), topic, [{"value": "acks0-%d" % i, "partition": 0} for i in range(5)])
        consumer.assign([TopicPartition(topic, 0, before)])
        got = []
        deadline = Deadline(15, "the 5 messages produced with acks=0")
        while len(got) < 5:
            deadline.check("(%s)" % got)
            message = consumer.poll(0.5)
            if message is not None:
                if message.error():
                    raise KafkaException(message.error())
                got.append(message.value().decode())
        check_eq(got, ["acks0-%d" % i for i in range(5)], "acks=0 values")

        step("tail")
        # The tutorials' flow: a consumer waits at the end, then a producer sends.
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 1), timeout=10)
        consumer.assign([TopicPartition(topic, 1, end)])
        consumer.poll(1.0)
        sent = time.monotonic()
        ck.produce_all(murmur, topic, [{"value": "live", "partition": 1}])
        deadline = Deadline(10, "the message produced while tailing")
        while True:
            deadline.check()
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                check_eq((message.offset(), message.value()), (end, b"live"), "tailed message")
                break
        print("tail latency %.0f ms" % ((time.monotonic() - sent) * 1000), flush=True)
    finally:
        consumer.close()

    step("auto-create")
    # A producer's first record to an unknown topic creates it (auto.create.topics.enable).
    auto = topic_name("auto")
    [delivered] = ck.produce_all(ck.producer(), auto, [{"key": "k", "value": "created on first send"}])
    check_eq((delivered.topic(), delivered.offset()), (auto, 0), "first record of an auto-created topic")

    step("pipelined-order")
    # librdkafka keeps many produce requests in flight on one connection (max.in.flight
    # defaults to 1000000); without errors Kafka appends them in order, so a partition keeps
    # the order of the producer's calls.
    ordered = topic_name("order")
    ck.create_topics([(ordered, 1, {})])
    ck.produce_all(ck.producer(**{"linger.ms": 0, "batch.num.messages": 1}), ordered,
                   [{"value": str(i)} for i in range(PIPELINED)])
    values = [int(m.value()) for m in ck.consume(ordered, 1, PIPELINED)]
    inversions = sum(1 for a, b in zip(values, values[1:]) if b < a)
    misplaced = [(offset, value) for offset, value in enumerate(values) if offset != value][:5]
    check(values == list(range(PIPELINED)), "order of %d pipelined records: %d inversions; "
          "(offset, value) out of place: %s ..." % (PIPELINED, inversions, misplaced))


run(scenario)
