#!/usr/bin/env bash
# Scenario 2 with the quill CLI: keyed JSON lines (-K), the key's partition equals Java's
# murmur2 partitioner, -p wins, per-key order; acks=0; tailing; pipelined order.
. "$(dirname "$0")/common.sh"
t=$(topic keyed)
step create
q topic create "$t" -p 3
step produce
for round in 0 1 2; do
  for user in 0 1 2 3 4 5 6 7 8 9; do echo "user-$user|{\"user\":$user,\"round\":$round}"; done
done | q produce "$t" -K '|'
for p in 0 1 2; do echo "explicit|{\"explicit\":$p}" | q produce "$t" -K '|' -p "$p"; done
step consume
out=$(q consume "$t" --from-beginning -e -f '%p %o %k %s\n')
check_eq "$(wc -l <<<"$out")" 33 "records consumed"
step verify
declare -A last_offset last_round
while read -r p o k v; do
  (( o > ${last_offset[$p]:--1} )) || fail "offsets decrease in partition $p"
  last_offset[$p]=$o
  if [ "$k" == explicit ]; then check_eq "$v" "{\"explicit\":$p}" "explicit partition"; continue; fi
  check_eq "$p" "$(java_partition "$k" 3)" "partition of $k (Java murmur2)"
  round=${v##*\"round\":}; round=${round%\}}
  (( round > ${last_round[$k]:--1} )) || fail "order of $k"
  last_round[$k]=$round
done <<<"$out"
step acks-0
a=$(topic acks0)
q topic create "$a" -p 1
seq 0 4 | q produce "$a" --acks 0
check_eq "$(q consume "$a" --from-beginning -n 5 -f '%s ')" "0 1 2 3 4 " "acks=0 values"
step tail
# An explicit start offset (not `end`, resolved whenever the consumer gets to it): no race.
end=$(q topic describe "$t" --output json | json "[p['end_offset'] for p in d['partitions'] if p['partition'] == 1][0]")
tmp=$(mktemp)
q consume "$t" -p 1 -o "$end" -n 1 -f '%o %s' >"$tmp" &
tail_pid=$!
sleep 1
echo live | q produce "$t" -p 1
wait "$tail_pid" || fail "quill consume did not receive the tailed record"
check_eq "$(cat "$tmp")" "$end live" "tailed record"; rm -f "$tmp"
step pipelined-order
o=$(topic order)
q topic create "$o" -p 1
seq 0 1999 | q produce "$o" --linger-ms 0 --batch-size 1 --max-in-flight 5
got=$(q consume "$o" --from-beginning -e -f '%s\n')
inversions=$(awk 'NR > 1 && $1 < prev { n++ } { prev = $1 } END { print n + 0 }' <<<"$got")
[ "$got" == "$(seq 0 1999)" ] || fail "order of 2000 records with 5 requests in flight: $inversions inversions"
echo OK
