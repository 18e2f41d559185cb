#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL for the control-plane tests.
#
#   pg.sh start [DIR]   initdb into DIR (default: a new temp dir), start on a random free
#                       port on 127.0.0.1 with trust auth; prints two lines on stdout:
#                       the URL for TRIBUTARY_TEST_POSTGRES_URL, then DIR.
#   pg.sh stop DIR      stops that server and deletes DIR.
#
# Example:
#   { read -r URL; read -r DIR; } < <(control-plane/tests/pg.sh start)
#   TRIBUTARY_TEST_POSTGRES_URL=$URL cargo test -p control-plane
#   control-plane/tests/pg.sh stop "$DIR"
#
# Installs the `postgresql` package with apt-get when no server binaries are found
# (needs root). As root, the server runs as the `postgres` user (initdb refuses root).
set -euo pipefail

log() { echo "pg.sh: $*" >&2; }

find_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return 0; fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"; return 0
    fi
    return 1
}

ensure_installed() {
    if find_bindir >/dev/null; then return 0; fi
    if [[ $(id -u) -ne 0 ]]; then
        log "PostgreSQL is not installed and this is not root; install the postgresql package"
        exit 1
    fi
    log "installing postgresql with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    find_bindir >/dev/null || { log "postgresql installed but initdb/pg_ctl not found"; exit 1; }
}

# Runs a command as the server's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$(( (RANDOM % 20000) + 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"; return 0
        fi
    done
    log "no free port found"; exit 1
}

start() {
    ensure_installed
    local bindir dir port
    bindir=$(find_bindir)
    dir=${1:-$(mktemp -d /tmp/tributary-pg.XXXXXX)}
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; chmod 700 "$dir"; fi
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(free_port)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    echo "$dir"
}

stop() {
    local dir=${1:?usage: pg.sh stop DIR}
    local bindir
    bindir=$(find_bindir)
    if [[ -d "$dir/data" ]]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    fi
    rm -rf -- "$dir"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) echo "usage: $0 start [DIR] | stop DIR" >&2; exit 2 ;;
esac
