"""kafka-python helpers for the scenarios."""

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from common import BOOTSTRAP, Deadline

BASE = {"bootstrap_servers": BOOTSTRAP, "request_timeout_ms": 15000}


def admin():
    return KafkaAdminClient(**BASE)


def create_topics(topics):
    """topics: list of (name, partitions, configs)."""
    client = admin()
    try:
        client.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=configs)
                              for name, partitions, configs in topics], timeout_ms=10000)
    finally:
        client.close()


def producer(**extra):
    config = dict(BASE, acks="all", linger_ms=5, max_block_ms=20000)
    config.update(extra)
    return KafkaProducer(**config)


def produce_all(p, topic, messages):
    """Sends each dict in `messages` (kwargs of KafkaProducer.send), flushes and returns the
    RecordMetadata of each, raising the first error."""
    futures = [p.send(topic, **message) for message in messages]
    p.flush(timeout=30)
    return [future.get(timeout=30) for future in futures]


def consume(topic, partitions, count, timeout_s=30, start=0, **extra):
    """Reads `count` records from offset `start` of each partition (assign, no group; `extra`:
    more consumer settings)."""
    config = dict(BASE, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=200)
    config.update(extra)
    consumer = KafkaConsumer(**config)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start)
        records = []
        deadline = Deadline(timeout_s, "consuming %d records of %s" % (count, topic))
        while len(records) < count:
            deadline.check("(%d so far)" % len(records))
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()
