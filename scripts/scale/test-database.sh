#!/usr/bin/env bash
# PostgreSQL at scale, on loopback: a primary, PgBouncer in transaction mode in front of it, and a
# streaming standby for reads; then the checks, one line each (`ok   <check>` or
# `FAIL <check>: why`), and everything it started is stopped and removed. Exits non-zero when any
# check fails. Installs what it needs when run as root (Debian's postgresql and pgbouncer).
#
#   scripts/scale/test-database.sh                 # the whole PostgreSQL suite through PgBouncer, then the service's own checks
#   SCALE_SUITE_FILTER=standby:: scripts/scale/test-database.sh   # a part of the suite (cargo test filter)
#
# The checks:
#   - the integration suite on PostgreSQL (tests/api, TEST_STORE=postgres) with the service's pool going through
#     PgBouncer (DATABASE_POOLER=transaction), its listener and migrations direct to the primary,
#     and its reads on the standby (TEST_PGBOUNCER_URL, TEST_STANDBY_URL: see tests/api/helpers.rs);
#   - the binary, configured the same way: a caller that creates a token and lists at once sees it,
#     with the reads served by the standby;
#   - the standby lagging (its replay paused): a creation is still listed at once, by the primary;
#   - the standby stopped: list, get, audit events and policy still answer 200, from the primary.
# Ports (SCALE_PRIMARY_PORT, SCALE_STANDBY_PORT, SCALE_PGBOUNCER_PORT): 54342, 54352, 64342.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=lib/postgres.sh
source scripts/scale/lib/postgres.sh

PRIMARY_PORT="${SCALE_PRIMARY_PORT:-54342}"
STANDBY_PORT="${SCALE_STANDBY_PORT:-54352}"
BOUNCER_PORT="${SCALE_PGBOUNCER_PORT:-64342}"
SERVICE_PORT="${SCALE_SERVICE_PORT:-18642}"
SERVICE_PID=""
FAILED=0

