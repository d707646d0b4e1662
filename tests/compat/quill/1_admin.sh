#!/usr/bin/env bash
# Scenario 1 with the quill CLI: create a 3-partition topic (and one with a config), list,
# describe, add partitions, create again (already exists), alter a config, delete.
. "$(dirname "$0")/common.sh"
t=$(topic admin); c=$(topic admin-configs)
step create
q topic create "$t" -p 3 -r 1
q topic create "$c" -p 1 -c retention.ms=3600000
step list
check_eq "$(q topic list --output json | json "sorted((x['name'], x['partitions']) for x in d if x['name'] in ('$t', '$c'))")" \
  "[('$t', 3), ('$c', 1)]" "listed topics"
step describe
check_eq "$(q topic describe "$t" --output json | json "[(p['partition'], p['leader'], p['replicas'], p['isr']) for p in d['partitions']]")" \
  "[(0, 1, [1], [1]), (1, 1, [1], [1]), (2, 1, [1], [1])]" "partitions"
check_eq "$(q cluster info --output json | json "[(b['node_id'], '%s:%d' % (b['host'], b['port'])) for b in d['brokers']]")" \
  "[(1, '$BOOTSTRAP')]" "brokers"
step add-partitions
q topic add-partitions "$t" -n 5
check_eq "$(q topic describe "$t" --output json | json "len(d['partitions'])")" 5 "partitions after add-partitions"
step create-again
if q topic create "$t" -p 3 2>"$PREFIX.err"; then fail "creating an existing topic succeeded"; fi
cat "$PREFIX.err"; grep -q "already exists" "$PREFIX.err" || fail "unclear error"; rm -f "$PREFIX.err"
step describe-configs
check_eq "$(q topic describe "$c" --output json | json "[x['value'] for x in d['configs'] if x['name'] == 'retention.ms']")" "['3600000']" "retention.ms"
step alter-configs
q topic alter-config "$c" --set retention.ms=7200000
check_eq "$(q topic describe "$c" --output json | json "[x['value'] for x in d['configs'] if x['name'] == 'retention.ms']")" "['7200000']" "retention.ms after alter-config"
step delete
q topic delete "$t" "$c"
check_eq "$(q topic list --output json | json "[x['name'] for x in d if x['name'] in ('$t', '$c')]")" "[]" "topics after delete"
echo OK
