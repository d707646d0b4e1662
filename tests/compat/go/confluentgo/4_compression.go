// Scenario 4 with confluent-kafka-go: one batch per codec (none, gzip, snappy, lz4, zstd), all
// mixed in one partition, consumed back in order.
package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func init() { register("4_compression", compressionScenario) }

const perCodec = 25

var compressionText = strings.Repeat("compressible ", 20)

type compressedValue struct {
	Codec string `json:"codec"`
	I     int    `json:"i"`
	Text  string `json:"text"`
}

func compressionScenario() {
	topic := topicName("compression")
	step("create")
	createTopics(topicSpec{topic, 1, nil})
	var expected []string
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		step("produce-" + codec)
		var messages []*kafka.Message
		for i := 0; i < perCodec; i++ {
			value, _ := json.Marshal(compressedValue{codec, i, compressionText})
			messages = append(messages, message(topic, kafka.PartitionAny, []byte(fmt.Sprintf("%s-%d", codec, i)), value))
			expected = append(expected, string(value))
		}
		produceAll(newProducer(kafka.ConfigMap{"compression.codec": codec, "linger.ms": 50}), messages)
	}

	step("consume")
	var got []string
	for offset, m := range consume(topic, []int32{0}, kafka.OffsetBeginning, len(expected), nil) {
		checkEq(int64(m.TopicPartition.Offset), int64(offset), "offset")
		got = append(got, string(m.Value))
	}
	checkEq(got, expected, "values in order")
}
