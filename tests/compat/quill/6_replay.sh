#!/usr/bin/env bash
# Scenario 6 with the quill CLI: read from an offset (-o N) and from a timestamp (--timestamp,
# ListOffsets by time); reset a group's offsets to earliest and re-consume. The CLI cannot set
# timestamps: the time boundary is between two runs.
. "$(dirname "$0")/common.sh"
t=$(topic replay)
step create
q topic create "$t" -p 1
step produce
seq 0 9 | q produce "$t"
sleep 1.1
boundary=$(now_ms)
sleep 0.1
seq 10 19 | q produce "$t"
step seek
check_eq "$(q consume "$t" -o 7 -n 3 -f '%s ')" "7 8 9 " "after -o 7"
check_eq "$(q consume "$t" -o -2 -n 2 -f '%s ')" "18 19 " "after -o -2"
step seek-by-time
check_eq "$(q consume "$t" --timestamp "$boundary" -n 2 -f '%s ')" "10 11 " "after --timestamp $boundary"
step group-reset
g="$t-group"
all="$(seq 0 19 | tr '\n' ' ')"
check_eq "$(q consume "$t" --group "$g" --from-beginning -n 20 -f '%s ')" "$all" "first pass of the group"
check_eq "$(q group describe "$g" --output json | json "[p['committed_offset'] for p in d['partitions']]")" "[20]" "committed offset"
q group reset-offsets "$g" --topic "$t" --to-earliest
check_eq "$(q consume "$t" --group "$g" -n 20 -f '%s ')" "$all" "re-consumed after reset-offsets --to-earliest"
echo OK
