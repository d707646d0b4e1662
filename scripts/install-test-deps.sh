#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo, idempotently: a second run is a no-op.
#  - kcat (Debian's, built on librdkafka 2.0.2: an old client whose parsing quirks we must meet)
#  - a Python venv under target/compat-venv with confluent-kafka (recent librdkafka) and
#    kafka-python
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

venv=target/compat-venv
requirements=tests/compat/requirements.txt
stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing Python client libraries into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  touch "$stamp"
fi
