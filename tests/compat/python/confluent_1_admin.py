"""Scenario 1 with confluent-kafka: create a 3-partition topic, list, describe, create again
(TOPIC_ALREADY_EXISTS), delete; describe a topic's configs."""

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import ConfigResource, NewTopic

import ck
from common import check, check_eq, run, step, topic_name


def scenario():
    admin = ck.admin()
    topic = topic_name("admin")
    configured = topic_name("admin-configs")
    step("create")
    ck.create_topics([(topic, 3, {}), (configured, 1, {"retention.ms": "3600000"})])

    step("list")
    listed = admin.list_topics(timeout=10)
    check(topic in listed.topics and configured in listed.topics, "topics listed: %s" % list(listed.topics))

    step("describe")
    metadata = admin.list_topics(topic=topic, timeout=10)
    described = metadata.topics[topic]
    check(described.error is None, "topic error %s" % described.error)
    check_eq(sorted(described.partitions), [0, 1, 2], "partition ids")
    for partition in described.partitions.values():
        check(partition.leader in metadata.brokers, "leader %s of %s" % (partition.leader, partition.id))
        check(partition.leader in partition.replicas and partition.leader in partition.isrs, "replicas/isr")
    print("brokers %s, partitions %s" % (metadata.brokers, described.partitions), flush=True)

    step("create-again")
    future = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)],
                                 request_timeout=15)[topic]
    try:
        future.result(timeout=20)
        raise AssertionError("creating an existing topic succeeded")
    except KafkaException as error:
        print("create again: %s" % error, flush=True)
        check_eq(error.args[0].code(), KafkaError.TOPIC_ALREADY_EXISTS, "error code")

    step("delete")
    admin.delete_topics([topic], operation_timeout=10, request_timeout=15)[topic].result(timeout=20)
    for _ in range(20):
        if topic not in admin.list_topics(timeout=10).topics:
            break
        time.sleep(0.25)
    check(topic not in admin.list_topics(timeout=10).topics, "%s still listed after delete" % topic)

    step("describe-configs")
    resource = ConfigResource(ConfigResource.Type.TOPIC, configured)
    configs = admin.describe_configs([resource], request_timeout=15)[resource].result(timeout=20)
    check("retention.ms" in configs, "retention.ms among %s" % list(configs))
    check_eq(configs["retention.ms"].value, "3600000", "retention.ms")
    admin.delete_topics([configured], request_timeout=15)[configured].result(timeout=20)


run(scenario)
