// Scenario 1 with confluent-kafka-go 0.11.6 (Debian, on librdkafka 2.0.2): create, list,
// describe (Metadata), add partitions, create again (TOPIC_ALREADY_EXISTS), delete, recreate;
// describe and alter a topic's configs (AlterConfigs: 0.11.6 has no incremental API nor
// DeleteRecords).
package main

import (
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func init() { register("1_admin", adminScenario) }

func partitionCount(admin *kafka.AdminClient, topic string) int {
	metadata, err := admin.GetMetadata(&topic, false, 10000)
	must(err, "GetMetadata")
	described, ok := metadata.Topics[topic]
	if !ok || described.Error.Code() != kafka.ErrNoError {
		return -1
	}
	return len(described.Partitions)
}

func waitFor(what string, condition func() bool) {
	wait := within(10*time.Second, what)
	for !condition() {
		wait.check("")
		time.Sleep(100 * time.Millisecond)
	}
}

func topicConfig(admin *kafka.AdminClient, topic, name string) string {
	ctx, cancel := adminContext()
	defer cancel()
	results, err := admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}})
	must(err, "DescribeConfigs")
	check(len(results) == 1 && results[0].Error.Code() == kafka.ErrNoError, "DescribeConfigs: %v", results)
	entry, ok := results[0].Config[name]
	check(ok, "%s among the configs of %s", name, topic)
	return entry.Value
}

func adminScenario() {
	admin := newAdmin()
	topic, configured := topicName("admin"), topicName("admin-configs")
	step("create")
	createTopics(topicSpec{topic, 3, nil}, topicSpec{configured, 1, map[string]string{"retention.ms": "3600000"}})

	step("list")
	metadata, err := admin.GetMetadata(nil, true, 10000)
	must(err, "GetMetadata(all)")
	_, listed := metadata.Topics[topic]
	_, listedConfigured := metadata.Topics[configured]
	check(listed && listedConfigured, "topics listed: %v", metadata.Topics)

	step("describe")
	metadata, err = admin.GetMetadata(&topic, false, 10000)
	must(err, "GetMetadata(topic)")
	brokers := map[int32]bool{}
	for _, broker := range metadata.Brokers {
		brokers[broker.ID] = true
	}
	described := metadata.Topics[topic]
	checkEq(described.Error.Code(), kafka.ErrNoError, "topic error")
	checkEq(len(described.Partitions), 3, "partitions")
	for _, partition := range described.Partitions {
		check(brokers[partition.Leader], "leader %d of partition %d", partition.Leader, partition.ID)
		checkEq([][]int32{partition.Replicas, partition.Isrs}, [][]int32{{partition.Leader}, {partition.Leader}}, "replicas, isrs")
	}
	fmt.Printf("brokers %v\n", metadata.Brokers)

	step("create-partitions")
	ctx, cancel := adminContext()
	results, err := admin.CreatePartitions(ctx, []kafka.PartitionsSpecification{{Topic: topic, IncreaseTo: 5}})
	cancel()
	must(err, "CreatePartitions")
	checkEq(results[0].Error.Code(), kafka.ErrNoError, "CreatePartitions result")
	waitFor("5 partitions", func() bool { return partitionCount(admin, topic) == 5 })

	step("create-again")
	ctx, cancel = adminContext()
	results, err = admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}})
	cancel()
	must(err, "CreateTopics again")
	fmt.Printf("create again: %v\n", results[0].Error)
	checkEq(results[0].Error.Code(), kafka.ErrTopicAlreadyExists, "error code")

	step("delete")
	ctx, cancel = adminContext()
	results, err = admin.DeleteTopics(ctx, []string{topic})
	cancel()
	must(err, "DeleteTopics")
	checkEq(results[0].Error.Code(), kafka.ErrNoError, "DeleteTopics result")
	waitFor("the topic gone", func() bool {
		metadata, err := admin.GetMetadata(nil, true, 10000)
		must(err, "GetMetadata(all)")
		_, present := metadata.Topics[topic]
		return !present
	})

	step("recreate")
	createTopics(topicSpec{topic, 2, nil})
	waitFor("the recreated topic with 2 partitions", func() bool { return partitionCount(admin, topic) == 2 })

	step("describe-configs")
	checkEq(topicConfig(admin, configured, "retention.ms"), "3600000", "retention.ms")

	step("alter-configs")
	ctx, cancel = adminContext()
	altered, err := admin.AlterConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: configured,
		Config: []kafka.ConfigEntry{{Name: "retention.ms", Value: "7200000", Operation: kafka.AlterOperationSet}}}})
	cancel()
	must(err, "AlterConfigs")
	checkEq(altered[0].Error.Code(), kafka.ErrNoError, "AlterConfigs result")
	checkEq(topicConfig(admin, configured, "retention.ms"), "7200000", "retention.ms after AlterConfigs")
}
