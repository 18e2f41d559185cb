#!/usr/bin/env bash
# One command for the benchmark table: the machine's limits, Tributary and a peer broker, on
# this machine.
#   bash loadtest/bench.sh [--secs N] [--record] [--no-build] [--no-peer] [--calm-p99-ms MS]
# Prints a markdown section (date, commit, machine, commands, figures, ratios to the limits and
# to the peer); --record also inserts it at the top of BENCHMARKS.md's results.
# Runs: a standalone broker and the peer, Tansu with SQLite storage (loadtest/peer.sh; installed
# into the target dir on first use), each at 50 MB/s acks=-1 and then at max throughput acks=1;
# a 3-broker cell (one controller, replication factor 3, acks=-1, max rate); then the machine's
# limits (loopback TCP, disk write/fsync, fsync rounds). --no-peer leaves Tansu out.
# The acks=-1 latency run is bracketed by the disk's group-commit floor (loadtest commit-floor):
# this VM's disk stalls for hundreds of ms at times, for minutes, and no broker that fsyncs before
# it answers can beat the floor. Before the run, up to 6 probes wait for a calm disk (floor p99 at
# most --calm-p99-ms, default 5); every probe is reported, and the run goes ahead either way.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=60 RECORD=0 BUILD=1 PEER=1 CALM_P99_MS=5 CALM_TRIES=6
while [ $# -gt 0 ]; do
  case $1 in
    --secs) SECS=$2; shift 2 ;;
    --record) RECORD=1; shift ;;
    --no-build) BUILD=0; shift ;; # measure the release binaries already built
    --no-peer) PEER=0; shift ;;
    --calm-p99-ms) CALM_P99_MS=$2; shift 2 ;;
    *) echo "usage: $0 [--secs N] [--record] [--no-build] [--no-peer] [--calm-p99-ms MS]" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}
[ "$BUILD" = 1 ] && cargo build --release --quiet -p loadtest -p tributary
. loadtest/peer.sh
# Before anything is measured: building Tansu takes minutes and would disturb the runs.
[ "$PEER" = 1 ] && peer_install
BIN=$CARGO_TARGET_DIR/release
OUT=$CARGO_TARGET_DIR/bench/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
PORT=$((20000 + RANDOM % 20000))
BROKER_PID=
CELL_PIDS=()
cleanup() {
  [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null
  for p in "${CELL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  peer_stop
  rm -rf "$OUT/data" "$OUT/cell" "$OUT/tansu"
}
trap cleanup EXIT


broker() { # fsync policy
  rm -rf "$OUT/data"; sleep 2
  "$BIN/tributary" broker --standalone --listen 127.0.0.1:$PORT --data-dir "$OUT/data" --fsync "$1" \
    > "$OUT/broker-$1.log" 2>&1 &
  BROKER_PID=$!; sleep 1
}
scenario() { # name scenario-file [port]
  echo "== $1" >&2
  "$BIN/loadtest" run -w "loadtest/scenarios/$2" --bootstrap-servers "127.0.0.1:${3:-$PORT}" \
    --duration "$SECS" --warmup $((SECS / 6)) --quiet --out "$OUT/$1.json" >&2
}
peer() { # name scenario-file: the same scenario against Tansu; a failure is a row, not the end
  [ "$PEER" = 1 ] || return 0
  sleep 2
  if peer_start "$OUT/tansu" $((PORT + 10)) && scenario "$1" "$2" $((PORT + 10)); then :; else
    echo "the peer run $1 failed; see $OUT/tansu.log" >&2
    rm -f "$OUT/$1.json"
  fi
  peer_stop
  du -sh "$OUT/tansu" >&2 || true
  rm -rf "$OUT/tansu"
}
floor() { # name: the disk's group-commit floor at the latency scenario's rate and partitions
  "$BIN/loadtest" commit-floor --dir "$OUT" --secs $((SECS / 3)) --files 8 --rate-mb-s 50 \
    --out "$OUT/$1.json" >&2
}
wait_calm() { # probe until the floor's p99 is at most CALM_P99_MS (at most CALM_TRIES probes)
  local i
  for i in $(seq 1 "$CALM_TRIES"); do
    floor "floor-try-$i"
    cp "$OUT/floor-try-$i.json" "$OUT/floor-before.json"
    if python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["latency"]["p99_ms"] > float(sys.argv[2]))' \
      "$OUT/floor-try-$i.json" "$CALM_P99_MS"; then
      return
    fi
    [ "$i" -lt "$CALM_TRIES" ] && sleep 10
  done
  echo "the disk did not calm down in $CALM_TRIES probes; measuring anyway" >&2
}
# The latency scenarios run first, on a quiet disk: on this VM, writing and deleting tens of GB
# (the max-rate run, the disk probes) leaves fsync stalls of hundreds of ms for minutes after
# (BENCHMARKS.md, 2026-11-22).
echo "== disk: group-commit floor until calm (p99 <= $CALM_P99_MS ms)" >&2
wait_calm
broker always
scenario fixed-acksall fixed-rate-latency.yaml
kill $BROKER_PID; wait $BROKER_PID 2>/dev/null || true
BROKER_PID=
floor floor-after
peer peer-fixed-acksall fixed-rate-latency.yaml
broker always
scenario max-acks1 max-throughput.yaml
kill $BROKER_PID; wait $BROKER_PID 2>/dev/null || true
BROKER_PID=
rm -rf "$OUT/data" # tens of GB: the runs below need the room
peer peer-max-acks1 max-throughput.yaml
"$BIN/loadtest" plot "$OUT"/fixed-acksall.json $(ls "$OUT"/peer-fixed-acksall.json 2>/dev/null) \
  --out-dir "$OUT/plots" >/dev/null

