// Scenario 8 with sarama: the runner restarts the broker twice mid-stream (SIGTERM, then
// SIGKILL); an idempotent SyncProducer (acks=all, one request in flight, retries that outlast
// the 5 s the broker is down) keeps sending through both. Every message it saw acknowledged is
// read back afterwards, and none twice: a retry of a batch the broker wrote before it stopped
// is recognised by its producer id and sequence, also after a SIGKILL.
package main

import (
	"fmt"
	"time"

	"github.com/Shopify/sarama"
)

func init() { register("8_restart", restartScenario) }

const perPhase = 40

func restartScenario() {
	topic := topicName("restart")
	step("create")
	createTopics(topicSpec{topic, 2, nil})
	producer := syncProducer(func(c *sarama.Config) {
		c.Producer.Idempotent = true
		c.Net.MaxOpenRequests = 1
		c.Producer.Retry.Max = 100
		c.Producer.Retry.Backoff = 200 * time.Millisecond
		c.Metadata.Retry.Max = 100
		c.Metadata.Retry.Backoff = 200 * time.Millisecond
	})
	acked := map[string]bool{}
	sent, failed := 0, 0
	produceOne := func() {
		value := fmt.Sprintf("m%d", sent)
		sent++
		_, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(value),
			Value: sarama.StringEncoder(value)})
		if err == nil {
			acked[value] = true
		} else {
			failed++
			if failed <= 5 {
				fmt.Printf("not acknowledged %s: %v\n", value, err)
			}
		}
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
			time.Sleep(20 * time.Millisecond) // pace the stream while the broker is down
		}
	}
	step("produce-after")
	target := len(acked) + perPhase
	wait := within(60*time.Second, "acknowledgements after the restarts")
	for len(acked) < target {
		wait.check("")
		produceOne()
	}
	fmt.Printf("%d acknowledged of %d sent\n", len(acked), sent)

	step("consume")
	client := newClient(config())
	total := 0
	for partition := int32(0); partition < 2; partition++ {
		newest, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
		must(err, "GetOffset")
		total += int(newest)
	}
	seen := map[string]int{}
	for _, m := range consume(nil, topic, []int32{0, 1}, sarama.OffsetOldest, total) {
		seen[string(m.Value)]++
	}
	missing, duplicated := 0, 0
	for value := range acked {
		if seen[value] == 0 {
			missing++
		}
	}
	for _, copies := range seen {
		if copies > 1 {
			duplicated++
		}
	}
	fmt.Printf("%d records read back, %d distinct\n", total, len(seen))
	check(missing == 0, "%d acknowledged messages missing after the restarts", missing)
	check(duplicated == 0, "%d messages written twice by the idempotent producer", duplicated)
}
