#!/usr/bin/env bash
# Noisy neighbour and failover against `tributary dev` (the control plane, one cell controller and
# three brokers as separate processes, restarted by its supervisor when they die).
#   bash loadtest/dev.sh [--secs N] [--record] [--no-build] [--only noisy|failover]
# Tenants are made the way users make them, through the control plane's REST API (sign-up, login,
# environment, cluster until PROVISIONED, cluster API key): "quiet" on a Basic cluster, "noisy" on
# a Standard cluster whose plan ingress is cut to 10 MB/s (tributary dev --plan-limit), "steady"
# on a Basic cluster. Clients use SASL/PLAIN with the API keys.
# 1. Noisy neighbour (scenarios/quota-cell.yaml: RF 3, acks=-1): quiet at 5 MB/s alone, then
#    beside noisy producing flat out.
# 2. Failover (scenarios/failover.yaml: RF 3, acks=-1, idempotent, 10 MB/s): SECS/3 into the
#    measured phase, loadtest/kill-leader.sh SIGKILLs the broker leading the most partitions; the
#    supervisor restarts it. The result holds the kill (`events`), the longest interval without an
#    acknowledged produce (`acks.longest_gap_ms`) and the read-back (`verify.missing`, must be 0).
# Prints a markdown section with the figures and plots (--record: into BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=30 RECORD=0 BUILD=1 ONLY=
while [ $# -gt 0 ]; do
  case $1 in
    --secs) SECS=$2; shift 2 ;;
    --record) RECORD=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "usage: $0 [--secs N] [--record] [--no-build] [--only noisy|failover]" >&2; exit 2 ;;
  esac
done
case $ONLY in ""|noisy|failover) ;; *) echo "--only noisy or failover" >&2; exit 2 ;; esac
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}
[ "$BUILD" = 1 ] && cargo build --release --quiet -p loadtest -p tributary
BIN=$CARGO_TARGET_DIR/release
OUT=$CARGO_TARGET_DIR/bench/dev-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
PORT=$((20000 + RANDOM % 20000)) # the stack uses PORT..PORT+19
QUOTA=10000000                    # noisy's plan ingress, bytes/s (10 MB/s as loadtest counts MB)
STACK=$OUT/stack
EP=$STACK/endpoints.json
DEV_PID=

