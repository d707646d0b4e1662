// Scenario 5 with sarama's ConsumerGroup, with each balance strategy sarama 1.22.1 has (range
// and round-robin; BalanceStrategySticky came in sarama 1.24): two members of a group split the
// partitions as the strategy says, a second group sees everything (fan-out), a leaving
// member's partitions move to the other (rebalance), committed offsets survive the members
// leaving, and broker restarts (SIGTERM, then SIGKILL).
package main

import (
	"fmt"
	"sort"

	"github.com/Shopify/sarama"
)

func init() { register("5_groups", groupsScenario) }

const groupPartitions = 4

func produceValues(topic string, from, count int) []string {
	producer := syncProducer(func(c *sarama.Config) { c.Producer.Partitioner = sarama.NewManualPartitioner })
	defer producer.Close()
	var messages []*sarama.ProducerMessage
	var values []string
	for i := from; i < from+count; i++ {
		values = append(values, fmt.Sprint(i))
		messages = append(messages, &sarama.ProducerMessage{Topic: topic, Partition: int32(i % groupPartitions),
			Value: sarama.StringEncoder(fmt.Sprint(i))})
	}
	send(producer, messages)
	sort.Strings(values)
	return values
}

// produced lists the values 0..count-1 as produceValues sorts them.
func produced(count int) []string {
	var values []string
	for i := 0; i < count; i++ {
		values = append(values, fmt.Sprint(i))
	}
	return sortedStrings(values)
}

func sortedStrings(values []string) []string {
	sorted := append([]string(nil), values...)
	sort.Strings(sorted)
	return sorted
}

// splitsLike checks the two members' partitions are what `strategy` gives two members on one
// topic of 4 partitions: range gives each a contiguous half, round-robin alternates.
func splitsLike(strategy string, first, second []int32) bool {
	if len(first) != 2 || len(second) != 2 {
		return false
	}
	switch strategy {
	case "range":
		return first[1] == first[0]+1 && second[1] == second[0]+1
	default:
		return first[1] == first[0]+2 && second[1] == second[0]+2
	}
}

// checkGroupViews checks what sarama's ClusterAdmin shows of a stable two-member group
// (ListGroups v0, DescribeGroups v0, OffsetFetch v1): its protocol, each member's subscription
// and assignment as sarama decodes them (the leader's plan, relayed by the coordinator), and
// the committed offsets once the members have committed what they saw.
func checkGroupViews(group, strategy, topic string, claims map[string][]int32) {
	admin := newAdmin()
	defer admin.Close()
	groups, err := admin.ListConsumerGroups()
	must(err, "ListConsumerGroups")
	checkEq(groups[group], "consumer", "protocol type of "+group+" in ListGroups")
	described, err := admin.DescribeConsumerGroups([]string{group})
	must(err, "DescribeConsumerGroups")
	checkEq(len(described), 1, "groups described")
	description := described[0]
	checkEq([]interface{}{description.Err, description.State, description.ProtocolType, description.Protocol},
		[]interface{}{sarama.ErrNoError, "Stable", "consumer", strategy}, "DescribeGroups of "+group)
	checkEq(len(description.Members), 2, "members")
	var assigned [][]int32
	for memberID, member := range description.Members {
		metadata, err := member.GetMemberMetadata()
		must(err, "member metadata of "+memberID)
		checkEq(metadata.Topics, []string{topic}, "subscription of "+memberID)
		assignment, err := member.GetMemberAssignment()
		must(err, "member assignment of "+memberID)
		partitions := append([]int32(nil), assignment.Topics[topic]...)
		sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
		assigned = append(assigned, partitions)
	}
	sort.Slice(assigned, func(i, j int) bool { return assigned[i][0] < assigned[j][0] })
	var wanted [][]int32
	for _, partitions := range claims {
		wanted = append(wanted, partitions)
	}
	sort.Slice(wanted, func(i, j int) bool { return wanted[i][0] < wanted[j][0] })
	checkEq(assigned, wanted, "assignments DescribeGroups shows")
	// Every message was marked; commits go out every 200 ms.
	waitUntil("the group's commits of every partition's end", 20, func() bool {
		offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: partitionList(groupPartitions)})
		must(err, "ListConsumerGroupOffsets")
		client := newClient(config())
		defer client.Close()
		for partition := int32(0); partition < groupPartitions; partition++ {
			block := offsets.GetBlock(topic, partition)
			end, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
			must(err, "GetOffset")
			if block == nil || block.Err != sarama.ErrNoError || block.Offset != end {
				return false
			}
		}
		return true
	})
}

