# Shared helpers of the quill CLI scenarios (sourced). Every scenario is
# `bash <file> <bootstrap> <topic-prefix>` with QUILL_BIN set by the runner to the `quill`
# binary under test. The shell helpers (step, check_eq, murmur2, ...) come from kcat/common.sh.
. "$(dirname "${BASH_SOURCE[0]}")/../kcat/common.sh"
[ -x "${QUILL_BIN:-}" ] || fail "QUILL_BIN (the quill binary) not set by the runner"
export QUILL_BROKERS=$BOOTSTRAP
# The CLI with a bound on its run time; its own stderr passes through.
q() { timeout "$KCAT_TIMEOUT" "$QUILL_BIN" "$@"; }
# A field of a JSON document on stdin, by a Python expression over `d`.
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
