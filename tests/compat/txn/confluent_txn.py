"""Transactions with confluent-kafka (librdkafka): the consume-transform-produce loop with
send_offsets_to_transaction, a committed and an aborted round, a fenced zombie, and a timeout
above transaction.max.timeout.ms.

    python confluent_txn.py <bootstrap> <topic-prefix>
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402

import ck  # noqa: E402
from common import Deadline, check, check_eq, run, step, topic_name  # noqa: E402

PARTITIONS = 2
INPUT_COUNT = 20


def read_all(topic, isolation, expected_count, settle_s=1.0):
    """Every value of `topic` (all partitions, from the start) under `isolation`; waits for
    `expected_count` and then `settle_s` more to catch extras."""
    consumer = Consumer(dict(ck.BASE, **{"group.id": "%s-%s" % (topic, isolation),
                                         "enable.auto.commit": False,
                                         "isolation.level": isolation,
                                         "fetch.wait.max.ms": 100}))
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        values = []
        deadline = Deadline(30, "reading %d values of %s (%s)" % (expected_count, topic, isolation))
        settle_end = None
        while True:
            message = consumer.poll(0.2)
            if message is not None:
                if message.error():
                    raise KafkaException(message.error())
                values.append(message.value().decode())
            if len(values) >= expected_count:
                if settle_end is None:
                    settle_end = Deadline(settle_s, "settle")
                if settle_end.remaining() == 0:
                    return sorted(values)
            else:
                deadline.check("(%d so far: %s)" % (len(values), sorted(values)))
    finally:
        consumer.close()


def txn_producer(transactional_id, **extra):
    config = dict(ck.BASE, **{"transactional.id": transactional_id, "linger.ms": 5})
    config.update(extra)
    return Producer(config)


def poll_inputs(consumer, count):
    records = []
    deadline = Deadline(30, "polling %d input records" % count)
    while len(records) < count:
        deadline.check("(%d so far)" % len(records))
        for message in consumer.consume(count - len(records), 0.5):
            if message.error():
                raise KafkaException(message.error())
            records.append(message)
    return records


def committed_total(group, topic):
    consumer = Consumer(dict(ck.BASE, **{"group.id": group, "enable.auto.commit": False}))
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=15)
        return sum(max(tp.offset, 0) for tp in committed)
    finally:
        consumer.close()


def scenario():
    source = topic_name("txn-in")
    sink = topic_name("txn-out")
    group = topic_name("txn-processor")
    step("create")
    ck.create_topics([(source, PARTITIONS, {}), (sink, PARTITIONS, {})])
    ck.produce_all(ck.producer(**{"enable.idempotence": True}), source,
                   [{"key": "k%d" % i, "value": "in-%d" % i} for i in range(INPUT_COUNT)])

    step("bad-timeout")
    too_long = txn_producer(topic_name("too-long"), **{"transaction.timeout.ms": 900001})
    try:
        too_long.init_transactions(15)
        raise AssertionError("init_transactions accepted transaction.timeout.ms above the maximum")
    except KafkaException as error:
        check_eq(error.args[0].code(), KafkaError.INVALID_TRANSACTION_TIMEOUT, "error for 900001 ms")

    step("consume-transform-produce")
    consumer = Consumer(dict(ck.BASE, **{"group.id": group, "enable.auto.commit": False,
                                         "auto.offset.reset": "earliest",
                                         "isolation.level": "read_committed"}))
    consumer.subscribe([source])
    producer = txn_producer(topic_name("txn-id"))
    producer.init_transactions(15)

    first = poll_inputs(consumer, INPUT_COUNT // 2)
    producer.begin_transaction()
    for message in first:
        producer.produce(sink, key=message.key(), value="out-" + message.value().decode())
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                         consumer.consumer_group_metadata(), 15)
    producer.commit_transaction(15)
    committed_outputs = sorted("out-" + m.value().decode() for m in first)
    check_eq(committed_total(group, source), INPUT_COUNT // 2, "group offsets after commit")

    step("abort")
    second = poll_inputs(consumer, INPUT_COUNT - INPUT_COUNT // 2)
    producer.begin_transaction()
    for message in second:
        producer.produce(sink, key=message.key(), value="aborted-" + message.value().decode())
    # abort_transaction purges messages not yet sent: flush so the aborted records are in the
    # log (read_uncommitted must see them).
    check_eq(producer.flush(15), 0, "queued after flush")
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                         consumer.consumer_group_metadata(), 15)
    producer.abort_transaction(15)
    aborted_outputs = sorted("aborted-" + m.value().decode() for m in second)
    check_eq(committed_total(group, source), INPUT_COUNT // 2, "group offsets after abort")
    consumer.close()

    step("read")
    check_eq(read_all(sink, "read_committed", len(committed_outputs)), committed_outputs,
             "read_committed view")
    check_eq(read_all(sink, "read_uncommitted", INPUT_COUNT), sorted(committed_outputs + aborted_outputs),
             "read_uncommitted view")

    step("zombie")
    producer.begin_transaction()
    producer.produce(sink, value="zombie-before-fence")
    check_eq(producer.flush(15), 0, "zombie's first record sent")
    successor = txn_producer(topic_name("txn-id"))
    successor.init_transactions(15)  # fences `producer` and aborts its open transaction
    try:
        producer.produce(sink, value="zombie-after-fence")
        producer.commit_transaction(15)
        raise AssertionError("the fenced producer committed")
    except KafkaException as error:
        check(error.args[0].fatal() or error.args[0].txn_requires_abort(),
              "zombie commit fails fatally or abortably, got %r" % (error.args[0],))
        print("zombie refused: %s" % error.args[0], flush=True)
    successor.begin_transaction()
    successor.produce(sink, value="successor")
    successor.commit_transaction(15)
    check_eq(read_all(sink, "read_committed", len(committed_outputs) + 1),
             sorted(committed_outputs + ["successor"]), "read_committed after the fence")


run(scenario)
