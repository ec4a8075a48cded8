#!/usr/bin/env bash
# Load test: LOAD_CLIENTS (200) concurrent clients, each looping create, list and revoke of its own
# tokens, for LOAD_SECONDS (60) against the release build on PostgreSQL. Checks, and prints: zero
# 5xx, every 201 has exactly one row and every row a 201 (nothing lost, nothing duplicated), every
# 200 to a revoke left the row revoked, and the service's RSS sampled every 5 s (flat after the
# warm-up). Rate limits are off: one caller makes all the requests. Not part of CI (it is long);
# cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../scripts/lib/postgres.sh
source scripts/lib/postgres.sh

CLIENTS="${LOAD_CLIENTS:-200}"
SECS="${LOAD_SECONDS:-60}"
PORT="${LOAD_PORT:-18490}"
DB=at_load
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$PG_ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    stop_throwaway_postgres
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building the service and the load generator (release)..."
cargo build --release --locked --bin access-tokens --example load_generator >&2
ensure_postgres
psql "$PG_ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null
psql "$PG_ADMIN_URL" -qc "create database $DB" >/dev/null
DATABASE_URL=$(database_url "$DB")
KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export DATABASE_URL KEY_ENCRYPTION_KEY
export LISTEN_ADDR="127.0.0.1:$PORT" LOG_FORMAT=json RUST_LOG=warn
export RATE_LIMIT_CREATE_PER_ORG=0 RATE_LIMIT_CREATE_PER_CALLER=0 RATE_LIMIT_CHANGE_PER_ORG=0 RATE_LIMIT_CHANGE_PER_CALLER=0 RATE_LIMIT_FAILED_AUTH_PER_ADDRESS=0
BASE="http://127.0.0.1:$PORT"
target/release/access-tokens serve >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
PIDS+=("$SERVICE_PID")
for _ in $(seq 1 200); do curl -fs -o /dev/null "$BASE/health/ready" && break; sleep 0.05; done
CALLER=$(target/release/access-tokens dev-token --org load --user load --role owner --allow-production 2>/dev/null)

(while kill -0 "$SERVICE_PID" 2>/dev/null; do
    awk '/VmRSS/ {print $2}' "/proc/$SERVICE_PID/status"
    sleep 5
done) >"$WORK/rss" 2>/dev/null &
PIDS+=($!)

log "load: $CLIENTS clients, ${SECS}s..."
target/release/examples/load_generator "$BASE" "$CALLER" "$CLIENTS" "$SECS" >"$WORK/report.json"
psql "$DATABASE_URL" -Atc "select id, revoked_at is not null from access_tokens where name like 'load %'" >"$WORK/rows"

python3 - "$WORK/report.json" "$WORK/rows" "$WORK/rss" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rows = dict(line.split("|") for line in open(sys.argv[2]).read().split())
rss = [int(x) // 1024 for x in open(sys.argv[3]).read().split()]
created, revoked = report["created"], report["revoked"]
lost = [i for i in created if i not in rows]
unanswered = [i for i in rows if i not in set(created)]
not_revoked = [i for i in revoked if rows.get(i) != "t"]
warm = rss[2:] or rss
print(f"clients                    {report['clients']}")
print(f"duration                   {report['seconds']:.1f} s")
print(f"requests                   {report['requests']} ({report['requests_per_second']:.0f}/s)")
for key, count in sorted(report["answers"].items()):
    print(f"  {key:<24} {count}")
print(f"latency p50 / p99 / max    {report['latency_ms']['p50']:.1f} / {report['latency_ms']['p99']:.1f} / {report['latency_ms']['max']:.1f} ms")
print(f"5xx answers                {report['server_errors']}")
print(f"transport errors           {report['transport_errors']}")
print(f"201s / rows                {len(created)} / {len(rows)}")
print(f"duplicate ids in 201s      {len(created) - len(set(created))}")
print(f"201s without a row         {len(lost)}")
print(f"rows without a 201         {len(unanswered)}")
print(f"revokes answered 200       {len(revoked)}, rows still unrevoked: {len(not_revoked)}")
print(f"RSS MB (every 5 s)         {' '.join(map(str, rss))}")
print(f"RSS after warm-up          min {min(warm)} max {max(warm)} MB")
ok = (report["server_errors"] == 0 and report["transport_errors"] == 0 and not lost and not unanswered
      and len(created) == len(set(created)) and not not_revoked)
print("result                     " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
