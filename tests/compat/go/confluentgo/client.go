package main

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

// baseConfig is what every client of a scenario starts from, plus `extra`.
func baseConfig(extra kafka.ConfigMap) *kafka.ConfigMap {
	config := kafka.ConfigMap{"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000}
	for key, value := range extra {
		config[key] = value
	}
	return &config
}

func newAdmin() *kafka.AdminClient {
	admin, err := kafka.NewAdminClient(baseConfig(nil))
	must(err, "NewAdminClient")
	return admin
}

func adminContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 20*time.Second)
}

type topicSpec struct {
	name       string
	partitions int
	configs    map[string]string
}

func createTopics(specs ...topicSpec) {
	admin := newAdmin()
	defer admin.Close()
	var topics []kafka.TopicSpecification
	for _, spec := range specs {
		topics = append(topics, kafka.TopicSpecification{Topic: spec.name, NumPartitions: spec.partitions,
			ReplicationFactor: 1, Config: spec.configs})
	}
	ctx, cancel := adminContext()
	defer cancel()
	results, err := admin.CreateTopics(ctx, topics)
	must(err, "CreateTopics")
	for _, result := range results {
		check(result.Error.Code() == kafka.ErrNoError, "creating %s: %v", result.Topic, result.Error)
		fmt.Printf("created %s\n", result.Topic)
	}
}

func newProducer(extra kafka.ConfigMap) *kafka.Producer {
	config := kafka.ConfigMap{"acks": "all", "message.timeout.ms": 30000, "linger.ms": 5}
	for key, value := range extra {
		config[key] = value
	}
	producer, err := kafka.NewProducer(baseConfig(config))
	must(err, "NewProducer")
	return producer
}

// produceAll produces every message, waits (bounded) for every delivery report and returns
// the delivered messages in produce order; the first failed delivery panics.
func produceAll(producer *kafka.Producer, messages []*kafka.Message) []*kafka.Message {
	reports := make(chan kafka.Event, len(messages))
	for _, message := range messages {
		must(producer.Produce(message, reports), "Produce")
	}
	delivered := make([]*kafka.Message, 0, len(messages))
	wait := within(30*time.Second, fmt.Sprintf("delivery of %d messages", len(messages)))
	for len(delivered) < len(messages) {
		select {
		case event := <-reports:
			message, ok := event.(*kafka.Message)
			check(ok, "unexpected delivery event %v", event)
			must(message.TopicPartition.Error, "delivery")
			delivered = append(delivered, message)
		case <-timeAfter(wait):
			wait.check(fmt.Sprintf("(%d delivered)", len(delivered)))
		}
	}
	return delivered
}

func message(topic string, partition int32, key, value []byte) *kafka.Message {
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: partition}, Key: key, Value: value}
}

func newConsumer(group string, extra kafka.ConfigMap) *kafka.Consumer {
	config := kafka.ConfigMap{"group.id": group, "enable.auto.commit": false, "fetch.wait.max.ms": 200}
	for key, value := range extra {
		config[key] = value
	}
	consumer, err := kafka.NewConsumer(baseConfig(config))
	must(err, "NewConsumer")
	return consumer
}

// poll reads `count` messages from an assigned or subscribed consumer.
func poll(consumer *kafka.Consumer, count int, what string) []*kafka.Message {
	var messages []*kafka.Message
	wait := within(30*time.Second, what)
	for len(messages) < count {
		wait.check(fmt.Sprintf("(%d so far)", len(messages)))
		switch event := consumer.Poll(200).(type) {
		case *kafka.Message:
			must(event.TopicPartition.Error, "consumed message")
			messages = append(messages, event)
		case kafka.Error:
			check(event.Code() == kafka.ErrPartitionEOF || event.Code() == kafka.ErrTransport ||
				event.Code() == kafka.ErrAllBrokersDown, "consumer error: %v", event)
		}
	}
	return messages
}

// consume reads `count` messages from offset `start` of each partition (assign, no group).
func consume(topic string, partitions []int32, start kafka.Offset, count int, extra kafka.ConfigMap) []*kafka.Message {
	consumer := newConsumer(topic+"-reader", extra)
	defer consumer.Close()
	var assignment []kafka.TopicPartition
	for _, partition := range partitions {
		assignment = append(assignment, kafka.TopicPartition{Topic: &topic, Partition: partition, Offset: start})
	}
	must(consumer.Assign(assignment), "Assign")
	return poll(consumer, count, fmt.Sprintf("consuming %d messages of %s", count, topic))
}

func partitionList(count int32) []int32 {
	list := make([]int32, count)
	for i := range list {
		list[i] = int32(i)
	}
	return list
}
