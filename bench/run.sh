#!/usr/bin/env bash
# Benchmarks the service against this machine's own limits and a peer, in one run, and prints one
# line per figure: the value, the baseline measured in the same run, and their ratio.
#
#   bench/run.sh                 # about 4 minutes on 2 cores; not part of CI
#   BENCH_SECONDS=20 bench/run.sh
#   BENCH_SKIP_PEER=1 bench/run.sh   # without the Node.js peer (needs npm and the registry)
#   BENCH_BIN=/path/to/access-tokens bench/run.sh   # measures another build, e.g. an older commit
#
# It builds the release binary, brings up PostgreSQL (scripts/lib/postgres.sh), creates a throwaway
# database `at_bench`, starts the service with a local trusted issuer (a JWKS served from a file),
# seeds 1,000,000 token rows for the list figure, drives each load with wrk on this machine, measures
# the baselines (openssl speed, nginx serving the same JWKS bytes, pgbench of a one-row insert, an
# oidc-provider peer) and cleans up after itself. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/binary.sh
source bench/lib/binary.sh
# shellcheck source=../scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=../scripts/lib/issuer.sh
source scripts/lib/issuer.sh
# shellcheck source=lib/load.sh
source bench/lib/load.sh

SECS="${BENCH_SECONDS:-10}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
WORK="$PWD/bench/.work"
PORT=18480 ISSUER_PORT=18481 NGINX_PORT=18482 PEER_PORT=18484
DB=at_bench
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    if [ -n "${PG_ADMIN_URL:-}" ]; then
        psql "$PG_ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    fi
    stop_throwaway_postgres
}
trap cleanup EXIT

# --- tools -----------------------------------------------------------------------------------
missing=()
for tool in wrk nginx python3 openssl curl; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    install_packages "${missing[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for port in $PORT $ISSUER_PORT $NGINX_PORT $PEER_PORT; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        log "port $port is in use (a run left behind?); free it first"
        exit 1
    fi
done
rm -rf "$WORK" && mkdir -p "$WORK"

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }
line() { printf '%-34s %12s %-9s  %-44s %12s   ratio %s (target %s)\n' "$@"; }

BIN=$(bench_binary "${BENCH_BIN:-}")

ensure_postgres
psql "$PG_ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null
psql "$PG_ADMIN_URL" -qc "create database $DB" >/dev/null
DATABASE_URL=$(database_url "$DB")
export DATABASE_URL

# --- a trusted issuer (scripts/lib/issuer.sh) -------------------------------------------------
start_issuer "$WORK/issuer" "$ISSUER_PORT"
PIDS+=("$ISSUER_PID")
user_token() { issuer_token "$1" bench; }

# --- the service -----------------------------------------------------------------------------
KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export KEY_ENCRYPTION_KEY
export LISTEN_ADDR="127.0.0.1:$PORT" TRUSTED_ISSUERS="$ISSUER" LOG_FORMAT=json RUST_LOG="${RUST_LOG:-info}"
export INTROSPECTION_CLIENTS="bench:bench-secret-0123456789"
# One caller creates as fast as it can: the rate limits (brakes for runaway clients) would stop it.
export RATE_LIMIT_CREATE_PER_ORG=0 RATE_LIMIT_CREATE_PER_CALLER=0 RATE_LIMIT_CHANGE_PER_ORG=0 RATE_LIMIT_CHANGE_PER_CALLER=0 RATE_LIMIT_FAILED_AUTH_PER_ADDRESS=0
BASE="http://127.0.0.1:$PORT"
start_service() {
    "$BIN" serve >>"$WORK/service.log" 2>&1 &
    SERVICE_PID=$!
    PIDS+=("$SERVICE_PID")
}
start_service
wait_for "$BASE/health/ready"
wait_for "$ISSUER/.well-known/jwks.json"

