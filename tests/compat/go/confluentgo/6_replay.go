// Scenario 6 with confluent-kafka-go: watermarks, OffsetsForTimes, consuming from an offset
// and from the offset found by time; then a group's offsets reset to earliest (CommitOffsets)
// and re-consumed.
package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func init() { register("6_replay", replayScenario) }

const replayCount = 20
const replayT0 = int64(1700000000000)

func replayIndexes(messages []*kafka.Message) []int {
	var indexes []int
	for _, m := range messages {
		var value struct{ I int }
		must(json.Unmarshal(m.Value, &value), "JSON value")
		indexes = append(indexes, value.I)
	}
	return indexes
}

func replayScenario() {
	topic := topicName("replay")
	step("create")
	createTopics(topicSpec{topic, 1, nil})
	step("produce")
	var messages []*kafka.Message
	for i := 0; i < replayCount; i++ {
		m := message(topic, 0, nil, []byte(fmt.Sprintf(`{"i": %d}`, i)))
		m.Timestamp = time.Unix(0, (replayT0+int64(i)*1000)*int64(time.Millisecond))
		messages = append(messages, m)
	}
	produceAll(newProducer(nil), messages)

	consumer := newConsumer(topic+"-seek", nil)
	step("list-offsets")
	low, high, err := consumer.QueryWatermarkOffsets(topic, 0, 10000)
	must(err, "QueryWatermarkOffsets")
	checkEq([]int64{low, high}, []int64{0, replayCount}, "watermarks")

	step("offsets-by-time")
	found, err := consumer.OffsetsForTimes([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.Offset(replayT0 + 10500)}}, 10000)
	must(err, "OffsetsForTimes")
	checkEq(int64(found[0].Offset), int64(11), "offset of the first message at or after T0+10.5s")
	past, err := consumer.OffsetsForTimes([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.Offset(replayT0 + replayCount*1000 + 1)}}, 10000)
	must(err, "OffsetsForTimes past the end")
	checkEq(int64(past[0].Offset), int64(-1), "OffsetsForTimes past the last timestamp")

	step("seek")
	must(consumer.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: 7}}), "Assign(7)")
	checkEq(replayIndexes(poll(consumer, 3, "reading from offset 7")), []int{7, 8, 9}, "after assigning offset 7")
	must(consumer.Seek(kafka.TopicPartition{Topic: &topic, Partition: 0, Offset: found[0].Offset}, 10000), "Seek")
	checkEq(replayIndexes(poll(consumer, 2, "reading from the offset found by time")), []int{11, 12}, "after seeking by time")
	consumer.Close()

	step("group-reset")
	group := topic + "-group"
	settings := kafka.ConfigMap{"auto.offset.reset": "earliest", "session.timeout.ms": 10000}
	first := newConsumer(group, settings)
	must(first.Subscribe(topic, nil), "Subscribe")
	checkEq(len(poll(first, replayCount, "the first pass of the group")), replayCount, "first pass")
	_, err = first.Commit()
	must(err, "Commit")
	committed, err := first.Committed([]kafka.TopicPartition{{Topic: &topic, Partition: 0}}, 10000)
	must(err, "Committed")
	checkEq(int64(committed[0].Offset), int64(replayCount), "committed offset")
	_, err = first.CommitOffsets([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: 0}})
	must(err, "CommitOffsets(0)")
	must(first.Close(), "Close")
	again := newConsumer(group, settings)
	must(again.Subscribe(topic, nil), "Subscribe")
	checkEq(len(poll(again, replayCount, "re-consuming after the reset")), replayCount, "re-consumed")
	must(again.Close(), "Close")
}
