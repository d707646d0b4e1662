"""Reads topics end to end with a real Python client, for the record-validation poison suite.

usage: python read_all.py <bootstrap> <confluent|kafka-python> <topic>=<count> ...

Each topic's partition 0 must hold exactly <count> records at offsets 0..count-1 with values
"v-<offset>" (the broker refused every poison batch sent between the good ones). Exits 0 on
success, 1 with the client's own error otherwise. Every wait is bounded.
"""

import sys
import time

DEADLINE_S = 60


def expect(records, topic, count):
    offsets = [offset for offset, _ in records]
    if offsets != list(range(count)):
        raise AssertionError("%s: offsets %r, expected 0..%d" % (topic, offsets, count - 1))
    for offset, value in records:
        if value != ("v-%d" % offset).encode():
            raise AssertionError("%s: value %r at offset %d" % (topic, value, offset))


def read_confluent(bootstrap, topic, count):
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "validation-" + topic,
                         "enable.auto.commit": False, "socket.timeout.ms": 10000})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        records = []
        deadline = time.monotonic() + DEADLINE_S
        while len(records) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                raise RuntimeError("%s: %s" % (topic, message.error()))
            records.append((message.offset(), message.value()))
        return records
    finally:
        consumer.close()


def read_kafka_python(bootstrap, topic, count):
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=1000, api_version_auto_timeout_ms=10000)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        records = []
        deadline = time.monotonic() + DEADLINE_S
        while len(records) < count and time.monotonic() < deadline:
            for message in consumer.poll(timeout_ms=1000).get(partition, []):
                records.append((message.offset, message.value))
        return records
    finally:
        consumer.close()


def main():
    bootstrap, client = sys.argv[1], sys.argv[2]
    reader = {"confluent": read_confluent, "kafka-python": read_kafka_python}[client]
    for spec in sys.argv[3:]:
        topic, count = spec.rsplit("=", 1)
        records = reader(bootstrap, topic, int(count))
        expect(records, topic, int(count))
        print("%s read %s: %d records at offsets 0..%d" % (client, topic, len(records),
                                                           len(records) - 1), flush=True)


if __name__ == "__main__":
    main()
