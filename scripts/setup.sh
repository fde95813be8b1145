#!/usr/bin/env bash
# Installs what ezpoll needs on a fresh Debian 12 machine with Swift: librdkafka-dev
# (through apt, only when pkg-config cannot find it), openssl and promtool (through apt, only when missing)
# and Python's jsonschema, PyYAML and kubernetes-validate (only when missing).
set -euo pipefail

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists rdkafka; then
  echo "setup: installing librdkafka-dev and pkg-config through apt" >&2
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librdkafka-dev pkg-config >/dev/null
fi

# openssl makes the throwaway certificate of the HTTPS client test (Tests/TaskAPITests/HTTPSClientTests.swift).
if ! command -v openssl >/dev/null 2>&1; then
  echo "setup: installing openssl through apt" >&2
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
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

# promtool checks and unit-tests deploy/prometheus-rules.yaml (Tests/PackagingTests/check_deploy.py).
# Debian ships it only in the prometheus package; --no-install-recommends keeps the extras out.
# (Where systemd runs, installing it also enables a Prometheus server on :9090.)
if ! command -v promtool >/dev/null 2>&1; then
  echo "setup: installing promtool (Debian package prometheus) through apt" >&2
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# kubernetes-validate bundles the Kubernetes JSON schemas: deploy/ezpoll.yaml is validated offline.
if ! python3 -c 'import kubernetes_validate' >/dev/null 2>&1; then
  echo "setup: installing Python kubernetes-validate through pip" >&2
  python3 -m pip install --quiet 'kubernetes-validate==1.37.0'
fi

# `./scripts/setup.sh --bench`: also wrk (the HTTP ceiling of `ezpoll bench --separate-processes`)
# and perf (profiles). Not needed by the tests.
if [ "${1:-}" = "--bench" ]; then
  for tool in wrk perf; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      package=$([ "$tool" = perf ] && echo linux-perf || echo wrk)
      echo "setup: installing $package through apt" >&2
      sudo_if_needed apt-get update -qq
      sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null
    fi
  done
fi
