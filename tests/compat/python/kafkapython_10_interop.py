"""Scenario 10 with kafka-python: read the compressed batches every other client wrote."""

import interop
import kp
from common import run, step


def scenario():
    for topic, count in interop.topics():
        step("read-%s" % topic)
        interop.verify(topic, [r.value for r in kp.consume(topic, 1, count)])


run(scenario)
