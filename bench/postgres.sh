#!/usr/bin/env bash
# PostgreSQL's side of the service, measured on loopback: the CPU time PostgreSQL spends per created
# token and per list page (direct, and with the pool through PgBouncer in transaction mode), what a
# read standby takes off the primary, and the rows and bytes a token leaves. CPU time is read from
# /proc (the postmaster with its children, exited ones included), so it does not depend on what
# else the machine does as much as a rate would; each figure is the difference over a phase divided
# by its requests. Not part of CI; a few minutes; cleans up after itself.
#
#   bench/postgres.sh                        # builds and measures target/release/access-tokens
#   BENCH_BIN=/path/to/access-tokens bench/postgres.sh
#   BENCH_TOKENS=4000 BENCH_LISTS=2000 bench/postgres.sh
#
# Ports (BENCH_PRIMARY_PORT, BENCH_STANDBY_PORT, BENCH_PGBOUNCER_PORT, BENCH_SERVICE_PORT):
# 54342, 54352, 64342, 18643. The primary runs with fsync on (durable commits, as in production).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/binary.sh
source bench/lib/binary.sh
# shellcheck source=../scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=../scripts/scale/lib/postgres.sh
source scripts/scale/lib/postgres.sh

PRIMARY_PORT="${BENCH_PRIMARY_PORT:-54342}"
STANDBY_PORT="${BENCH_STANDBY_PORT:-54352}"
BOUNCER_PORT="${BENCH_PGBOUNCER_PORT:-64342}"
SERVICE_PORT="${BENCH_SERVICE_PORT:-18643}"
TOKENS="${BENCH_TOKENS:-2000}"
LISTS="${BENCH_LISTS:-1000}"
SERVICE_PID=""
cleanup() {
    if [ -n "$SERVICE_PID" ]; then kill "$SERVICE_PID" 2>/dev/null || true; wait "$SERVICE_PID" 2>/dev/null || true; fi
    scale_stop_all
    [ -n "${SCALE_WORK:-}" ] && rm -rf "$SCALE_WORK"
}
trap cleanup EXIT

install_postgres_tools
install_pgbouncer
command -v python3 >/dev/null 2>&1 || { log "python3 is needed to drive the requests"; exit 1; }
BIN=$(bench_binary "${BENCH_BIN:-}")
scale_workdir
start_cluster primary "$PRIMARY_PORT"
start_standby standby "$STANDBY_PORT" "$PRIMARY_PORT"
start_pgbouncer "$BOUNCER_PORT" "$PRIMARY_PORT"
NO_TLS="sslmode=disable"
PRIMARY="postgres://postgres@127.0.0.1:$PRIMARY_PORT"
psql "$PRIMARY/postgres?$NO_TLS" -qc "create database at_bench" >/dev/null

# CPU seconds of a cluster (its folder under $SCALE_WORK), or of PgBouncer ("pgbouncer").
cpu_of() {
    local pid
    if [ "$1" = pgbouncer ]; then pid=$(cat "$SCALE_WORK/pgbouncer/pgbouncer.pid"); else pid=$(head -n 1 "$SCALE_WORK/$1/data/postmaster.pid"); fi
    python3 - "$pid" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
def fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
root = sys.argv[1]
f = fields(root)
total = sum(int(x) for x in f[11:15])  # utime stime cutime cstime: exited children included
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            g = fields(entry)
        except OSError:
            continue
        if g[1] == root:
            total += int(g[11]) + int(g[12])
print(total / tick)
PY
}

KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export KEY_ENCRYPTION_KEY LISTEN_ADDR="127.0.0.1:$SERVICE_PORT" PUBLIC_URL="http://127.0.0.1:$SERVICE_PORT"
export RUST_LOG=warn RATE_LIMIT_CREATE_PER_ORG=0 RATE_LIMIT_CREATE_PER_CALLER=0 RATE_LIMIT_CHANGE_PER_ORG=0 RATE_LIMIT_CHANGE_PER_CALLER=0

# serve KEY=VALUE...: (re)starts the service with these database settings.
serve() {
    if [ -n "$SERVICE_PID" ]; then kill "$SERVICE_PID"; wait "$SERVICE_PID" 2>/dev/null || true; fi
    env "$@" "$BIN" serve >>"$SCALE_WORK/service.log" 2>&1 &
    SERVICE_PID=$!
    for _ in $(seq 1 600); do
        curl -sf -o /dev/null "http://127.0.0.1:$SERVICE_PORT/health/ready" && return 0
        sleep 0.1
    done
    log "the service never answered"; cat "$SCALE_WORK/service.log" >&2; exit 1
}

