#!/usr/bin/env bash
# Scenario 2 with kcat: keyed JSON lines (-K), partitioner=murmur2_random must match Java's
# partitioner, the default (consistent_random) must keep a key in one partition, -p wins.
# quill-compat-topics: keyed=3 order=1
. "$(dirname "$0")/common.sh"
t=$(topic keyed)
step produce
lines=""
for round in 0 1 2; do
  for user in 0 1 2 3 4 5 6 7 8 9; do
    lines+="user-$user|{\"user\":$user,\"round\":$round}"$'\n'
  done
done
kc -P -t "$t" -K '|' -X partitioner=murmur2_random <<<"${lines%$'\n'}"
kc -P -t "$t" -K '|' <<<"$(sed 's/^/crc-/' <<<"${lines%$'\n'}")"
for p in 0 1 2; do echo "explicit|{\"explicit\":$p}" | kc -P -t "$t" -K '|' -p "$p"; done
step consume
out=$(consume_all "$t" -f '%p %o %k %s\n')
check_eq "$(wc -l <<<"$out")" 63 "messages consumed"
step verify
declare -A last_offset crc_part last_round
while read -r p o k v; do
  (( o > ${last_offset[$p]:--1} )) || fail "offsets decrease in partition $p"
  last_offset[$p]=$o
  case $k in
    explicit) check_eq "$v" "{\"explicit\":$p}" "explicit partition" ;;
    crc-*) crc_part[$k]=${crc_part[$k]:-$p}; check_eq "$p" "${crc_part[$k]}" "consistent_random partition of $k" ;;
    *)
      check_eq "$p" "$(java_partition "$k" 3)" "partition of $k (Java murmur2)"
      round=${v##*\"round\":}; round=${round%\}}
      (( round > ${last_round[$k]:--1} )) || fail "order of $k"
      last_round[$k]=$round ;;
  esac
done <<<"$out"

step acks-0
before=$(kc -Q -t "$t:0:-1" | awk '{print $NF}')
seq 0 4 | sed 's/^/acks0-/' | kc -P -t "$t" -p 0 -X acks=0
check_eq "$(kc -C -t "$t" -p 0 -o "$before" -c 5 -q -f '%s ')" "acks0-0 acks0-1 acks0-2 acks0-3 acks0-4 " "acks=0 values"

step tail
# The tutorials' flow: a consumer waits at the end, then a producer sends.
end=$(kc -Q -t "$t:1:-1" | awk '{print $NF}')
tmp=$(mktemp)
kc -C -t "$t" -p 1 -o "$end" -c 1 -q -f '%o %s' >"$tmp" &
tail_pid=$!
sleep 1
echo live | kc -P -t "$t" -p 1
wait "$tail_pid" || fail "kcat -C did not receive the tailed message"
check_eq "$(cat "$tmp")" "$end live" "tailed message"
rm -f "$tmp"

step pipelined-order
# librdkafka keeps many produce requests in flight on one connection; without errors Kafka
# appends them in order, so the partition keeps the order of the input lines.
o=$(topic order)
seq 0 1999 | kc -P -t "$o" -p 0 -X linger.ms=0 -X batch.num.messages=1
got=$(kc -C -t "$o" -p 0 -o beginning -c 2000 -q -f '%s\n')
inversions=$(awk 'NR > 1 && $1 < prev { n++ } { prev = $1 } END { print n + 0 }' <<<"$got")
echo "$inversions inversions"
check_eq "$got" "$(seq 0 1999)" "order of 2000 pipelined records"
echo OK
