#!/usr/bin/env bash
# Runs the whole test suite (installs what it needs first). Extra arguments go to `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build --build-tests
swift test --skip-build --no-parallel "$@"
