"""Scenario 1 with confluent-kafka: create a 3-partition topic, list, describe (Metadata and
DescribeCluster), add partitions, create again (TOPIC_ALREADY_EXISTS), delete; describe and
incrementally alter a topic's configs; delete records below an offset."""

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic

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

    step("describe-cluster")
    cluster = admin.describe_cluster(request_timeout=15).result(timeout=20)
    print("cluster %s controller %s nodes %s" % (cluster.cluster_id, cluster.controller, cluster.nodes), flush=True)
    check_eq(sorted(node.id for node in cluster.nodes), sorted(metadata.brokers), "DescribeCluster nodes")

    step("create-partitions")
    admin.create_partitions([NewPartitions(topic, 5)], request_timeout=15)[topic].result(timeout=20)
    for _ in range(20):
        if len(admin.list_topics(topic=topic, timeout=10).topics[topic].partitions) == 5:
            break
        time.sleep(0.25)
    check_eq(len(admin.list_topics(topic=topic, timeout=10).topics[topic].partitions), 5, "partitions after create_partitions(5)")

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

    step("recreate")
    # The same name again, now with 2 partitions: a new topic, not the old one's leftovers.
    ck.create_topics([(topic, 2, {})])
    for _ in range(20):
        described = admin.list_topics(topic=topic, timeout=10).topics[topic]
        if described.error is None and len(described.partitions) == 2:
            break
        time.sleep(0.25)
    check_eq(len(admin.list_topics(topic=topic, timeout=10).topics[topic].partitions), 2, "partitions of the recreated topic")
    admin.delete_topics([topic], request_timeout=15)[topic].result(timeout=20)

    step("describe-configs")
    resource = ConfigResource(ConfigResource.Type.TOPIC, configured)
    configs = admin.describe_configs([resource], request_timeout=15)[resource].result(timeout=20)
    check("retention.ms" in configs, "retention.ms among %s" % list(configs))
    check_eq(configs["retention.ms"].value, "3600000", "retention.ms")

    step("alter-configs")
    change = ConfigResource(ConfigResource.Type.TOPIC, configured, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change], request_timeout=15)[change].result(timeout=20)
    configs = admin.describe_configs([resource], request_timeout=15)[resource].result(timeout=20)
    check_eq(configs["retention.ms"].value, "7200000", "retention.ms after incremental_alter_configs")

    step("delete-records")
    ck.produce_all(ck.producer(), configured, [{"value": str(i)} for i in range(10)])
    deleted = admin.delete_records([TopicPartition(configured, 0, 4)], request_timeout=15)
    [future] = deleted.values()
    check_eq(future.result(timeout=20).low_watermark, 4, "low watermark after delete_records(4)")
    consumer = Consumer(dict(ck.BASE, **{"group.id": "%s-offsets" % configured}))
    try:
        check_eq(consumer.get_watermark_offsets(TopicPartition(configured, 0), timeout=10), (4, 10), "watermarks")
    finally:
        consumer.close()
    admin.delete_topics([configured], request_timeout=15)[configured].result(timeout=20)


run(scenario)
