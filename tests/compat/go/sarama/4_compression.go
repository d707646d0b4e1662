// Scenario 4 with sarama: one batch per codec (none, gzip, snappy, lz4) mixed in one partition
// and consumed back in order. sarama 1.22.1 sends zstd batches in Produce v3 (it only knows
// Produce up to v3), which Kafka refuses with UNSUPPORTED_COMPRESSION_TYPE (zstd needs Produce
// v7, KIP-110): the zstd step checks that refusal. The fetch side of KIP-110: a topic with
// compression.type=zstd cannot be read with Fetch below v10 (sarama's v4), as in Kafka.
package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/Shopify/sarama"
)

func init() { register("4_compression", compressionScenario) }

const perCodec = 25

var compressionText = strings.Repeat("compressible ", 20)

type compressedValue struct {
	Codec string `json:"codec"`
	I     int    `json:"i"`
	Text  string `json:"text"`
}

func codecMessages(topic, codec string) ([]*sarama.ProducerMessage, []string) {
	var messages []*sarama.ProducerMessage
	var values []string
	for i := 0; i < perCodec; i++ {
		value, _ := json.Marshal(compressedValue{codec, i, compressionText})
		messages = append(messages, &sarama.ProducerMessage{Topic: topic,
			Key: sarama.StringEncoder(fmt.Sprintf("%s-%d", codec, i)), Value: sarama.ByteEncoder(value)})
		values = append(values, string(value))
	}
	return messages, values
}

func compressionProducer(codec sarama.CompressionCodec) sarama.SyncProducer {
	return syncProducer(func(c *sarama.Config) {
		c.Producer.Compression = codec
		// One batch per codec: hold the 25 messages until all are queued.
		c.Producer.Flush.Messages = perCodec
		c.Producer.Flush.Frequency = 500 * time.Millisecond
	})
}

func compressionScenario() {
	topic, zstdTopic := topicName("compression"), topicName("zstd-config")
	step("create")
	createTopics(topicSpec{topic, 1, nil}, topicSpec{zstdTopic, 1, map[string]string{"compression.type": "zstd"}})
	var expected []string
	codecs := []struct {
		name  string
		codec sarama.CompressionCodec
	}{{"none", sarama.CompressionNone}, {"gzip", sarama.CompressionGZIP},
		{"snappy", sarama.CompressionSnappy}, {"lz4", sarama.CompressionLZ4}}
	for _, codec := range codecs {
		step("produce-" + codec.name)
		messages, values := codecMessages(topic, codec.name)
		send(compressionProducer(codec.codec), messages)
		expected = append(expected, values...)
	}

	step("produce-zstd-refused")
	messages, _ := codecMessages(topic, "zstd")
	err := compressionProducer(sarama.CompressionZSTD).SendMessages(messages[:1])
	fmt.Printf("zstd in Produce v3: %v\n", err)
	errors, ok := err.(sarama.ProducerErrors)
	check(ok && len(errors) == 1 && errors[0].Err == sarama.ErrUnsupportedCompressionType,
		"a zstd batch in Produce v3: expected UNSUPPORTED_COMPRESSION_TYPE, got %v", err)

	step("consume")
	var got []string
	for offset, m := range consume(nil, topic, []int32{0}, sarama.OffsetOldest, len(expected)) {
		checkEq(m.Offset, int64(offset), "offset")
		got = append(got, string(m.Value))
	}
	checkEq(got, expected, "values in order")

	step("fetch-v4-of-zstd-topic-refused")
	// The broker re-encodes these gzip batches in zstd (the topic's compression.type).
	gzipped, _ := codecMessages(zstdTopic, "gzip")
	send(compressionProducer(sarama.CompressionGZIP), gzipped)
	consumer, err := sarama.NewConsumer([]string{bootstrap}, config())
	must(err, "NewConsumer")
	defer consumer.Close()
	partition, err := consumer.ConsumePartition(zstdTopic, 0, sarama.OffsetOldest)
	must(err, "ConsumePartition")
	defer partition.AsyncClose()
	wait := within(20*time.Second, "the fetch error of a zstd topic")
	select {
	case failure := <-partition.Errors():
		fmt.Printf("Fetch v4 of a compression.type=zstd topic: %v\n", failure)
		checkEq(failure.Err, error(sarama.ErrUnsupportedCompressionType), "fetch error")
	case m := <-partition.Messages():
		panic(fmt.Sprintf("Fetch v4 returned a record of a zstd topic (offset %d): Kafka refuses it", m.Offset))
	case <-timeAfter(wait):
		wait.check("")
	}
}
