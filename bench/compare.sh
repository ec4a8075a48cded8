#!/usr/bin/env bash
# Holds this checkout against a named older build, in interleaved rounds: each round measures both
# builds seconds apart (in alternating order), so that the machine's drift (neighbours, thermal,
# a shared core) cancels in their ratio, and prints the ratio of each round and their median.
# Beside the builds, each round measures the baselines the targets name: `openssl speed -multi 2
# rsa2048` sign, nginx (2 workers) serving the same JWKS bytes, and the Node peer (oidc-provider 9
# issuing RS256 JWTs) when npm and its registry answer. Not part of CI.
#
#   bench/compare.sh 0deabcf                  # this checkout against commit 0deabcf, 5 rounds
#   COMPARE_ROUNDS=3 COMPARE_SECONDS=5 bench/compare.sh 2332aed
#   COMPARE_PEER=0 bench/compare.sh 0deabcf   # without the Node peer
#   COMPARE_NEW=/path/to/access-tokens bench/compare.sh 0deabcf   # another build as "new"
#   COMPARE_SQL_NEW="drop index audit_events_org_owner" bench/compare.sh HEAD
#                           # SQL run on the new build's database once it is ready: what a feature
#                           # costs, turned off (COMPARE_SQL_OLD for the old build's)
#
# The older commit is checked out with `git worktree` under target/compare/<commit>/ and built
# there in release (its own target directory, kept for the next run: a cold build takes about 5
# minutes on 2 cores). Each build runs on a fresh PostgreSQL database with a local trusted issuer,
# the rate limits off, logging at info as JSON to a file, as bench/run.sh runs it. Measured per
# build and round: issuance (POST /v1/access-tokens, wrk, 32 connections), the rows written, the
# CPU per token of the service (all its threads) and of PostgreSQL (every postgres process, the
# ones that exited included: run it on a machine where nothing else uses that server), what the
# service's connections waited on (pg_stat_activity sampled every 0.1 s: share of the samples
# per wait event), and JWKS (64 connections). Everything listens on 127.0.0.1 only.
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

OLD_REF=${1:?usage: bench/compare.sh <older commit> (see the header of this script)}
ROUNDS="${COMPARE_ROUNDS:-5}"
SECS="${COMPARE_SECONDS:-10}"
CONNECTIONS=32
PORT=18500 ISSUER_PORT=18501 NGINX_PORT=18502 PEER_PORT=18504
WORK=$(mktemp -d)
# nginx's workers (another user when started as root) read the JWKS from here.
chmod 755 "$WORK"
PIDS=()
SERVICE_PID=""
cleanup() {
    [ -n "$SERVICE_PID" ] && kill "$SERVICE_PID" 2>/dev/null
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ -n "${PG_ADMIN_URL:-}" ]; then
        for db in at_cmp_old at_cmp_new; do
            psql "$PG_ADMIN_URL" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
        done
    fi
    stop_throwaway_postgres
    rm -rf "$WORK"
}
trap cleanup EXIT

missing=()
for tool in wrk nginx python3 openssl curl; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
[ "${#missing[@]}" -gt 0 ] && install_packages "${missing[@]}"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for port in $PORT $ISSUER_PORT $NGINX_PORT $PEER_PORT; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        log "port $port is in use (a run left behind?); free it first"
        exit 1
    fi
done

# --- the two builds ----------------------------------------------------------------------------
OLD_SHA=$(git rev-parse --verify "$OLD_REF^{commit}")
OLD_NAME=$(git rev-parse --short "$OLD_SHA")
OLD_DIR="$PWD/target/compare/$OLD_NAME"
OLD_BIN="$OLD_DIR/target/release/access-tokens"
if [ ! -x "$OLD_BIN" ]; then
    if [ ! -d "$OLD_DIR/src" ]; then
        mkdir -p "$OLD_DIR"
        git worktree add --detach "$OLD_DIR/src" "$OLD_SHA" >&2
    fi
    # Under this checkout, Cargo would take an old single-package manifest for a member of this
    # workspace: such a manifest gets an empty workspace table of its own.
    grep -q '^\[workspace\]' "$OLD_DIR/src/Cargo.toml" || printf '\n[workspace]\n' >>"$OLD_DIR/src/Cargo.toml"
    log "building $OLD_NAME in release under $OLD_DIR (kept for the next run)..."
    (cd "$OLD_DIR/src" && CARGO_TARGET_DIR="$OLD_DIR/target" cargo build --release --locked --bin access-tokens >&2)
