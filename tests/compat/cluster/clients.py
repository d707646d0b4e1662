"""A multi-broker Quill cluster seen by confluent-kafka (librdkafka), driven by
crates/quill/tests/cluster.rs.

usage:
  python clients.py produce <bootstrap> <topic> <keys> <per-key>
  python clients.py consume <bootstrap> <group> <topic> <keys> <per-key>
  python clients.py describe <bootstrap> <topic>

produce: an idempotent producer (acks=all) writes <per-key> values "<key>:<n>" for each of keys
k0..k<keys-1>; librdkafka routes each record to its partition's leader, whichever broker that
is. consume: a group member reads the topic from the beginning and must see every value exactly
once, each key's values in order, then commits; a fresh client of the group then reads every partition's committed offset
back (from the coordinator's broker) and finds it at the partition's end. Exits 0 on success,
1 with the client's own error otherwise; every wait is bounded. describe: librdkafka's Metadata
(list_topics) of the topic, one line per partition, "<partition> <leader> <replicas> <isr>"
with the broker lists comma-separated in the order the broker gave them.
"""

import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

DEADLINE_S = 60


def produce(bootstrap, topic, keys, per_key):
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})

    def delivered(error, message):
        if error is not None:
            errors.append(error)

    for n in range(per_key):
        for key in range(keys):
            producer.produce(topic, key="k%d" % key, value="k%d:%d" % (key, n), on_delivery=delivered)
            producer.poll(0)
    remaining = producer.flush(DEADLINE_S)
    if remaining or errors:
        raise SystemExit("produce failed: %d undelivered, errors %r" % (remaining, errors[:3]))
    print("produced %d" % (keys * per_key))


def consume(bootstrap, group, topic, keys, per_key):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = {}
    total = keys * per_key
    count = 0
    deadline = time.time() + DEADLINE_S
    while count < total and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            raise SystemExit("consume failed: %s" % message.error())
        key, n = message.value().decode().split(":")
        expected = seen.get(key, -1) + 1
        if int(n) != expected:
            raise SystemExit("key %s: expected value %d, got %s" % (key, expected, n))
        seen[key] = int(n)
        count += 1
    if count != total:
        raise SystemExit("consumed %d of %d records" % (count, total))
    consumer.commit(asynchronous=False)
    consumer.close()

    # A fresh client of the same group reads the committed offsets back from the group's
    # coordinator (the broker leading its __consumer_offsets partition): every partition's
    # committed offset is its end.
    checker = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    metadata = checker.list_topics(topic, timeout=DEADLINE_S)
    partitions = [TopicPartition(topic, p) for p in sorted(metadata.topics[topic].partitions)]
    committed = checker.committed(partitions, timeout=DEADLINE_S)
    for partition in committed:
        if partition.error is not None:
            raise SystemExit("committed offset of partition %d: %s" % (partition.partition, partition.error))
        low, high = checker.get_watermark_offsets(partition, timeout=DEADLINE_S)
        if partition.offset != high:
            raise SystemExit("partition %d: committed %d, end %d" % (partition.partition, partition.offset, high))
    checker.close()
    print("consumed %d, offsets committed" % count)


def describe(bootstrap, topic):
    admin = Consumer({"bootstrap.servers": bootstrap, "group.id": "describe"})
    metadata = admin.list_topics(topic, timeout=DEADLINE_S)
    described = metadata.topics[topic]
    if described.error is not None:
        raise SystemExit("describe failed: %s" % described.error)
    for partition in sorted(described.partitions.values(), key=lambda p: p.id):
        print("%d %d %s %s" % (partition.id, partition.leader,
                               ",".join(str(r) for r in partition.replicas),
                               ",".join(str(r) for r in partition.isrs)))
    admin.close()


def main():
    command = sys.argv[1]
    if command == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif command == "consume":
        consume(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif command == "describe":
        describe(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("unknown command %s" % command)


if __name__ == "__main__":
    main()
