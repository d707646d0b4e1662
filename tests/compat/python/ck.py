"""confluent-kafka (librdkafka) helpers for the scenarios."""

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import BOOTSTRAP, Deadline, check, check_eq

BASE = {"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000}


def admin():
    return AdminClient(dict(BASE))


def create_topics(topics):
    """topics: list of (name, partitions, configs)."""
    client = admin()  # must outlive the futures: destroying the handle fails them
    futures = client.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=configs)
         for name, partitions, configs in topics],
        operation_timeout=10, request_timeout=15)
    for name, future in futures.items():
        future.result(timeout=20)
        print("created %s" % name, flush=True)


def producer(**extra):
    config = dict(BASE, **{"acks": "all", "message.timeout.ms": 30000, "linger.ms": 5})
    config.update({k.replace("_", "."): v for k, v in extra.items()})
    return Producer(config)


def produce_all(p, topic, messages, **common):
    """Produces each dict in `messages` (kwargs of Producer.produce) and flushes; raises the
    first delivery error. Returns the delivered Message objects in produce order."""
    reports = [None] * len(messages)

    def report(index):
        def callback(error, message):
            reports[index] = (error, message)
        return callback

    for index, message in enumerate(messages):
        kwargs = dict(common, **message)
        p.produce(topic, on_delivery=report(index), **kwargs)
        p.poll(0)
    remaining = p.flush(30)
    check_eq(remaining, 0, "messages still queued after flush(30)")
    for error, message in reports:
        if error is not None:
            raise KafkaException(error)
    return [message for _, message in reports]


def consume(topic, partitions, count, timeout_s=30, start=0, **extra):
    """Reads `count` messages from offset `start` of each of `partitions` (assign, no group
    coordination; `extra`: more consumer settings). Returns the Messages in arrival order."""
    consumer = Consumer(dict(BASE, **{"group.id": "%s-reader" % topic, "enable.auto.commit": False,
                                      "fetch.wait.max.ms": 200}, **extra))
    try:
        consumer.assign([TopicPartition(topic, p, start) for p in range(partitions)])
        messages = []
        deadline = Deadline(timeout_s, "consuming %d messages of %s" % (count, topic))
        while len(messages) < count:
            deadline.check("(%d so far)" % len(messages))
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            messages.append(message)
        return messages
    finally:
        consumer.close()
