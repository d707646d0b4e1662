#!/usr/bin/env bash
# Scenario 6 with kcat: read from an offset (-o N), find an offset by time (-Q) and read from a
# timestamp (-o s@T). kcat cannot set timestamps, so the time boundary is between two runs.
# quill-compat-topics: replay=1
. "$(dirname "$0")/common.sh"
t=$(topic replay)
step produce
seq 0 9 | kc -P -t "$t"
sleep 1.1
boundary=$(now_ms)
sleep 0.1
seq 10 19 | kc -P -t "$t"
step seek
check_eq "$(kc -C -t "$t" -o 7 -c 3 -q -f '%s ')" "7 8 9 " "after -o 7"
step offsets-by-time
found=$(kc -Q -t "$t:0:$boundary")
echo "$found"
check_eq "$found" "$t [0] offset 10" "offset for $boundary"
step seek-by-time
check_eq "$(kc -C -t "$t" -o "s@$boundary" -c 2 -q -f '%s ')" "10 11 " "after -o s@$boundary"
echo OK
