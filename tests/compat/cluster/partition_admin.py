"""CreateTopics as real admin clients send it, for the partition tests
(crates/quill/tests/cluster_partitions.rs): what does a client see when the broker it asks is
cut off from the metadata quorum's majority?

usage:
  python partition_admin.py <confluent|kafka-python> <bootstrap> <topic> <timeout-s>

Prints one line: "created" when the client reports success, else "error <client's error>"
(for example librdkafka's _TIMED_OUT or kafka-python's KafkaTimeoutError). Exits 0 either way;
every wait is bounded by <timeout-s> plus a margin.
"""

import sys


def confluent(bootstrap, topic, timeout_s):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=timeout_s,
                                  operation_timeout=timeout_s)
    try:
        futures[topic].result(timeout=timeout_s + 10)
        return "created"
    except KafkaException as error:
        return "error %s" % error.args[0].name()
    except Exception as error:  # the future's own timeout
        return "error %s" % type(error).__name__


def kafka_python(bootstrap, topic, timeout_s):
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        response = admin.create_topics([NewTopic(topic, 1, 1)], timeout_ms=int(timeout_s * 1000))
        errors = [code for (_, code, *_) in response.topic_errors if code != 0]
        return "created" if not errors else "error code %d" % errors[0]
    except KafkaError as error:
        return "error %s" % type(error).__name__
    finally:
        admin.close()


def main():
    client, bootstrap, topic, timeout_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    run = {"confluent": confluent, "kafka-python": kafka_python}[client]
    print(run(bootstrap, topic, timeout_s))


if __name__ == "__main__":
    main()
