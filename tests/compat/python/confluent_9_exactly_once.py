"""Scenario 9 (from the tutorials) with confluent-kafka: an idempotent producer, a committed and
an aborted transaction, and read_committed / read_uncommitted consumers."""

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import ck
from common import Deadline, check_eq, run, step, topic_name


def read_values(topic, isolation, count):
    consumer = Consumer(dict(ck.BASE, **{"group.id": "%s-%s" % (topic, isolation), "enable.auto.commit": False,
                                         "isolation.level": isolation}))
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values = []
        deadline = Deadline(30, "reading %d values (%s)" % (count, isolation))
        while len(values) < count:
            deadline.check("(%s so far)" % values)
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            values.append(message.value().decode())
        return values
    finally:
        consumer.close()


def scenario():
    topic = topic_name("eos")
    step("create")
    ck.create_topics([(topic, 1, {})])

    step("idempotent")
    ck.produce_all(ck.producer(**{"enable.idempotence": True}), topic,
                   [{"value": "idempotent-%d" % i} for i in range(5)])

    step("transactional")
    producer = Producer(dict(ck.BASE, **{"transactional.id": "%s-txn" % topic}))
    producer.init_transactions(15)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value="committed-%d" % i)
    producer.commit_transaction(15)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value="aborted-%d" % i)
    # Sent and written before the abort (abort_transaction would purge unsent messages): the
    # aborted records are in the log, and read_committed must skip them.
    check_eq(producer.flush(15), 0, "aborted-to-be messages still queued")
    producer.abort_transaction(15)

    step("consume")
    committed = ["idempotent-%d" % i for i in range(5)] + ["committed-%d" % i for i in range(3)]
    check_eq(read_values(topic, "read_committed", len(committed)), committed, "read_committed")
    everything = committed + ["aborted-%d" % i for i in range(3)]
    check_eq(read_values(topic, "read_uncommitted", len(everything)), everything, "read_uncommitted")


run(scenario)
