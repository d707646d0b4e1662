"""Scenario 5 with kafka-python: two members of a group split the partitions, a second group
sees everything (fan-out), a leaving member's partitions move to the other (rebalance),
committed offsets survive the members leaving, and broker restarts (SIGTERM, then SIGKILL)."""

import time

from kafka import KafkaConsumer

import kp
import restart_protocol
from common import Deadline, check_eq, run, step, topic_name

PARTITIONS = 4
COUNT = 40


class Member:
    def __init__(self, group, topic):
        self.consumer = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest",
                                      session_timeout_ms=10000, heartbeat_interval_ms=500,
                                      enable_auto_commit=True, auto_commit_interval_ms=200,
                                      fetch_max_wait_ms=200, **kp.BASE)
        self.seen = []

    def poll(self):
        for batch in self.consumer.poll(timeout_ms=100).values():
            self.seen += [int(r.value) for r in batch]

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
    kp.create_topics([(topic, PARTITIONS, {})])
    producer = kp.producer()
    kp.produce_all(producer, topic, [{"value": b"%d" % i, "partition": i % PARTITIONS} for i in range(COUNT)])

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
    a1.consumer.commit()
    a1.consumer.close()
    kp.produce_all(producer, topic, [{"value": b"%d" % (COUNT + i), "partition": i % PARTITIONS} for i in range(8)])
    a3 = Member(group, topic)
    pump([a3], lambda: len(a3.seen) >= 8, "the 8 messages produced after the group left")
    check_eq(sorted(a3.seen), list(range(COUNT, COUNT + 8)), "resumed from the committed offsets")
    a3.consumer.close()
    producer.close(timeout=10)

    following = COUNT + 8
    for phase in (1, 2):
        step("commits-survive-restart-%d" % phase)
        restart_protocol.request_restart(phase)
        deadline = Deadline(60, "the runner restarting the broker (%d)" % phase)
        while restart_protocol.restarts() < phase:
            deadline.check()
            time.sleep(0.05)
        values = list(range(following, following + 4))
        fresh = kp.producer()
        kp.produce_all(fresh, topic, [{"value": b"%d" % v, "partition": v % PARTITIONS} for v in values])
        fresh.close(timeout=10)
        member = Member(group, topic)
        pump([member], lambda: len(member.seen) >= 4, "the 4 messages produced after restart %d" % phase)
        check_eq(sorted(member.seen), values, "resumed from the committed offsets after restart %d" % phase)
        member.consumer.close()
        following += 4


run(scenario)
