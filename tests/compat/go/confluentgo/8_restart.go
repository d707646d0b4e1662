// Scenario 8 with confluent-kafka-go: the runner restarts the broker twice mid-stream (SIGTERM,
// then SIGKILL); the producer (acks=all, retries) rides through and every acknowledged message
// is read back afterwards (duplicates from retries are allowed).
package main

import (
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func init() { register("8_restart", restartScenario) }

const perPhase = 40

func restartScenario() {
	topic := topicName("restart")
	step("create")
	createTopics(topicSpec{topic, 2, nil})
	producer := newProducer(kafka.ConfigMap{"message.timeout.ms": 45000, "retry.backoff.ms": 200, "linger.ms": 0})
	// Errors (brokers down) arrive on Events(): drained, or Flush counts them as queued.
	go func() {
		for event := range producer.Events() {
			fmt.Printf("producer event: %v\n", event)
		}
	}()
	reports := make(chan kafka.Event, 10000)
	acked := map[string]bool{}
	sent := 0
	drain := func() {
		for {
			select {
			case event := <-reports:
				m := event.(*kafka.Message)
				if m.TopicPartition.Error == nil {
					acked[string(m.Value)] = true
				} else {
					fmt.Printf("not acknowledged %s: %v\n", m.Value, m.TopicPartition.Error)
				}
			default:
				return
			}
		}
	}
	produceOne := func() {
		value := fmt.Sprintf("m%d", sent)
		sent++
		must(producer.Produce(message(topic, kafka.PartitionAny, []byte(value), []byte(value)), reports), "Produce")
		time.Sleep(20 * time.Millisecond) // pace the stream
		drain()
	}
	for phase := int32(1); phase <= 2; phase++ {
		step(fmt.Sprintf("produce-%d", phase))
		target := len(acked) + perPhase
		wait := within(60*time.Second, fmt.Sprintf("acknowledgements before restart %d", phase))
		for len(acked) < target {
			wait.check("")
			produceOne()
		}
		requestRestart(phase)
		wait = within(60*time.Second, fmt.Sprintf("the runner restarting the broker (%d)", phase))
		for !restarted(phase) {
			wait.check("")
			produceOne()
		}
	}
	step("produce-after")
	target := len(acked) + perPhase
	wait := within(60*time.Second, "acknowledgements after the restarts")
	for len(acked) < target {
		wait.check("")
		produceOne()
	}
	check(producer.Flush(50000) == 0, "messages still queued")
	drain()
	fmt.Printf("%d acknowledged of %d sent\n", len(acked), sent)

	step("consume")
	consumer := newConsumer(topic+"-reader", nil)
	must(consumer.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning},
		{Topic: &topic, Partition: 1, Offset: kafka.OffsetBeginning}}), "Assign")
	seen := map[string]bool{}
	missing := func() int {
		count := 0
		for value := range acked {
			if !seen[value] {
				count++
			}
		}
		return count
	}
	wait = within(40*time.Second, "reading back every acknowledged message")
	for missing() > 0 {
		wait.check(fmt.Sprintf("(missing %d)", missing()))
		for _, m := range poll(consumer, 1, "the next message") {
			seen[string(m.Value)] = true
		}
	}
	consumer.Close()
}