USER_JWT=$(user_token 1)
CALLER=$(curl -sf -X POST "$BASE/v1/access-tokens" -H "Authorization: Bearer $USER_JWT" \
    -H 'Content-Type: application/json' -d '{"name":"bench caller"}' | json_field token)
export CALLER

log "seeding 1,000,000 token rows (10,000 in the listing organization)..."
psql "$DATABASE_URL" -q >/dev/null <<'SQL'
insert into access_tokens (id, org_id, created_by, owner, token_type, name, key_id, created_at)
select 'api_seed' || lpad(g::text, 16, '0'),
       case when g <= 10000 then 'bench-list' else 'org-' || (g % 990) end,
       'seed', 'p1_seed', 'api', 'seeded ' || g,
       (select kid from signing_keys where key_set = 'api' and state = 'active'),
       now() - g * interval '1 second'
from generate_series(1, 1000000) g;
vacuum (analyze) access_tokens;
SQL

# --- baselines: openssl, pgbench --------------------------------------------------------------
# The two vCPUs of these machines may share a physical core, so a baseline measured while anything
# else runs comes out low and flatters every ratio. openssl speed runs twice, here and after the
# loads, and the higher figure of each is the baseline (the lower ratio).
SIGN1=0 VERIFY1=0 SIGN2=0
max() { python3 -c "import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))" "$1" "$2"; }
measure_openssl() {
    log "measuring openssl speed..."
    local one multi
    one=$(openssl speed -seconds 5 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6, $7}')
    multi=$(openssl speed -seconds 5 -multi 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6, $7}')
    OPENSSL_RUNS+=("sign ${one% *} verify ${one#* } multi-2 sign ${multi% *}")
    SIGN1=$(max "$SIGN1" "${one% *}"); VERIFY1=$(max "$VERIFY1" "${one#* }")
    SIGN2=$(max "$SIGN2" "${multi% *}")
}
OPENSSL_RUNS=()
measure_openssl

log "measuring pgbench (one-row insert, $CONNECTIONS clients)..."
psql "$DATABASE_URL" -qc "create table bench_insert (id text primary key, org_id text, name text, created_at timestamptz)" >/dev/null
cat > "$WORK/insert.sql" <<'SQL'
insert into bench_insert values (md5(random()::text || clock_timestamp()::text), '1', 'bench', now());
SQL
PGBENCH_TPS=$(pgbench -n -c "$CONNECTIONS" -j 2 -T "$SECS" -f "$WORK/insert.sql" "$DATABASE_URL" 2>/dev/null \
    | awk '/^tps/ {print int($3)}')

# --- issuance ---------------------------------------------------------------------------------
log "issuance: POST /v1/access-tokens, $CONNECTIONS connections, ${SECS}s..."
before=$(psql "$DATABASE_URL" -Atc "select count(*) from access_tokens where name = 'bench'")
wrk -t2 -c"$CONNECTIONS" -d"${SECS}s" -s bench/lua/create.lua "$BASE/v1/access-tokens" > "$WORK/issue.txt"
ISSUE=$(rate "$WORK/issue.txt")
NON2XX=$(awk '/Non-2xx/ {print $5}' "$WORK/issue.txt"); NON2XX=${NON2XX:-0}
ANSWERED=$(awk '/requests in/ {print $1}' "$WORK/issue.txt")
ROWS=$(( $(psql "$DATABASE_URL" -Atc "select count(*) from access_tokens where name = 'bench'") - before ))
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$SERVICE_PID/status")

