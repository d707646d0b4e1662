// Scenario 3 with confluent-kafka-go: headers, null key, null and empty values, CreateTime
// timestamps, a LogAppendTime topic, values just under / over max.message.bytes, fetch limits
// smaller than the batch (KIP-74).
package main

import (
	"bytes"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
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
	producer := newProducer(nil)
	headers := []kafka.Header{{Key: "source", Value: []byte("my-app")}, {Key: "version", Value: []byte("1.0")},
		{Key: "empty", Value: []byte{}}, {Key: "null", Value: nil}}
	withHeaders := message(topic, 0, []byte("with-headers"), []byte("h"))
	withHeaders.Headers = headers
	stamped := message(topic, 0, []byte("timestamped"), []byte("t"))
	stamped.Timestamp = clientTimestamp
	before := time.Now()
	produceAll(producer, []*kafka.Message{withHeaders, message(topic, 0, nil, []byte("no key")),
		message(topic, 0, []byte("tombstone"), nil), message(topic, 0, []byte("empty"), []byte{}), stamped})
	appended := message(appendTime, 0, []byte("a"), []byte("x"))
	appended.Timestamp = clientTimestamp
	produceAll(producer, []*kafka.Message{appended})

	step("max-message-bytes")
	produceAll(producer, []*kafka.Message{message(limited, 0, nil, bytes.Repeat([]byte("a"), maxMessageBytes-200))})
	reports := make(chan kafka.Event, 1)
	must(producer.Produce(message(limited, 0, nil, bytes.Repeat([]byte("b"), maxMessageBytes+1000)), reports), "Produce")
	select {
	case event := <-reports:
		failed := event.(*kafka.Message).TopicPartition.Error
		fmt.Printf("over-limit value: %v\n", failed)
		check(failed != nil && failed.(kafka.Error).Code() == kafka.ErrMsgSizeTooLarge, "a value over max.message.bytes: %v", failed)
	case <-time.After(30 * time.Second):
		panic("timed out: the delivery report of the over-limit value")
	}

	step("consume")
	records := consume(topic, []int32{0}, kafka.OffsetBeginning, 5, nil)
	checkEq(records[0].Headers, headers, "headers")
	check(records[1].Key == nil, "null key: %q", records[1].Key)
	checkEq(string(records[1].Value), "no key", "value")
	check(records[2].Value == nil, "null value: %#v", records[2].Value)
	check(records[3].Value != nil && len(records[3].Value) == 0, "empty value: %#v", records[3].Value)
	checkEq([]interface{}{records[4].TimestampType, records[4].Timestamp.UnixNano() / int64(time.Millisecond)},
		[]interface{}{kafka.TimestampCreateTime, int64(1600000000123)}, "CreateTime timestamp")

	step("consume-append-time")
	got := consume(appendTime, []int32{0}, kafka.OffsetBeginning, 1, nil)[0]
	checkEq(got.TimestampType, kafka.TimestampLogAppendTime, "timestamp type")
	check(!got.Timestamp.Before(before.Add(-time.Second)) && !got.Timestamp.After(time.Now().Add(time.Second)),
		"LogAppendTime %v is not the broker's clock", got.Timestamp)

	step("consume-limited")
	big := consume(limited, []int32{0}, kafka.OffsetBeginning, 1, nil)[0]
	checkEq(len(big.Value), maxMessageBytes-200, "size of the value just under the limit")

	step("fetch-smaller-than-batch")
	big = consume(limited, []int32{0}, kafka.OffsetBeginning, 1, kafka.ConfigMap{"max.partition.fetch.bytes": 1024,
		"fetch.max.bytes": 1024, "message.max.bytes": 1024})[0]
	checkEq(len(big.Value), maxMessageBytes-200, "value read with 1 KiB fetch limits")
}
