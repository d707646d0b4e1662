#!/usr/bin/env bash
# Scenario 8 with the quill CLI: one long-lived `quill produce` (acks=all, retries) fed line by
# line while the runner restarts the broker twice (SIGTERM, then SIGKILL). It reports no
# per-record acks but exits non-zero if any record was not delivered: exit 0 means every line
# was acknowledged, and every line must then be read back.
# Protocol: print "RESTART-BROKER <n>"; the runner restarts the broker and writes "restarted".
. "$(dirname "$0")/common.sh"
t=$(topic restart)
tmp=$(mktemp -d)
producer=""
cleanup() {
  local code=$?
  [ -n "$producer" ] && kill "$producer" 2>/dev/null
  if ((code != 0)) && [ -s "$tmp/err" ]; then echo "quill produce stderr:" >&2; cat "$tmp/err" >&2; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap '' PIPE # if the producer dies, writing to it must fail loudly, not kill this script
step create
q topic create "$t" -p 2
mkfifo "$tmp/lines"
timeout 120 "$QUILL_BIN" produce "$t" -K '|' --linger-ms 0 <"$tmp/lines" 2>"$tmp/err" &
producer=$!
exec 3>"$tmp/lines"
sent=0
send() {
  if ! echo "m$sent|m$sent" >&3; then
    local code=0
    wait "$producer" || code=$?
    producer=""
    fail "quill produce stopped reading after $sent lines (exit code $code)"
  fi
  sent=$((sent + 1))
}
for phase in 1 2; do
  step "produce-$phase"
  for _ in $(seq 40); do send; sleep 0.01; done
  echo "RESTART-BROKER $phase"
  deadline=$((SECONDS + 60))
  pending=""
  while :; do
    # `read -t` keeps what it got before timing out: collect until a whole line has come.
    if read -r -t 0.05 line; then
      [ "$pending$line" == restarted ] && break
      pending=""
    else
      pending+=$line
    fi
    ((SECONDS < deadline)) || fail "the runner did not restart the broker ($phase)"
    send
  done
done
step produce-after
for _ in $(seq 40); do send; sleep 0.01; done
exec 3>&-
wait "$producer" || { producer=""; fail "quill produce did not deliver every record"; }
producer=""
cat "$tmp/err"
echo "$sent records sent and delivered"
step consume
got=$(q consume "$t" --from-beginning -e -f '%k\n' | sort -u | wc -l)
check_eq "$got" "$sent" "distinct records read back"
echo OK
