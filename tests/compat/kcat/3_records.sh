#!/usr/bin/env bash
# Scenario 3 with kcat: headers (-H), null key / empty value / null value (-K with -Z),
# producer timestamps (CreateTime; kcat cannot set its own), a LogAppendTime topic, and a value
# just under / over the topic's max.message.bytes.
# quill-compat-topics: records=1 append-time=1:message.timestamp.type=LogAppendTime limited=1:max.message.bytes=20000
. "$(dirname "$0")/common.sh"
t=$(topic records); a=$(topic append-time); l=$(topic limited)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
step produce
before=$(now_ms)
echo "with-headers|h" | kc -P -t "$t" -K '|' -H source=my-app -H version=1.0 -H empty=
# With -Z an empty key or value is sent as null; without it, as empty.
printf '|no key\ntombstone|\n' | kc -P -t "$t" -K '|' -Z
echo "empty|" | kc -P -t "$t" -K '|'
after=$(now_ms)
echo "a|x" | kc -P -t "$a" -K '|'
step max-message-bytes
head -c 19800 /dev/zero | tr '\0' a >"$tmp/under"
head -c 21000 /dev/zero | tr '\0' b >"$tmp/over"
kc -P -t "$l" -l "$tmp/under"
if kc -P -t "$l" -l "$tmp/over" 2>"$tmp/err"; then fail "a value over max.message.bytes was accepted"; fi
cat "$tmp/err"
grep -q "Message size too large" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
step consume
out=$(consume_all "$t" -f '%K|%k|%S|%s|%h|%T\n')
echo "$out"
mapfile -t r <<<"$out"
check_eq "${#r[@]}" 4 "records"
check_eq "${r[0]%|*}" "12|with-headers|1|h|source=my-app,version=1.0,empty=" "record with headers"
check_eq "${r[1]%|*}" "-1||6|no key|" "null key"
check_eq "${r[2]%|*}" "9|tombstone|-1||" "null value"
check_eq "${r[3]%|*}" "5|empty|0||" "empty value"
ts=${r[0]##*|}
(( ts >= before - 1000 && ts <= after + 1000 )) || fail "CreateTime $ts outside [$before, $after]"
step consume-append-time
out=$(consume_all "$a" -J)
echo "$out"
grep -q '"tstype":"logappend"' <<<"$out" || fail "timestamp type is not LogAppendTime"
step consume-limited
check_eq "$(consume_all "$l" -f '%S\n')" 19800 "size of the value just under the limit"
echo OK
