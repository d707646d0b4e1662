"""A librdkafka (confluent-kafka) consumer group member with the cooperative-sticky assignor,
driven by crates/quill/tests/client_cooperative.rs.

Usage: librdkafka_member.py BOOTSTRAP GROUP TOPIC STOP_FILE MAX_SECONDS

Prints one line per event, flushed: `ASSIGNED t-0,t-1` / `REVOKED t-1` (incremental, from the
rebalance callbacks), `OWNED t-0` whenever the full assignment changes, `ERROR ...`, and
`CLOSED` after leaving the group. Stops when STOP_FILE exists or after MAX_SECONDS.
"""

import os
import sys
import time

from confluent_kafka import Consumer


def names(partitions):
    return ",".join(sorted(f"{p.topic}-{p.partition}" for p in partitions))


def say(line):
    print(line, flush=True)


def main():
    bootstrap, group, topic, stop_file, max_seconds = sys.argv[1:6]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 300,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe(
        [topic],
        on_assign=lambda _c, partitions: say(f"ASSIGNED {names(partitions)}"),
        on_revoke=lambda _c, partitions: say(f"REVOKED {names(partitions)}"),
        on_lost=lambda _c, partitions: say(f"LOST {names(partitions)}"),
    )
    deadline = time.monotonic() + float(max_seconds)
    owned = None
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        message = consumer.poll(0.1)
        if message is not None and message.error():
            say(f"ERROR {message.error()}")
        current = names(consumer.assignment())
        if current != owned:
            owned = current
            say(f"OWNED {owned}")
    consumer.close()
    say("CLOSED")


if __name__ == "__main__":
    main()
