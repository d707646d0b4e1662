"""Scenario 8 with kafka-python: the runner restarts the broker twice mid-stream (SIGTERM,
then SIGKILL); the producer (acks=all, retries) rides through and every acknowledged message
is read back afterwards."""

import time

from kafka import KafkaConsumer, TopicPartition

import kp
import restart_protocol
from common import Deadline, run, step, topic_name

PER_PHASE = 40


def scenario():
    topic = topic_name("restart")
    step("create")
    kp.create_topics([(topic, 2, {})])
    producer = kp.producer(retries=30, retry_backoff_ms=200, linger_ms=0, delivery_timeout_ms=45000,
                           reconnect_backoff_max_ms=500, max_block_ms=45000)
    acked, sent = set(), [0]
    pending = []

    def settle(block):
        for value, future in list(pending):
            if block or future.is_done:
                pending.remove((value, future))
                try:
                    future.get(timeout=45)
                    acked.add(value)
                except Exception as error:  # the client's own error, printed; not acknowledged
                    print("not acknowledged %s: %r" % (value, error), flush=True)

    def produce_one():
        value = "m%d" % sent[0]
        sent[0] += 1
        pending.append((value, producer.send(topic, key=value.encode(), value=value.encode())))
        time.sleep(0.02)
        settle(False)

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
    step("produce-after")
    target = len(acked) + PER_PHASE
    deadline = Deadline(60, "acknowledgements after the restarts")
    while len(acked) < target:
        deadline.check()
        produce_one()
    producer.flush(timeout=45)
    settle(True)
    producer.close(timeout=10)
    print("%d acknowledged of %d sent" % (len(acked), sent[0]), flush=True)

    step("consume")
    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, fetch_max_wait_ms=200, **kp.BASE)
    try:
        tps = [TopicPartition(topic, p) for p in range(2)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        seen = set()
        deadline = Deadline(40, "reading back every acknowledged message")
        while not acked <= seen:
            deadline.check("(missing %d)" % len(acked - seen))
            for batch in consumer.poll(timeout_ms=500).values():
                seen.update(r.value.decode() for r in batch)
    finally:
        consumer.close()


run(scenario)
