"""confluent-kafka (librdkafka) producing keyless records to a compacted topic, as librdkafka's
own test 0011_produce_batch does: every message of the refused batch fails with INVALID_RECORD
(each keyless one with the broker's per-record message), nothing is written, and keyed
messages to the same topic still succeed.

usage: python keyless_compacted.py <bootstrap> <topic>
"""

import sys

from confluent_kafka import KafkaError, Producer

bootstrap, topic = sys.argv[1], sys.argv[2]
producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 100,
                     "message.timeout.ms": 30000, "retries": 0, "socket.timeout.ms": 10000})
reports = []


def report(error, message):
    reports.append((error, message))


MESSAGES = 20
for index in range(MESSAGES):
    producer.produce(topic, value=b"keyless-%d" % index, partition=0, on_delivery=report)
remaining = producer.flush(30)
assert remaining == 0, "messages still queued: %d" % remaining
assert len(reports) == MESSAGES, "got %d delivery reports" % len(reports)
for error, message in reports:
    assert error is not None, "keyless message at offset %s was accepted" % message.offset()
    assert error.code() == KafkaError.INVALID_RECORD, "error %r" % error
print("all %d keyless messages failed with %s (%s)" % (MESSAGES, reports[0][0].name(),
                                                       reports[0][0].str()), flush=True)

reports.clear()
for index in range(3):
    producer.produce(topic, key=b"k-%d" % index, value=b"v-%d" % index, partition=0,
                     on_delivery=report)
assert producer.flush(30) == 0
offsets = []
for error, message in reports:
    assert error is None, "keyed message failed: %r" % error
    offsets.append(message.offset())
assert offsets == [0, 1, 2], "keyed messages at offsets %r" % offsets
print("keyed messages accepted at offsets %r" % offsets, flush=True)
