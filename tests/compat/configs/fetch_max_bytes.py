"""librdkafka's 0082_fetch_max_bytes against Quill, driven by crates/quill/tests/config_clients.rs.

    python fetch_max_bytes.py <bootstrap> <topic> <partitions>

Produces three 300 KB messages, each its own batch, to every partition, then consumes them all
with fetch.max.bytes = 1 MB and receive.message.max.bytes = fetch.max.bytes + 512 (librdkafka's
minimum): a Fetch response over the limit (a broker adding whole batches of later partitions
beyond fetch.max.bytes) is a receive error here, which fails the program. Every wait is bounded.
"""

import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
FETCH_MAX_BYTES = 1024 * 1024
MESSAGES_PER_PARTITION = 3
VALUE = b"x" * 300_000
errors = []

producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "compression.type": "none",
                     "message.max.bytes": 1_000_000})
for partition in range(partitions):
    for _ in range(MESSAGES_PER_PARTITION):
        producer.produce(topic, VALUE, partition=partition)
        # One batch per message: flush before the next.
        if producer.flush(20) != 0:
            raise SystemExit("produce did not complete")

consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "%s-reader" % topic,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "fetch.max.bytes": FETCH_MAX_BYTES,
    "receive.message.max.bytes": FETCH_MAX_BYTES + 512,
    "max.partition.fetch.bytes": FETCH_MAX_BYTES,
    "error_cb": lambda error: errors.append(str(error)),
})
consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
expected = partitions * MESSAGES_PER_PARTITION
received = 0
deadline = time.monotonic() + 60
while received < expected:
    if errors:
        raise SystemExit("client error: %s" % errors)
    if time.monotonic() > deadline:
        raise SystemExit("received %d of %d messages" % (received, expected))
    message = consumer.poll(0.2)
    if message is None:
        continue
    if message.error():
        raise SystemExit("message error: %s" % message.error())
    if len(message.value()) != len(VALUE):
        raise SystemExit("short message at %d/%d" % (message.partition(), message.offset()))
    received += 1
consumer.close()
if errors:
    raise SystemExit("client error: %s" % errors)
print("RECEIVED %d" % received, flush=True)
