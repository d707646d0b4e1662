#!/usr/bin/env bash
# Scenario 1 with kcat, metadata only (kcat has no admin API: create/delete are not its job):
# list brokers and topics, describe a 3-partition topic's partitions, leader, replicas, ISR.
# quill-compat-topics: admin=3
. "$(dirname "$0")/common.sh"
t=$(topic admin)
step list
listing=$(kc -L)
echo "$listing"
grep -q "^ 1 brokers:" <<<"$listing" || fail "one broker expected"
grep -q "broker 1 at $BOOTSTRAP" <<<"$listing" || fail "broker 1 at $BOOTSTRAP"
grep -q "topic \"$t\" with 3 partitions:" <<<"$listing" || fail "$t with 3 partitions not listed"
step describe
described=$(kc -L -t "$t")
for p in 0 1 2; do
  grep -q "partition $p, leader 1, replicas: 1, isrs: 1" <<<"$described" || fail "partition $p: $described"
done
echo OK
