#!/usr/bin/env bash
# Instructions the service executes per request, counted by valgrind's callgrind: unlike requests
# per second, the count does not depend on what else the machine is doing, so two builds can be
# compared on a busy machine. Not part of CI; a few minutes (the service runs about 50x slower
# under valgrind); cleans up after itself; everything listens on 127.0.0.1 only.
#
#   bench/instructions.sh                                  # builds and counts target/release/access-tokens
#   INSTR_BIN=/path/to/access-tokens bench/instructions.sh # counts another build (an older commit)
#   INSTR_KEEP=/some/folder bench/instructions.sh          # keeps each phase's dumps (callgrind_annotate)
#   INSTR_METRICS=off bench/instructions.sh                # metrics off (METRICS_ADDR empty); default on
#   INSTR_PGBOUNCER_PORT=64342 bench/instructions.sh       # the pool through PgBouncer in transaction mode
#                                                          # (DATABASE_POOLER=transaction), started on that port
#
# The service runs on PostgreSQL (scripts/lib/postgres.sh, a throwaway database `at_instr`) with a
# dev-token caller. Each phase runs its requests on one keep-alive connection after a warm-up, with
# the counters zeroed before and dumped after (callgrind_control): JWKS, introspection of an active
# token, creation (signing and the durable insert), a list page, and a revoke. Printed: the
# service's instructions per request in each phase (all its threads).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/binary.sh
source bench/lib/binary.sh
# shellcheck source=../scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=../scripts/scale/lib/postgres.sh
source scripts/scale/lib/postgres.sh

PORT="${INSTR_PORT:-18490}"
DB=at_instr
WORK=$(mktemp -d)
SERVICE_PID=""
cleanup() {
    local status=$?
    [ "$status" != 0 ] && [ -f "$WORK/service.log" ] && tail -n 20 "$WORK/service.log" >&2
    [ -n "$SERVICE_PID" ] && kill "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null
    if [ -n "${PG_ADMIN_URL:-}" ]; then
        psql "$PG_ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    fi
    scale_stop_all
    [ -n "${SCALE_WORK:-}" ] && rm -rf "$SCALE_WORK"
    stop_throwaway_postgres
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v valgrind >/dev/null 2>&1 || install_packages valgrind
BIN=$(bench_binary "${INSTR_BIN:-}")

ensure_postgres
psql "$PG_ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null
psql "$PG_ADMIN_URL" -qc "create database $DB" >/dev/null
export DATABASE_URL
DATABASE_URL=$(database_url "$DB")
if [ -n "${INSTR_PGBOUNCER_PORT:-}" ]; then
    install_pgbouncer
    scale_workdir
    start_pgbouncer "$INSTR_PGBOUNCER_PORT" "$(printf '%s' "$PG_ADMIN_URL" | sed -E 's#.*@[^/]*:([0-9]+)/.*#\1#')"
    export DATABASE_LISTEN_URL="$DATABASE_URL" DATABASE_POOLER=transaction
    DATABASE_URL="postgres://postgres@127.0.0.1:$INSTR_PGBOUNCER_PORT/$DB?sslmode=disable"
    log "the pool goes through PgBouncer on 127.0.0.1:$INSTR_PGBOUNCER_PORT (DATABASE_POOLER=transaction)"
fi
KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export KEY_ENCRYPTION_KEY PUBLIC_URL="http://127.0.0.1:$PORT" LISTEN_ADDR="127.0.0.1:$PORT"
export INTROSPECTION_CLIENTS="bench:bench-secret-0123456789" RUST_LOG=warn
export RATE_LIMIT_CREATE_PER_ORG=0 RATE_LIMIT_CREATE_PER_CALLER=0 RATE_LIMIT_CHANGE_PER_ORG=0 RATE_LIMIT_CHANGE_PER_CALLER=0
# Metrics on a port of this run (as in production, where Prometheus scrapes them), or off.
if [ "${INSTR_METRICS:-on}" = off ]; then
    export METRICS_ADDR=""
else
    export METRICS_ADDR="127.0.0.1:$((PORT + 1))"
fi
CALLER=$("$BIN" dev-token --org 1 --user bench --role owner --allow-production 2>/dev/null)

valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.%p" --dump-instr=no \
    "$BIN" serve >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 1200); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/health/ready" && break
    sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/health/ready" || { log "the service never answered"; cat "$WORK/service.log" >&2; exit 1; }

PORT="$PORT" CALLER="$CALLER" SERVICE_PID="$SERVICE_PID" WORK="$WORK" KEEP="${INSTR_KEEP:-}" python3 - <<'PY'
import http.client, json, os, subprocess
import sys

sys.path.insert(0, "bench/lib")
import callgrind  # noqa: E402

port, caller, pid, work = int(os.environ["PORT"]), os.environ["CALLER"], os.environ["SERVICE_PID"], os.environ["WORK"]
auth = {"Authorization": f"Bearer {caller}"}

def control(*args):
    subprocess.run(["callgrind_control", *args, pid], check=True, capture_output=True)

def dumped_total(label=None):
    return callgrind.dumped_total(work, pid, os.environ["KEEP"], label and label.split()[0])

def phase(label, n, request):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(5):
        request(conn)
    control("-z")
    dumped_total()
    for _ in range(n):
        request(conn)
    control("-d")
    conn.close()
    print(f"{label:<40} {dumped_total(label) / n:12,.0f} instructions/request  ({n} requests)")

def call(conn, method, path, body=None, headers=None, status=200):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    assert r.status == status, (method, path, r.status, data[:200])
    return data

created = []
def create(conn):
    data = call(conn, "POST", "/v1/access-tokens", json.dumps({"name": "counted"}),
                {**auth, "Content-Type": "application/json"}, 201)
    created.append(json.loads(data))

conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
create(conn)
active = created[0]["token"]
basic = {"Authorization": "Basic YmVuY2g6YmVuY2gtc2VjcmV0LTAxMjM0NTY3ODk=",
         "Content-Type": "application/x-www-form-urlencoded"}

phase("JWKS", 2000, lambda c: call(c, "GET", "/v1/access-tokens/.well-known/jwks.json"))
phase("introspection (active token)", 1000,
      lambda c: call(c, "POST", "/v1/access-tokens/introspect", f"token={active}", basic))
phase("creation", 200, create)
phase("list (a page of 100)", 200, lambda c: call(c, "GET", "/v1/access-tokens?limit=100", headers=auth))
ids = iter([t["id"] for t in created[1:]])
phase("revoke", 150, lambda c: call(c, "DELETE", f"/v1/access-tokens/{next(ids)}", headers=auth))
PY
