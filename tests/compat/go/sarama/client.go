package main

import (
	"fmt"
	"time"

	"github.com/Shopify/sarama"
)

// config is the baseline of every scenario: the newest protocol sarama 1.22.1 knows (it
// negotiates nothing: Version decides every request version), bounded network waits.
func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	c.ClientID = "quill-compat-sarama"
	c.Net.DialTimeout = 10 * time.Second
	c.Net.ReadTimeout = 15 * time.Second
	c.Net.WriteTimeout = 10 * time.Second
	c.Metadata.Retry.Max = 10
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Retry.Max = 10
	c.Producer.Retry.Backoff = 250 * time.Millisecond
	c.Consumer.Return.Errors = true
	c.Consumer.MaxWaitTime = 200 * time.Millisecond
	return c
}

func newAdmin() sarama.ClusterAdmin {
	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, config())
	must(err, "NewClusterAdmin")
	return admin
}

func newClient(c *sarama.Config) sarama.Client {
	client, err := sarama.NewClient([]string{bootstrap}, c)
	must(err, "NewClient")
	return client
}

type topicSpec struct {
	name       string
	partitions int32
	configs    map[string]string
}

func createTopics(specs ...topicSpec) {
	admin := newAdmin()
	defer admin.Close()
	for _, spec := range specs {
		entries := map[string]*string{}
		for name, value := range spec.configs {
			value := value
			entries[name] = &value
		}
		detail := &sarama.TopicDetail{NumPartitions: spec.partitions, ReplicationFactor: 1, ConfigEntries: entries}
		must(admin.CreateTopic(spec.name, detail, false), "CreateTopic "+spec.name)
		fmt.Printf("created %s\n", spec.name)
	}
}

// syncProducer builds a SyncProducer from the baseline config, adjusted by `adjust`.
func syncProducer(adjust func(*sarama.Config)) sarama.SyncProducer {
	c := config()
	if adjust != nil {
		adjust(c)
	}
	producer, err := sarama.NewSyncProducer([]string{bootstrap}, c)
	must(err, "NewSyncProducer")
	return producer
}

func send(producer sarama.SyncProducer, messages []*sarama.ProducerMessage) {
	must(producer.SendMessages(messages), fmt.Sprintf("SendMessages (%d messages)", len(messages)))
}

// consume reads `count` messages from offset `start` of each partition in `partitions` (no
// group), merged in arrival order.
func consume(c *sarama.Config, topic string, partitions []int32, start int64, count int) []*sarama.ConsumerMessage {
	if c == nil {
		c = config()
	}
	consumer, err := sarama.NewConsumer([]string{bootstrap}, c)
	must(err, "NewConsumer")
	defer consumer.Close()
	merged := make(chan *sarama.ConsumerMessage, 64)
	failures := make(chan *sarama.ConsumerError, 8)
	for _, partition := range partitions {
		pc, err := consumer.ConsumePartition(topic, partition, start)
		must(err, fmt.Sprintf("ConsumePartition %s/%d at %d", topic, partition, start))
		defer pc.AsyncClose()
		go func() {
			for message := range pc.Messages() {
				merged <- message
			}
		}()
		go func() {
			for failure := range pc.Errors() {
				failures <- failure
			}
		}()
	}
	var messages []*sarama.ConsumerMessage
	wait := within(30*time.Second, fmt.Sprintf("consuming %d messages of %s", count, topic))
	for len(messages) < count {
		select {
		case message := <-merged:
			messages = append(messages, message)
		case failure := <-failures:
			panic(fmt.Sprintf("consuming %s: %v", topic, failure))
		case <-time.After(wait.remaining()):
			wait.check(fmt.Sprintf("(%d so far)", len(messages)))
		}
	}
	return messages
}

func partitionList(count int32) []int32 {
	list := make([]int32, count)
	for i := range list {
		list[i] = int32(i)
	}
	return list
}
