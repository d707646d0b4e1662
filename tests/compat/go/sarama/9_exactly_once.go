// Scenario 9 (from the tutorials) with sarama 1.22.1: the idempotent producer (Idempotent,
// acks=all, one request in flight) and read_committed / read_uncommitted consumers. sarama
// 1.22.1 has no transactional producer (it came in sarama 1.37).
package main

import (
	"fmt"

	"github.com/Shopify/sarama"
)

func init() { register("9_exactly_once", exactlyOnceScenario) }

func exactlyOnceScenario() {
	topic := topicName("eos")
	step("create")
	createTopics(topicSpec{topic, 1, nil})

	step("idempotent")
	producer := syncProducer(func(c *sarama.Config) {
		c.Producer.Idempotent = true
		c.Net.MaxOpenRequests = 1
	})
	var expected []string
	var messages []*sarama.ProducerMessage
	for i := 0; i < 5; i++ {
		value := fmt.Sprintf("idempotent-%d", i)
		expected = append(expected, value)
		messages = append(messages, &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(value)})
	}
	send(producer, messages)
	for i := 5; i < 10; i++ {
		value := fmt.Sprintf("idempotent-%d", i)
		expected = append(expected, value)
		_, offset, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(value)})
		must(err, "SendMessage")
		checkEq(offset, int64(i), "offset of "+value)
	}

	for _, isolation := range []struct {
		name  string
		level sarama.IsolationLevel
	}{{"read_committed", sarama.ReadCommitted}, {"read_uncommitted", sarama.ReadUncommitted}} {
		step("consume-" + isolation.name)
		c := config()
		c.Consumer.IsolationLevel = isolation.level
		var values []string
		for _, m := range consume(c, topic, []int32{0}, sarama.OffsetOldest, len(expected)) {
			values = append(values, string(m.Value))
		}
		checkEq(values, expected, "values")
	}
}
