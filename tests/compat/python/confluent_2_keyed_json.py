"""Scenario 2 with confluent-kafka: keyed JSON events consumed from the beginning; with
partitioner=murmur2_random a key's partition equals Java's; with librdkafka's default
(consistent_random) a key still always lands in one partition; explicit partitions win."""

import json

import ck
from common import check, check_eq, java_partition, run, step, topic_name

PARTITIONS = 3


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


run(scenario)