# A cell: one controller voter and three brokers (loadtest/cell.sh), clients on PLAINTEXT as
# the local development tenant.
. loadtest/cell.sh
start_cell "$OUT" "$PORT" --tenant lkc-local
cell_cluster lkc-local
echo "== cell-acksall (3 brokers, RF 3)" >&2
"$BIN/loadtest" run -w loadtest/scenarios/cell-acksall.yaml --bootstrap-servers "$CELL_BOOT" \
  --duration "$SECS" --warmup $((SECS / 6)) --quiet --out "$OUT/cell-acksall.json" >&2
for p in "${CELL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${CELL_PIDS[@]}" 2>/dev/null || true
CELL_PIDS=()
rm -rf "$OUT/cell"

echo "== limits ($((SECS / 6 + 1)) s per probe)" >&2
"$BIN/loadtest" limits --dir "$OUT" --secs $((SECS / 6 + 1)) --out "$OUT/limits.json" >&2

python3 - "$OUT" "$SECS" "$PEER" "$TANSU_VERSION" "$TANSU_FEATURES" "$CALM_P99_MS" > "$OUT/report.md" <<'PY'
import glob, json, subprocess, sys, platform, os
out, secs, peer, tansu_version, tansu_features, calm_ms = sys.argv[1:7]
lim = json.load(open(f"{out}/limits.json"))
r = {n: json.load(open(f"{out}/{n}.json"))["total"] for n in ["max-acks1", "fixed-acksall", "cell-acksall"]}
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
print(f"## {date} · loadtest/bench.sh · commit `{commit}`\n")
print(f"Machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}; "
      f"{secs} s per scenario. Command: `bash loadtest/bench.sh --secs {secs}`.\n")
print("| measurement | figure | ratio |\n|---|---|---|")
print(f"| limit: loopback TCP, 1 connection | {lim['loopback_tcp_mb_s']:.0f} MB/s | |")
print(f"| limit: disk sequential write | {lim['disk_write_mb_s']:.0f} MB/s | |")
print(f"| limit: disk write + fdatasync per MiB | {lim['disk_write_fsync_mb_s']:.0f} MB/s | |")
print(f"| limit: fsync rounds, 8 files at 50 MB/s | p50 {lim['fsync_round_p50_ms']:.2f} / p99 {lim['fsync_round_p99_ms']:.2f} / max {lim['fsync_round_max_ms']:.0f} ms | |")
m = r["max-acks1"]
print(f"| Tributary standalone, acks=1, max rate | {m['publish_mb_s']:.1f} MB/s produced | "
      f"{m['publish_mb_s']/lim['loopback_tcp_mb_s']:.2f} of loopback, {m['publish_mb_s']/lim['disk_write_mb_s']:.2f} of disk write |")
f = r["fixed-acksall"]; p = f["publish_latency"]
tries = sorted(glob.glob(f"{out}/floor-try-*.json"), key=lambda n: int(n.rsplit("-", 1)[1].split(".")[0]))
def floor_fig(path):
    fl = json.load(open(path)); l = fl["latency"]
    return fl, (f"p50 {l['p50_ms']:.2f} / p99 {l['p99_ms']:.2f} / p99.9 {l['p999_ms']:.2f} / max {l['max_ms']:.0f} ms; "
                f"{100*fl['stalled_share']:.1f}% of the time in fsyncs over 10 ms")
