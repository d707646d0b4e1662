#!/usr/bin/env bash
# Scenario 9 with kcat: the idempotent producer only (kcat has no transactions API).
# quill-compat-topics: eos=1
. "$(dirname "$0")/common.sh"
t=$(topic eos)
step idempotent
# kcat exits 0 even when librdkafka's producer dies of a fatal error: check what it printed.
out=$(seq 0 9 | kc -P -t "$t" -X enable.idempotence=true 2>&1) || fail "kcat failed: $out"
[ -z "$out" ] || { echo "$out" >&2; grep -qE 'FATAL|ERROR|failed' <<<"$out" && fail "idempotent produce"; }
step consume
check_eq "$(consume_all "$t" -f '%s ')" "0 1 2 3 4 5 6 7 8 9 " "values"
echo OK
