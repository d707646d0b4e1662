// Scenario 6 with sarama: watermarks, offsets by time (ListOffsets with a timestamp), consuming
// from an offset and from the offset found by time; then a group's offsets reset to earliest
// with sarama's OffsetManager and re-consumed by the group.
package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/Shopify/sarama"
)

func init() { register("6_replay", replayScenario) }

const replayCount = 20
const replayT0 = int64(1700000000000)

func replayIndexes(messages []*sarama.ConsumerMessage) []int {
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
	var messages []*sarama.ProducerMessage
	for i := 0; i < replayCount; i++ {
		messages = append(messages, &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprintf(`{"i": %d}`, i)),
			Timestamp: time.Unix(0, (replayT0+int64(i)*1000)*int64(time.Millisecond))})
	}
	send(syncProducer(nil), messages)

	client := newClient(config())
	step("list-offsets")
	oldest, err := client.GetOffset(topic, 0, sarama.OffsetOldest)
	must(err, "GetOffset(oldest)")
	newest, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	must(err, "GetOffset(newest)")
	checkEq([]int64{oldest, newest}, []int64{0, replayCount}, "watermarks")

	step("offsets-by-time")
	found, err := client.GetOffset(topic, 0, replayT0+10500)
	must(err, "GetOffset(T0+10.5s)")
	checkEq(found, int64(11), "offset of the first message at or after T0+10.5s")
	past, err := client.GetOffset(topic, 0, replayT0+replayCount*1000+1)
	must(err, "GetOffset(after the last timestamp)")
	checkEq(past, int64(-1), "offset by time past the last timestamp")

	step("seek")
	checkEq(replayIndexes(consume(nil, topic, []int32{0}, 7, 3)), []int{7, 8, 9}, "from offset 7")
	checkEq(replayIndexes(consume(nil, topic, []int32{0}, found, 2)), []int{11, 12}, "from the offset found by time")

	step("group-reset")
	group := topic + "-group"
	first := startMember("first", group, topic, sarama.BalanceStrategyRange)
	waitUntil("the first pass of the group", 30, func() bool { seen, _ := first.snapshot(); return len(seen) >= replayCount })
	first.close() // commits what it marked
	c := config()
	c.Consumer.Offsets.Retention = 7 * 24 * time.Hour // OffsetCommit v2 (see startMember)
	resetClient := newClient(c)
	offsets, err := sarama.NewOffsetManagerFromClient(group, resetClient)
	must(err, "NewOffsetManagerFromClient")
	partition, err := offsets.ManagePartition(topic, 0)
	must(err, "ManagePartition")
	committed, _ := partition.NextOffset()
	checkEq(committed, int64(replayCount), "committed offset after the first pass")
	partition.ResetOffset(0, "") // reset to earliest
	must(partition.Close(), "closing the partition offset manager")
	must(offsets.Close(), "committing the reset")
	again := startMember("again", group, topic, sarama.BalanceStrategyRange)
	waitUntil("re-consuming after the reset", 30, func() bool { seen, _ := again.snapshot(); return len(seen) >= replayCount })
	seen, _ := again.snapshot()
	checkEq(len(seen), replayCount, "messages re-consumed after the reset")
	again.close()
}
