#!/usr/bin/env bash
# What one core carries: the service's CPU time per request under a load (utime + stime of all its
# threads, from /proc, over a wrk run), for JWKS, introspection, a status list, creation and a list
# page, and PostgreSQL's CPU per token created; then the bytes PostgreSQL holds per token. CPU
# time, unlike requests per second, counts only the work done for the requests, not the time spent
# waiting for a core that something else holds, so it can be read on a busy machine (contention
# for caches and a shared physical core still inflates it: read it as an upper bound, and compare
# with bench/instructions.sh, whose counts do not move with the machine's load). Requests per core
# and second = 1 / (CPU seconds per request).
#
# Release build, PostgreSQL store (scripts/lib/postgres.sh: DATABASE_URL's server, else a throwaway
# cluster; a database `at_per_core`), wrk on keep-alive connections, everything on 127.0.0.1. Not
# part of CI; about a minute after the build; cleans up after itself.
#
#   bench/per_core.sh
#   BENCH_BIN=/path/to/access-tokens BENCH_SECONDS=20 bench/per_core.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/binary.sh
source bench/lib/binary.sh
# shellcheck source=../scripts/lib/postgres.sh
source scripts/lib/postgres.sh

PORT="${BENCH_PORT:-18640}"
SECS="${BENCH_SECONDS:-10}"
DB=at_per_core
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
SERVICE_PID=""
cleanup() {
    [ -n "$SERVICE_PID" ] && kill "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null
    if [ -n "${PG_ADMIN_URL:-}" ]; then
        psql "$PG_ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    fi
    stop_throwaway_postgres
    rm -rf "$WORK"
}
trap cleanup EXIT
command -v wrk >/dev/null || { log "wrk is missing: install Debian's wrk package"; exit 1; }

BIN=$(bench_binary "${BENCH_BIN:-}")
ensure_postgres
psql "$PG_ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null
psql "$PG_ADMIN_URL" -qc "create database $DB" >/dev/null
DATABASE_URL=$(database_url "$DB")
KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export DATABASE_URL KEY_ENCRYPTION_KEY LISTEN_ADDR="127.0.0.1:$PORT" RUST_LOG=warn LOG_FORMAT=json
export INTROSPECTION_CLIENTS="bench:bench-secret-0123456789" CLIENT_BASIC="YmVuY2g6YmVuY2gtc2VjcmV0LTAxMjM0NTY3ODk="
export RATE_LIMIT_CREATE_PER_ORG=0 RATE_LIMIT_CREATE_PER_CALLER=0 RATE_LIMIT_CHANGE_PER_ORG=0 RATE_LIMIT_CHANGE_PER_CALLER=0 RATE_LIMIT_FAILED_AUTH_PER_ADDRESS=0
CALLER=$("$BIN" dev-token --org 1 --user bench --role owner --allow-production 2>/dev/null)
export CALLER
"$BIN" serve >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 600); do curl -sf -o /dev/null "$BASE/health/ready" && break; sleep 0.05; done
TOKEN=$(curl -sf -X POST "$BASE/v1/access-tokens" -H "Authorization: Bearer $CALLER" \
    -H 'Content-Type: application/json' -d '{"name":"introspected"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
export TOKEN

TICKS=$(getconf CLK_TCK)
# CPU ticks (utime + stime) of process $1, its threads included.
ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# CPU ticks of the PostgreSQL server (all of it: run on a server of its own, such as the throwaway
# cluster, for this figure to be the service's): every process under its postmaster.
POSTMASTER=$(head -n 1 "$(psql "$PG_ADMIN_URL" -Atqc 'show data_directory')/postmaster.pid" 2>/dev/null || true)
postgres_ticks() {
    local total=0 pid
    [ -n "$POSTMASTER" ] || { echo 0; return; }
    for pid in "$POSTMASTER" $(pgrep -P "$POSTMASTER"); do total=$((total + $(ticks_of "$pid"))); done
    echo "$total"
}

# phase LABEL CONNECTIONS WRK_ARGS...: service CPU per request over a wrk run.
phase() {
    local label="$1" connections="$2" before after pg_before pg_after requests
    shift 2
    wrk -t1 -c"$connections" -d2s "$@" >/dev/null   # warm-up
    before=$(ticks_of "$SERVICE_PID"); pg_before=$(postgres_ticks)
    wrk -t1 -c"$connections" -d"${SECS}s" "$@" >"$WORK/wrk.txt"
    after=$(ticks_of "$SERVICE_PID"); pg_after=$(postgres_ticks)
    requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.txt")
    python3 - "$label" "$requests" "$((after - before))" "$((pg_after - pg_before))" "$TICKS" "${non2xx:-0}" <<'PY'
import sys
label, n, ticks, pg_ticks, hz, bad = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
cpu = ticks / hz
us = cpu / n * 1e6
print(f"{label:<34} {n:>8} requests  service {us:8.1f} us CPU/request = {1e6 / us:9,.0f} /s per core"
      f"   PostgreSQL {pg_ticks / hz / n * 1e6:7.1f} us/request   non-2xx {bad}")
PY
}

size_of_tokens() {
    psql "$DATABASE_URL" -Atqc "vacuum (analyze) access_tokens" >/dev/null
    psql "$DATABASE_URL" -Atqc "vacuum (analyze) audit_events" >/dev/null
    psql "$DATABASE_URL" -AtF' ' -qc "select (select count(*) from access_tokens),
        pg_total_relation_size('access_tokens'), (select count(*) from audit_events),
        pg_total_relation_size('audit_events')"
}

echo "service CPU per request (utime + stime of the service under wrk -t1, ${SECS} s per phase; CLK_TCK $TICKS)"
phase "JWKS" 32 "$BASE/v1/access-tokens/.well-known/jwks.json"
phase "introspection (active token)" 32 -s bench/lua/introspect.lua "$BASE/v1/access-tokens/introspect"
phase "status list (plain)" 32 "$BASE/v1/access-tokens/status-lists/0"
phase "status list (gzip)" 32 -H "Accept-Encoding: gzip" "$BASE/v1/access-tokens/status-lists/0"
read -r TOKENS0 TOKEN_BYTES0 EVENTS0 EVENT_BYTES0 < <(size_of_tokens)
phase "creation (signed, durable insert)" 32 -s bench/lua/create.lua "$BASE/v1/access-tokens"
phase "list (a page of 100)" 8 -s bench/lua/get_auth.lua "$BASE/v1/access-tokens?limit=100"
read -r TOKENS1 TOKEN_BYTES1 EVENTS1 EVENT_BYTES1 < <(size_of_tokens)
python3 - "$TOKENS0" "$TOKEN_BYTES0" "$EVENTS0" "$EVENT_BYTES0" "$TOKENS1" "$TOKEN_BYTES1" "$EVENTS1" "$EVENT_BYTES1" <<'PY'
import sys
t0, tb0, e0, eb0, t1, tb1, e1, eb1 = map(int, sys.argv[1:])
tokens, events = t1 - t0, e1 - e0
print(f"PostgreSQL bytes per token created ({tokens} tokens, {events} audit events; after VACUUM ANALYZE):")
print(f"  access_tokens with its indexes and TOAST  {(tb1 - tb0) / tokens:7.0f} bytes/token  ({tb1:,} bytes for {t1} rows)")
print(f"  audit_events with its indexes             {(eb1 - eb0) / tokens:7.0f} bytes/token  ({eb1:,} bytes for {e1} events)")
print(f"  together                                  {((tb1 - tb0) + (eb1 - eb0)) / tokens:7.0f} bytes/token")
PY
