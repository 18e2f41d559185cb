#!/usr/bin/env bash
# A/B of zeroing ahead (broker --preallocate-bytes) on the acks=-1 50 MB/s scenario: runs the
# standalone broker with it on and off, alternately, ROUNDS times, SECS measured seconds each,
# and prints each run's publish latency line after the disk's group-commit floor taken right
# before it (loadtest commit-floor, 5 s): a run whose floor p99 is already above the figures
# being compared measured the disk's stalls, not the setting. Uses the release binaries
# already built (see loadtest/bench.sh).
#   bash loadtest/ab-preallocate.sh [ROUNDS] [SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3} SECS=${2:-30}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}/release
OUT=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$OUT"' EXIT
PORT=$((20000 + RANDOM % 20000))
for _ in $(seq 1 "$ROUNDS"); do
  for pre in 4194304 0; do
    rm -rf "$OUT/data"; sleep 2
    floor=$("$BIN/loadtest" commit-floor --dir "$OUT" --secs 5 | sed 's/.*: p50/p50/')
    "$BIN/tributary" broker --standalone --listen 127.0.0.1:$PORT --data-dir "$OUT/data" \
      --fsync always --preallocate-bytes $pre > "$OUT/broker.log" 2>&1 &
    pid=$!; sleep 1
    line=$("$BIN/loadtest" run -w loadtest/scenarios/fixed-rate-latency.yaml \
      --bootstrap-servers 127.0.0.1:$PORT --duration "$SECS" --warmup 10 --quiet \
      --out "$OUT/run.json" 2>&1 | grep "publish latency")
    echo "preallocate-bytes=$pre: disk floor before: $floor"
    echo "preallocate-bytes=$pre: $line"
    kill $pid; wait $pid 2>/dev/null || true
    pid=
  done
done