func groupsScenario() {
	topic := topicName("groups")
	step("create")
	createTopics(topicSpec{topic, groupPartitions, nil})
	count := 0
	var lastGroup string
	for _, strategy := range []sarama.BalanceStrategy{sarama.BalanceStrategyRange, sarama.BalanceStrategyRoundRobin} {
		name := strategy.Name()
		step("same-group-splits-" + name)
		group := fmt.Sprintf("%s-a-%s", topic, name)
		a1 := startMember("a1", group, topic, strategy)
		a2 := startMember("a2", group, topic, strategy)
		// Produce once both members hold their share: every message is then seen exactly once.
		waitUntil("two members sharing the partitions", 40, func() bool {
			_, first := a1.snapshot()
			_, second := a2.snapshot()
			all := append(append([]int32(nil), first...), second...)
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			return len(first) > 0 && len(second) > 0 && fmt.Sprint(all) == fmt.Sprint(partitionList(groupPartitions))
		})
		_, first := a1.snapshot()
		_, second := a2.snapshot()
		check(splitsLike(name, first, second), "%s split: %v and %v", name, first, second)
		// A new group starts from the oldest offset: it sees what earlier groups saw too.
		produceValues(topic, count, 40)
		count += 40
		expected := produced(count)
		waitUntil("the group seeing every message", 40, func() bool {
			seen1, _ := a1.snapshot()
			seen2, _ := a2.snapshot()
			return len(seen1)+len(seen2) >= count
		})
		seen1, _ := a1.snapshot()
		seen2, _ := a2.snapshot()
		checkEq(sortedStrings(append(seen1, seen2...)), expected, "each message once in the group ("+name+")")

		step("admin-views-" + name)
		checkGroupViews(group, name, topic, map[string][]int32{"a1": first, "a2": second})

		step("inconsistent-protocol-" + name)
		// A member offering only the other strategy is refused (INCONSISTENT_GROUP_PROTOCOL)
		// and the group goes on as it was: no rebalance.
		generation, _ := a1.state()
		other := sarama.BalanceStrategyRoundRobin
		if name != "range" {
			other = sarama.BalanceStrategyRange
		}
		stranger := startMember("stranger", group, topic, other)
		waitUntil("the stranger's JoinGroup refused", 20, func() bool {
			_, failure := stranger.state()
			return failure != nil
		})
		_, failure := stranger.state()
		checkEq(failure, error(sarama.ErrInconsistentGroupProtocol), "JoinGroup with another protocol")
		stranger.close()
		now, _ := a1.state()
		checkEq(now, generation, "a1's generation after the refused join")

		step("rebalance-on-leave-" + name)
		a2.close()
		waitUntil("a1 taking over every partition", 40, func() bool {
			_, assigned := a1.snapshot()
			return fmt.Sprint(assigned) == fmt.Sprint(partitionList(groupPartitions))
		})
		a1.close()
		lastGroup = group
	}

	step("fan-out")
	b := startMember("b", topic+"-b", topic, sarama.BalanceStrategyRange)
	waitUntil("group B seeing every message", 40, func() bool {
		seen, _ := b.snapshot()
		return len(seen) >= count
	})
	seen, _ := b.snapshot()
	checkEq(len(seen), count, "messages group B saw")
	b.close()

	step("commits-survive")
	expected := produceValues(topic, count, 8)
	count += 8
	a3 := startMember("a3", lastGroup, topic, sarama.BalanceStrategyRoundRobin)
	waitUntil("the 8 messages produced after the group left", 40, func() bool {
		seen, _ := a3.snapshot()
		return len(seen) >= 8
	})
	seen, _ = a3.snapshot()
	checkEq(sortedStrings(seen), expected, "resumed from the committed offsets")
	a3.close()

	for phase := int32(1); phase <= 2; phase++ {
		step(fmt.Sprintf("commits-survive-restart-%d", phase))
		requestRestart(phase)
		waitUntil(fmt.Sprintf("the runner restarting the broker (%d)", phase), 60, func() bool { return restarted(phase) })
		expected := produceValues(topic, count, 4)
		count += 4
		m := startMember(fmt.Sprintf("r%d", phase), lastGroup, topic, sarama.BalanceStrategyRoundRobin)
		waitUntil(fmt.Sprintf("the 4 messages produced after restart %d", phase), 40, func() bool {
			seen, _ := m.snapshot()
			return len(seen) >= 4
		})
		seen, _ := m.snapshot()
		checkEq(sortedStrings(seen), expected, fmt.Sprintf("resumed from the committed offsets after restart %d", phase))
		m.close()
	}
}
