#!/usr/bin/env bash
# A/B of zeroing ahead (broker --preallocate-bytes) on the acks=-1 50 MB/s scenario: runs the
# standalone broker with it off and on, alternately, ROUNDS times, and prints each run's
# publish latency line. Uses the release binaries already built (see loadtest/bench.sh).
#   bash loadtest/ab-preallocate.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}/release
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
PORT=$((20000 + RANDOM % 20000))
for _ in $(seq 1 "$ROUNDS"); do
  for pre in 0 4194304; do
    rm -rf "$OUT/data"; sleep 2
    "$BIN/tributary" broker --standalone --listen 127.0.0.1:$PORT --data-dir "$OUT/data" \
      --fsync always --preallocate-bytes $pre > "$OUT/broker.log" 2>&1 &
    pid=$!; sleep 1
    line=$("$BIN/loadtest" run -w loadtest/scenarios/fixed-rate-latency.yaml \
      --bootstrap-servers 127.0.0.1:$PORT --duration 60 --warmup 10 --quiet \
      --out "$OUT/run.json" 2>&1 | grep "publish latency")
    echo "preallocate-bytes=$pre: $line"
    kill $pid; wait $pid 2>/dev/null || true
  done
done
