"""One consumer-group member with confluent-kafka (librdkafka), driven by
crates/quill/tests/group_clients.rs.

    python member.py <bootstrap> <topic> <group> [librdkafka.key=value ...]

Prints one event per line, flushed, in the order the client reports them:
  JOINED_MS <ms from subscribe to the first assignment callback>
  ASSIGN <p,p|-> / REVOKE <p,p|-> / LOST <p,p|->  (cooperative: the increment; eager: all)
  MSG <partition> <offset> <value>
Stops on `leave` on stdin (close: commit, LeaveGroup unless static) or on a 120 s bound. An
offset is stored for auto-commit only after its MSG line is written, so a SIGKILL can never
commit a message nobody printed.
"""

import queue
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException

bootstrap, topic, group = sys.argv[1:4]
config = {"bootstrap.servers": bootstrap, "group.id": group}
for setting in sys.argv[4:]:
    key, value = setting.split("=", 1)
    config[key] = value

started = [None]
joined = [False]


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parts(partitions):
    return ",".join(str(p.partition) for p in sorted(partitions, key=lambda tp: tp.partition)) or "-"


def on_assign(consumer, partitions):
    if not joined[0]:
        joined[0] = True
        out("JOINED_MS %.1f" % ((time.monotonic() - started[0]) * 1000.0))
    out("ASSIGN %s" % parts(partitions))


def on_revoke(consumer, partitions):
    out("REVOKE %s" % parts(partitions))


def on_lost(consumer, partitions):
    out("LOST %s" % parts(partitions))


commands = queue.Queue()


def read_stdin():
    for line in sys.stdin:
        commands.put(line.strip())
    commands.put("leave")


threading.Thread(target=read_stdin, daemon=True).start()

consumer = Consumer(config)
started[0] = time.monotonic()
consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
deadline = time.monotonic() + 120
manual_store = config.get("enable.auto.offset.store") == "false"
while time.monotonic() < deadline:
    try:
        command = commands.get_nowait()
    except queue.Empty:
        command = None
    if command == "leave":
        break
    message = consumer.poll(0.05)
    if message is None:
        continue
    if message.error():
        out("ERROR %s" % message.error())
        continue
    out("MSG %d %d %s" % (message.partition(), message.offset(), message.value().decode()))
    if manual_store:
        consumer.store_offsets(message)
consumer.close()
out("CLOSED")
