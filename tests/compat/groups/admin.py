"""The admin views of a consumer group through confluent-kafka's AdminClient, driven by
crates/quill/tests/group_clients.rs.

    python admin.py <bootstrap> <topic> <group> <partition:offset,...>

Joins <group> with one member (client.id quill-admin-ck), commits the given offsets, then
prints GROUP/STATE/ASSIGNOR/MEMBER/COMMITTED/LAG lines from list_consumer_groups, describe_consumer_groups,
list_consumer_group_offsets and the high watermarks, and closes. Every wait is bounded.
"""

import sys
import time

from confluent_kafka import ConsumerGroupTopicPartitions, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

bootstrap, topic, group, spec = sys.argv[1:5]
commits = {int(p): int(o) for p, o in (item.split(":") for item in spec.split(","))}

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "quill-admin-ck",
                     "enable.auto.commit": False, "session.timeout.ms": 6000})
consumer.subscribe([topic])
deadline = time.monotonic() + 30
while not consumer.assignment():
    if time.monotonic() > deadline:
        raise SystemExit("no assignment within 30 s")
    consumer.poll(0.05)
consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in sorted(commits.items())], asynchronous=False)

admin = AdminClient({"bootstrap.servers": bootstrap})
listed = admin.list_consumer_groups(request_timeout=10).result(timeout=20)
described = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=20)
offsets = admin.list_consumer_group_offsets(
    [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in sorted(commits)])],
    request_timeout=10)[group].result(timeout=20)
highs = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in sorted(commits)}
for group_id, state in sorted((g.group_id, g.state.name) for g in listed.valid):
    print("GROUP %s %s" % (group_id, state))
print("STATE %s" % described.state.name)
print("ASSIGNOR %s" % described.partition_assignor)
for m in described.members:
    partitions = sorted(tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic)
    print("MEMBER %s %s %s %s" % (m.client_id, m.member_id, m.host, ",".join(map(str, partitions)) or "-"))
for tp in offsets.topic_partitions:
    print("COMMITTED %d %d" % (tp.partition, tp.offset))
    print("LAG %d %d" % (tp.partition, highs[tp.partition] - tp.offset))
sys.stdout.flush()
consumer.close()
