#!/usr/bin/env bash
# Many tenants on one 3-broker cell (loadtest/cell.sh): N logical clusters, each with its own API
# key and one topic of 2 partitions; a few busy tenants produce at a fixed rate, the rest idle.
#   bash loadtest/many-tenants.sh [--tenants N] [--busy B] [--rate MSGS_S] [--rf R] [--secs N]
#                                 [--concurrency C] [--record] [--no-build]
# Defaults: 1,000 tenants, 5 busy at 1000 msgs/s of 512 B (scenarios/many-tenants.yaml), RF 3,
# 60 s. Reports the brokers' and the controller's resident memory (VmRSS from /proc) with the
# cell empty, with every tenant provisioned and idle, and after the busy run; memory per tenant;
# the provisioning rates; and the busy tenants' publish latency (--record: into BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
TENANTS=1000 BUSY=5 RATE=1000 RF=3 SECS=60 CONC=8 RECORD=0 BUILD=1
while [ $# -gt 0 ]; do
  case $1 in
    --tenants) TENANTS=$2; shift 2 ;;
    --busy) BUSY=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --rf) RF=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --record) RECORD=1; shift ;;
    --no-build) BUILD=0; shift ;;
    *) echo "usage: $0 [--tenants N] [--busy B] [--rate MSGS_S] [--rf R] [--secs N] [--concurrency C] [--record] [--no-build]" >&2; exit 2 ;;
  esac
done
[ "$TENANTS" -ge 1 ] && [ "$TENANTS" -le 10000 ] || { echo "--tenants must be 1..10000" >&2; exit 2; }
[ "$BUSY" -ge 1 ] && [ "$BUSY" -le "$TENANTS" ] && [ "$BUSY" -le 64 ] || { echo "--busy must be 1..min(64, tenants)" >&2; exit 2; }
[ "$CONC" -ge 1 ] && [ "$CONC" -le 64 ] || { echo "--concurrency must be 1..64" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}
[ "$BUILD" = 1 ] && cargo build --release --quiet -p loadtest -p tributary
BIN=$CARGO_TARGET_DIR/release
OUT=$CARGO_TARGET_DIR/bench/many-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
PORT=$((20000 + RANDOM % 20000))
CELL_PIDS=()
cleanup() {
  for p in "${CELL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${CELL_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$OUT/cell" "$OUT/tenants.txt"
}
trap cleanup EXIT

. loadtest/cell.sh
start_cell "$OUT" "$PORT"
# CELL_PIDS: controller, broker 1, 2, 3.
rss() { # label: one line "label controller_kB broker1_kB broker2_kB broker3_kB"
  local line=$1 p
  for p in "${CELL_PIDS[@]}"; do line="$line $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")"; done
  echo "$line" >> "$OUT/rss.txt"
}
sleep 2
rss empty

# Logical clusters and keys, CONC at a time, with a progress line.
SECRET_SALT=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
name() { printf 't%05d' "$1"; }
echo "== $TENANTS logical clusters (keys and topics: $CONC at a time)" >&2
: > "$OUT/tenants.txt"; chmod 600 "$OUT/tenants.txt"
start=$(date +%s.%N)
progress() { # done total what
  python3 -c 'import sys,time; d,n,s=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]); e=time.time()-s
print(f"{sys.argv[4]}: {d}/{n} ({d/max(e,1e-9):.1f}/s, {e:.0f} s)", file=sys.stderr)' "$1" "$2" "$start" "$3"
}
make_tenant() { # i
  local t; t=$(name "$1")
  cell_cluster "lkc-$t" --organization "org-$t" &&
    "$BIN/tributary" cell --controllers "$CTRL" put-key "lkc-$t" --key "key-$t" \
      --secret "$SECRET_SALT-$t" >/dev/null
}
i=0
while [ "$i" -lt "$TENANTS" ]; do
  pids=()
  for _ in $(seq 1 "$CONC"); do
    [ "$i" -lt "$TENANTS" ] || break
    i=$((i + 1))
    make_tenant "$i" & pids+=($!)
    echo "$(name $i) key-$(name $i) $SECRET_SALT-$(name $i)" >> "$OUT/tenants.txt"
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "creating a tenant failed" >&2; exit 1; }; done
  if [ $((i % 50)) -lt "$CONC" ] || [ "$i" = "$TENANTS" ]; then progress "$i" "$TENANTS" clusters; fi
done
CLUSTERS_S=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")

