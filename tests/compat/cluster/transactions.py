"""Transactions across the brokers of a Quill cluster, seen by confluent-kafka (librdkafka),
driven by crates/quill/tests/cluster_transactions.rs.

usage:
  python transactions.py run <bootstrap> <transactional.id> <topic> <group> <first> <count>
  python transactions.py hold <bootstrap> <transactional.id> <topic> <group> <round>
  python transactions.py verify <bootstrap> <topic> <group> <committed rounds> <offset>

run: a transactional producer runs rounds first..first+count-1; round r writes the value
"r<r>-p<p>" to every partition p of <topic> (led by every broker of the cluster), sends the
offset r+1 of <topic> partition 0 to <group> (sendOffsetsToTransaction, so the group's
__consumer_offsets partition joins the transaction), and commits, except rounds r % 3 == 1,
which it aborts. hold: one round like that, then prints "ready" and waits for a line on stdin
before committing (so the test can kill a broker while the transaction is open); prints
"committed" once EndTxn succeeded. verify: a read_committed consumer reads every partition
from the start to its end and must see exactly the values of the committed rounds (a comma
list), each once; the group's committed offset of partition 0 must be <offset>. Exits 0 on
success, 1 with the client's own error otherwise; every wait is bounded.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

DEADLINE_S = 90


def partitions_of(client, topic):
    metadata = client.list_topics(topic, timeout=DEADLINE_S)
    return sorted(metadata.topics[topic].partitions)


def consumer_group_metadata(group):
    # sendOffsetsToTransaction needs the group's metadata; a consumer that never joined gives
    # a generation-less one, which the group coordinator accepts for a group with no members
    # (as Kafka does for "simple" groups).
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group})
    metadata = consumer.consumer_group_metadata()
    return consumer, metadata


def transactional_producer(bootstrap, transactional_id):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": transactional_id,
        "transaction.timeout.ms": 120000,
    })
    producer.init_transactions(DEADLINE_S)
    return producer


def one_round(producer, topic, partitions, group_metadata, round_index):
    errors = []

    def delivered(error, message):
        if error is not None:
            errors.append(error)

    producer.begin_transaction()
    for partition in partitions:
        producer.produce(topic, value="r%d-p%d" % (round_index, partition), partition=partition,
                         on_delivery=delivered)
    remaining = producer.flush(DEADLINE_S)
    if remaining or errors:
        raise SystemExit("round %d: %d undelivered, errors %r" % (round_index, remaining, errors[:3]))
    producer.send_offsets_to_transaction([TopicPartition(topic, 0, round_index + 1)],
                                         group_metadata, DEADLINE_S)


def run(bootstrap, transactional_id, topic, group, first, count):
    producer = transactional_producer(bootstrap, transactional_id)
    partitions = partitions_of(producer, topic)
    consumer, group_metadata = consumer_group_metadata(group)
    for round_index in range(first, first + count):
        one_round(producer, topic, partitions, group_metadata, round_index)
        if round_index % 3 == 1:
            producer.abort_transaction(DEADLINE_S)
        else:
            producer.commit_transaction(DEADLINE_S)
    consumer.close()
    print("ran rounds %d..%d" % (first, first + count - 1))


def hold(bootstrap, transactional_id, topic, group, round_index):
    producer = transactional_producer(bootstrap, transactional_id)
    partitions = partitions_of(producer, topic)
    consumer, group_metadata = consumer_group_metadata(group)
    one_round(producer, topic, partitions, group_metadata, round_index)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "commit":
        raise SystemExit("expected 'commit' on stdin")
    producer.commit_transaction(DEADLINE_S)
    consumer.close()
    print("committed", flush=True)


def verify(bootstrap, topic, group, committed_rounds, offset):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group + "-verifier",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    partitions = partitions_of(consumer, topic)
    expected = {"r%d-p%d" % (r, p) for r in committed_rounds for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    seen = set()
    at_end = set()
    deadline = time.time() + DEADLINE_S
    while not (seen == expected and at_end == set(partitions)):
        if time.time() > deadline:
            raise SystemExit("read %d of %d committed values; missing %r" %
                             (len(seen), len(expected), sorted(expected - seen)[:5]))
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            if message.error().code() == -191:  # _PARTITION_EOF
                at_end.add(message.partition())
                continue
            raise SystemExit("consume failed: %s" % message.error())
        at_end.discard(message.partition())
        value = message.value().decode()
        if value not in expected:
            raise SystemExit("read %r, which no committed transaction wrote" % value)
        if value in seen:
            raise SystemExit("read %r twice" % value)
        seen.add(value)
    consumer.close()

    checker = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                        "isolation.level": "read_committed"})
    committed = checker.committed([TopicPartition(topic, 0)], timeout=DEADLINE_S)[0]
    checker.close()
    if committed.error is not None or committed.offset != offset:
        raise SystemExit("group %s: committed offset %r (%s), expected %d" %
                         (group, committed.offset, committed.error, offset))
    print("read %d committed values exactly once; group offset %d" % (len(seen), offset))


BOOTSTRAP = None


def main():
    global BOOTSTRAP
    command = sys.argv[1]
    BOOTSTRAP = sys.argv[2]
    try:
        if command == "run":
            run(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]))
        elif command == "hold":
            hold(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
        elif command == "verify":
            rounds = [int(r) for r in sys.argv[5].split(",") if r]
            verify(sys.argv[2], sys.argv[3], sys.argv[4], rounds, int(sys.argv[6]))
        else:
            raise SystemExit("unknown command %s" % command)
    except KafkaException as error:
        raise SystemExit("client error: %s" % error)


if __name__ == "__main__":
    main()
