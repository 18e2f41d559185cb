# Sourced by loadtest/bench.sh: the peer broker, Tansu (crates.io `tansu`, Rust, Kafka API) with
# its SQLite storage engine (libSQL, a file on the data disk), installed into a scratch directory
# that is never committed.
#   peer_install            -> TANSU (the binary); builds it once (minutes) if missing
#   peer_start DIR PORT     -> starts it on 127.0.0.1:PORT with DIR/tansu.db; appends to PEER_PIDS
#   peer_stop               -> stops it
# Needs CARGO_TARGET_DIR. The version and features are pinned here so results compare.
TANSU_VERSION=0.6.0
# Only the SQLite engine: the default features have no storage engine that persists to local disk
# (memory, or S3/PostgreSQL servers), and lake/iceberg/delta are not needed.
TANSU_FEATURES=libsql
PEER_PIDS=()

peer_install() {
  local root=$CARGO_TARGET_DIR/peer/tansu-$TANSU_VERSION-$TANSU_FEATURES
  TANSU=$root/bin/tansu
  [ -x "$TANSU" ] && return 0
  echo "== installing tansu $TANSU_VERSION (--features $TANSU_FEATURES) into $root (once; ~410 crates, an hour with one build job on a busy 2-core VM)" >&2
  # Its own target dir (removed after): the build must not mix with the workspace's.
  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo install tansu --version "$TANSU_VERSION" --locked \
    --no-default-features --features "$TANSU_FEATURES" --root "$root" \
    --target-dir "$CARGO_TARGET_DIR/peer/tansu-build" >&2
  rm -rf "$CARGO_TARGET_DIR/peer/tansu-build"
  [ -x "$TANSU" ]
}

peer_start() { # DIR PORT
  local dir=$1 port=$2
  rm -rf "$dir"; mkdir -p "$dir"
  # Tansu opens sqlite://NAME relative to its working directory and reads a .env from it: run it
  # in DIR, with no inherited settings (env -i), so only these flags count.
  (cd "$dir" && exec env -i PATH="$PATH" HOME="$HOME" RUST_LOG=warn "$TANSU" broker \
    --cluster-id bench \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "sqlite://tansu.db" > "$dir.log" 2>&1) &
  PEER_PIDS+=($!)
  # Ready when it accepts connections (kcat here is linked with an older librdkafka that cannot
  # read Tansu 0.6.0's ApiVersions v3 answer: "Read underflow"; the loadtest's librdkafka 2.12 can).
  local _
  for _ in $(seq 1 60); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.5
  done
  echo "tansu did not answer on 127.0.0.1:$port; see $dir.log" >&2
  return 1
}

peer_stop() {
  local p
  for p in "${PEER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PEER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PEER_PIDS=()
}