# One topic of 2 partitions per tenant, each created with the tenant's own key.
RUST_LOG=warn "$BIN/loadtest" create-topics --tenants-file "$OUT/tenants.txt" \
  --bootstrap-servers "$CELL_SASL" --topic-prefix lt-many --partitions 2 \
  --replication-factor "$RF" --concurrency "$CONC" | tee "$OUT/create-topics.txt" >&2
sleep 5
rss idle

# A few busy tenants; the rest stay idle.
BUSY_FLAGS=()
while read -r n k s; do BUSY_FLAGS+=(--tenant "$n:$k:$s:$RATE"); done < <(head -n "$BUSY" "$OUT/tenants.txt")
echo "== $BUSY busy tenants at $RATE msgs/s for $SECS s" >&2
"$BIN/loadtest" run -w loadtest/scenarios/many-tenants.yaml --bootstrap-servers "$CELL_SASL" \
  --replication-factor "$RF" --duration "$SECS" --warmup $((SECS / 6 + 1)) --quiet \
  --out "$OUT/busy.json" "${BUSY_FLAGS[@]}" >&2
rss after-busy
"$BIN/loadtest" plot "$OUT/busy.json" --out-dir "$OUT/plots" >/dev/null
for p in "${CELL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${CELL_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
CELL_PIDS=()

python3 - "$OUT" "$SECS" "$TENANTS" "$BUSY" "$RATE" "$RF" "$CONC" "$CLUSTERS_S" > "$OUT/report.md" <<'PY'
import json, os, platform, subprocess, sys
out, secs, n, busy, rate, rf, conc, clusters_s = sys.argv[1:9]
n, busy = int(n), int(busy)
rss = {l.split()[0]: [int(x) for x in l.split()[1:]] for l in open(f"{out}/rss.txt")}
mb = lambda kb: kb / 1024
brokers = lambda k: sum(rss[k][1:])
r = json.load(open(f"{out}/busy.json"))
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
topics = open(f"{out}/create-topics.txt").read().strip().splitlines()[-1]
print(f"## {date} · loadtest/many-tenants.sh · commit `{commit}`\n")
print(f"Machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}; one controller and "
      f"three brokers (loadtest/cell.sh) and the load generator on it. {n} logical clusters, each with an API "
      f"key and one topic of 2 partitions (RF {rf}); {busy} of them busy at {rate} msgs/s of 512 B "
      f"(`scenarios/many-tenants.yaml`, acks=1, lz4) for {secs} s, the rest idle. "
      f"Command: `bash loadtest/many-tenants.sh --tenants {n} --busy {busy} --rate {rate} --rf {rf} --secs {secs}`.\n")
print("| figure | value |\n|---|---|")
print(f"| provisioning | {n} clusters and keys in {clusters_s} s ({n / max(float(clusters_s), 1e-9):.1f}/s, {conc} at a time, one `tributary cell` process per call); topics (`loadtest create-topics`): {topics} |")
for k, what in [("empty", "cell empty"), ("idle", f"{n} tenants, idle"), ("after-busy", f"after the busy run")]:
    v = rss[k]
    print(f"| resident memory, {what} | brokers {mb(brokers(k)):.0f} MiB ({' / '.join(f'{mb(x):.0f}' for x in v[1:])}), controller {mb(v[0]):.0f} MiB |")
per = (brokers("idle") - brokers("empty")) / n
print(f"| memory per idle tenant | {per:.0f} KiB over the three brokers ({per / 3:.0f} KiB per broker: {2 * int(rf) / 3:.1f} partition replicas each), "
      f"controller {(rss['idle'][0] - rss['empty'][0]) / n:.1f} KiB |")
for t in r["tenants"]:
    p = t["publish_latency"]
    print(f"| busy tenant {t['name']} | {t['publish_msgs_s']:.0f} msgs/s; publish p50 {p['p50_ms']:.1f} / p99 {p['p99_ms']:.1f} / max {p['max_ms']:.0f} ms |")
p = r["total"]["publish_latency"]
print(f"| busy tenants together | {r['total']['publish_mb_s']:.2f} MB/s; publish p50 {p['p50_ms']:.1f} / p99 {p['p99_ms']:.1f} / max {p['max_ms']:.0f} ms; {r['total']['counters']['errors']} errors |")
print(f"\nResults, logs and plots: `{out}`.")
PY
cat "$OUT/report.md"
if [ "$RECORD" = 1 ]; then
  . loadtest/record.sh
  record_section "$OUT/report.md"
fi
