# Sourced by the benchmark scripts: start a cell of one controller voter and three brokers
# (zones a, b, c) from the release binaries, in the background.
#   start_cell OUT PORT [extra broker args...]
# Needs BIN (release dir). Sets CTRL (controller address), CELL_BOOT (PLAINTEXT bootstrap),
# CELL_SASL (SASL_PLAINTEXT bootstrap) and appends the process ids to CELL_PIDS.
# Ports PORT+1 (controller), PORT+2..4 (PLAINTEXT), PORT+5..7 (SASL).
start_cell() {
  local out=$1 port=$2; shift 2
  CTRL=127.0.0.1:$((port + 1))
  "$BIN/tributary" controller --node-id 1 --listen "$CTRL" --data-dir "$out/cell/controller" \
    --voters "1=$CTRL" --cell-id bench > "$out/controller.log" 2>&1 &
  CELL_PIDS+=($!)
  CELL_BOOT= CELL_SASL=
  local i addr sasl zone
  for i in 1 2 3; do
    addr=127.0.0.1:$((port + 1 + i)) sasl=127.0.0.1:$((port + 4 + i))
    zone=zone-$(echo a b c | cut -d' ' -f$i)
    "$BIN/tributary" broker --node-id $i --listen "$addr" --sasl-listen "$sasl" \
      --data-dir "$out/cell/broker-$i" --controllers "$CTRL" --zone "$zone" "$@" \
      > "$out/cell-broker-$i.log" 2>&1 &
    CELL_PIDS+=($!)
    CELL_BOOT=${CELL_BOOT:+$CELL_BOOT,}$addr
    CELL_SASL=${CELL_SASL:+$CELL_SASL,}$sasl
  done
  for _ in $(seq 1 60); do
    [ "$("$BIN/tributary" cell --controllers "$CTRL" status 2>/dev/null | grep -c Active)" -ge 3 ] && return 0
    sleep 0.5
  done
  echo "the cell did not come up; see $out/*.log" >&2
  return 1
}

# Create (or update) a logical cluster in the cell: cell_cluster ID [limit flags...]
cell_cluster() {
  local id=$1; shift
  for _ in $(seq 1 60); do
    "$BIN/tributary" cell --controllers "$CTRL" create-cluster "$id" "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "cannot create $id" >&2
  return 1
}
