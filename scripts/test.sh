#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the third-party clients the compatibility
# tests drive, then runs every Rust test (unit, property, crash, integration, real clients).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
export QUILL_COMPAT_PYTHON="$PWD/target/compat-venv/bin/python"
cargo test --workspace --locked
