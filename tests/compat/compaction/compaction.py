"""Log compaction with confluent-kafka (librdkafka), driven by crates/quill/tests/compaction.rs.

usage:
  python compaction.py produce  <bootstrap> <topic> <keys> <rounds>
  python compaction.py verify   <bootstrap> <topic> <keys> <rounds>
  python compaction.py commit   <bootstrap> <group> <topic> <commits>
  python compaction.py committed <bootstrap> <group> <topic> <expected-offset>
  python compaction.py transactions <bootstrap> <transactional-id> <topic> <count>

produce: <rounds> updates of keys key-0..key-<keys-1> (value "v-<key>-<round>"); in the last
round every fifth key gets a tombstone (null value) instead. verify: a consumer from the
beginning must see, for each of those keys, only the latest record (the tombstone for deleted
keys), in offset order, and fewer records than were written (the cleaner ran). commit: commits
offsets 1..<commits> of partition 0 one by one. committed: the group's committed offset must be
<expected-offset>. transactions: a transactional producer initialises (fencing any earlier
epoch) and commits <count> transactions of one keyed record each. Exits 0 on success, 1 with the client's own error otherwise; every wait is
bounded.
"""

import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

DEADLINE_S = 60


def expected_latest(keys, rounds):
    latest = {}
    for key in range(keys):
        name = "key-%d" % key
        latest[name] = None if key % 5 == 0 else ("v-%d-%d" % (key, rounds - 1))
    return latest


def produce(bootstrap, topic, keys, rounds):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "enable.idempotence": True})
    for round_ in range(rounds):
        for key in range(keys):
            tombstone = round_ == rounds - 1 and key % 5 == 0
            value = None if tombstone else ("v-%d-%d" % (key, round_)).encode()
            producer.produce(topic, key=("key-%d" % key).encode(), value=value, partition=0)
        producer.poll(0)
    remaining = producer.flush(DEADLINE_S)
    if remaining:
        raise RuntimeError("%d messages not delivered" % remaining)
    print("produced %d records" % (keys * rounds))


def read_all(bootstrap, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-verify-" + topic,
                         "enable.auto.commit": False, "socket.timeout.ms": 10000})
    try:
        partition = TopicPartition(topic, 0)
        _, high = consumer.get_watermark_offsets(partition, timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        records = []
        last_offset = -1
        deadline = time.monotonic() + DEADLINE_S
        while last_offset < high - 1:
            if time.monotonic() > deadline:
                raise RuntimeError("read only to offset %d of %d" % (last_offset, high))
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                raise RuntimeError(str(message.error()))
            records.append((message.offset(), message.key().decode(), message.value()))
            last_offset = message.offset()
        return records
    finally:
        consumer.close()


def verify(bootstrap, topic, keys, rounds):
    records = read_all(bootstrap, topic)
    offsets = [offset for offset, _, _ in records]
    if offsets != sorted(offsets):
        raise AssertionError("offsets out of order: %r" % offsets)
    latest = expected_latest(keys, rounds)
    seen = {}
    for offset, key, value in records:
        if key not in latest:
            continue  # records the test harness added to roll segments
        if key in seen:
            raise AssertionError("%s appears twice (offsets %d and %d): not compacted"
                                 % (key, seen[key][0], offset))
        seen[key] = (offset, None if value is None else value.decode())
    for key, value in latest.items():
        if key not in seen:
            raise AssertionError("%s is missing" % key)
        if seen[key][1] != value:
            raise AssertionError("%s: %r, expected %r" % (key, seen[key][1], value))
    if len(records) >= keys * rounds:
        raise AssertionError("%d records: nothing was cleaned" % len(records))
    print("verified %d keys in %d records" % (len(seen), len(records)))


def commit(bootstrap, group, topic, commits):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "socket.timeout.ms": 10000})
    try:
        for offset in range(1, commits + 1):
            consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
        print("committed %d times" % commits)
    finally:
        consumer.close()


def committed(bootstrap, group, topic, expected):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "socket.timeout.ms": 10000})
    try:
        result = consumer.committed([TopicPartition(topic, 0)], timeout=30)
        if result[0].error:
            raise RuntimeError(str(result[0].error))
        if result[0].offset != expected:
            raise AssertionError("committed offset %d, expected %d" % (result[0].offset, expected))
        print("committed offset %d" % result[0].offset)
    finally:
        consumer.close()


def transactions(bootstrap, transactional_id, topic, count):
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "transaction.timeout.ms": 60000})
    producer.init_transactions(DEADLINE_S)
    for index in range(count):
        producer.begin_transaction()
        producer.produce(topic, key=("txn-%d" % index).encode(), value=b"committed", partition=0)
        producer.commit_transaction(DEADLINE_S)
    print("committed %d transactions" % count)


def main():
    command, bootstrap = sys.argv[1], sys.argv[2]
    if command == "produce":
        produce(bootstrap, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif command == "verify":
        verify(bootstrap, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif command == "commit":
        commit(bootstrap, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif command == "transactions":
        transactions(bootstrap, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif command == "committed":
        committed(bootstrap, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        raise SystemExit("unknown command " + command)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # the client's own error, for the test log
        print("FAILED: %s" % error)
        sys.exit(1)
