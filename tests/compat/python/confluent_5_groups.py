"""Scenario 5 with confluent-kafka: two members of a group split the partitions, a second group
sees everything (fan-out), a leaving member's partitions move to the other (rebalance),
committed offsets survive the members leaving, and broker restarts (SIGTERM, then SIGKILL)."""

import time

from confluent_kafka import Consumer, KafkaError, KafkaException

import ck
import restart_protocol
from common import Deadline, check, check_eq, run, step, topic_name

PARTITIONS = 4
COUNT = 40


class Member:
    def __init__(self, group, topic):
        self.consumer = Consumer(dict(ck.BASE, **{
            "group.id": group, "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500, "enable.auto.commit": True, "auto.commit.interval.ms": 200,
            "fetch.wait.max.ms": 200}))
        self.consumer.subscribe([topic])
        self.seen = []

    def poll(self):
        message = self.consumer.poll(0.1)
        if message is not None:
            if message.error():
                raise KafkaException(message.error())
            self.seen.append(int(message.value()))

    def assigned(self):
        return sorted(tp.partition for tp in self.consumer.assignment())


def pump(members, condition, what, seconds=40):
    deadline = Deadline(seconds, what)
    while not condition():
        deadline.check()
        for member in members:
            member.poll()


def scenario():
    topic = topic_name("groups")
    step("create")
    ck.create_topics([(topic, PARTITIONS, {})])
    producer = ck.producer()
    ck.produce_all(producer, topic, [{"value": str(i), "partition": i % PARTITIONS} for i in range(COUNT)])

    step("same-group-splits")
    group = "%s-a" % topic
    a1, a2 = Member(group, topic), Member(group, topic)
    pump([a1, a2], lambda: len(a1.seen) + len(a2.seen) >= COUNT and a1.assigned() and a2.assigned(),
         "two members sharing %d messages" % COUNT)
    check_eq(sorted(a1.assigned() + a2.assigned()), list(range(PARTITIONS)), "partitions split without overlap")
    check_eq(sorted(a1.seen + a2.seen), list(range(COUNT)), "each message once in the group")

    step("fan-out")
    b = Member("%s-b" % topic, topic)
    pump([b], lambda: len(b.seen) >= COUNT, "group B seeing every message")
    b.consumer.close()

    step("rebalance-on-leave")
    a2.consumer.close()
    pump([a1], lambda: a1.assigned() == list(range(PARTITIONS)), "a1 taking over every partition")

    step("commits-survive")
    try:
        a1.consumer.commit(asynchronous=False)
    except KafkaException as error:
        # Auto-commit may already have committed everything: nothing left to commit.
        if error.args[0].code() != KafkaError._NO_OFFSET:
            raise
    a1.consumer.close()
    ck.produce_all(producer, topic, [{"value": str(COUNT + i), "partition": i % PARTITIONS} for i in range(8)])
    a3 = Member(group, topic)
    pump([a3], lambda: len(a3.seen) >= 8, "the 8 messages produced after the group left")
    check_eq(sorted(a3.seen), list(range(COUNT, COUNT + 8)), "resumed from the committed offsets")
    a3.consumer.close()

    following = COUNT + 8
    for phase in (1, 2):
        step("commits-survive-restart-%d" % phase)
        restart_protocol.request_restart(phase)
        deadline = Deadline(60, "the runner restarting the broker (%d)" % phase)
        while restart_protocol.restarts() < phase:
            deadline.check()
            time.sleep(0.05)
        values = list(range(following, following + 4))
        ck.produce_all(ck.producer(), topic, [{"value": str(v), "partition": v % PARTITIONS} for v in values])
        member = Member(group, topic)
        pump([member], lambda: len(member.seen) >= 4, "the 4 messages produced after restart %d" % phase)
        check_eq(sorted(member.seen), values, "resumed from the committed offsets after restart %d" % phase)
        member.consumer.close()
        following += 4


run(scenario)
