// Scenario 2 with sarama: keyed JSON events consumed from the beginning. sarama's partitioners
// as they are: the default NewHashPartitioner hashes keys with FNV-1a (abs of the signed
// remainder), NewReferenceHashPartitioner is FNV-1a with Java's sign handling; neither is Java's
// murmur2. The murmur2-compatible option of sarama 1.22.1 is NewCustomPartitioner with
// WithAbsFirst() and WithCustomHashFunction(<a murmur2 hash.Hash32>) (sarama ships no murmur2):
// with it a key's partition equals Java's. Explicit partitions (NewManualPartitioner) win;
// acks=0 (NoResponse); a consumer tailing the end; auto-create on first send; the order of
// 2000 records pipelined with 5 requests in flight.
package main

import (
	"encoding/json"
	"fmt"
	"hash"
	"hash/fnv"
	"time"

	"github.com/Shopify/sarama"
)

func init() { register("2_keyed_json", keyedScenario) }

const keyedPartitions = 3

// fnvPartition is what sarama's default hash partitioner computes.
func fnvPartition(key string, partitions int32) int32 {
	hasher := fnv.New32a()
	hasher.Write([]byte(key))
	partition := int32(hasher.Sum32()) % partitions
	if partition < 0 {
		partition = -partition
	}
	return partition
}