ok() { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s: %s\n' "$1" "$2"; FAILED=1; }

cleanup() {
    if [ -n "$SERVICE_PID" ]; then
        kill "$SERVICE_PID" 2>/dev/null || true
        wait "$SERVICE_PID" 2>/dev/null || true
    fi
    scale_stop_all
    [ -n "${SCALE_WORK:-}" ] && rm -rf "$SCALE_WORK"
}
trap cleanup EXIT

install_postgres_tools
install_pgbouncer
command -v curl >/dev/null 2>&1 || install_packages curl
for port in "$PRIMARY_PORT" "$STANDBY_PORT" "$BOUNCER_PORT" "$SERVICE_PORT"; do
    if port_taken "$port"; then
        log "127.0.0.1:$port is in use: stop what listens there, or choose other SCALE_*_PORT values"
        exit 1
    fi
done
scale_workdir

log "Starting the primary on 127.0.0.1:$PRIMARY_PORT, its standby on $STANDBY_PORT, PgBouncer on $BOUNCER_PORT"
start_cluster primary "$PRIMARY_PORT" -c fsync=off
start_standby standby "$STANDBY_PORT" "$PRIMARY_PORT"
start_pgbouncer "$BOUNCER_PORT" "$PRIMARY_PORT"

PRIMARY="postgres://postgres@127.0.0.1:$PRIMARY_PORT"
STANDBY="postgres://postgres@127.0.0.1:$STANDBY_PORT"
BOUNCER="postgres://postgres@127.0.0.1:$BOUNCER_PORT"
NO_TLS="sslmode=disable"

# The setup itself: streaming replication, and PgBouncer pooling by transaction.
streaming=$(psql "$PRIMARY/postgres?$NO_TLS" -Atqc "select count(*) from pg_stat_replication where state = 'streaming'")
recovering=$(psql "$STANDBY/postgres?$NO_TLS" -Atqc "select pg_is_in_recovery()")
if [ "$streaming" = 1 ] && [ "$recovering" = t ]; then
    ok "the standby on $STANDBY_PORT streams from the primary on $PRIMARY_PORT (pg_basebackup, primary_conninfo)"
else
    fail "streaming standby" "pg_stat_replication streaming=$streaming, standby in recovery=$recovering"
fi
mode=$(psql "$BOUNCER/pgbouncer?$NO_TLS" -Atqc "show config" | awk -F'|' '$1 == "pool_mode" {print $2}')
if [ "$mode" = transaction ]; then
    ok "PgBouncer $(pgbouncer --version | head -n 1 | awk '{print $2}') on $BOUNCER_PORT pools by transaction"
else
    fail "PgBouncer" "pool_mode is '$mode', not transaction"
fi

# 1. The integration suite on PostgreSQL through PgBouncer, reads on the standby.
sweep() {
    psql "$PRIMARY/postgres?$NO_TLS" -Atqc "select datname from pg_database where datname like 'at\_test\_%'" |
        while read -r db; do psql "$PRIMARY/postgres?$NO_TLS" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true; done
}
suite_log="$SCALE_WORK/suite.log"
log "Running the PostgreSQL suite through PgBouncer (log: the last lines are shown on failure)..."
if RUST_BACKTRACE=0 TEST_DATABASE_URL="$PRIMARY/postgres?$NO_TLS" \
    TEST_PGBOUNCER_URL="$BOUNCER/postgres?$NO_TLS" \
    TEST_STANDBY_URL="$STANDBY/postgres?$NO_TLS" \
    TEST_STORE=postgres cargo test --locked --all-features --test api -- ${SCALE_SUITE_FILTER:-} >"$suite_log" 2>&1; then
    summary=$(grep -E '^test result:' "$suite_log" | tail -n 1)
    ok "the PostgreSQL suite through PgBouncer in transaction mode, listener and migrations direct, reads on the standby (${summary#test result: })"
else
    grep -A 4 'panicked at' "$suite_log" | head -n 60 >&2
    fail "the PostgreSQL suite through PgBouncer" "$(grep -E '^test result:|^    [a-z_:]+$' "$suite_log" | tr '\n' ' ' | cut -c1-400)"
fi
sweep

# 2. The binary, as an operator would run it: pool through PgBouncer, listener direct, reads on the standby.
psql "$PRIMARY/postgres?$NO_TLS" -qc "create database at_scale" >/dev/null
cargo build --locked --workspace --all-features --bin access-tokens >&2
BIN=target/debug/access-tokens
export DATABASE_URL="$BOUNCER/at_scale?$NO_TLS"
export DATABASE_LISTEN_URL="$PRIMARY/at_scale?$NO_TLS"
export DATABASE_READ_URL="$STANDBY/at_scale?$NO_TLS"
export DATABASE_POOLER=transaction
KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export KEY_ENCRYPTION_KEY LISTEN_ADDR="127.0.0.1:$SERVICE_PORT" PUBLIC_URL="http://127.0.0.1:$SERVICE_PORT" RUST_LOG=warn
# No metrics listener: the checks do not read it, and the default port may be another's.
export METRICS_ADDR=
"$BIN" serve >"$SCALE_WORK/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$SERVICE_PORT/health/ready" && break
    sleep 0.1
done
if ! curl -sf -o /dev/null "http://127.0.0.1:$SERVICE_PORT/health/ready"; then
    fail "the service starts through PgBouncer with reads on the standby" "not ready after 60 s: $(tail -n 3 "$SCALE_WORK/service.log")"
    exit 1
fi
CALLER=$("$BIN" dev-token --org 1 --user scale --role owner --allow-production 2>/dev/null)
API="http://127.0.0.1:$SERVICE_PORT/v1/access-tokens"
call() { curl -sS -o "$SCALE_WORK/body" -w '%{http_code}' -H "Authorization: Bearer $CALLER" "$@"; }
id_of() { sed -E 's/.*"id":"([^"]+)".*/\1/' "$SCALE_WORK/body"; }
# Creates a token named $1 and lists at once: fails unless it was created (its id in $id) and the
# list's first item. Every check below is of a caller that creates and lists right after.
create_then_list() {
    local status
    status=$(call -X POST -H 'Content-Type: application/json' -d "{\"name\": \"$1\"}" "$API")
    [ "$status" = 201 ] || return 1
    id=$(id_of)
    status=$(call "$API?limit=1")
    [ "$status" = 200 ] && grep -q "\"$id\"" "$SCALE_WORK/body"
}

missed=0
rounds=25
for i in $(seq 1 "$rounds"); do
    create_then_list "read back $i" || missed=$((missed + 1))
done
standby_connections=$(psql "$STANDBY/postgres?$NO_TLS" -Atqc "select count(*) from pg_stat_activity where datname = 'at_scale'")
if [ "$missed" = 0 ] && [ "${standby_connections:-0}" -gt 0 ]; then
    ok "read-your-writes through the standby: $rounds creations each listed at once ($standby_connections service connections on the standby)"
else
    fail "read-your-writes through the standby" "$missed of $rounds creations not listed at once; $standby_connections service connections on the standby"
fi

# 2b. The standby lags (its replay paused): a creation is still listed at once, by the primary
# once the standby has had its wait (store::standby::REPLAY_WAIT) to catch up, and the standby
# itself lacks the row until its replay resumes.
on_standby() { psql "$STANDBY/$1?$NO_TLS" -Atqc "$2"; }
on_standby postgres "select pg_wal_replay_pause()" >/dev/null
for _ in $(seq 1 100); do
    [ "$(on_standby postgres "select pg_get_wal_replay_pause_state()")" = paused ] && break
    sleep 0.1
done
missed=0
unseen=0
lagging_rounds=5
for i in $(seq 1 "$lagging_rounds"); do
    id=""
    create_then_list "while lagging $i" || missed=$((missed + 1))
    if [ -n "$id" ] && [ "$(on_standby at_scale "select count(*) from access_tokens where id = '$id'")" = 0 ]; then
        unseen=$((unseen + 1))
    fi
done
on_standby postgres "select pg_wal_replay_resume()" >/dev/null
caught_up=false
for _ in $(seq 1 300); do
    if [ "$(on_standby at_scale "select count(*) from access_tokens where id = '$id'")" = 1 ]; then
        caught_up=true
        break
    fi
    sleep 0.1
done
if [ "$missed" = 0 ] && [ "$unseen" = "$lagging_rounds" ] && [ "$caught_up" = true ]; then
    ok "standby lagging (replay paused): $lagging_rounds creations each listed at once from the primary, none yet on the standby; it caught up once resumed"
else
    fail "standby lagging" "$missed of $lagging_rounds creations not listed at once; $unseen of them absent from the paused standby; caught up after resume: $caught_up"
fi

# 3. The standby stops: reads are served by the primary, never a 5xx.
stop_cluster "$SCALE_WORK/standby"
status=$(call -X POST -H 'Content-Type: application/json' -d '{"name": "after the standby"}' "$API")
id=$(id_of)
answers=""
for path in "?limit=5" "/$id" "/audit-events?token_id=$id" "/policy"; do
    status=$(call "$API$path")
    if [ "$path" = "?limit=5" ] && ! grep -q "\"$id\"" "$SCALE_WORK/body"; then status="$status (without the new token)"; fi
    answers="$answers $path=$status"
done
if [ "$answers" = " ?limit=5=200 /$id=200 /audit-events?token_id=$id=200 /policy=200" ]; then
    ok "standby stopped: list, get, audit events and policy answer 200 from the primary"
else
    fail "standby stopped" "answers:$answers"
fi
if grep -q '"level":"ERROR"\|panicked' "$SCALE_WORK/service.log"; then
    fail "the service's log" "$(grep -m 3 '"level":"ERROR"\|panicked' "$SCALE_WORK/service.log")"
fi

exit "$FAILED"
