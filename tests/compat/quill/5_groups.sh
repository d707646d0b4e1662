#!/usr/bin/env bash
# Scenario 5 with the quill CLI (`quill consume --group`): two members of a group split the
# partitions, a second group sees everything (fan-out), a leaving member's partitions move to
# the other (rebalance), committed offsets survive the members leaving and broker restarts
# (SIGTERM, then SIGKILL: print "RESTART-BROKER <n>", the runner answers "restarted").
. "$(dirname "$0")/common.sh"
t=$(topic groups); group="$t-a"
tmp=$(mktemp -d)
members=()
cleanup() {
  for pid in "${members[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
# A group member in the background: records to $tmp/$1.out. Ctrl-C (SIGINT) makes it leave
# the group and commit, as a user's Ctrl-C would.
member() {
  timeout 120 "$QUILL_BIN" consume "$t" --group "$2" --from-beginning -f '%p %s\n' >"$tmp/$1.out" 2>"$tmp/$1.err" &
  members+=($!)
}
stop_member() { kill -INT "${members[$1]}"; wait "${members[$1]}" || true; }
# Partition lists of the group's members, e.g. "[[0, 1], [2, 3]]" (sorted).
assignments() {
  q group describe "$1" --output json 2>/dev/null |
    json "sorted(sorted(int(p.rsplit('-', 1)[1]) for p in m['assignment']) for m in d['members'])" 2>/dev/null
}
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + 40))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what (assignments: $(assignments "$group"))"
    sleep 0.2
  done
}
lines() { cat "$@" 2>/dev/null | wc -l; }
assigned_as() { [ "$(assignments "$group")" == "$1" ]; }
group_saw() { (($(lines "$tmp"/a*.out) >= $1)); }
# Keyed by their number, so records spread over the partitions (keyless ones stick to one).
produce() { seq "$1" "$2" | sed 's/.*/&|&/' | q produce "$t" -K '|' >/dev/null; }
# Reads `count` records as a new member of the group (it must start at the committed offsets).
read_group() { q consume "$t" --group "$group" -n "$1" -f '%s\n' | sort -n | tr '\n' ' '; }

step create
q topic create "$t" -p 4

step same-group-splits
member a1 "$group"
wait_for "a1 to get every partition" assigned_as "[[0, 1, 2, 3]]"
member a2 "$group"
wait_for "a1 and a2 to share the partitions" assigned_as "[[0, 1], [2, 3]]"
produce 0 39
wait_for "40 records across the group" group_saw 40
check_eq "$(cut -d' ' -f2 "$tmp/a1.out" "$tmp/a2.out" | sort -n | tr '\n' ' ')" "$(seq 0 39 | tr '\n' ' ')" "each record once in the group"
check_eq "$(cut -d' ' -f1 "$tmp/a1.out" "$tmp/a2.out" | sort -u | wc -l)" 4 "partitions with records"
for p in $(cut -d' ' -f1 "$tmp/a1.out" | sort -u); do
  ! grep -q "^$p " "$tmp/a2.out" || fail "partition $p consumed by both members"
done

step fan-out
check_eq "$(q consume "$t" --group "$t-b" --from-beginning -n 40 -f '%s\n' | sort -n | tr '\n' ' ')" \
  "$(seq 0 39 | tr '\n' ' ')" "group B sees every record"

step rebalance-on-leave
stop_member 1
wait_for "a1 to take over every partition" assigned_as "[[0, 1, 2, 3]]"

step commits-survive
stop_member 0
members=()
produce 40 47
check_eq "$(read_group 8)" "$(seq 40 47 | tr '\n' ' ')" "resumed from the committed offsets"

next=48
for phase in 1 2; do
  step "commits-survive-restart-$phase"
  echo "RESTART-BROKER $phase"
  deadline=$((SECONDS + 60))
  pending=""
  while :; do
    if read -r -t 0.2 line; then
      [ "$pending$line" == restarted ] && break
      pending=""
    else
      pending+=$line
    fi
    ((SECONDS < deadline)) || fail "the runner did not restart the broker ($phase)"
  done
  produce "$next" $((next + 3))
  check_eq "$(read_group 4)" "$(seq "$next" $((next + 3)) | tr '\n' ' ')" "resumed from the committed offsets after restart $phase"
  next=$((next + 4))
done
echo OK