# --- JWKS: the service and nginx serving the same bytes -----------------------------------------
# Three rounds, the service and nginx taking turns, and the median of each: this machine's
# neighbours make single runs vary by 15 %.
curl -sf "$BASE/v1/access-tokens/.well-known/jwks.json" -o "$WORK/jwks.json"
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
log "JWKS: service and nginx (1 worker), three rounds each..."
jwks_runs=() nginx_runs=()
for round in 1 2 3; do
    wrk -t2 -c64 -d"${SECS}s" "$BASE/v1/access-tokens/.well-known/jwks.json" > "$WORK/jwks$round.txt"
    jwks_runs+=("$(rate "$WORK/jwks$round.txt")")
    nginx_start 1
    wrk -t2 -c64 -d"${SECS}s" "http://127.0.0.1:$NGINX_PORT/jwks.json" > "$WORK/nginx1-$round.txt"
    nginx_runs+=("$(rate "$WORK/nginx1-$round.txt")")
    nginx_stop
done
JWKS=$(median "${jwks_runs[@]}")
NGINX1=$(median "${nginx_runs[@]}")
nginx_start 2
wrk -t2 -c64 -d"${SECS}s" "http://127.0.0.1:$NGINX_PORT/jwks.json" > "$WORK/nginx2.txt"
NGINX2=$(rate "$WORK/nginx2.txt")
nginx_stop

# --- introspection of an active token -----------------------------------------------------------
log "introspection..."
export TOKEN="$CALLER" CLIENT_BASIC
CLIENT_BASIC=$(printf 'bench:bench-secret-0123456789' | base64)
wrk -t2 -c"$CONNECTIONS" -d"${SECS}s" -s bench/lua/introspect.lua "$BASE/v1/access-tokens/introspect" > "$WORK/introspect.txt"
INTROSPECT=$(rate "$WORK/introspect.txt")
curl -sf -X POST "$BASE/v1/access-tokens/introspect" -u bench:bench-secret-0123456789 -d "token=$CALLER" | grep -q '"active":true' \
    || { log "introspection did not answer active: the figure is not valid"; exit 1; }

# --- list: p99 of one page of 100, 1,000,000 rows, 10,000 in the organization ------------------------
log "list..."
CALLER=$(user_token bench-list) wrk -t1 -c1 -d"${SECS}s" --latency -s bench/lua/get_auth.lua \
    "$BASE/v1/access-tokens?limit=100" > "$WORK/list.txt"
LIST_P99=$(awk '$1 == "99%" {print $2}' "$WORK/list.txt")
LIST_P99_MS=$(python3 -c "import sys; v=sys.argv[1]; print(round(float(v[:-2]) if v.endswith('ms') else float(v[:-2])/1000 if v.endswith('us') else float(v[:-1])*1000, 2))" "$LIST_P99")

# --- start to ready on a database that holds its keys -------------------------------------------
ready_ms() { # DATABASE_URL for the new process; sets READY
    kill -TERM "$SERVICE_PID"; wait "$SERVICE_PID" 2>/dev/null || true
    local started
    started=$(date +%s%N)
    DATABASE_URL="$1" start_service
    for _ in $(seq 1 5000); do curl -sf -o /dev/null "$BASE/health/ready" && break; sleep 0.002; done
    READY=$(( ($(date +%s%N) - started) / 1000000 ))
}
ready_ms "$DATABASE_URL"
READY_MS=$READY
# The same with TLS to PostgreSQL (sslmode=prefer), as over a network.
ready_ms "${DATABASE_URL/sslmode=disable/sslmode=prefer}"
READY_TLS_MS=$READY

