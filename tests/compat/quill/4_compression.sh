#!/usr/bin/env bash
# Scenario 4 with the quill CLI: one batch per codec (none, gzip, snappy, lz4, zstd) mixed in
# one partition, consumed back in order.
. "$(dirname "$0")/common.sh"
t=$(topic compression)
step create
q topic create "$t" -p 1
expected=""
for codec in none gzip snappy lz4 zstd; do
  step "produce-$codec"
  batch=""
  for i in $(seq 0 24); do batch+="{\"codec\":\"$codec\",\"i\":$i,\"text\":\"$(printf 'compressible %.0s' {1..20})\"}"$'\n'; done
  q produce "$t" -z "$codec" --linger-ms 50 <<<"${batch%$'\n'}"
  expected+=$batch
done
step consume
out=$(q consume "$t" --from-beginning -e -f '%o %s\n')
check_eq "$(cut -d' ' -f2- <<<"$out")" "${expected%$'\n'}" "values in order"
check_eq "$(cut -d' ' -f1 <<<"$out" | tr '\n' ' ')" "$(seq 0 124 | tr '\n' ' ')" "offsets"
echo OK
