"""Feature versions and DescribeTopicPartitions through kafka-python 3's KafkaAdminClient,
driven by crates/quill/tests/cluster_apis.rs (run with PYTHONPATH=target/compat-kafka-python3).

    python kafka_python3_admin.py <bootstrap> <prefix>

describe_features (ApiVersions v3+), update_features (UpdateFeatures: validate-only, a real
update, a refused downgrade, an unsupported feature) and describe_topic_partitions (API 75)
paged with its cursor until every partition is seen. Prints STEP lines; exits 0 when every
check holds, non-zero with the client's error otherwise. Every wait is bounded.
"""

import sys

import kafka
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import InvalidUpdateVersionError

bootstrap, prefix = sys.argv[1:3]
admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)


def step(name):
    print("STEP %s" % name, flush=True)


def check_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def expect_invalid_update(updates, message):
    try:
        admin.update_features(updates)
    except InvalidUpdateVersionError as error:
        if message not in str(error):
            raise AssertionError("expected %r in %s" % (message, error))
        return
    raise AssertionError("%r was accepted" % (updates,))


check_eq(kafka.__version__.split(".")[0], "3", "kafka-python major version")

step("describe_features")
features = admin.describe_features()
mv = features["metadata.version"]
check_eq(mv["supported"], (25, 25), "supported metadata.version")
check_eq(mv["finalized"], (25, 25), "finalized metadata.version")
check_eq(sorted(features), ["metadata.version"], "features reported")
epoch = mv["finalized_epoch"]

step("update_features validate_only")
check_eq(admin.update_features({"metadata.version": 25}, validate_only=True),
         {"metadata.version": "OK"}, "validate-only result")
check_eq(admin.describe_features()["metadata.version"]["finalized_epoch"], epoch,
         "epoch after validate-only")

step("update_features")
check_eq(admin.update_features({"metadata.version": ("UPGRADE", 25)}),
         {"metadata.version": "OK"}, "update result")
check_eq(admin.describe_features()["metadata.version"]["finalized_epoch"], epoch + 1,
         "epoch after the update (one metadata entry)")

step("refused updates")
expect_invalid_update({"metadata.version": ("SAFE_DOWNGRADE", 24)},
                      "Invalid update version 24 for feature metadata.version. Local controller "
                      "1 only supports versions 25")
expect_invalid_update({"transaction.version": 2},
                      "Invalid update version 2 for feature transaction.version. Local "
                      "controller 1 does not support this feature.")

step("describe_topic_partitions")
names = ["%s-a" % prefix, "%s-b" % prefix]
admin.create_topics([NewTopic(names[0], 3, 1), NewTopic(names[1], 2, 1)], timeout_ms=20000)
seen = []
missing = "%s-missing" % prefix
cursor = None
pages = 0
while True:
    pages += 1
    if pages > 10:
        raise AssertionError("the cursor never ended")
    page = admin.describe_topic_partitions(names + [missing], response_partition_limit=2,
                                           cursor=cursor)
    for topic in page["topics"]:
        if topic["name"] == missing:
            check_eq(topic["error_code"], 3, "unknown topic error")
            continue
        check_eq(topic["error_code"], 0, "topic error")
        for partition in topic["partitions"]:
            check_eq((partition["leader_id"], partition["replica_nodes"], partition["isr_nodes"],
                      partition["offline_replicas"]), (1, [1], [1], []), "partition fields")
            seen.append((topic["name"], partition["partition_index"]))
    cursor = page["next_cursor"]
    if cursor is None:
        break
check_eq(seen, [(names[0], p) for p in range(3)] + [(names[1], p) for p in range(2)],
         "partitions across pages")
check_eq(pages, 3, "pages of two partitions")
admin.close()
print("OK", flush=True)