fi
NEW_BIN=$(bench_binary "${COMPARE_NEW:-}")
# A build of target/compare/<name>/ is named <name>; another path by itself.
NEW_NAME=""
if [ -n "${COMPARE_NEW:-}" ]; then
    NEW_NAME=$(printf '%s' "$COMPARE_NEW" | sed -nE 's#(^|.*/)target/compare/([^/]+)/.*#\2#p')
    NEW_NAME=${NEW_NAME:-$COMPARE_NEW}
fi
NEW_NAME=${NEW_NAME:-$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src crates Cargo.toml Cargo.lock || echo +changes)}

# --- PostgreSQL, a trusted issuer --------------------------------------------------------------
export PGOPTIONS="-c client_min_messages=warning"
ensure_postgres
start_issuer "$WORK/issuer" "$ISSUER_PORT"
PIDS+=("$ISSUER_PID")
export KEY_ENCRYPTION_KEY
KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export LISTEN_ADDR="127.0.0.1:$PORT" TRUSTED_ISSUERS="$ISSUER" LOG_FORMAT=json RUST_LOG=info
export RATE_LIMIT_CREATE_PER_ORG=0 RATE_LIMIT_CREATE_PER_CALLER=0 RATE_LIMIT_CHANGE_PER_ORG=0 \
    RATE_LIMIT_CHANGE_PER_CALLER=0 RATE_LIMIT_FAILED_AUTH_PER_ADDRESS=0
BASE="http://127.0.0.1:$PORT"
TICKS=$(getconf CLK_TCK)

