// Scenario 9 (from the tutorials) with confluent-kafka-go 0.11.6: the idempotent producer and
// read_committed / read_uncommitted consumers (0.11.6 has no transactions API: it came in 1.4).
package main

import (
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func init() { register("9_exactly_once", exactlyOnceScenario) }

func exactlyOnceScenario() {
	topic := topicName("eos")
	step("create")
	createTopics(topicSpec{topic, 1, nil})

	step("idempotent")
	var messages []*kafka.Message
	var expected []string
	for i := 0; i < 10; i++ {
		value := fmt.Sprintf("idempotent-%d", i)
		expected = append(expected, value)
		messages = append(messages, message(topic, kafka.PartitionAny, nil, []byte(value)))
	}
	for index, delivered := range produceAll(newProducer(kafka.ConfigMap{"enable.idempotence": true}), messages) {
		checkEq(int64(delivered.TopicPartition.Offset), int64(index), "offset of "+expected[index])
	}

	for _, isolation := range []string{"read_committed", "read_uncommitted"} {
		step("consume-" + isolation)
		var values []string
		for _, m := range consume(topic, []int32{0}, kafka.OffsetBeginning, len(expected), kafka.ConfigMap{"isolation.level": isolation}) {
			values = append(values, string(m.Value))
		}
		checkEq(values, expected, isolation)
	}
}