# drive create|list COUNT CLIENTS: the requests, on keep-alive connections, COUNT in all.
drive() {
    PORT="$SERVICE_PORT" CALLER="$CALLER" python3 - "$@" <<'PY'
import http.client, json, os, sys, threading
kind, count, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
port, auth = int(os.environ["PORT"]), {"Authorization": "Bearer " + os.environ["CALLER"]}
body = json.dumps({"name": "bench", "expires_in": "1h"})
def run(n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(n):
        if kind == "create":
            c.request("POST", "/v1/access-tokens", body, {**auth, "Content-Type": "application/json"})
            want = 201
        else:
            c.request("GET", "/v1/access-tokens?limit=100", headers=auth)
            want = 200
        r = c.getresponse(); r.read()
        assert r.status == want, r.status
threads = [threading.Thread(target=run, args=(count // clients,)) for _ in range(clients)]
[t.start() for t in threads]; [t.join() for t in threads]
PY
}

# phase LABEL KIND COUNT CLIENTS: PostgreSQL's CPU per request (the primary; the standby and
# PgBouncer when they took part), printed as one line.
phase() {
    local label="$1" kind="$2" count="$3" clients="$4" p0 s0 b0 p1 s1 b1
    drive "$kind" 20 1
    p0=$(cpu_of primary); s0=$(cpu_of standby); b0=$(cpu_of pgbouncer)
    drive "$kind" "$count" "$clients"
    p1=$(cpu_of primary); s1=$(cpu_of standby); b1=$(cpu_of pgbouncer)
    python3 -c "
import sys
l, n, p, s, b = sys.argv[1], int(sys.argv[2]), *(float(x) for x in sys.argv[3:])
print(f'{l:<58} primary {p / n * 1e3:6.3f} ms  standby {s / n * 1e3:6.3f} ms  pgbouncer {b / n * 1e3:6.3f} ms  (CPU per request, {n} requests)')
" "$label" "$count" "$(echo "$p1 - $p0" | bc -l)" "$(echo "$s1 - $s0" | bc -l)" "$(echo "$b1 - $b0" | bc -l)"
}
command -v bc >/dev/null 2>&1 || install_packages bc

DIRECT="$PRIMARY/at_bench?$NO_TLS"
serve DATABASE_URL="$DIRECT"
CALLER=$(DATABASE_URL="$DIRECT" "$BIN" dev-token --org 1 --user bench --role owner --allow-production 2>/dev/null)
phase "create, 1 client, direct" create "$TOKENS" 1
phase "create, 16 clients, direct" create "$TOKENS" 16
phase "list (a page of 100), 1 client, direct" list "$LISTS" 1
serve DATABASE_URL="$DIRECT" DATABASE_READ_URL="postgres://postgres@127.0.0.1:$STANDBY_PORT/at_bench?$NO_TLS"
phase "list (a page of 100), 1 client, reads on the standby" list "$LISTS" 1
serve DATABASE_URL="postgres://postgres@127.0.0.1:$BOUNCER_PORT/at_bench?$NO_TLS" DATABASE_LISTEN_URL="$DIRECT" DATABASE_POOLER=transaction
phase "create, 1 client, through PgBouncer (transaction)" create "$TOKENS" 1
phase "create, 16 clients, through PgBouncer (transaction)" create "$TOKENS" 16
phase "list (a page of 100), 1 client, through PgBouncer" list "$LISTS" 1

# What a token leaves: its row, its audit event, and their share of the indexes.
psql "$DIRECT" -Atqc "vacuum analyze access_tokens, audit_events" >/dev/null
psql "$DIRECT" -Atc "
    select format('%-58s %s rows, %s bytes per token (table, toast and indexes)', relname, n, round(pg_total_relation_size(oid)::numeric / t))
    from (select c.oid, c.relname, (select count(*) from access_tokens) as t,
                 case c.relname when 'access_tokens' then (select count(*) from access_tokens)
                                else (select count(*) from audit_events) end as n
          from pg_class c where c.relname in ('access_tokens', 'audit_events')) s
    order by relname"
psql "$DIRECT" -Atc "select format('%-58s %s bytes per token', 'WAL written, all phases', round((pg_current_wal_lsn() - '0/0'::pg_lsn) / (select count(*) from access_tokens)))"
