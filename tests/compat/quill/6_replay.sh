#!/usr/bin/env bash
# Scenario 6 with the quill CLI: read from an offset (-o N) and from a timestamp (--timestamp,
# ListOffsets by time). The CLI cannot set timestamps: the time boundary is between two runs.
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
echo OK