# CPU ticks of one process and its threads.
ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The machine's CPU ticks since boot, all cores: busy, then idle (iowait included; time stolen by
# a hypervisor is neither).
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }
# CPU ticks of every postgres process, with the exited children each has reaped (the postmaster's
# backends): a backend that ends between two readings is still counted.
postgres_ticks() {
    local total=0 pid
    for pid in $(pgrep -x postgres || true); do
        total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
wait_for "$ISSUER/.well-known/jwks.json"

# measure LABEL BIN: one build's issuance and JWKS on a fresh database; appends to $WORK/results.
measure() {
    local label=$1 bin=$2 db="at_cmp_$1"
    psql "$PG_ADMIN_URL" -qc "drop database if exists $db with (force)" >/dev/null
    psql "$PG_ADMIN_URL" -qc "create database $db" >/dev/null
    DATABASE_URL=$(database_url "$db") "$bin" serve >"$WORK/service-$label.log" 2>&1 &
    SERVICE_PID=$!
    wait_for "$BASE/health/ready"
    local sql_var="COMPARE_SQL_${label^^}"
    if [ -n "${!sql_var:-}" ]; then
        psql "$(database_url "$db")" -v ON_ERROR_STOP=1 -qc "${!sql_var}" >/dev/null
    fi
    local caller
    caller=$(curl -sf -X POST "$BASE/v1/access-tokens" -H "Authorization: Bearer $(issuer_token 1 bench)" \
        -H 'Content-Type: application/json' -d '{"name":"bench caller"}' | json_field token)
    # Warm-up: connections opened, caches filled.
    CALLER=$caller wrk -t2 -c"$CONNECTIONS" -d2s -s bench/lua/create.lua "$BASE/v1/access-tokens" >/dev/null
    local rows_before service_before pg_before
    rows_before=$(psql "$(database_url "$db")" -Atc "select count(*) from access_tokens")
    printf '%s\n' "select coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, 'running') from pg_stat_activity where datname = '$db' and backend_type = 'client backend' and state <> 'idle' and pid <> pg_backend_pid() \\watch 0.1" \
        | psql "$PG_ADMIN_URL" -Atq >"$WORK/waits-$label.txt" 2>/dev/null &
    local sampler=$!
    service_before=$(ticks_of "$SERVICE_PID")
    pg_before=$(postgres_ticks)
    read -r -a cpu_before < <(machine_ticks)
    CALLER=$caller wrk -t2 -c"$CONNECTIONS" -d"${SECS}s" -s bench/lua/create.lua "$BASE/v1/access-tokens" >"$WORK/issue-$label.txt"
    local service_ticks=$(($(ticks_of "$SERVICE_PID") - service_before))
    local pg_ticks=$(($(postgres_ticks) - pg_before))
    local cpu_after busy_ticks idle_ticks
    read -r -a cpu_after < <(machine_ticks)
    busy_ticks=$((cpu_after[0] - cpu_before[0]))
    idle_ticks=$((cpu_after[1] - cpu_before[1]))
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    local rows=$(($(psql "$(database_url "$db")" -Atc "select count(*) from access_tokens") - rows_before))
    wrk -t2 -c64 -d"${SECS}s" "$BASE/v1/access-tokens/.well-known/jwks.json" >"$WORK/jwks-$label.txt"
    curl -sf "$BASE/v1/access-tokens/.well-known/jwks.json" -o "$WORK/jwks.json"
    chmod 644 "$WORK/jwks.json"
    kill -TERM "$SERVICE_PID"; wait "$SERVICE_PID" 2>/dev/null || true
    SERVICE_PID=""
    psql "$PG_ADMIN_URL" -qc "drop database if exists $db with (force)" >/dev/null
    local non2xx
    non2xx=$(awk '/Non-2xx/ {print $5}' "$WORK/issue-$label.txt")
    python3 - "$label" "$(rate "$WORK/issue-$label.txt")" "${non2xx:-0}" "$rows" "$service_ticks" "$pg_ticks" \
        "$TICKS" "$(rate "$WORK/jwks-$label.txt")" "$WORK/waits-$label.txt" "$busy_ticks" "$idle_ticks" \
        >>"$WORK/results" <<'PY'
import collections, json, sys
label, issue, non2xx, rows, service, pg, ticks, jwks, waits, busy, idle = sys.argv[1:]
rows = int(rows)
samples = [l.strip() for l in open(waits) if ":" in l]
counts = collections.Counter(samples)
print(json.dumps({
    "label": label, "issue": float(issue), "non2xx": int(non2xx), "rows": rows,
    "service_us": int(service) / int(ticks) * 1e6 / max(rows, 1),
    "postgres_us": int(pg) / int(ticks) * 1e6 / max(rows, 1),
    "machine_us": int(busy) / int(ticks) * 1e6 / max(rows, 1),
    "idle": int(idle) / max(int(busy) + int(idle), 1),
    "jwks": float(jwks),
    "waits": {k: v / max(len(samples), 1) for k, v in counts.most_common(6)},
    "samples": len(samples),
}))
PY
}

# --- baselines ---------------------------------------------------------------------------------
openssl_sign() { openssl speed -seconds 5 -multi 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}'; }
nginx_jwks() {
    nginx_start 2
    wrk -t2 -c64 -d"${SECS}s" "http://127.0.0.1:$NGINX_PORT/jwks.json" >"$WORK/nginx.txt"
    nginx_stop
    rate "$WORK/nginx.txt"
}
PEER_UP=""
if [ "${COMPARE_PEER:-1}" != 0 ] && command -v npm >/dev/null 2>&1; then
    log "peer: installing oidc-provider..."
    if (cd bench/peer && npm install --silent --no-audit --no-fund >/dev/null 2>&1); then
        PEER_PORT=$PEER_PORT node bench/peer/server.js >"$WORK/peer.log" 2>&1 &
        PIDS+=($!)
        wait_for "http://127.0.0.1:$PEER_PORT/jwks" && PEER_UP=1
        export PEER_BASIC
        PEER_BASIC=$(printf 'bench:bench-secret' | base64)
    else
        log "npm install of oidc-provider failed; the peer is left out"
    fi
fi
peer_issue() {
    wrk -t2 -c"$CONNECTIONS" -d"${SECS}s" -s bench/lua/peer_token.lua "http://127.0.0.1:$PEER_PORT/token" >"$WORK/peer.txt"
    rate "$WORK/peer.txt"
}

# --- the rounds --------------------------------------------------------------------------------
log "comparing $NEW_NAME (new) with $OLD_NAME (old): $ROUNDS rounds of ${SECS}s loads"
: >"$WORK/results"
: >"$WORK/baselines"
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="old new"; else order="new old"; fi
    for label in $order; do
        if [ "$label" = old ]; then bin=$OLD_BIN; else bin=$NEW_BIN; fi
        log "round $round: $label..."
        measure "$label" "$bin"
    done
    sign=$(openssl_sign)
    nginx=$(nginx_jwks)
    peer=""
    [ -n "$PEER_UP" ] && peer=$(peer_issue)
    printf '{"sign": %s, "nginx": %s, "peer": %s}\n' "$sign" "$nginx" "${peer:-null}" >>"$WORK/baselines"
done

python3 - "$WORK/results" "$WORK/baselines" "$OLD_NAME" "$NEW_NAME" "$SECS" <<'PY'
import json, statistics, sys
results = [json.loads(l) for l in open(sys.argv[1])]
baselines = [json.loads(l) for l in open(sys.argv[2])]
old_name, new_name, secs = sys.argv[3:]
old = [r for r in results if r["label"] == "old"]
new = [r for r in results if r["label"] == "new"]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def ratios(a, b):
    return [x / y for x, y in zip(a, b) if x and y]
print(f"\nbench/compare.sh: {new_name} (new) against {old_name} (old), {len(baselines)} interleaved rounds, {secs}s loads")
print(f"{'round':<6} {'issuance old':>13} {'new':>9} {'new/old':>8}  {'JWKS old':>9} {'new':>9}  {'sign -multi 2':>13} {'nginx 2w':>9} {'peer':>7}")
for i, (o, n, b) in enumerate(zip(old, new, baselines), 1):
    peer = f"{b['peer']:.0f}" if b["peer"] else "-"
    print(f"{i:<6} {o['issue']:>13.0f} {n['issue']:>9.0f} {n['issue'] / o['issue']:>8.2f}  {o['jwks']:>9.0f} {n['jwks']:>9.0f}  {b['sign']:>13.0f} {b['nginx']:>9.0f} {peer:>7}")
issue_ratio = ratios([n["issue"] for n in new], [o["issue"] for o in old])
print(f"\nissuance new/old: median {med(issue_ratio):.2f} (rounds {', '.join(f'{r:.2f}' for r in issue_ratio)})")
print(f"JWKS new/old: median {med(ratios([n['jwks'] for n in new], [o['jwks'] for o in old])):.2f}")
for name, runs in (("old", old), ("new", new)):
    sign = ratios([r["issue"] for r in runs], [b["sign"] for b in baselines])
    peer = ratios([r["issue"] for r in runs], [b["peer"] for b in baselines])
    nginx = ratios([r["jwks"] for r in runs], [b["nginx"] for b in baselines])
    line = f"{name}: issuance/openssl sign -multi 2 median {med(sign):.2f}"
    if peer:
        line += f", issuance/peer median {med(peer):.2f}"
    line += f", JWKS/nginx (2 workers) median {med(nginx):.2f}"
    print(line)
for name, runs in (("old", old), ("new", new)):
    print(f"{name}: CPU per token: service median {med([r['service_us'] for r in runs]):.0f} us, "
          f"PostgreSQL median {med([r['postgres_us'] for r in runs]):.0f} us, "
          f"the machine (all processes) median {med([r['machine_us'] for r in runs]):.0f} us; "
          f"the machine idle {med([r['idle'] for r in runs]):.0%} of the load; "
          f"rows written {sum(r['rows'] for r in runs)}, not 2xx {sum(r['non2xx'] for r in runs)}")
    waits = {}
    for r in runs:
        for k, v in r["waits"].items():
            waits.setdefault(k, []).append(v)
    top = sorted(((statistics.mean(v + [0] * (len(runs) - len(v))), k) for k, v in waits.items()), reverse=True)[:6]
    print(f"{name}: the service's connections (share of samples, 0.1 s apart): " + ", ".join(f"{k} {v:.0%}" for v, k in top))
PY