cleanup() {
  if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -TERM "$DEV_PID" 2>/dev/null || true
    # The supervisor stops the control plane, the brokers, then the controller (bounded by
    # their stop timeouts); after 90 s it is killed, and its children follow (PDEATHSIG).
    for _ in $(seq 1 180); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$DEV_PID" 2>/dev/null || true
    wait "$DEV_PID" 2>/dev/null || true
  fi
  cp "$STACK"/logs/*.log "$OUT"/ 2>/dev/null || true
  rm -rf "$STACK" "$OUT/tenants.txt"
}
trap cleanup EXIT

echo "== tributary dev on 127.0.0.1:$PORT.. (logs in $OUT)" >&2
"$BIN/tributary" dev --data-dir "$STACK" --port-base "$PORT" \
  --plan-limit "Standard.ingress_bytes_per_sec=$QUOTA" > "$OUT/dev.log" 2>&1 &
DEV_PID=$!
for _ in $(seq 1 360); do
  [ -s "$EP" ] && break
  kill -0 "$DEV_PID" 2>/dev/null || { echo "tributary dev exited; see $OUT/dev.log" >&2; tail -20 "$OUT/dev.log" >&2; exit 1; }
  sleep 0.5
done
[ -s "$EP" ] || { echo "no $EP after 180 s; see $OUT/dev.log" >&2; exit 1; }
ep() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[int(k)] if k.isdigit() else v[k]
print(v)' "$EP" "$1"; }
REST=$(ep rest)
SASL=$(ep cells.0.sasl_bootstrap)

# Tenants through the REST API: one user (and organization) each. Secrets go to a 0600 file.
echo "== tenants through $REST" >&2
(umask 077; python3 - "$REST" quiet:Basic noisy:Standard steady:Basic > "$OUT/tenants.txt") <<'PY'
import json, sys, time, urllib.error, urllib.request, uuid
rest = sys.argv[1]
def call(method, path, body=None, token=None):
    for attempt in range(20):
        req = urllib.request.Request(rest + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            if e.code == 429 and attempt < 19:  # sign-up and login are rate limited per address
                time.sleep(1)
                continue
            sys.exit(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}")
for spec in sys.argv[2:]:
    name, kind = spec.split(":")
    email, password = f"{name}-{uuid.uuid4().hex[:8]}@loadtest.local", uuid.uuid4().hex
    user = call("POST", "/v1/signup", {"email": email, "password": password, "organization_name": name})
    token = call("POST", "/v1/login", {"email": email, "password": password})["token"]
    env = call("POST", "/org/v2/environments", {"display_name": name}, token)
    cluster = call("POST", "/cmk/v2/clusters", {"spec": {
        "display_name": name, "availability": "SINGLE_ZONE", "cloud": "LOCAL", "region": "local",
        "config": {"kind": kind}, "environment": {"id": env["id"]}}}, token)
    for _ in range(300):
        c = call("GET", f"/cmk/v2/clusters/{cluster['id']}", token=token)
        phase = c.get("status", {}).get("phase")
        if phase == "PROVISIONED":
            break
        if phase == "FAILED":
            sys.exit(f"cluster {cluster['id']} failed: {c}")
        time.sleep(0.2)
    else:
        sys.exit(f"cluster {cluster['id']} not PROVISIONED within 60 s")
    key = call("POST", "/iam/v2/api-keys", {"spec": {"display_name": name,
        "owner": {"id": user["user_id"]}, "resource": {"id": cluster["id"]}}}, token)
    print(name, kind, cluster["id"], key["id"], key["spec"]["secret"])
PY
key() { awk -v n="$1" '$1 == n {print $4}' "$OUT/tenants.txt"; }
secret() { awk -v n="$1" '$1 == n {print $5}' "$OUT/tenants.txt"; }
for t in quiet noisy steady; do
  # A new key reaches the brokers through the cell; wait (bounded) until it authenticates.
  for i in $(seq 1 120); do
    kcat -L -m 2 -b "$SASL" -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN \
      -X sasl.username="$(key $t)" -X sasl.password="$(secret $t)" >/dev/null 2>&1 && break
    [ "$i" = 120 ] && { echo "the key of $t does not authenticate at $SASL" >&2; exit 1; }
    sleep 0.5
  done
done
awk '{print "   " $1 " (" $2 "): cluster " $3 ", key " $4}' "$OUT/tenants.txt" >&2

run() { # name scenario loadtest-args...
  local name=$1 scenario=$2; shift 2
  echo "== $name" >&2
  # Client warnings (many while a broker is down) go to the run's log; the summary to stderr.
  if ! "$BIN/loadtest" run -w "loadtest/scenarios/$scenario" --bootstrap-servers "$SASL" \
    --duration "$SECS" --quiet --out "$OUT/$name.json" "$@" 2> "$OUT/$name.log" >&2; then
    tail -20 "$OUT/$name.log" >&2
    return 1
  fi
}
if [ "$ONLY" != failover ]; then
  run alone quota-cell.yaml --warmup 5 --tenant "quiet:$(key quiet):$(secret quiet):4883"
  run together quota-cell.yaml --warmup 5 --tenant "quiet:$(key quiet):$(secret quiet):4883" \
    --tenant "noisy:$(key noisy):$(secret noisy):0"
  "$BIN/loadtest" plot "$OUT/together.json" --out-dir "$OUT/plots-noisy" >/dev/null
fi
if [ "$ONLY" != noisy ]; then
  KILL_AT=$((SECS / 3))
  KILL_SASL_USER=$(key steady) KILL_SASL_PASSWORD=$(secret steady) \
    run failover failover.yaml --warmup 5 --verify \
    --tenant "steady:$(key steady):$(secret steady)" \
    --exec-at "$KILL_AT:bash loadtest/kill-leader.sh $EP lt-failover-steady-0"
  # The killed broker is back (the supervisor restarted it) and in every ISR again: bounded wait.
  for i in $(seq 1 120); do
    kcat -L -J -m 5 -t lt-failover-steady-0 -b "$SASL" -X security.protocol=SASL_PLAINTEXT \
      -X sasl.mechanisms=PLAIN -X sasl.username="$(key steady)" -X sasl.password="$(secret steady)" \
      > "$OUT/failover-metadata.json" 2>/dev/null || true
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); p=[x for t in m["topics"] for x in t["partitions"]]; sys.exit(0 if p and all(len(x["isrs"]) == 3 for x in p) else 1)' \
      "$OUT/failover-metadata.json" 2>/dev/null && break
    sleep 0.5
  done
  grep -h "restart" "$OUT/dev.log" | tail -3 >&2 || true
  "$BIN/loadtest" plot "$OUT/failover.json" --out-dir "$OUT/plots-failover" >/dev/null
fi

python3 - "$OUT" "$SECS" "$QUOTA" "$ONLY" > "$OUT/report.md" <<'PY'
import json, os, subprocess, sys, platform
out, secs, quota, only = sys.argv[1], sys.argv[2], int(sys.argv[3]) / 1e6, sys.argv[4]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
cmd = "bash loadtest/dev.sh --secs " + secs + (f" --only {only}" if only else "")
print(f"## {date} · loadtest/dev.sh · commit `{commit}`\n")
print(f"Machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}; `tributary dev` "
      f"(control plane, one controller, three brokers as processes) and the load generator on it; "
      f"tenants made through the REST API, clients on SASL/PLAIN with their API keys; {secs} s measured "
      f"per run. Command: `{cmd}`.\n")
if only != "failover":
    def tenant(run, name):
        return next(t for t in json.load(open(f"{out}/{run}.json"))["tenants"] if t["name"] == name)
    alone, quiet, noisy = tenant("alone", "quiet"), tenant("together", "quiet"), tenant("together", "noisy")
    pa, pq, pn = alone["publish_latency"], quiet["publish_latency"], noisy["publish_latency"]
    ratio = pq["p99_ms"] / max(pa["p99_ms"], 1e-9)
    within = abs(noisy["publish_mb_s"] - quota) / quota
    print("Noisy neighbour (`scenarios/quota-cell.yaml`: 6 partitions, RF 3, acks=-1):\n")
    print("| run | tenant | produced | publish p50 / p99 / max (ms) | goal |\n|---|---|---|---|---|")
    print(f"| quiet alone | quiet (Basic, 5 MB/s) | {alone['publish_mb_s']:.2f} MB/s | {pa['p50_ms']:.1f} / {pa['p99_ms']:.1f} / {pa['max_ms']:.0f} | |")
    print(f"| together | quiet (Basic, 5 MB/s) | {quiet['publish_mb_s']:.2f} MB/s | {pq['p50_ms']:.1f} / {pq['p99_ms']:.1f} / {pq['max_ms']:.0f} | "
          f"p99 {ratio:.2f}x alone (goal <= 1.5x): **{'met' if ratio <= 1.5 else 'not met'}** |")
    print(f"| together | noisy (Standard, plan ingress {quota:.0f} MB/s, flat out) | {noisy['publish_mb_s']:.2f} MB/s | {pn['p50_ms']:.0f} / {pn['p99_ms']:.0f} / {pn['max_ms']:.0f} (queued behind its throttle) | "
          f"{within * 100:.1f}% from the quota (goal <= 10%): **{'met' if within <= 0.10 else 'not met'}** |\n")
    print(f"Plots: `{out}/plots-noisy/`.\n")
if only != "noisy":
    r = json.load(open(f"{out}/failover.json"))
    t, ev = r["total"], (r.get("events") or [{}])[0]
    a, v, p = t["acks"], t.get("verify") or {}, t["publish_latency"]
    isr = "?"
    try:
        m = json.load(open(f"{out}/failover-metadata.json"))
        parts = [x for tp in m["topics"] for x in tp["partitions"]]
        isr = f"{sum(len(x['isrs']) == 3 for x in parts)} of {len(parts)} partitions with 3 in-sync replicas"
    except Exception:
        pass
    killed = (ev.get("output") or "").strip().splitlines()[:1] or ["(no kill recorded)"]
    print("Failover (`scenarios/failover.yaml`: 10 MB/s, 6 partitions, RF 3, acks=-1, idempotent):\n")
    print("| figure | value |\n|---|---|")
    print(f"| kill | {killed[0]}, at {ev.get('at_s', float('nan')):.2f} s |")
    print(f"| longest interval without an acknowledged produce, one partition (`{a['longest_partition_gap_at']}`) | **{a['longest_partition_gap_ms']:.0f} ms**, from {a['longest_partition_gap_from_s']:.2f} s |")
    print(f"| longest interval without an acknowledged produce, all partitions | {a['longest_gap_ms']:.0f} ms, from {a['longest_gap_from_s']:.2f} s |")
    print(f"| produced | {t['publish_mb_s']:.2f} MB/s; publish p50 {p['p50_ms']:.1f} / p99 {p['p99_ms']:.1f} / max {p['max_ms']:.0f} ms; {t['counters']['errors']} errors |")
    print(f"| read back | {v.get('acked', '?')} acknowledged, {v.get('read_back', '?')} read, **{v.get('missing', '?')} acknowledged but missing** (must be 0), {v.get('duplicates', '?')} duplicates{'' if v.get('complete') else ', INCOMPLETE'} |")
    print(f"| after the run | {isr} |\n")
    print(f"Plots: `{out}/plots-failover/` (publish-timeline.png: acks per 100 ms and latency, the kill marked).\n")
print(f"Results and logs: `{out}`.")
PY
cat "$OUT/report.md"
if [ "$RECORD" = 1 ]; then
  . loadtest/record.sh
  record_section "$OUT/report.md"
fi
