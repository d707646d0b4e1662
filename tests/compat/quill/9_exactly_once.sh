#!/usr/bin/env bash
# Scenario 9 with the quill CLI: the idempotent producer (--idempotent) and a read_committed
# consumer (--read-committed). The CLI has no transactional producer.
. "$(dirname "$0")/common.sh"
t=$(topic eos)
step create
q topic create "$t" -p 1
step idempotent
seq 0 9 | q produce "$t" --idempotent --acks all
step consume
check_eq "$(q consume "$t" --from-beginning -e --read-committed -f '%s ')" "0 1 2 3 4 5 6 7 8 9 " "values (read_committed)"
echo OK
