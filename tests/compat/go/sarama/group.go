package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

// member is one sarama ConsumerGroup member consuming one topic in a loop of sessions (each
// rebalance ends a session; Consume is called again), marking every message it sees.
type member struct {
	name       string
	group      sarama.ConsumerGroup
	topic      string
	cancel     context.CancelFunc
	done       chan struct{}
	mu         sync.Mutex
	seen       []string
	assigned   []int32
	generation int32
	failure    error
}

func startMember(name, groupID, topic string, strategy sarama.BalanceStrategy) *member {
	c := config()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.CommitInterval = 200 * time.Millisecond
	// With the default Retention (0) sarama 1.22.1 commits with OffsetCommit v1, which Kafka
	// 4.0 removed (KIP-896): the broker closes the connection. A retention selects v2.
	c.Consumer.Offsets.Retention = 7 * 24 * time.Hour
	c.Consumer.Group.Rebalance.Strategy = strategy
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	c.Consumer.Group.Rebalance.Timeout = 20 * time.Second
	group, err := sarama.NewConsumerGroup([]string{bootstrap}, groupID, c)
	must(err, "NewConsumerGroup "+groupID)
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{name: name, group: group, topic: topic, cancel: cancel, done: make(chan struct{})}
	go func() {
		for failure := range group.Errors() {
			fmt.Printf("%s: group error: %v\n", name, failure)
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, m); err != nil && ctx.Err() == nil {
				fmt.Printf("%s: Consume: %v\n", name, err)
				m.mu.Lock()
				m.failure = err
				m.mu.Unlock()
				time.Sleep(200 * time.Millisecond) // back off before joining again
			}
		}
	}()
	return m
}

func (m *member) Setup(session sarama.ConsumerGroupSession) error {
	claimed := append([]int32(nil), session.Claims()[m.topic]...)
	sort.Slice(claimed, func(i, j int) bool { return claimed[i] < claimed[j] })
	m.mu.Lock()
	m.assigned = claimed
	m.generation = session.GenerationID()
	m.mu.Unlock()
	fmt.Printf("%s: generation %d, assigned %v\n", m.name, session.GenerationID(), claimed)
	return nil
}

func (m *member) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.assigned = nil
	m.mu.Unlock()
	return nil
}

func (m *member) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for message := range claim.Messages() {
		m.mu.Lock()
		m.seen = append(m.seen, string(message.Value))
		m.mu.Unlock()
		session.MarkMessage(message, "")
	}
	return nil
}

func (m *member) state() (generation int32, failure error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.generation, m.failure
}

func (m *member) snapshot() (seen []string, assigned []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.seen...), append([]int32(nil), m.assigned...)
}

// close leaves the group: the last offsets are committed, then LeaveGroup.
func (m *member) close() {
	m.cancel()
	must(m.group.Close(), m.name+": Close")
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		panic(m.name + ": the consume loop did not end after Close")
	}
}

func waitUntil(what string, seconds int, condition func() bool) {
	wait := within(time.Duration(seconds)*time.Second, what)
	for !condition() {
		wait.check("")
		time.Sleep(50 * time.Millisecond)
	}
}
