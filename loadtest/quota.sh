#!/usr/bin/env bash
# The quota benchmark of the multi-tenancy issue, on a 3-broker cell (loadtest/cell.sh):
# tenant "noisy" has a 10 MB/s cell-wide ingress quota and produces flat out to 6 partitions
# led by all three brokers; tenant "quiet" (no quota) produces a steady 5 MB/s.
#   bash loadtest/quota.sh [--secs N] [--record] [--no-build]
# Runs quiet alone, then quiet with noisy, and prints (--record: inserts into BENCHMARKS.md)
# noisy's produced MB/s (goal: 10 MB/s within 10%, cell-wide, not 30) and quiet's publish p99
# alone and beside noisy (goal: at most 1.5x).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=30 RECORD=0 BUILD=1
while [ $# -gt 0 ]; do
  case $1 in
    --secs) SECS=$2; shift 2 ;;
    --record) RECORD=1; shift ;;
    --no-build) BUILD=0; shift ;;
    *) echo "usage: $0 [--secs N] [--record] [--no-build]" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}
[ "$BUILD" = 1 ] && cargo build --release --quiet -p loadtest -p tributary
BIN=$CARGO_TARGET_DIR/release
OUT=$CARGO_TARGET_DIR/bench/quota-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
PORT=$((20000 + RANDOM % 20000))
CELL_PIDS=()
cleanup() {
  for p in "${CELL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$OUT/cell"
}
trap cleanup EXIT
QUOTA=10000000 # bytes/s: 10 MB/s as loadtest counts MB (10^6 bytes)

. loadtest/cell.sh
start_cell "$OUT" "$PORT"
cell_cluster lkc-quiet
cell_cluster lkc-noisy --ingress-bytes-per-sec $QUOTA
"$BIN/tributary" cell --controllers "$CTRL" put-key lkc-quiet --key quiet --secret quiet-secret >/dev/null
"$BIN/tributary" cell --controllers "$CTRL" put-key lkc-noisy --key noisy --secret noisy-secret >/dev/null

run() { # name tenant-flags...
  local name=$1; shift
  echo "== $name" >&2
  "$BIN/loadtest" run -w loadtest/scenarios/quota-cell.yaml --bootstrap-servers "$CELL_SASL" \
    --duration "$SECS" --warmup 5 --quiet --out "$OUT/$name.json" "$@" >&2
}
run alone --tenant quiet:quiet:quiet-secret:4883
run together --tenant quiet:quiet:quiet-secret:4883 --tenant noisy:noisy:noisy-secret:0
grep -h "tenant is being throttled\|no longer throttled" "$OUT"/cell-broker-*.log | head -3 >&2 || true
for p in "${CELL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${CELL_PIDS[@]}" 2>/dev/null || true
CELL_PIDS=()
"$BIN/loadtest" plot "$OUT/together.json" --out-dir "$OUT/plots" >/dev/null

python3 - "$OUT" "$SECS" "$QUOTA" > "$OUT/report.md" <<'PY'
import json, subprocess, sys, os, platform
out, secs, quota = sys.argv[1], sys.argv[2], int(sys.argv[3]) / 1e6
def tenant(run, name):
    return next(t for t in json.load(open(f"{out}/{run}.json"))["tenants"] if t["name"] == name)
alone, quiet, noisy = tenant("alone", "quiet"), tenant("together", "quiet"), tenant("together", "noisy")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
pa, pq = alone["publish_latency"], quiet["publish_latency"]
ratio = pq["p99_ms"] / max(pa["p99_ms"], 1e-9)
within = abs(noisy["publish_mb_s"] - quota) / quota
print(f"## {date} · loadtest/quota.sh · commit `{commit}`\n")
print(f"Machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}; one controller and "
      f"three brokers (RF 3, acks=-1, fsync) and the load generator on it; {secs} s measured per run. "
      f"Command: `bash loadtest/quota.sh --secs {secs}`.\n")
print("| run | tenant | produced | publish p50 / p99 / max (ms) | goal |\n|---|---|---|---|---|")
print(f"| quiet alone | quiet (5 MB/s) | {alone['publish_mb_s']:.2f} MB/s | {pa['p50_ms']:.1f} / {pa['p99_ms']:.1f} / {pa['max_ms']:.0f} | |")
print(f"| together | quiet (5 MB/s) | {quiet['publish_mb_s']:.2f} MB/s | {pq['p50_ms']:.1f} / {pq['p99_ms']:.1f} / {pq['max_ms']:.0f} | "
      f"p99 {ratio:.2f}x alone (goal <= 1.5x): **{'met' if ratio <= 1.5 else 'not met'}** |")
pn = noisy["publish_latency"]
print(f"| together | noisy (flat out, {quota:.0f} MB/s quota) | {noisy['publish_mb_s']:.2f} MB/s | {pn['p50_ms']:.0f} / {pn['p99_ms']:.0f} / {pn['max_ms']:.0f} (queued behind its throttle) | "
      f"{within * 100:.1f}% from the quota (goal <= 10%): **{'met' if within <= 0.10 else 'not met'}** |")
print(f"\nResults, logs and plots: `{out}`.")
PY
cat "$OUT/report.md"
if [ "$RECORD" = 1 ]; then
  . loadtest/record.sh
  record_section "$OUT/report.md"
fi
