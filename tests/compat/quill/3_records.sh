#!/usr/bin/env bash
# Scenario 3 with the quill CLI: headers, null key, null and empty values (--format json),
# a LogAppendTime topic, and a value just under / over the topic's max.message.bytes.
. "$(dirname "$0")/common.sh"
t=$(topic records); a=$(topic append-time); l=$(topic limited)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
step create
q topic create "$t" -p 1
q topic create "$a" -p 1 -c message.timestamp.type=LogAppendTime
q topic create "$l" -p 1 -c max.message.bytes=20000
step produce
before=$(now_ms)
q produce "$t" --format json <<'JSON'
{"key":"with-headers","value":"h","headers":{"source":"my-app","version":"1.0","empty":""}}
{"key":null,"value":"no key"}
{"key":"tombstone","value":null}
{"key":"empty","value":""}
JSON
after=$(now_ms)
echo "a|x" | q produce "$a" -K '|'
step max-message-bytes
head -c 19800 /dev/zero | tr '\0' a >"$tmp/under"; echo >>"$tmp/under"
head -c 21000 /dev/zero | tr '\0' b >"$tmp/over"; echo >>"$tmp/over"
q produce "$l" <"$tmp/under"
if q produce "$l" <"$tmp/over" 2>"$tmp/err"; then fail "a value over max.message.bytes was accepted"; fi
cat "$tmp/err"
grep -q "message too large" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
step consume
out=$(q consume "$t" --from-beginning -e -f json)
echo "$out"
records=$(python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin.read().splitlines()]
print([(r["key"], r["value"], sorted(r["headers"].items())) for r in rows])' <<<"$out")
check_eq "$records" "[('with-headers', 'h', [('empty', ''), ('source', 'my-app'), ('version', '1.0')]), (None, 'no key', []), ('tombstone', None, []), ('empty', '', [])]" "records"
ts=$(python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["timestamp"])' <<<"$out")
(( ts >= before - 1000 && ts <= after + 1000 )) || fail "CreateTime $ts outside [$before, $after]"
step consume-append-time
q consume "$a" --from-beginning -e -f '%T\n'
step consume-limited
check_eq "$(q consume "$l" --from-beginning -e -f '%S\n')" 19800 "size of the value just under the limit"
echo OK
