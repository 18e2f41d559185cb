#!/usr/bin/env bash
# Fuzzes a real `tributary control-plane` against its own OpenAPI document with
# schemathesis: every operation of GET /openapi.json, authenticated as a signed-up user,
# and fails on any 5xx or any answer that does not match the document.
#
#   tests/openapi/schemathesis.sh TRIBUTARY_BIN SCHEMATHESIS_BIN
#
# The server runs on SQLite in a temp dir with port 0 (--port-file) for both listeners and
# is stopped (SIGTERM, then SIGKILL) on every exit path. Bounded: the server gets 30 s to
# start, schemathesis at most TRIBUTARY_ST_MAX_EXAMPLES examples per operation (default
# 75, about 35 s on 2 cores) and TRIBUTARY_ST_TIMEOUT seconds (default 240).
#
# One worker: with two, hypothesis's lambda-source introspection raced and errored
# ("AST constructor recursion depth mismatch"), an error of the tool, not of the API.
#
# Checks: all of schemathesis's checks except positive_data_acceptance, which expects every
# schema-valid request to succeed; cross-field rules the schema cannot state (CKUs only for
# Dedicated, Basic only SINGLE_ZONE, referenced ids must exist) rightly answer 4xx there.
set -euo pipefail

BIN=${1:?usage: schemathesis.sh TRIBUTARY_BIN SCHEMATHESIS_BIN}
ST=${2:?usage: schemathesis.sh TRIBUTARY_BIN SCHEMATHESIS_BIN}
MAX_EXAMPLES=${TRIBUTARY_ST_MAX_EXAMPLES:-75}
TIMEOUT=${TRIBUTARY_ST_TIMEOUT:-240}
PY=$(dirname "$ST")/python
[[ -x $PY ]] || PY=python3

DIR=$(mktemp -d /tmp/tributary-schemathesis.XXXXXX)
PID=
cleanup() {
    local rc=$?
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -f $DIR/server.log ]]; then
        echo "--- control-plane log (last 40 lines) ---" >&2
        tail -n 40 "$DIR/server.log" >&2
    fi
    rm -rf -- "$DIR"
    exit "$rc"
}
trap cleanup EXIT

"$BIN" control-plane --listen 127.0.0.1:0 --port-file "$DIR/port" \
    --operator-listen 127.0.0.1:0 --data-dir "$DIR/data" >"$DIR/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
    [[ -s $DIR/port ]] && break
    kill -0 "$PID" 2>/dev/null || { echo "control plane exited at start-up" >&2; exit 1; }
    sleep 0.1
done
[[ -s $DIR/port ]] || { echo "control plane did not start within 30 s" >&2; exit 1; }
BASE="http://$(cat "$DIR/port")"

# Sign up, log in and create an environment; the bearer token authenticates every other
# operation, and schemathesis.toml hands the environment and user ids to the operations
# that need existing ones.
read -r TOKEN TRIBUTARY_ST_USER TRIBUTARY_ST_ENVIRONMENT < <("$PY" - "$BASE" <<'PYEOF'
import json, sys, urllib.request
base = sys.argv[1]
def post(path, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers=headers,
                                 method="POST")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.load(res)
creds = {"email": "schemathesis@example.com", "password": "correct horse battery"}
user = post("/v1/signup", dict(creds, organization_name="Schemathesis"))["user_id"]
token = post("/v1/login", creds)["token"]
env = post("/org/v2/environments", {"display_name": "schemathesis"}, token)["id"]
print(token, user, env)
PYEOF
)
[[ -n ${TRIBUTARY_ST_ENVIRONMENT:-} ]] || { echo "sign-up, login or environment creation failed" >&2; exit 1; }
export TRIBUTARY_ST_USER TRIBUTARY_ST_ENVIRONMENT
CONFIG=$(cd "$(dirname "$0")" && pwd)/schemathesis.toml

cd "$DIR"
echo "schemathesis $("$ST" --version 2>&1 | grep -o '[0-9][0-9.]*' | head -1) against $BASE/openapi.json (max $MAX_EXAMPLES examples per operation)"
timeout "$TIMEOUT" "$ST" --config-file "$CONFIG" run "$BASE/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --checks all --exclude-checks positive_data_acceptance \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    --request-timeout 10 \
    --generation-database none \
    --no-color
