"""Scenario 2 with kafka-python: keyed JSON events consumed from the beginning; the default
partitioner's partition equals Java's murmur2; explicit partitions win; per-partition order."""

import json
import time

from kafka import KafkaConsumer, TopicPartition

import kp
from common import Deadline, check, check_eq, java_partition, run, step, topic_name

PARTITIONS = 3
PIPELINED = 2000


def scenario():
    topic = topic_name("keyed")
    step("create")
    kp.create_topics([(topic, PARTITIONS, {})])

    step("produce")
    producer = kp.producer(key_serializer=str.encode, value_serializer=lambda v: json.dumps(v).encode())
    messages = [{"key": "user-%d" % user, "value": {"user": user, "round": round_}}
                for round_ in range(3) for user in range(10)]
    messages += [{"key": "explicit", "partition": p, "value": {"explicit": p}} for p in range(PARTITIONS)]
    metadata = kp.produce_all(producer, topic, messages)
    for message, meta in zip(messages, metadata):
        if message["key"] != "explicit":
            check_eq(meta.partition, java_partition(message["key"], PARTITIONS), "acked partition of %s" % message["key"])
    producer.close(timeout=10)

    step("consume")
    records = kp.consume(topic, PARTITIONS, len(messages))
    check_eq(len(records), len(messages), "records consumed")

    step("verify")
    last_round = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        key, value = r.key.decode(), json.loads(r.value)
        if key == "explicit":
            check_eq(r.partition, value["explicit"], "explicit partition")
        else:
            check_eq(r.partition, java_partition(key, PARTITIONS), "partition of %s" % key)
            check(value["round"] > last_round.get(key, -1), "order of %s" % key)
            last_round[key] = value["round"]
    print("verified %d records" % len(records))

    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, fetch_max_wait_ms=500, **kp.BASE)
    try:
        # No acks=0 step: kafka-python 2.3.3 never writes an acks=0 Produce request to its socket
        # (seen through a logging TCP proxy: ApiVersions and Metadata go out, the Produce never
        # does), so nothing of the broker would be tested.
        step("tail")
        # The tutorials' flow: a consumer waits at the end, then a producer sends.
        tp = TopicPartition(topic, 1)
        end = consumer.end_offsets([tp])[tp]
        consumer.assign([tp])
        consumer.seek(tp, end)
        consumer.poll(timeout_ms=1000)
        sent = time.monotonic()
        producer = kp.producer()
        kp.produce_all(producer, topic, [{"value": b"live", "partition": 1}])
        producer.close(timeout=10)
        got = []
        deadline = Deadline(10, "the message produced while tailing")
        while not got:
            deadline.check()
            for batch in consumer.poll(timeout_ms=500).values():
                got += [(r.offset, r.value) for r in batch]
        check_eq(got, [(end, b"live")], "tailed message")
        print("tail latency %.0f ms" % ((time.monotonic() - sent) * 1000), flush=True)
    finally:
        consumer.close()

    step("auto-create")
    # A producer's first record to an unknown topic creates it (auto.create.topics.enable).
    auto = topic_name("auto")
    producer = kp.producer()
    [meta] = kp.produce_all(producer, auto, [{"key": b"k", "value": b"created on first send"}])
    producer.close(timeout=10)
    check_eq((meta.topic, meta.offset), (auto, 0), "first record of an auto-created topic")

    step("pipelined-order")
    # kafka-python keeps up to 5 produce requests in flight on one connection; without errors
    # Kafka appends them in order, so a partition keeps the order of the producer's calls.
    ordered = topic_name("order")
    kp.create_topics([(ordered, 1, {})])
    producer = kp.producer(linger_ms=0, batch_size=1)
    kp.produce_all(producer, ordered, [{"value": b"%d" % i} for i in range(PIPELINED)])
    producer.close(timeout=10)
    values = [int(r.value) for r in kp.consume(ordered, 1, PIPELINED)]
    inversions = sum(1 for a, b in zip(values, values[1:]) if b < a)
    misplaced = [(offset, value) for offset, value in enumerate(values) if offset != value][:5]
    check(values == list(range(PIPELINED)), "order of %d pipelined records: %d inversions; "
          "(offset, value) out of place: %s ..." % (PIPELINED, inversions, misplaced))


run(scenario)
