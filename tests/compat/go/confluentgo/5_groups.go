// Scenario 5 with confluent-kafka-go: two members of a group split the partitions, a second
// group sees everything (fan-out), a leaving member's partitions move to the other
// (rebalance), committed offsets survive the members leaving, and broker restarts (SIGTERM,
// then SIGKILL).
package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func init() { register("5_groups", groupsScenario) }

const groupPartitions = 4
const groupCount = 40

type member struct {
	consumer *kafka.Consumer
	seen     []string
}

func startMember(group, topic string) *member {
	consumer := newConsumer(group, kafka.ConfigMap{"auto.offset.reset": "earliest", "session.timeout.ms": 10000,
		"heartbeat.interval.ms": 500, "enable.auto.commit": true, "auto.commit.interval.ms": 200})
	must(consumer.Subscribe(topic, nil), "Subscribe")
	return &member{consumer: consumer}
}

func (m *member) poll() {
	switch event := m.consumer.Poll(100).(type) {
	case *kafka.Message:
		must(event.TopicPartition.Error, "consumed message")
		m.seen = append(m.seen, string(event.Value))
	case kafka.Error:
		check(event.Code() == kafka.ErrTransport || event.Code() == kafka.ErrAllBrokersDown, "consumer error: %v", event)
	}
}

func (m *member) assigned() []int32 {
	assignment, err := m.consumer.Assignment()
	must(err, "Assignment")
	var partitions []int32
	for _, tp := range assignment {
		partitions = append(partitions, tp.Partition)
	}
	sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
	return partitions
}

func pump(members []*member, what string, condition func() bool) {
	wait := within(40*time.Second, what)
	for !condition() {
		wait.check("")
		for _, m := range members {
			m.poll()
		}
	}
}

func produceValues(topic string, from, count int) []string {
	var messages []*kafka.Message
	var values []string
	for i := from; i < from+count; i++ {
		values = append(values, fmt.Sprint(i))
		messages = append(messages, message(topic, int32(i%groupPartitions), nil, []byte(fmt.Sprint(i))))
	}
	producer := newProducer(nil)
	defer producer.Close()
	produceAll(producer, messages)
	sort.Strings(values)
	return values
}

func sortedCopy(values []string) []string {
	sorted := append([]string(nil), values...)
	sort.Strings(sorted)
	return sorted
}

func groupsScenario() {
	topic := topicName("groups")
	step("create")
	createTopics(topicSpec{topic, groupPartitions, nil})
	expected := produceValues(topic, 0, groupCount)

	step("same-group-splits")
	group := topic + "-a"
	a1, a2 := startMember(group, topic), startMember(group, topic)
	pump([]*member{a1, a2}, "two members sharing the messages", func() bool {
		return len(a1.seen)+len(a2.seen) >= groupCount && len(a1.assigned()) > 0 && len(a2.assigned()) > 0
	})
	all := append(a1.assigned(), a2.assigned()...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	checkEq(all, partitionList(groupPartitions), "partitions split without overlap")
	checkEq(sortedCopy(append(a1.seen, a2.seen...)), expected, "each message once in the group")

	step("fan-out")
	b := startMember(topic+"-b", topic)
	pump([]*member{b}, "group B seeing every message", func() bool { return len(b.seen) >= groupCount })
	must(b.consumer.Close(), "Close")

	step("rebalance-on-leave")
	must(a2.consumer.Close(), "Close")
	pump([]*member{a1}, "a1 taking over every partition", func() bool {
		return fmt.Sprint(a1.assigned()) == fmt.Sprint(partitionList(groupPartitions))
	})

	step("commits-survive")
	if _, err := a1.consumer.Commit(); err != nil {
		// Auto-commit may already have committed everything: nothing left to commit.
		check(err.(kafka.Error).Code() == kafka.ErrNoOffset, "Commit: %v", err)
	}
	must(a1.consumer.Close(), "Close")
	expected = produceValues(topic, groupCount, 8)
	a3 := startMember(group, topic)
	pump([]*member{a3}, "the 8 messages produced after the group left", func() bool { return len(a3.seen) >= 8 })
	checkEq(sortedCopy(a3.seen), expected, "resumed from the committed offsets")
	must(a3.consumer.Close(), "Close")

	following := groupCount + 8
	for phase := int32(1); phase <= 2; phase++ {
		step(fmt.Sprintf("commits-survive-restart-%d", phase))
		requestRestart(phase)
		wait := within(60*time.Second, fmt.Sprintf("the runner restarting the broker (%d)", phase))
		for !restarted(phase) {
			wait.check("")
			time.Sleep(50 * time.Millisecond)
		}
		expected := produceValues(topic, following, 4)
		following += 4
		m := startMember(group, topic)
		pump([]*member{m}, fmt.Sprintf("the 4 messages produced after restart %d", phase), func() bool { return len(m.seen) >= 4 })
		checkEq(sortedCopy(m.seen), expected, fmt.Sprintf("resumed from the committed offsets after restart %d", phase))
		must(m.consumer.Close(), "Close")
	}
}
