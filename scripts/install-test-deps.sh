#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo, idempotently: a second run is a no-op.
#  - kcat (Debian's, built on librdkafka 2.0.2: an old client whose parsing quirks we must meet)
#  - a Python venv under target/compat-venv with confluent-kafka (recent librdkafka),
#    kafka-python and kafka-python's optional compression codecs (tests/compat/requirements.txt)
#  - kafka-python 3 into target/compat-kafka-python3 (tests/compat/features/requirements.txt)
#  - Go and Debian's packaged Go Kafka library sources (sarama, kafka-go, confluent-kafka-go) under
#    /usr/share/gocode: the test runner builds tests/compat/go from them, offline
#  - rsyslog with omkafka (rsyslog-kafka), the log shipper of crates/quill/tests/log_shippers.rs
#    (not syslog-ng-mod-rdkafka: Debian's syslog-ng-core conflicts with rsyslog)
#  - kafkajs 2.2.x and its snappy/lz4 plugin codecs, and playwright-core (which drives the
#    browser of the web console's tests), into tests/compat/node/node_modules, exactly as
#    pinned by tests/compat/node/package-lock.json
#  - Debian's chromium (the browser of the web console's tests; playwright-core downloads none)
#  - librdkafka's own test runner with its 0077_compaction test, built from Debian's source
#    package of the installed librdkafka1 into target/librdkafka-tests
#    (tests/compat/librdkafka/build-test-runner.sh)
# Each install is stamped with a hash of its pin file, so re-runs cost a few file checks.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v kcat >/dev/null 2>&1; then
  echo "installing kcat (Debian package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
fi

# Debian packages, installed only when missing (one apt-get for all of them).
missing=()
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d /usr/share/gocode/src/github.com/Shopify/sarama ] || missing+=(golang-github-shopify-sarama-dev)
[ -d /usr/share/gocode/src/github.com/segmentio/kafka-go ] || missing+=(golang-github-segmentio-kafka-go-dev)
[ -d /usr/share/gocode/src/github.com/confluentinc/confluent-kafka-go ] ||
  missing+=(golang-github-confluentinc-confluent-kafka-go-dev) # with librdkafka-dev (cgo)
dpkg-query -W -f '${Status}' rsyslog-kafka 2>/dev/null | grep -q 'ok installed' || missing+=(rsyslog-kafka)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv=target/compat-venv
requirements=tests/compat/requirements.txt
stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing Python client libraries into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi

# kafka-python 3 (describe_features, update_features, describe_topic_partitions) for
# crates/quill/tests/cluster_apis.rs, apart from the compat suite's kafka-python 2.3: pure
# Python, installed without dependencies into its own directory and used through PYTHONPATH.
kp3_dir=target/compat-kafka-python3
kp3_requirements=tests/compat/features/requirements.txt
kp3_stamp="$kp3_dir/.installed-$(sha256sum "$kp3_requirements" | cut -c1-16)"
if [ ! -f "$kp3_stamp" ]; then
  echo "installing kafka-python 3 into $kp3_dir"
  rm -rf "$kp3_dir"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --target "$kp3_dir" \
    -r "$kp3_requirements"
  touch "$kp3_stamp"
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing Node.js and npm (Debian packages)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

node_dir=tests/compat/node
node_stamp="$node_dir/node_modules/.installed-$(sha256sum "$node_dir/package-lock.json" | cut -c1-16)"
if [ ! -f "$node_stamp" ]; then
  echo "installing kafkajs into $node_dir/node_modules"
  # `npm ci` installs exactly the lockfile; kafkajs-lz4's `lz4` dependency builds a small native
  # addon with node-gyp (needs make and a C++ compiler, present wherever cargo builds).
  # node-gyp must use the installed Node headers (Debian's nodejs ships them under /usr):
  # fetching headers from the internet is not possible on CI machines.
  if [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$node_stamp"
fi

rdkafka_tests=target/librdkafka-tests
rdkafka_build=tests/compat/librdkafka/build-test-runner.sh
rdkafka_version=$(dpkg-query -W -f='${Version}' librdkafka1)
rdkafka_stamp="$rdkafka_tests/.installed-$(printf '%s' "$rdkafka_version" | cat - "$rdkafka_build" | sha256sum | cut -c1-16)"
if [ ! -f "$rdkafka_stamp" ] || [ ! -x "$rdkafka_tests/test-runner" ]; then
  echo "building librdkafka's 0077_compaction test runner into $rdkafka_tests"
  rm -rf "$rdkafka_tests"
  as_root "$rdkafka_build" "$rdkafka_tests"
  touch "$rdkafka_stamp"
fi
