#!/usr/bin/env bash
# Scenario 10 with the quill CLI: read the compressed batches every other client wrote in
# scenario 4 (QUILL_INTEROP_TOPICS=topic=count,...): all decode, 25 values per codec, in order.
. "$(dirname "$0")/common.sh"
[ -n "${QUILL_INTEROP_TOPICS:-}" ] || fail "QUILL_INTEROP_TOPICS not set by the runner"
IFS=, read -ra pairs <<<"$QUILL_INTEROP_TOPICS"
for pair in "${pairs[@]}"; do
  t=${pair%=*}; count=${pair#*=}
  step "read-$t"
  out=$(q consume "$t" --from-beginning -e -f '%s\n')
  check_eq "$(wc -l <<<"$out")" "$count" "values in $t"
  if grep -qv 'compressible compressible' <<<"$out"; then fail "a value of $t lost its text"; fi
  order=$(sed -E 's/.*"i": ?([0-9]+).*/\1/' <<<"$out" | tr '\n' ' ')
  check_eq "$order" "$(for ((c = 0; c < count / 25; c++)); do seq 0 24; done | tr '\n' ' ')" "order in $t"
  echo "$t: $count values"
done
echo OK
