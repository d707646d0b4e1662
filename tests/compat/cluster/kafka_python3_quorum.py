"""The metadata quorum through kafka-python 3's KafkaAdminClient.describe_metadata_quorum
(DescribeQuorum v2, what kafka-metadata-quorum.sh describe uses), driven by
crates/quill/tests/cluster.rs (run with PYTHONPATH=target/compat-kafka-python3).

    python kafka_python3_quorum.py <bootstrap> <leader> <epoch> <voters> <controller ports>

The client sends the request to a broker of its choosing; every node answers with the quorum
leader's view. Checks the leader id, epoch, the voters (comma-separated ids), that every voter's
log end offset is known and at most the high watermark, the leader's timestamps, and each
voter's CONTROLLER endpoint (ports comma-separated in voter order). Prints OK on success; exits
non-zero with the client's error otherwise.
"""

import sys

from kafka import KafkaAdminClient

bootstrap, leader, epoch, voters, ports = sys.argv[1:6]
leader, epoch = int(leader), int(epoch)
voters = [int(v) for v in voters.split(",")]
ports = [int(p) for p in ports.split(",")]


def check(condition, what):
    if not condition:
        raise AssertionError(what)


admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
try:
    quorum = admin.describe_metadata_quorum()
finally:
    admin.close()
(topic,) = quorum["topics"]
check(topic["topic_name"] == "__cluster_metadata", topic)
(partition,) = topic["partitions"]
check(partition["error"] is None, partition)
check(partition["partition_index"] == 0, partition)
check(partition["leader_id"] == leader, "leader %r, expected %d" % (partition["leader_id"], leader))
check(partition["leader_epoch"] == epoch, "epoch %r, expected %d" % (partition["leader_epoch"], epoch))
high_watermark = partition["high_watermark"]
check(high_watermark > 0, partition)
check([v["replica_id"] for v in partition["current_voters"]] == voters, partition)
for voter in partition["current_voters"]:
    check(0 <= voter["log_end_offset"] <= high_watermark, voter)
    if voter["replica_id"] == leader:
        check(voter["last_fetch_timestamp"] > 0 and voter["last_caught_up_timestamp"] > 0, voter)
check(partition["observers"] == [], partition)
nodes = {node["node_id"]: node["listeners"] for node in quorum["nodes"]}
check(sorted(nodes) == voters, quorum["nodes"])
for voter, port in zip(voters, ports):
    (listener,) = nodes[voter]
    check((listener["name"], listener["host"], listener["port"]) == ("CONTROLLER", "127.0.0.1", port), listener)
print("OK")
