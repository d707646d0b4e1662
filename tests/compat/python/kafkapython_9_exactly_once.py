"""Scenario 9 (from the tutorials) with kafka-python: an idempotent producer, a committed and
an aborted transaction, and a read_committed consumer."""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import kp
from common import Deadline, check_eq, run, step, topic_name


def read_values(topic, isolation, count):
    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, isolation_level=isolation,
                             fetch_max_wait_ms=200, **kp.BASE)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        values = []
        deadline = Deadline(30, "reading %d values (%s)" % (count, isolation))
        while len(values) < count:
            deadline.check("(%s so far)" % values)
            for batch in consumer.poll(timeout_ms=500).values():
                values += [r.value.decode() for r in batch]
        return values
    finally:
        consumer.close()


def scenario():
    topic = topic_name("eos")
    step("create")
    kp.create_topics([(topic, 1, {})])

    step("idempotent")
    producer = kp.producer(enable_idempotence=True)
    kp.produce_all(producer, topic, [{"value": b"idempotent-%d" % i} for i in range(5)])
    producer.close(timeout=10)

    step("transactional")
    producer = KafkaProducer(transactional_id="%s-txn" % topic, **kp.BASE)
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(3):
        producer.send(topic, value=b"committed-%d" % i)
    producer.commit_transaction()
    producer.begin_transaction()
    for i in range(3):
        producer.send(topic, value=b"aborted-%d" % i)
    # Sent and written before the abort: the aborted records are in the log, and
    # read_committed must skip them.
    producer.flush(timeout=15)
    producer.abort_transaction()
    producer.close(timeout=10)

    step("consume")
    committed = ["idempotent-%d" % i for i in range(5)] + ["committed-%d" % i for i in range(3)]
    check_eq(read_values(topic, "read_committed", len(committed)), committed, "read_committed")


run(scenario)
