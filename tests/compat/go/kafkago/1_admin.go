// Scenario 1 with kafka-go 0.2.1 (Debian bookworm's golang-github-segmentio-kafka-go-dev), whose
// topics the runner creates:
// quill-compat-topics: admin=3 refused=1
// kafka-go 0.2.1 predates the v2 record format: it produces with Produce v2 and fetches with
// Fetch v2 (message format v1), and creates topics with CreateTopics v0. Kafka 4.0 removed
// those versions (KIP-896) and so does Quill: the broker closes the connection. What kafka-go
// 0.2.1 can do is checked: metadata (Metadata v1), list offsets (ListOffsets v1), delete
// topics (DeleteTopics v1); and that the removed versions are refused without a trace: nothing
// created, nothing written, the broker serving the next connection. kafka-go 0.2.1 cannot ask
// whether a topic exists without creating it (Metadata v1 auto-creates a topic it names), so
// existence is checked with DeleteTopics.
package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

func init() { register("1_admin", adminScenario) }

func dial() *kafka.Conn {
	conn, err := kafka.Dial("tcp", bootstrap)
	must(err, "Dial "+bootstrap)
	must(conn.SetDeadline(time.Now().Add(ioTimeout)), "SetDeadline")
	return conn
}

func dialLeader(topic string, partition int) *kafka.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, topic, partition)
	must(err, fmt.Sprintf("DialLeader %s/%d", topic, partition))
	must(conn.SetDeadline(time.Now().Add(ioTimeout)), "SetDeadline")
	return conn
}

func offsetsOf(topic string, partition int) []int64 {
	conn := dialLeader(topic, partition)
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	must(err, "ReadOffsets")
	return []int64{first, last}
}

// refused runs one request kafka-go sends at a version Kafka 4.0 removed, on a connection of
// its own, and checks that it failed.
func refused(what string, request func(conn *kafka.Conn) error) {
	conn := dial()
	defer conn.Close()
	err := request(conn)
	fmt.Printf("%s: %v\n", what, err)
	check(err != nil, "%s was answered: Kafka 4.0 removed it (KIP-896)", what)
}

func adminScenario() {
	topic, other := topicName("admin"), topicName("refused")
	host, port, err := net.SplitHostPort(bootstrap)
	must(err, "bootstrap host:port")

	step("list")
	// kafka-go 0.2.1's ReadPartitions() without topics sends an empty topic list, which
	// Metadata v1+ answers with no topics at all (null would mean all): as Kafka does.
	conn := dial()
	all, err := conn.ReadPartitions()
	must(err, "ReadPartitions()")
	conn.Close()
	checkEq(len(all), 0, "partitions listed for an empty topic list")
	conn = dial()
	listed, err := conn.ReadPartitions(topic, other)
	must(err, "ReadPartitions(topic, other)")
	conn.Close()
	checkEq(len(listed), 4, "partitions of "+topic+" and "+other)

	step("describe")
	conn = dial()
	described, err := conn.ReadPartitions(topic)
	must(err, "ReadPartitions("+topic+")")
	conn.Close()
	for index, partition := range described {
		checkEq(partition.ID, index, "partition id")
		checkEq([]string{partition.Leader.Host, strconv.Itoa(partition.Leader.Port)}, []string{host, port}, "leader address")
		checkEq(partition.Replicas, []kafka.Broker{partition.Leader}, "replicas")
		checkEq(partition.Isr, []kafka.Broker{partition.Leader}, "isr")
	}

	step("list-offsets")
	checkEq(offsetsOf(topic, 2), []int64{0, 0}, "first and last offsets of an empty partition")

	step("create-topics-v0-refused")
	created := topicName("created")
	refused("CreateTopics v0", func(conn *kafka.Conn) error {
		return conn.CreateTopics(kafka.TopicConfig{Topic: created, NumPartitions: 1, ReplicationFactor: 1})
	})
	// (A Metadata request would auto-create it: below v4 it cannot ask not to.)
	checkEq(deleteTopic(created), error(kafka.UnknownTopicOrPartition), "deleting the topic of the refused CreateTopics")

	step("produce-v2-refused")
	refused("Produce v2 (message format v1)", func(*kafka.Conn) error {
		conn := dialLeader(other, 0)
		defer conn.Close()
		_, err := conn.WriteMessages(kafka.Message{Key: []byte("k"), Value: []byte("v1 message")})
		return err
	})
	checkEq(offsetsOf(other, 0), []int64{0, 0}, "offsets after the refused Produce v2")

	step("fetch-v2-refused")
	refused("Fetch v2", func(*kafka.Conn) error {
		conn := dialLeader(other, 0)
		defer conn.Close()
		_, err := conn.ReadMessage(1 << 20)
		return err
	})

	step("delete")
	must(deleteTopic(topic), "DeleteTopics v1 "+topic)
	must(deleteTopic(other), "DeleteTopics v1 "+other)
	checkEq(deleteTopic(topic), error(kafka.UnknownTopicOrPartition), "deleting "+topic+" again")
}

func deleteTopic(topic string) error {
	conn := dial()
	defer conn.Close()
	return conn.DeleteTopics(topic)
}
