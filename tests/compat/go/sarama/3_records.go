// Scenario 3 with sarama: headers (with an empty and a null value), null key, null and empty
// values, CreateTime timestamps, a LogAppendTime topic, values just under / over
// max.message.bytes, and a partition fetch limit smaller than the batch (KIP-74).
package main

import (
	"bytes"
	"fmt"
	"time"

	"github.com/Shopify/sarama"
)

func init() { register("3_records", recordsScenario) }

const maxMessageBytes = 20000

var clientTimestamp = time.Unix(0, 1600000000123*int64(time.Millisecond))

func recordsScenario() {
	topic, appendTime, limited := topicName("records"), topicName("append-time"), topicName("limited")
	step("create")
	createTopics(topicSpec{topic, 1, nil},
		topicSpec{appendTime, 1, map[string]string{"message.timestamp.type": "LogAppendTime"}},
		topicSpec{limited, 1, map[string]string{"max.message.bytes": fmt.Sprint(maxMessageBytes)}})

	step("produce")
	producer := syncProducer(nil)
	headers := []sarama.RecordHeader{
		{Key: []byte("source"), Value: []byte("my-app")}, {Key: []byte("version"), Value: []byte("1.0")},
		{Key: []byte("empty"), Value: []byte{}}, {Key: []byte("null"), Value: nil},
	}
	before := time.Now()
	send(producer, []*sarama.ProducerMessage{
		{Topic: topic, Key: sarama.StringEncoder("with-headers"), Value: sarama.StringEncoder("h"), Headers: headers},
		{Topic: topic, Value: sarama.StringEncoder("no key")},
		{Topic: topic, Key: sarama.StringEncoder("tombstone")},
		{Topic: topic, Key: sarama.StringEncoder("empty"), Value: sarama.ByteEncoder([]byte{})},
		{Topic: topic, Key: sarama.StringEncoder("timestamped"), Value: sarama.StringEncoder("t"), Timestamp: clientTimestamp},
	})
	send(producer, []*sarama.ProducerMessage{{Topic: appendTime, Key: sarama.StringEncoder("a"),
		Value: sarama.StringEncoder("x"), Timestamp: clientTimestamp}})

	step("max-message-bytes")
	send(producer, []*sarama.ProducerMessage{{Topic: limited, Value: sarama.ByteEncoder(bytes.Repeat([]byte("a"), maxMessageBytes-200))}})
	_, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: limited,
		Value: sarama.ByteEncoder(bytes.Repeat([]byte("b"), maxMessageBytes+1000))})
	fmt.Printf("over-limit value: %v\n", err)
	checkEq(err, error(sarama.ErrMessageSizeTooLarge), "error of a value over max.message.bytes")

	step("consume")
	records := consume(nil, topic, []int32{0}, sarama.OffsetOldest, 5)
	withHeaders, nullKey, tombstone, empty, stamped := records[0], records[1], records[2], records[3], records[4]
	var gotHeaders []sarama.RecordHeader
	for _, header := range withHeaders.Headers {
		gotHeaders = append(gotHeaders, *header)
	}
	checkEq(gotHeaders, headers, "headers")
	check(gotHeaders[3].Value == nil && gotHeaders[2].Value != nil, "null and empty header values kept apart")
	check(nullKey.Key == nil, "null key: %q", nullKey.Key)
	checkEq(string(nullKey.Value), "no key", "value")
	check(tombstone.Value == nil, "null value: %q", tombstone.Value)
	check(empty.Value != nil && len(empty.Value) == 0, "empty value: %#v", empty.Value)
	checkEq(stamped.Timestamp.UnixNano()/int64(time.Millisecond), int64(1600000000123), "CreateTime timestamp")

	step("consume-append-time")
	appended := consume(nil, appendTime, []int32{0}, sarama.OffsetOldest, 1)[0]
	// sarama reports the batch's max timestamp for LogAppendTime batches: the broker's clock.
	check(!appended.Timestamp.Before(before.Add(-time.Second)) && !appended.Timestamp.After(time.Now().Add(time.Second)),
		"LogAppendTime %v is not the broker's clock (client sent %v)", appended.Timestamp, clientTimestamp)

	step("consume-limited")
	big := consume(nil, limited, []int32{0}, sarama.OffsetOldest, 1)[0]
	checkEq(len(big.Value), maxMessageBytes-200, "size of the value just under the limit")

	step("fetch-smaller-than-batch")
	// KIP-74: a batch larger than the partition's fetch limit still comes back, whole. With
	// Fetch.Max = Default = 1 KiB sarama could not grow its request: only the broker returning
	// the whole batch lets this pass.
	small := config()
	small.Consumer.Fetch.Default = 1024
	small.Consumer.Fetch.Max = 1024
	big = consume(small, limited, []int32{0}, sarama.OffsetOldest, 1)[0]
	checkEq(len(big.Value), maxMessageBytes-200, "value read with 1 KiB fetch limits")
}