// referencePartition is what NewReferenceHashPartitioner computes.
func referencePartition(key string, partitions int32) int32 {
	hasher := fnv.New32a()
	hasher.Write([]byte(key))
	return (int32(hasher.Sum32()) & 0x7fffffff) % partitions
}

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
	murmur := syncProducer(func(c *sarama.Config) {
		c.Producer.Partitioner = sarama.NewCustomPartitioner(sarama.WithAbsFirst(),
			sarama.WithCustomHashFunction(func() hash.Hash32 { return newMurmur2Hash() }))
	})
	fnvDefault := syncProducer(nil)
	reference := syncProducer(func(c *sarama.Config) { c.Producer.Partitioner = sarama.NewReferenceHashPartitioner })
	manual := syncProducer(func(c *sarama.Config) { c.Producer.Partitioner = sarama.NewManualPartitioner })
	expected := 0
	for round := 0; round < 3; round++ {
		var javaKeyed, fnvKeyed, referenceKeyed []*sarama.ProducerMessage
		for user := 0; user < 10; user++ {
			value, _ := json.Marshal(keyedEvent{User: user, Round: round, Explicit: -1})
			message := func(key string) *sarama.ProducerMessage {
				return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value)}
			}
			javaKeyed = append(javaKeyed, message(fmt.Sprintf("user-%d", user)))
			fnvKeyed = append(fnvKeyed, message(fmt.Sprintf("fnv-user-%d", user)))
			referenceKeyed = append(referenceKeyed, message(fmt.Sprintf("ref-user-%d", user)))
		}
		send(murmur, javaKeyed)
		send(fnvDefault, fnvKeyed)
		send(reference, referenceKeyed)
		expected += 30
	}
	var explicit []*sarama.ProducerMessage
	for partition := int32(0); partition < keyedPartitions; partition++ {
		value, _ := json.Marshal(keyedEvent{Explicit: int(partition)})
		explicit = append(explicit, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("explicit"),
			Value: sarama.ByteEncoder(value), Partition: partition})
	}
	send(manual, explicit)
	expected += keyedPartitions

	step("consume")
	messages := consume(nil, topic, partitionList(keyedPartitions), sarama.OffsetOldest, expected)

	step("verify")
	lastOffset, lastRound := map[int32]int64{}, map[string]int{}
	differFromJava := map[string]bool{}
	for _, m := range messages {
		if previous, seen := lastOffset[m.Partition]; seen {
			check(m.Offset > previous, "offsets increase in partition %d", m.Partition)
		}
		lastOffset[m.Partition] = m.Offset
		key := string(m.Key)
		var event keyedEvent
		must(json.Unmarshal(m.Value, &event), "JSON value")
		switch {
		case key == "explicit":
			checkEq(m.Partition, int32(event.Explicit), "explicit partition")
			continue
		case len(key) > 4 && key[:4] == "fnv-":
			checkEq(m.Partition, fnvPartition(key, keyedPartitions), "partition of "+key+" (sarama's FNV-1a default)")
			differFromJava[key] = m.Partition != javaPartition(key, keyedPartitions)
		case len(key) > 4 && key[:4] == "ref-":
			checkEq(m.Partition, referencePartition(key, keyedPartitions), "partition of "+key+" (reference FNV-1a)")
		default:
			checkEq(m.Partition, javaPartition(key, keyedPartitions), "partition of "+key+" (Java murmur2)")
		}
		if previous, seen := lastRound[key]; seen {
			check(event.Round > previous, "order of %s: round %d after %d", key, event.Round, previous)
		}
		lastRound[key] = event.Round
	}
	differing := 0
	for _, differs := range differFromJava {
		if differs {
			differing++
		}
	}
	fmt.Printf("verified %d messages; sarama's default FNV-1a put %d of %d keys elsewhere than Java's murmur2\n",
		len(messages), differing, len(differFromJava))
	// The matrix note states this (deterministic for these keys).
	checkEq([]int{differing, len(differFromJava)}, []int{5, 10}, "keys the FNV-1a default puts elsewhere than Java")

	client := newClient(config())
	step("acks-0")
	before, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	must(err, "GetOffset")
	noAcks := syncProducer(func(c *sarama.Config) {
		c.Producer.RequiredAcks = sarama.NoResponse
		c.Producer.Partitioner = sarama.NewManualPartitioner
	})
	var unacknowledged []*sarama.ProducerMessage
	for i := 0; i < 5; i++ {
		unacknowledged = append(unacknowledged, &sarama.ProducerMessage{Topic: topic, Partition: 0,
			Value: sarama.StringEncoder(fmt.Sprintf("acks0-%d", i))})
	}
	send(noAcks, unacknowledged)
	var got []string
	for _, m := range consume(nil, topic, []int32{0}, before, 5) {
		got = append(got, string(m.Value))
	}
	checkEq(got, []string{"acks0-0", "acks0-1", "acks0-2", "acks0-3", "acks0-4"}, "acks=0 values")

	step("tail")
	// The tutorials' flow: a consumer waits at the end, then a producer sends.
	end, err := client.GetOffset(topic, 1, sarama.OffsetNewest)
	must(err, "GetOffset")
	consumer, err := sarama.NewConsumer([]string{bootstrap}, config())
	must(err, "NewConsumer")
	tail, err := consumer.ConsumePartition(topic, 1, sarama.OffsetNewest)
	must(err, "ConsumePartition(newest)")
	time.Sleep(300 * time.Millisecond) // let the first fetch wait at the end: the scenario, not a sync
	sent := time.Now()
	send(manual, []*sarama.ProducerMessage{{Topic: topic, Partition: 1, Value: sarama.StringEncoder("live")}})
	select {
	case m := <-tail.Messages():
		checkEq([]interface{}{m.Offset, string(m.Value)}, []interface{}{end, "live"}, "tailed message")
	case failure := <-tail.Errors():
		panic(fmt.Sprint("tailing: ", failure))
	case <-time.After(10 * time.Second):
		panic("timed out: the message produced while tailing")
	}
	fmt.Printf("tail latency %d ms\n", time.Since(sent).Milliseconds())
	tail.Close()
	consumer.Close()

	step("auto-create")
	// A producer's first record to an unknown topic creates it (Metadata v5 with
	// allow_auto_topic_creation, auto.create.topics.enable).
	auto := topicName("auto")
	partition, offset, err := fnvDefault.SendMessage(&sarama.ProducerMessage{Topic: auto,
		Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder("created on first send")})
	must(err, "first send to "+auto)
	checkEq(offset, int64(0), "offset of the first record of an auto-created topic")
	fmt.Printf("auto-created %s, first record at partition %d\n", auto, partition)

	step("pipelined-order")
	// sarama's AsyncProducer with 5 requests in flight on one connection and one message per
	// request: without errors the partition keeps the order of the producer's calls.
	ordered := topicName("order")
	createTopics(topicSpec{ordered, 1, nil})
	c := config()
	c.Net.MaxOpenRequests = 5
	c.Producer.Flush.MaxMessages = 1
	async, err := sarama.NewAsyncProducer([]string{bootstrap}, c)
	must(err, "NewAsyncProducer")
	const pipelined = 2000
	done := make(chan error, 1)
	go func() {
		acknowledged := 0
		for acknowledged < pipelined {
			select {
			case <-async.Successes():
				acknowledged++
			case failure := <-async.Errors():
				done <- failure
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < pipelined; i++ {
		async.Input() <- &sarama.ProducerMessage{Topic: ordered, Value: sarama.StringEncoder(fmt.Sprint(i))}
	}
	select {
	case err := <-done:
		must(err, "pipelined produce")
	case <-time.After(60 * time.Second):
		panic("timed out: acknowledgements of the pipelined records")
	}
	inversions := 0
	values := consume(nil, ordered, []int32{0}, sarama.OffsetOldest, pipelined)
	for offset, m := range values {
		if string(m.Value) != fmt.Sprint(offset) {
			inversions++
		}
	}
	check(inversions == 0, "%d of %d pipelined records out of place", inversions, pipelined)
}
