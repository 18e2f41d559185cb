#!/usr/bin/env bash
# The whole test suite, as the README gives it: `bash tests/run-all.sh`.
# Works on a fresh Debian machine with the Rust toolchain: installs kcat, OpenSSL's headers and PostgreSQL
# (Debian; a throwaway server is started for the control-plane tests and stopped after) and the
# Python Kafka clients (PyPI, into a venv) when they are missing, builds once into a
# target dir outside the clone, then runs formatting and lint checks, the Rust tests
# (unit, integration against real broker processes, fuzz properties), the Python client
# suite (confluent-kafka, kafka-python, kcat), schemathesis against the control plane's
# OpenAPI document (PyPI, same venv), the JavaScript client suite (kafkajs, installed
# from the npm registry with the lockfile) and infra/validate.sh (Kubernetes manifests,
# Grafana dashboard and Dockerfile; its linters from PyPI into the same venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
# Incremental artifacts grew the cached target dir by ~16 GB across runs and filled the
# disk mid-link; a CI build of a fresh clone gains little from them.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
mkdir -p "$CACHE"

step() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }

step "prerequisites"
if ! command -v kcat >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
  else
    echo "kcat is missing: sudo apt-get install kcat" >&2; exit 1
  fi
fi
# The SASL_SSL tests' librdkafka (rdkafka's `ssl` feature) builds against the system OpenSSL.
if ! pkg-config --exists openssl 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config >/dev/null
  else
    echo "OpenSSL headers are missing: sudo apt-get install libssl-dev pkg-config" >&2; exit 1
  fi
fi
VENV=$CACHE/venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt -r tests/openapi/requirements.txt
echo "kcat: $(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -1); python: $("$VENV/bin/python" -c 'import confluent_kafka, kafka; print("confluent-kafka", confluent_kafka.version()[0], "kafka-python", kafka.__version__)')"

if ! command -v node >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "node is missing: sudo apt-get install nodejs npm" >&2; exit 1
  fi
fi
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build"
cargo build --workspace --all-targets --quiet

step "infra: manifests, dashboard, Dockerfile (infra/validate.sh)"
TRIBUTARY_BIN="$CARGO_TARGET_DIR/debug/tributary" VENV="$VENV" bash infra/validate.sh

step "rust tests (with a throwaway PostgreSQL for the control plane)"
{ read -r PG_URL; read -r PG_DIR; } < <(control-plane/tests/pg.sh start)
trap 'control-plane/tests/pg.sh stop "$PG_DIR" >/dev/null 2>&1 || true' EXIT
export TRIBUTARY_TEST_POSTGRES_URL=$PG_URL
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --failure-output final
else
  cargo test --workspace --no-fail-fast
fi

step "OpenAPI conformance (schemathesis against tributary control-plane)"
bash tests/openapi/schemathesis.sh "$CARGO_TARGET_DIR/debug/tributary" "$VENV/bin/schemathesis"

step "javascript client suite (kafkajs)"
TRIBUTARY_BIN="$CARGO_TARGET_DIR/debug/tributary" node --test tests/js/

step "python client suite"
TRIBUTARY_BIN="$CARGO_TARGET_DIR/debug/tributary" "$VENV/bin/python" -m pytest -q tests/python
