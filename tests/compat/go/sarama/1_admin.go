// Scenario 1 with sarama's ClusterAdmin: create, list, describe (Metadata and the cluster's
// brokers), add partitions, create again (TOPIC_ALREADY_EXISTS), delete, recreate; describe
// and alter a topic's configs (sarama 1.22.1 has AlterConfigs, not the incremental API);
// delete records below an offset.
//
// sarama 1.22.1's ClusterAdmin.ListTopics and DescribeConfig always send DescribeConfigs v0,
// which Kafka 4.0 removed (KIP-896) and Quill does not speak either: the broker closes the
// connection, as Kafka does. Topics are listed from Metadata instead and configs described
// with sarama's own DescribeConfigsRequest at v1, sent through its Broker API.
package main

import (
	"fmt"
	"time"

	"github.com/Shopify/sarama"
)

func init() { register("1_admin", adminScenario) }

func waitFor(what string, condition func() bool) {
	wait := within(10*time.Second, what)
	for !condition() {
		wait.check("")
		time.Sleep(100 * time.Millisecond)
	}
}

func partitionCount(admin sarama.ClusterAdmin, topic string) int {
	described, err := admin.DescribeTopics([]string{topic})
	must(err, "DescribeTopics")
	if len(described) != 1 || described[0].Err != sarama.ErrNoError {
		return -1
	}
	return len(described[0].Partitions)
}

func configValue(client sarama.Client, topic, name string) string {
	controller, err := client.Controller()
	must(err, "Controller")
	request := &sarama.DescribeConfigsRequest{Version: 1, Resources: []*sarama.ConfigResource{
		{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{name}}}}
	response, err := controller.DescribeConfigs(request)
	must(err, "DescribeConfigs v1")
	for _, resource := range response.Resources {
		check(resource.ErrorCode == 0, "DescribeConfigs %s: error %d %s", topic, resource.ErrorCode, resource.ErrorMsg)
		for _, entry := range resource.Configs {
			if entry.Name == name {
				return entry.Value
			}
		}
	}
	panic(fmt.Sprintf("%s not among the configs of %s: %+v", name, topic, response.Resources))
}

func adminScenario() {
	admin := newAdmin()
	topic, configured := topicName("admin"), topicName("admin-configs")
	step("create")
	createTopics(topicSpec{topic, 3, nil}, topicSpec{configured, 1, map[string]string{"retention.ms": "3600000"}})

	step("list")
	client := newClient(config())
	must(client.RefreshMetadata(), "RefreshMetadata")
	listed, err := client.Topics()
	must(err, "Topics")
	check(contains(listed, topic) && contains(listed, configured), "topics listed: %v", listed)
	partitions, err := client.Partitions(topic)
	must(err, "Partitions")
	checkEq(partitions, []int32{0, 1, 2}, "partitions of "+topic)

	step("describe-configs-v0-refused")
	// What sarama's ListTopics sends: Kafka 4.0 closes the connection on DescribeConfigs v0.
	// An admin of its own: sarama keeps using a connection the broker closed.
	refused := newAdmin()
	_, err = refused.ListTopics()
	fmt.Printf("ListTopics (DescribeConfigs v0): %v\n", err)
	check(err != nil, "DescribeConfigs v0 was answered: Kafka 4.0 removed it")
	refused.Close()

	step("describe")
	described, err := admin.DescribeTopics([]string{topic})
	must(err, "DescribeTopics")
	checkEq(described[0].Err, sarama.ErrNoError, "topic error")
	checkEq(len(described[0].Partitions), 3, "partitions")
	// DescribeCluster sends Metadata v0, which has no controller id (sarama reports -1).
	brokers, _, err := admin.DescribeCluster()
	must(err, "DescribeCluster")
	check(len(brokers) >= 1, "brokers: %v", brokers)
	ids := map[int32]bool{}
	for _, broker := range brokers {
		ids[broker.ID()] = true
	}
	controllerBroker, err := client.Controller()
	must(err, "Controller")
	controller := controllerBroker.ID()
	check(ids[controller], "controller %d among the brokers %v", controller, ids)
	for _, partition := range described[0].Partitions {
		check(ids[partition.Leader], "leader %d of partition %d is a broker", partition.Leader, partition.ID)
		check(len(partition.Replicas) == 1 && partition.Replicas[0] == partition.Leader &&
			len(partition.Isr) == 1 && partition.Isr[0] == partition.Leader,
			"replicas %v / isr %v of partition %d", partition.Replicas, partition.Isr, partition.ID)
	}
	fmt.Printf("%d broker(s), controller %d\n", len(brokers), controller)

	step("create-partitions")
	must(admin.CreatePartitions(topic, 5, nil, false), "CreatePartitions(5)")
	waitFor("5 partitions", func() bool { return partitionCount(admin, topic) == 5 })

	step("create-again")
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	fmt.Printf("create again: %v\n", err)
	topicError, ok := err.(*sarama.TopicError)
	check(ok && topicError.Err == sarama.ErrTopicAlreadyExists, "creating an existing topic: %v", err)

	step("delete")
	must(admin.DeleteTopic(topic), "DeleteTopic")
	waitFor("the topic gone", func() bool {
		must(client.RefreshMetadata(), "RefreshMetadata")
		topics, err := client.Topics()
		must(err, "Topics")
		return !contains(topics, topic)
	})

	step("recreate")
	createTopics(topicSpec{topic, 2, nil})
	waitFor("the recreated topic with 2 partitions", func() bool { return partitionCount(admin, topic) == 2 })
	must(admin.DeleteTopic(topic), "DeleteTopic (recreated)")

	step("describe-configs")
	checkEq(configValue(client, configured, "retention.ms"), "3600000", "retention.ms")

	step("alter-configs")
	// AlterConfigs replaces the whole set of a topic's configs (what is not named reverts).
	value := "7200000"
	must(admin.AlterConfig(sarama.TopicResource, configured, map[string]*string{"retention.ms": &value}, false), "AlterConfig")
	checkEq(configValue(client, configured, "retention.ms"), "7200000", "retention.ms after AlterConfig")

	step("delete-records")
	producer := syncProducer(nil)
	var messages []*sarama.ProducerMessage
	for i := 0; i < 10; i++ {
		messages = append(messages, &sarama.ProducerMessage{Topic: configured, Value: sarama.StringEncoder(fmt.Sprint(i))})
	}
	send(producer, messages)
	must(admin.DeleteRecords(configured, map[int32]int64{0: 4}), "DeleteRecords(4)")
	oldest, err := client.GetOffset(configured, 0, sarama.OffsetOldest)
	must(err, "GetOffset(oldest)")
	newest, err := client.GetOffset(configured, 0, sarama.OffsetNewest)
	must(err, "GetOffset(newest)")
	checkEq([]int64{oldest, newest}, []int64{4, 10}, "watermarks after DeleteRecords(4)")
	remaining := consume(nil, configured, []int32{0}, sarama.OffsetOldest, 6)
	checkEq(remaining[0].Offset, int64(4), "first offset read after DeleteRecords(4)")
	must(admin.DeleteTopic(configured), "DeleteTopic "+configured)
}

func contains(list []string, wanted string) bool {
	for _, item := range list {
		if item == wanted {
			return true
		}
	}
	return false
}
