#!/usr/bin/env bash
# Installs what ezpoll needs on a fresh Debian 12 machine with Swift: librdkafka-dev
# (through apt, only when pkg-config cannot find it) and Python's jsonschema and PyYAML (only when missing).
set -euo pipefail

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists rdkafka; then
  echo "setup: installing librdkafka-dev and pkg-config through apt" >&2
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librdkafka-dev pkg-config >/dev/null
fi

# rfc3339-validator: without it jsonschema silently skips "format": "date-time".
if ! python3 -c 'import jsonschema, rfc3339_validator' >/dev/null 2>&1; then
  echo "setup: installing Python jsonschema and rfc3339-validator through pip" >&2
  python3 -m pip install --quiet jsonschema rfc3339-validator
fi

if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  echo "setup: installing Python PyYAML through pip" >&2
  python3 -m pip install --quiet pyyaml
fi
