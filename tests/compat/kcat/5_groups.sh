#!/usr/bin/env bash
# Scenario 5 with kcat's balanced consumer (-G, librdkafka 2.0.2's group client): two members
# of a group split the partitions, a second group sees everything (fan-out), a leaving member's
# partitions move to the other (rebalance), committed offsets survive the members leaving.
# quill-compat-topics: groups=4
. "$(dirname "$0")/common.sh"
t=$(topic groups); group="$t-a"
tmp=$(mktemp -d)
members=()
cleanup() {
  for pid in "${members[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
# A group member in the background (-u: unbuffered output): records to $tmp/$1.out,
# rebalances to $tmp/$1.err.
member() {
  timeout 90 kcat -b "$BOOTSTRAP" -G "$2" "$t" -u -X auto.offset.reset=earliest -f '%p %s\n' \
    >"$tmp/$1.out" 2>"$tmp/$1.err" &
  members+=($!)
}
# The partitions of a member's latest assignment, e.g. "0 2".
assigned() { grep 'assigned:' "$tmp/$1.err" 2>/dev/null | tail -1 | grep -o '\[[0-9]*\]' | tr -d '[]' | tr '\n' ' '; }
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + 40))
  until "$@"; do
    ((SECONDS < deadline)) || { tail -n 5 "$tmp"/*.err >&2; fail "timed out waiting for $what"; }
    sleep 0.2
  done
}
lines() { cat "$@" 2>/dev/null | wc -l; }
# Conditions for wait_for (evaluated on every try).
has_assignment() { [ -n "$(assigned "$1")" ]; }
has_all_partitions() { [ "$(assigned "$1")" == "0 1 2 3 " ]; }
group_saw() { (($(lines "$tmp/a1.out" "$tmp/a2.out") >= $1)); }
produce() { for i in $(seq "$1" "$2"); do echo "$i"; done | kc -P -t "$t" -K '|' -X partitioner=murmur2_random; }

step same-group-splits
member a1 "$group"
wait_for "a1's first assignment" has_assignment a1
member a2 "$group"
split() { local x y; x=$(assigned a1); y=$(assigned a2); [ -n "$x" ] && [ -n "$y" ] && (($(wc -w <<<"$x$y") == 4)); }
wait_for "a1 and a2 sharing the 4 partitions" split
echo "a1: $(assigned a1)  a2: $(assigned a2)"
produce 0 39
wait_for "40 records across the group" group_saw 40
check_eq "$(cut -d' ' -f2 "$tmp/a1.out" "$tmp/a2.out" | sort -n | tr '\n' ' ')" "$(seq 0 39 | tr '\n' ' ')" "each record once in the group"
for p in $(cut -d' ' -f1 "$tmp/a1.out" | sort -u); do
  ! grep -q "^$p " "$tmp/a2.out" || fail "partition $p consumed by both members"
done

step fan-out
check_eq "$(kc -G "$t-b" "$t" -X auto.offset.reset=earliest -c 40 -q -f '%s\n' | sort -n | tr '\n' ' ')" \
  "$(seq 0 39 | tr '\n' ' ')" "group B sees every record"

step rebalance-on-leave
kill "${members[1]}"
wait "${members[1]}" || true
wait_for "a1 taking over every partition" has_all_partitions a1

step commits-survive
kill "${members[0]}"
wait "${members[0]}" || true
members=()
produce 40 47
check_eq "$(kc -G "$group" "$t" -X auto.offset.reset=earliest -c 8 -q -f '%s\n' | sort -n | tr '\n' ' ')" \
  "$(seq 40 47 | tr '\n' ' ')" "resumed from the committed offsets"
echo OK
