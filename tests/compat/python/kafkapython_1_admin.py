"""Scenario 1 with kafka-python: create a 3-partition topic, create it again
(TopicAlreadyExistsError), describe and alter a topic's configs, delete records below an offset,
list, describe, add partitions, delete. (The steps that
read metadata through the admin client come last: see the not-yet list of the runner.)"""

import time

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

import kp
from common import check, check_eq, run, step, topic_name


def scenario():
    admin = kp.admin()
    topic, configured = topic_name("admin"), topic_name("admin-configs")
    step("create")
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1),
                         NewTopic(configured, num_partitions=1, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})], timeout_ms=10000)

    step("create-again")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)], timeout_ms=10000)
        raise AssertionError("creating an existing topic succeeded")
    except TopicAlreadyExistsError as error:
        print("create again: %r" % error, flush=True)

    step("describe-configs")
    [response] = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, configured)])
    print("configs %s" % response, flush=True)
    # resources: (error_code, error_message, resource_type, resource_name, config_entries)
    error_code, _, _, _, entries = response.resources[0]
    check_eq(error_code, 0, "describe_configs error")
    values = {entry[0]: entry[1] for entry in entries}
    check_eq(values.get("retention.ms"), "3600000", "retention.ms")

    step("alter-configs")
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, configured, configs={"retention.ms": "7200000"})])
    [response] = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, configured)])
    values = {entry[0]: entry[1] for entry in response.resources[0][4]}
    check_eq(values.get("retention.ms"), "7200000", "retention.ms after alter_configs")

    step("delete-records")
    producer = kp.producer()
    kp.produce_all(producer, configured, [{"value": b"%d" % i} for i in range(10)])
    producer.close(timeout=10)
    tp = TopicPartition(configured, 0)
    deleted = admin.delete_records({tp: 4}, timeout_ms=10000)
    print("delete_records: %s" % deleted, flush=True)
    consumer = KafkaConsumer(group_id=None, **kp.BASE)
    try:
        check_eq((consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp]), (4, 10), "offsets after delete_records(4)")
    finally:
        consumer.close()

    step("list")
    topics = admin.list_topics()
    check(topic in topics and configured in topics, "listed %s" % topics)

    step("describe")
    [described] = admin.describe_topics([topic])
    print("described %s" % described, flush=True)
    check_eq(described["error_code"], 0, "topic error")
    # kafka-python 2.3 names Metadata partition fields partition/leader/replicas/isr.
    partitions = sorted(described["partitions"], key=lambda p: p["partition"])
    check_eq([p["partition"] for p in partitions], [0, 1, 2], "partition ids")
    brokers = [b["node_id"] for b in admin.describe_cluster()["brokers"]]
    for p in partitions:
        check(p["leader"] in brokers, "leader %s in %s" % (p["leader"], brokers))
        check(p["leader"] in p["replicas"] and p["leader"] in p["isr"], "replicas/isr")

    step("create-partitions")
    admin.create_partitions({topic: NewPartitions(total_count=5)}, timeout_ms=10000)
    for _ in range(20):
        if len(admin.describe_topics([topic])[0]["partitions"]) == 5:
            break
        time.sleep(0.25)
    check_eq(len(admin.describe_topics([topic])[0]["partitions"]), 5, "partitions after create_partitions(5)")

    step("delete")
    admin.delete_topics([topic], timeout_ms=10000)
    for _ in range(20):
        if topic not in admin.list_topics():
            break
        time.sleep(0.25)
    check(topic not in admin.list_topics(), "%s still listed after delete" % topic)

    step("recreate")
    # The same name again, now with 2 partitions: a new topic, not the old one's leftovers.
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)], timeout_ms=10000)
    for _ in range(20):
        if len(admin.describe_topics([topic])[0]["partitions"]) == 2:
            break
        time.sleep(0.25)
    check_eq(len(admin.describe_topics([topic])[0]["partitions"]), 2, "partitions of the recreated topic")
    admin.delete_topics([topic], timeout_ms=10000)
    admin.delete_topics([configured], timeout_ms=10000)
    admin.close()


run(scenario)
