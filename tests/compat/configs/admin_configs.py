"""Config APIs through confluent-kafka's AdminClient (librdkafka), driven by
crates/quill/tests/config_clients.rs.

    python admin_configs.py <bootstrap> <prefix> <broker-id>

Describes and alters TOPIC, BROKER and GROUP resources, with APPEND/SUBTRACT, a per-broker SASL
setting (accepted as Kafka 4.0 accepts it), and a topic config Quill refuses. Prints STEP lines;
exits 0 when every check holds, non-zero with the client's error otherwise. Every wait is bounded.
"""

import sys

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic)

bootstrap, prefix, broker_id = sys.argv[1:4]
admin = AdminClient({"bootstrap.servers": bootstrap})
TIMEOUT = 20


def step(name):
    print("STEP %s" % name, flush=True)


def check_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def describe(resource):
    return admin.describe_configs([resource], request_timeout=15)[resource].result(timeout=TIMEOUT)


def alter(resource, *entries):
    change = ConfigResource(resource.restype, resource.name, incremental_configs=list(entries))
    return admin.incremental_alter_configs([change], request_timeout=15)[change].result(timeout=TIMEOUT)


def entry(name, value, operation):
    return ConfigEntry(name, value, incremental_operation=operation)


def refused(resource, *entries):
    try:
        alter(resource, *entries)
    except KafkaException as error:
        return error.args[0]
    raise AssertionError("%s was accepted" % [e.name for e in entries])


step("topic")
topic = "%s-configs" % prefix
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                    request_timeout=15)[topic].result(timeout=TIMEOUT)
topic_resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
configs = describe(topic_resource)
check_eq(configs["cleanup.policy"].value, "delete", "cleanup.policy")
check_eq(configs["cleanup.policy"].source, ConfigSource.DEFAULT_CONFIG.value, "cleanup.policy source")
alter(topic_resource, entry("cleanup.policy", "compact", AlterConfigOpType.APPEND))
check_eq(describe(topic_resource)["cleanup.policy"].value, "delete,compact", "after APPEND")
alter(topic_resource, entry("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT))
configs = describe(topic_resource)
check_eq(configs["cleanup.policy"].value, "compact", "after SUBTRACT")
check_eq(configs["cleanup.policy"].source, ConfigSource.DYNAMIC_TOPIC_CONFIG.value, "source after SUBTRACT")

step("topic-refused")
error = refused(topic_resource, entry("preallocate", "true", AlterConfigOpType.SET))
check_eq(error.code(), KafkaError.INVALID_CONFIG, "preallocate=true")
print("preallocate=true: %s" % error.str(), flush=True)
if "Quill does not support" not in error.str():
    raise AssertionError(error.str())

step("broker")
broker = ConfigResource(ConfigResource.Type.BROKER, broker_id)
alter(broker, entry("log.cleanup.policy", "compact", AlterConfigOpType.APPEND))
check_eq(describe(broker)["log.cleanup.policy"].value, "delete,compact", "broker APPEND")
alter(broker, entry("log.cleanup.policy", "compact", AlterConfigOpType.SUBTRACT))
check_eq(describe(broker)["log.cleanup.policy"].value, "delete", "broker SUBTRACT")
alter(broker, entry("sasl.kerberos.min.time.before.relogin", "58000", AlterConfigOpType.SET))
relogin = describe(broker)["sasl.kerberos.min.time.before.relogin"]
check_eq((relogin.value, relogin.source), ("58000", ConfigSource.DYNAMIC_BROKER_CONFIG.value), "relogin")
# The legacy AlterConfigs, as 0081_admin sends it.
legacy = ConfigResource(ConfigResource.Type.BROKER, broker_id,
                        set_config={"sasl.kerberos.min.time.before.relogin": "57000"})
admin.alter_configs([legacy], request_timeout=15)[legacy].result(timeout=TIMEOUT)
check_eq(describe(broker)["sasl.kerberos.min.time.before.relogin"].value, "57000", "legacy alter")
# 0081_admin's IncrementalAlterConfigs sets background.threads (Quill: the maintenance pool).
alter(broker, entry("background.threads", "9", AlterConfigOpType.SET))
check_eq(describe(broker)["background.threads"].value, "9", "background.threads")
error = refused(broker, entry("num.io.threads", "9", AlterConfigOpType.SET))
check_eq(error.code(), KafkaError.INVALID_CONFIG, "num.io.threads")
print("num.io.threads: %s" % error.str(), flush=True)

step("group")
group = ConfigResource(ConfigResource.Type.GROUP, "%s-group" % prefix)
configs = describe(group)
check_eq(sorted(configs), ["consumer.heartbeat.interval.ms", "consumer.session.timeout.ms",
                           "share.auto.offset.reset", "share.heartbeat.interval.ms",
                           "share.record.lock.duration.ms", "share.session.timeout.ms"], "group configs")
check_eq(configs["consumer.session.timeout.ms"].value, "45000", "default session timeout")
alter(group, entry("consumer.session.timeout.ms", "50000", AlterConfigOpType.SET),
      entry("consumer.heartbeat.interval.ms", "6000", AlterConfigOpType.SET))
configs = describe(group)
session = configs["consumer.session.timeout.ms"]
check_eq((session.value, session.source), ("50000", ConfigSource.GROUP_CONFIG.value), "group session")
check_eq(configs["consumer.heartbeat.interval.ms"].value, "6000", "group heartbeat")
error = refused(group, entry("consumer.session.timeout.ms", "1000", AlterConfigOpType.SET))
check_eq(error.code(), KafkaError.INVALID_CONFIG, "session below the broker minimum")
alter(group, entry("consumer.heartbeat.interval.ms", None, AlterConfigOpType.DELETE))
check_eq(describe(group)["consumer.heartbeat.interval.ms"].value, "5000", "after DELETE")
print("DONE", flush=True)
