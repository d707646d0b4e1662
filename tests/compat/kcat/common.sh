# Shared helpers of the kcat scenarios (sourced). Every scenario is
# `bash <file> <bootstrap> <topic-prefix>`; kcat has no admin API, so the runner creates the
# topics a script declares on its `# quill-compat-topics:` line before running it
# (suffix=partitions[:config=value,...]). Every kcat call is bounded by `timeout`.
set -euo pipefail

BOOTSTRAP=${1:-${QUILL_BOOTSTRAP:-localhost:9092}}
PREFIX=${2:-${QUILL_TOPIC_PREFIX:-compat-$$}}
KCAT_TIMEOUT=${KCAT_TIMEOUT:-30}

step() { echo "STEP $1"; }
topic() { echo "$PREFIX-$1"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
check_eq() { [ "$1" == "$2" ] || fail "$3: expected '$2', got '$1'"; }

# kcat with a bound on its run time; its own stderr passes through.
kc() { timeout "$KCAT_TIMEOUT" kcat -b "$BOOTSTRAP" "$@"; }

# Consumes a whole topic from the beginning (-e: exit at the end of every partition).
consume_all() { local t=$1; shift; kc -C -t "$t" -o beginning -e -q "$@"; }

now_ms() { date +%s%3N; }

# Java's Utils.murmur2 over the bytes of an ASCII string, as an unsigned 32-bit number.
murmur2() {
  local s=$1 n=${#1} i c k
  local -a b
  for ((i = 0; i < n; i++)); do printf -v c '%d' "'${s:i:1}"; b[i]=$c; done
  local m=$((0x5bd1e995)) h=$(((0x9747b28c ^ n) & 0xffffffff))
  for ((i = 0; i + 4 <= n; i += 4)); do
    k=$((b[i] | b[i + 1] << 8 | b[i + 2] << 16 | b[i + 3] << 24))
    k=$(((k * m) & 0xffffffff)); k=$((k ^ (k >> 24))); k=$(((k * m) & 0xffffffff))
    h=$((((h * m) & 0xffffffff) ^ k))
  done
  local t=$((n & ~3)) r=$((n & 3))
  if ((r >= 3)); then h=$((h ^ (b[t + 2] << 16))); fi
  if ((r >= 2)); then h=$((h ^ (b[t + 1] << 8))); fi
  if ((r >= 1)); then h=$(((h ^ b[t]) * m & 0xffffffff)); fi
  h=$((h ^ (h >> 13))); h=$(((h * m) & 0xffffffff)); h=$((h ^ (h >> 15)))
  echo "$h"
}
java_partition() {
  local h
  h=$(murmur2 "$1")
  echo $(((h & 0x7fffffff) % $2))
}

# Known values of Kafka's Utils.murmur2 (signed) from Kafka's UtilsTest.
for pair in 21:-973932308 foobar:-790332482 a-little-bit-long-string:-985981536 \
  a-little-bit-longer-string:-1486304829 abc:479470107 \
  lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8:-58897971; do
  v=$(murmur2 "${pair%%:*}"); ((v >= 1 << 31)) && v=$((v - (1 << 32)))
  check_eq "$v" "${pair#*:}" "murmur2(${pair%%:*}) self-check"
done