for i, t in enumerate(tries[:-1], 1):
    print(f"| disk: group-commit floor, 50 MB/s over 8 files, probe {i} (not calm: p99 over {calm_ms} ms) | {floor_fig(t)[1]} | |")
before, before_txt = floor_fig(f"{out}/floor-before.json")
after, after_txt = floor_fig(f"{out}/floor-after.json")
calm = "" if before["latency"]["p99_ms"] <= float(calm_ms) else f" (not calm either: p99 over {calm_ms} ms)"
print(f"| disk: group-commit floor right before the acks=-1 run{calm} | {before_txt} | |")
print(f"| Tributary standalone, acks=-1 + fsync, 50 MB/s | {f['publish_mb_s']:.1f} MB/s; publish p50 {p['p50_ms']:.1f} / p99 {p['p99_ms']:.1f} / p99.9 {p['p999_ms']:.1f} / max {p['max_ms']:.0f} ms | "
      f"p99 {'met' if p['p99_ms'] <= 10 else 'not met'} (floor: 10 ms); "
      f"{p['p99_ms']/max(before['latency']['p99_ms'], 1e-9):.1f}x / {p['p99_ms']/max(after['latency']['p99_ms'], 1e-9):.1f}x the disk floor's p99 before / after |")
print(f"| disk: group-commit floor right after the acks=-1 run | {after_txt} | |")
c = r["cell-acksall"]; cp = c["publish_latency"]
print(f"| Tributary 3-broker cell, RF 3, acks=-1 + fsync, 1 KiB, max rate | {c['publish_mb_s']:.1f} MB/s; publish p50 {cp['p50_ms']:.1f} / p99 {cp['p99_ms']:.1f} / max {cp['max_ms']:.0f} ms | "
      f"{c['publish_mb_s']/max(m['publish_mb_s'], 1e-9):.2f} of the standalone acks=1 rate (all 4 processes and the load on the same 2 cores) |")
def peer_row(name, what, trib):
    path = f"{out}/{name}.json"
    if not os.path.exists(path):
        print(f"| Tansu {tansu_version} (SQLite), {what} | run failed (see `tansu.log`) | |")
        return
    t = json.load(open(path))["total"]; tp = t["publish_latency"]; bp = trib["publish_latency"]
    ratio = f"Tributary / Tansu: {trib['publish_mb_s']/max(t['publish_mb_s'], 1e-9):.2f}x the rate"
    if "50 MB/s" in what:
        ratio += f", {bp['p99_ms']/max(tp['p99_ms'], 1e-9):.2g}x the publish p99 (lower is better)"
    print(f"| Tansu {tansu_version} (SQLite), {what} | {t['publish_mb_s']:.1f} MB/s; publish p50 {tp['p50_ms']:.1f} / p99 {tp['p99_ms']:.1f} / max {tp['max_ms']:.0f} ms | {ratio} |")
if peer == "1":
    peer_row("peer-max-acks1", "acks=1, max rate", m)
    peer_row("peer-fixed-acksall", "acks=-1, 50 MB/s", f)
print(f"\nResults, logs and plots: `{out}`.")
print("\nThe disk's group-commit floor (`loadtest commit-floor`, loadtest/src/commit_floor.rs): "
      "chunks written every 1 ms to 8 pre-zeroed files at 50 MB/s, one thread per file "
      "fdatasyncing back to back; a chunk's latency is the end of the first fsync of every file "
      "that began after it was written. No broker that answers acks=-1 only once the data is "
      "fsynced can beat it on the same disk at the same time.")
if peer == "1":
    print(f"\nPeer: Tansu {tansu_version} from crates.io (`cargo install tansu --version {tansu_version} "
          f"--locked --no-default-features --features {tansu_features}`, loadtest/peer.sh), one broker, "
          "storage `sqlite://` (libSQL, WAL with `synchronous = normal`: a commit is not fsynced, so "
          "its acks=-1 is not Tributary's acks=-1 with `--fsync always`; one node, no replication "
          "behind either acks setting).")
PY
cat "$OUT/report.md"
if [ "$RECORD" = 1 ]; then
  . loadtest/record.sh
  record_section "$OUT/report.md"
fi
