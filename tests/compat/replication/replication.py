"""Replication seen by confluent-kafka (librdkafka), driven by crates/quill/tests/replication.rs.

usage:
  python replication.py produce <bootstrap> <topic> <count> [pace_every]
  python replication.py check <bootstrap> <topic> <acks-file>
  python replication.py produce_one <bootstrap> <topic> <timeout_ms>

produce: one idempotent producer (acks=all, retries until message.timeout.ms) writes the values
"0".."count-1" to partition 0, pausing 10 ms every `pace_every` records so that the stream spans
the faults the test injects; prints "ack <value> <offset>" for every acknowledged record and
"fail <value> <error>" for every failed one, then "done". Exits 0 when every record was
acknowledged.

check: reads partition 0 from the beginning to its end and compares with the acknowledged
records in <acks-file> (the producer's output): every acknowledged value must be read exactly
once, at the offset it was acknowledged at, and values must appear in increasing order. Prints a
one-line JSON summary {"acked", "read", "lost", "duplicated", "reordered", "moved"} and exits 1
on any violation.

produce_one: one record with acks=all and no retries beyond <timeout_ms>; prints "ok <offset>"
or "error <name>" (exit 0 either way: the test judges).
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

DEADLINE_S = 120


def produce(bootstrap, topic, count, pace_every):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 90000,
        "retry.backoff.ms": 100,
    })
    failures = []

    def delivered(error, message):
        value = message.value().decode()
        if error is not None:
            failures.append(value)
            print("fail %s %s" % (value, error.name()), flush=True)
        else:
            print("ack %s %d" % (value, message.offset()), flush=True)

    for n in range(count):
        while True:
            try:
                producer.produce(topic, value=str(n), partition=0, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        if pace_every and n % pace_every == pace_every - 1:
            time.sleep(0.01)
    remaining = producer.flush(DEADLINE_S)
    print("done", flush=True)
    if remaining or failures:
        raise SystemExit("produce: %d undelivered, %d failed" % (remaining, len(failures)))


def produce_one(bootstrap, topic, timeout_ms):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "message.timeout.ms": int(timeout_ms),
        "request.timeout.ms": min(int(timeout_ms), 30000),
    })
    outcome = []

    def delivered(error, message):
        outcome.append("error %s" % error.name() if error else "ok %d" % message.offset())

    producer.produce(topic, value="one", partition=0, on_delivery=delivered)
    producer.flush(int(timeout_ms) / 1000 + 10)
    print(outcome[0] if outcome else "error UNDELIVERED", flush=True)


def check(bootstrap, topic, acks_file):
    acked = {}
    for line in open(acks_file):
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ack":
            acked[int(parts[1])] = int(parts[2])
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "replication-checker",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })
    partition = TopicPartition(topic, 0)
    low, high = consumer.get_watermark_offsets(partition, timeout=30)
    partition.offset = low
    consumer.assign([partition])
    read = []  # (value, offset)
    deadline = time.time() + DEADLINE_S
    done = high <= low
    while not done and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                done = message.offset() >= high
                continue
            raise SystemExit("check: consume failed: %s" % message.error())
        read.append((int(message.value().decode()), message.offset()))
        done = message.offset() + 1 >= high
    consumer.close()
    seen = {}
    duplicated = 0
    reordered = 0
    last = -1
    for value, offset in read:
        if value in seen:
            duplicated += 1
        seen[value] = offset
        if value <= last:
            reordered += 1
        last = max(last, value)
    lost = sorted(value for value in acked if value not in seen)
    moved = sorted(value for value, offset in acked.items() if value in seen and seen[value] != offset)
    summary = {"acked": len(acked), "read": len(read), "lost": len(lost), "duplicated": duplicated,
               "reordered": reordered, "moved": len(moved), "high_watermark": high,
               "first_lost": lost[:5], "first_moved": moved[:5]}
    print(json.dumps(summary), flush=True)
    if lost or duplicated or reordered or moved or not done:
        raise SystemExit(1)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    elif command == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4])
    elif command == "produce_one":
        produce_one(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)