# --- the peer: oidc-provider, client credentials, RS256 JWT access tokens, nothing persisted --------
PEER="" PEER_JWKS=""
if [ -z "${BENCH_SKIP_PEER:-}" ] && command -v npm >/dev/null 2>&1; then
    log "peer: installing oidc-provider..."
    if (cd bench/peer && npm install --silent --no-audit --no-fund >/dev/null 2>&1); then
        PEER_PORT=$PEER_PORT node bench/peer/server.js >"$WORK/peer.log" 2>&1 &
        PIDS+=($!)
        wait_for "http://127.0.0.1:$PEER_PORT/jwks"
        PEER_BASIC=$(printf 'bench:bench-secret' | base64)
        export PEER_BASIC
        if curl -sf -X POST "http://127.0.0.1:$PEER_PORT/token" -H "Authorization: Basic $PEER_BASIC" \
            -d 'grant_type=client_credentials&scope=api' | grep -q '"access_token":"ey'; then
            wrk -t2 -c"$CONNECTIONS" -d"${SECS}s" -s bench/lua/peer_token.lua "http://127.0.0.1:$PEER_PORT/token" > "$WORK/peer.txt"
            PEER=$(rate "$WORK/peer.txt")
            wrk -t2 -c64 -d"${SECS}s" "http://127.0.0.1:$PEER_PORT/jwks" > "$WORK/peer_jwks.txt"
            PEER_JWKS=$(rate "$WORK/peer_jwks.txt")
        else
            log "the peer issued no JWT access token; see $WORK/peer.log"
        fi
    else
        log "npm install of oidc-provider failed; the peer figures are left out"
    fi
fi

measure_openssl

# --- report -------------------------------------------------------------------------------------
echo
echo "access-tokens benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), ${SECS}s per load"
line "issuance (POST, durable insert)" "$ISSUE" "req/s" "openssl speed -multi 2 rsa2048 sign" "$SIGN2" "$(ratio "$ISSUE" "$SIGN2")" ">= 0.5"
[ -n "$PEER" ] && line "issuance vs Node oidc-provider" "$ISSUE" "req/s" "oidc-provider 9 client credentials (JWT)" "$PEER" "$(ratio "$ISSUE" "$PEER")" ">= 1.25"
line "issuance vs PostgreSQL" "$ISSUE" "req/s" "pgbench one-row insert, $CONNECTIONS clients" "$PGBENCH_TPS" "$(ratio "$ISSUE" "$PGBENCH_TPS")" "-"
line "JWKS (median of 3)" "$JWKS" "req/s" "nginx, same bytes, 1 worker (median of 3)" "$NGINX1" "$(ratio "$JWKS" "$NGINX1")" ">= 0.8"
line "JWKS" "$JWKS" "req/s" "nginx, same bytes, 2 workers" "$NGINX2" "$(ratio "$JWKS" "$NGINX2")" "-"
[ -n "$PEER_JWKS" ] && line "JWKS vs Node oidc-provider" "$JWKS" "req/s" "oidc-provider 9 JWKS" "$PEER_JWKS" "$(ratio "$JWKS" "$PEER_JWKS")" "-"
line "introspection (active token)" "$INTROSPECT" "req/s" "openssl speed rsa2048 verify, 1 process" "$VERIFY1" "$(ratio "$INTROSPECT" "$VERIFY1")" ">= 0.5"
line "list p99 (100 of 10k; 1M rows)" "$LIST_P99_MS" "ms" "budget" "5" "$(ratio "$LIST_P99_MS" 5)" "<= 1"
line "RSS after issuance" "$((RSS_KB / 1024))" "MB" "budget" "50" "$(ratio "$((RSS_KB / 1024))" 50)" "<= 1"
line "start to ready (keys stored)" "$READY_MS" "ms" "budget" "200" "$(ratio "$READY_MS" 200)" "<= 1"
line "start to ready, TLS to PostgreSQL" "$READY_TLS_MS" "ms" "budget" "200" "$(ratio "$READY_TLS_MS" 200)" "-"
echo "openssl speed rsa2048, one process: $SIGN1 sign/s, $VERIFY1 verify/s (the higher of two runs: ${OPENSSL_RUNS[0]}; ${OPENSSL_RUNS[1]})"
echo "JWKS rounds: ${jwks_runs[*]}; nginx rounds: ${nginx_runs[*]}"
echo "issuance: $ANSWERED answers, $NON2XX not 2xx, $ROWS rows written"
echo "PostgreSQL on loopback without TLS (sslmode=disable), service logging at ${RUST_LOG} as JSON to a file"
