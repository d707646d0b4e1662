// Scenario 2 with confluent-kafka-go: keyed JSON events consumed from the beginning; with
// partitioner=murmur2_random a key's partition equals Java's, with librdkafka's default
// (consistent_random) a key still always lands in one partition; explicit partitions win;
// acks=0; a consumer tailing the end; auto-create; the order of pipelined requests.
package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func init() { register("2_keyed_json", keyedScenario) }

const keyedPartitions = 3

type keyedEvent struct {
	User     int `json:"user"`
	Round    int `json:"round"`
	Explicit int `json:"explicit"`
}

func keyedScenario() {
	topic := topicName("keyed")
	step("create")
	createTopics(topicSpec{topic, keyedPartitions, nil})

	step("produce")
	murmur := newProducer(kafka.ConfigMap{"partitioner": "murmur2_random"})
	defaultPartitioner := newProducer(nil)
	expected := 0
	for round := 0; round < 3; round++ {
		var javaKeyed, crcKeyed []*kafka.Message
		for user := 0; user < 10; user++ {
			value, _ := json.Marshal(keyedEvent{User: user, Round: round, Explicit: -1})
			javaKeyed = append(javaKeyed, message(topic, kafka.PartitionAny, []byte(fmt.Sprintf("user-%d", user)), value))
			crcKeyed = append(crcKeyed, message(topic, kafka.PartitionAny, []byte(fmt.Sprintf("crc-user-%d", user)), value))
		}
		produceAll(murmur, javaKeyed)
		produceAll(defaultPartitioner, crcKeyed)
		expected += 20
	}
	var explicit []*kafka.Message
	for partition := int32(0); partition < keyedPartitions; partition++ {
		value, _ := json.Marshal(keyedEvent{Explicit: int(partition)})
		explicit = append(explicit, message(topic, partition, []byte("explicit"), value))
	}
	produceAll(murmur, explicit)
	expected += keyedPartitions

	step("consume")
	messages := consume(topic, partitionList(keyedPartitions), kafka.OffsetBeginning, expected, nil)

	step("verify")
	lastOffset, lastRound, crcPartition := map[int32]kafka.Offset{}, map[string]int{}, map[string]int32{}
	for _, m := range messages {
		partition := m.TopicPartition.Partition
		if previous, seen := lastOffset[partition]; seen {
			check(m.TopicPartition.Offset > previous, "offsets increase in partition %d", partition)
		}
		lastOffset[partition] = m.TopicPartition.Offset
		key := string(m.Key)
		var event keyedEvent
		must(json.Unmarshal(m.Value, &event), "JSON value")
		switch {
		case key == "explicit":
			checkEq(partition, int32(event.Explicit), "explicit partition")
			continue
		case strings.HasPrefix(key, "crc-"):
			if first, seen := crcPartition[key]; seen {
				checkEq(partition, first, "consistent_random keeps "+key+" in one partition")
			}
			crcPartition[key] = partition
		default:
			checkEq(partition, javaPartition(key, keyedPartitions), "partition of "+key+" (Java murmur2)")
		}
		if previous, seen := lastRound[key]; seen {
			check(event.Round > previous, "order of %s", key)
		}
		lastRound[key] = event.Round
	}
	fmt.Printf("verified %d messages\n", len(messages))

	step("acks-0")
	tail := newConsumer(topic+"-tail", nil)
	_, before, err := tail.QueryWatermarkOffsets(topic, 0, 10000)
	must(err, "QueryWatermarkOffsets")
	var unacknowledged []*kafka.Message
	for i := 0; i < 5; i++ {
		unacknowledged = append(unacknowledged, message(topic, 0, nil, []byte(fmt.Sprintf("acks0-%d", i))))
	}
	produceAll(newProducer(kafka.ConfigMap{"acks": 0}), unacknowledged)
	var got []string
	for _, m := range consume(topic, []int32{0}, kafka.Offset(before), 5, nil) {
		got = append(got, string(m.Value))
	}
	checkEq(got, []string{"acks0-0", "acks0-1", "acks0-2", "acks0-3", "acks0-4"}, "acks=0 values")

	step("tail")
	_, end, err := tail.QueryWatermarkOffsets(topic, 1, 10000)
	must(err, "QueryWatermarkOffsets")
	must(tail.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 1, Offset: kafka.Offset(end)}}), "Assign")
	tail.Poll(500) // the consumer waits at the end: the tutorials' flow
	sent := time.Now()
	produceAll(murmur, []*kafka.Message{message(topic, 1, nil, []byte("live"))})
	live := poll(tail, 1, "the message produced while tailing")[0]
	checkEq([]interface{}{int64(live.TopicPartition.Offset), string(live.Value)}, []interface{}{end, "live"}, "tailed message")
	fmt.Printf("tail latency %d ms\n", time.Since(sent).Milliseconds())
	tail.Close()

	step("auto-create")
	auto := topicName("auto")
	delivered := produceAll(defaultPartitioner, []*kafka.Message{message(auto, kafka.PartitionAny, []byte("k"), []byte("created on first send"))})
	checkEq(int64(delivered[0].TopicPartition.Offset), int64(0), "first offset of an auto-created topic")

	step("pipelined-order")
	ordered := topicName("order")
	createTopics(topicSpec{ordered, 1, nil})
	const pipelined = 2000
	var records []*kafka.Message
	for i := 0; i < pipelined; i++ {
		records = append(records, message(ordered, kafka.PartitionAny, nil, []byte(fmt.Sprint(i))))
	}
	produceAll(newProducer(kafka.ConfigMap{"linger.ms": 0, "batch.num.messages": 1}), records)
	misplaced := 0
	for offset, m := range consume(ordered, []int32{0}, kafka.OffsetBeginning, pipelined, nil) {
		if string(m.Value) != fmt.Sprint(offset) {
			misplaced++
		}
	}
	check(misplaced == 0, "%d of %d pipelined records out of place", misplaced, pipelined)
}
