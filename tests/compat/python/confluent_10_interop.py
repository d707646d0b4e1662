"""Scenario 10 with confluent-kafka: read the compressed batches every other client wrote."""

import ck
import interop
from common import run, step


def scenario():
    for topic, count in interop.topics():
        step("read-%s" % topic)
        interop.verify(topic, [m.value() for m in ck.consume(topic, 1, count)])


run(scenario)
