#!/usr/bin/env bash
# Runs the main job (installs what it needs first). Extra arguments go to `ezpoll demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product ezpoll
exec .build/release/ezpoll demo "$@"
