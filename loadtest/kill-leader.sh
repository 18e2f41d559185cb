#!/usr/bin/env bash
# SIGKILL the broker of a `tributary dev` stack that leads the most partitions of a topic.
#   sh loadtest/kill-leader.sh ENDPOINTS_JSON TOPIC
# Leaders come from Kafka metadata (kcat -L -J) at the SASL bootstrap in endpoints.json, as the
# tenant in KILL_SASL_USER / KILL_SASL_PASSWORD (environment, so no secret is on a command line
# or in a result file). Prints one line: which broker, its pid, and how many partitions it led.
# Used by loadtest/dev.sh through `loadtest run --exec-at`; the supervisor restarts the broker.
set -euo pipefail
EP=$1 TOPIC=$2
BOOT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cells"][0]["sasl_bootstrap"])' "$EP")
META=$(kcat -L -J -m 5 -t "$TOPIC" -b "$BOOT" -X security.protocol=SASL_PLAINTEXT \
  -X sasl.mechanisms=PLAIN -X sasl.username="$KILL_SASL_USER" -X sasl.password="$KILL_SASL_PASSWORD")
python3 - "$EP" "$TOPIC" "$META" <<'PY'
import collections, json, os, signal, sys
ep, topic, meta = json.load(open(sys.argv[1])), sys.argv[2], json.loads(sys.argv[3])
parts = [p for t in meta["topics"] if t["topic"] == topic for p in t["partitions"]]
leaders = collections.Counter(p["leader"] for p in parts if p.get("leader", -1) >= 0)
if not leaders:
    sys.exit(f"no leaders for {topic} in the metadata")
# Most partitions led; the lowest id on a tie, so a run is repeatable.
broker, led = sorted(leaders.items(), key=lambda kv: (-kv[1], kv[0]))[0]
pid = next(b["pid"] for b in ep["cells"][0]["brokers"] if b["id"] == broker)
os.kill(pid, signal.SIGKILL)
print(f"killed broker-{broker} (pid {pid}), leader of {led} of {len(parts)} partitions of {topic}")
PY
