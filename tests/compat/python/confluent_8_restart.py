"""Scenario 8 with confluent-kafka: the runner restarts the broker twice mid-stream (SIGTERM,
then SIGKILL); the producer (acks=all, retries) rides through and every acknowledged message
is read back afterwards."""

import time

import ck
import restart_protocol
from common import Deadline, check, run, step, topic_name

PER_PHASE = 40


def scenario():
    topic = topic_name("restart")
    step("create")
    ck.create_topics([(topic, 2, {})])
    producer = ck.producer(**{"message.timeout.ms": 45000, "retry.backoff.ms": 200, "linger.ms": 0})
    acked, sent = set(), [0]

    def on_delivery(error, message):
        if error is None:
            acked.add(message.value().decode())
        else:
            print("not acknowledged %s: %s" % (message.value(), error), flush=True)

    def produce_one():
        value = "m%d" % sent[0]
        sent[0] += 1
        producer.produce(topic, key=value, value=value, on_delivery=on_delivery)
        producer.poll(0.02)

    for phase in (1, 2):
        step("produce-%d" % phase)
        target = len(acked) + PER_PHASE
        deadline = Deadline(60, "acknowledgements before restart %d" % phase)
        while len(acked) < target:
            deadline.check()
            produce_one()
        restart_protocol.request_restart(phase)
        deadline = Deadline(60, "the runner restarting the broker (%d)" % phase)
        while restart_protocol.restarts() < phase:
            deadline.check()
            produce_one()
            time.sleep(0.02)
    step("produce-after")
    target = len(acked) + PER_PHASE
    deadline = Deadline(60, "acknowledgements after the restarts")
    while len(acked) < target:
        deadline.check()
        produce_one()
    check(producer.flush(50) == 0, "messages still queued")
    print("%d acknowledged of %d sent" % (len(acked), sent[0]), flush=True)

    step("consume")
    # Read until every acknowledged value has been seen (duplicates from retries are allowed).
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    consumer = Consumer(dict(ck.BASE, **{"group.id": "%s-reader" % topic, "enable.auto.commit": False}))
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(2)])
        seen = set()
        deadline = Deadline(40, "reading back every acknowledged message")
        while not acked <= seen:
            deadline.check("(missing %d)" % len(acked - seen))
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            seen.add(message.value().decode())
    finally:
        consumer.close()


run(scenario)
