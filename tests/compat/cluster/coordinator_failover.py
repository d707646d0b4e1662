"""A consumer group across a coordinator failover, seen by confluent-kafka (librdkafka), driven
by crates/quill/tests/coordinator_failover.rs.

usage:
  python coordinator_failover.py produce <bootstrap> <topic> <first> <count>
  python coordinator_failover.py consume <bootstrap> <topic> <group> <count>

produce: an idempotent acks=all producer writes the values "first".."first+count-1" to
partition 0 and prints "produced". consume: a subscribed group member (auto commit off) reads
<count> records, committing each one synchronously (commitSync) after reading it, prints
"read <offset> <value>" for each, then leaves the group. Exits 0 on success, 1 with the client's
error otherwise; every wait is bounded.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer

DEADLINE_S = 90


def produce(bootstrap, topic, first, count):
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "message.timeout.ms": DEADLINE_S * 1000})
    errors = []

    def delivered(error, message):
        if error is not None:
            errors.append(error)

    for n in range(first, first + count):
        producer.produce(topic, value=str(n), partition=0, on_delivery=delivered)
    remaining = producer.flush(DEADLINE_S)
    if remaining or errors:
        raise SystemExit("produce: %d undelivered, errors %r" % (remaining, errors[:3]))
    print("produced", flush=True)


def consume(bootstrap, topic, group, count):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 10000})
    consumer.subscribe([topic])
    read = 0
    deadline = time.time() + DEADLINE_S
    while read < count:
        if time.time() > deadline:
            raise SystemExit("read %d of %d records" % (read, count))
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            raise SystemExit("consume failed: %s" % message.error())
        print("read %d %s" % (message.offset(), message.value().decode()), flush=True)
        consumer.commit(message=message, asynchronous=False)
        read += 1
    consumer.close()


def main():
    command = sys.argv[1]
    try:
        if command == "produce":
            produce(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        elif command == "consume":
            consume(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        else:
            raise SystemExit("unknown command %s" % command)
    except KafkaException as error:
        raise SystemExit("client error: %s" % error)


if __name__ == "__main__":
    main()
