#!/usr/bin/env bash
# Three replicas of the service on one PostgreSQL database behind HAProxy, under a load of creates,
# lists, introspections and revokes through the balancer, while one replica is SIGKILLed and
# restarted, then another is stopped with SIGTERM (SHUTDOWN_DRAIN=2) and restarted. Prints one line
# per check (`ok   <check>` or `FAIL <check>: why`) and exits non-zero when any fails:
#   - every token answered 201 has its row afterwards, and no id was answered or stored twice;
#   - every revoke answered 200 is refused by each of the three replicas, asked directly by
#     introspection, within 1 s of the revoke's answer (the worst delay is printed);
#   - the only errors (non-2xx answers, connection errors) are for requests in flight on the killed
#     replica: at most the load's concurrency, none sent after it was reaped, none after HAProxy
#     marked it DOWN (to the end of the load, the restart included);
#   - the restarted replica refuses every token revoked while it was down from its first answer;
#   - HAProxy's health checks (`GET /health/ready`) take the killed replica out (DOWN in
#     `show servers state`) and back (UP after the restart), and it serves requests again;
#   - a rolling restart: the replica sent SIGTERM is marked DOWN by HAProxy while its process still
#     runs (it drains: readiness 503, requests still served), then exits 0 on its own; no request
#     through the balancer fails (no non-2xx answer, no connection error) from the SIGTERM to the
#     end of the load; it is marked UP again after its restart and serves, and refuses every token
#     revoked while it was stopped from its first answer.
# Nothing waits a fixed time: each step waits for its condition, polled, up to BALANCER_BOUND.
#
# Runs as root on a fresh Debian machine with Rust (installs haproxy, python3 and curl with
# apt-get when missing; scripts/lib/postgres.sh installs PostgreSQL the same way). Everything
# listens on 127.0.0.1 only: HAProxy on BALANCER_PORT (18443), the replicas on 18451-18453, a
# private PostgreSQL cluster (its own initdb in a temporary folder) on BALANCER_PG_PORT (54343).
# Everything it started is stopped and removed on exit.
#
#   scripts/scale/test-balancer.sh
#   BALANCER_CLIENTS=64 BALANCER_PHASE_ROWS=1000 scripts/scale/test-balancer.sh
#   BALANCER_KEEP=/some/folder scripts/scale/test-balancer.sh   # keeps the logs, the load's report, the times
#   BALANCER_DRAIN=10 scripts/scale/test-balancer.sh             # the replicas' SHUTDOWN_DRAIN (default 5: HAProxy needs two failed checks, 0.5 s, to take a replica out; the margin is for a loaded machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/postgres.sh
source scripts/lib/postgres.sh

FRONT_PORT="${BALANCER_PORT:-18443}"
REPLICA_PORTS=(18451 18452 18453)
CLIENTS="${BALANCER_CLIENTS:-32}"
# Tokens created in each phase: before the kill, while the replica is down, after it is back; while
# the replica sent SIGTERM is stopped, after it is back.
PHASE_ROWS="${BALANCER_PHASE_ROWS:-500}"
# The longest any condition is waited for, in seconds (generous: a busy machine is slow, never wrong).
BOUND="${BALANCER_BOUND:-180}"
KILLED=2
# The replica stopped with SIGTERM and restarted, after the killed one is back.
DRAINED=3
# How long a replica told to stop goes on serving with its readiness failing: HAProxy's checks
# (every 250 ms, then 100 ms, out after two failures) take it out well within it.
DRAIN="${BALANCER_DRAIN:-5}"
FRONT="http://127.0.0.1:$FRONT_PORT"
PG_THROWAWAY_PORT="${BALANCER_PG_PORT:-54343}"

WORK=$(mktemp -d)
# The cluster's folder belongs to the postgres user, so it is not inside WORK (root's, 0700).
PG_THROWAWAY_DIR=$(mktemp -d "${TMPDIR:-/tmp}/balancer-postgres.XXXXXX")
REPLICA_PIDS=("" "" "" "")
HAPROXY_PID=""
LOAD_PID=""
FAILED=0

cleanup() {
    local pid
    for pid in "$LOAD_PID" "$HAPROXY_PID" "${REPLICA_PIDS[@]}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for pid in "$LOAD_PID" "$HAPROXY_PID" "${REPLICA_PIDS[@]}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    stop_throwaway_postgres
    if [ -n "${BALANCER_KEEP:-}" ]; then
        mkdir -p "$BALANCER_KEEP"
        cp -a "$WORK"/. "$BALANCER_KEEP/" 2>/dev/null || true
        rm -f "$BALANCER_KEEP/haproxy.sock"
    fi
    rm -rf "$WORK" "$PG_THROWAWAY_DIR"
}
trap cleanup EXIT

ok() { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s: %s\n' "$1" "$2"; FAILED=1; }
die() { log "balancer: $*"; exit 1; }
now_ms() { date +%s%3N; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f s", (b - a) / 1000 }'; }

# What the machine lacks, from Debian.
needed=()
command -v haproxy >/dev/null 2>&1 || needed+=(haproxy)
command -v python3 >/dev/null 2>&1 || needed+=(python3)
command -v curl >/dev/null 2>&1 || needed+=(curl)
if [ "${#needed[@]}" -gt 0 ]; then
    install_packages "${needed[@]}" || die "cannot install ${needed[*]}"
fi

log "building the service and the load generator (release)..."
cargo build --release --locked --bin access-tokens --example load_generator >&2

# A private cluster: never someone else's server (and its databases).
install_postgres_tools
if answers "postgres://postgres@127.0.0.1:$PG_THROWAWAY_PORT/postgres?sslmode=disable"; then
    die "a PostgreSQL server already answers on 127.0.0.1:$PG_THROWAWAY_PORT: stop it or set BALANCER_PG_PORT"
fi
start_throwaway_postgres
answers "$PG_ADMIN_URL" || die "the private PostgreSQL cluster does not answer; see $PG_THROWAWAY_DIR/server.log"
psql "$PG_ADMIN_URL" -qc "create database access_tokens" >/dev/null
DATABASE_URL=$(database_url access_tokens)

# What every replica shares: the database, the key-encryption key (the signing keys are stored
# sealed with it, so all three publish and sign with the same keys), the public URL (the issuer of
# every token is derived from it: the balancer's) and the introspection client. Rate limits are
# counted per replica and per client address, which behind a balancer is the balancer's: off.
KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
INTROSPECTION_CLIENT="balancer:$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
export DATABASE_URL KEY_ENCRYPTION_KEY INTROSPECTION_CLIENTS="$INTROSPECTION_CLIENT"
export PUBLIC_URL="$FRONT" LOG_FORMAT=json RUST_LOG=warn SHUTDOWN_DRAIN="$DRAIN"
export RATE_LIMIT_CREATE_PER_ORG=0 RATE_LIMIT_CREATE_PER_CALLER=0 RATE_LIMIT_CHANGE_PER_ORG=0 RATE_LIMIT_CHANGE_PER_CALLER=0 RATE_LIMIT_FAILED_AUTH_PER_ADDRESS=0

start_replica() {
    local n="$1"
    local port="${REPLICA_PORTS[$((n - 1))]}"
    # Each replica its own metrics listener, 1000 above its port (the default one port would be
    # taken by the first).
    LISTEN_ADDR="127.0.0.1:$port" METRICS_ADDR="127.0.0.1:$((port + 1000))" \
        target/release/access-tokens serve \
        >>"$WORK/replica$n.log" 2>&1 &
    REPLICA_PIDS[n]=$!
}

# restart_replica N WHAT AFTER: starts replica N again, checks that HAProxy marks it UP and sends it
# requests (WHAT names it in the checks), then waits for PHASE_ROWS more tokens (AFTER names that
# phase). Sets RESTARTED_AT, and UP_SEEN_AT (empty when HAProxy never marked it UP).
restart_replica() {
    local n="$1" what="$2" after="$3" served rows_then
    RESTARTED_AT=$(now_ms)
    start_replica "$n"
    UP_SEEN_AT=""
    if wait_for "HAProxy to mark replica $n UP" server_is "$n" UP; then
        UP_SEEN_AT=$(now_ms)
        ok "HAProxy marked $what UP, $(since "$RESTARTED_AT" "$UP_SEEN_AT") after its restart"
    else
        fail "HAProxy marks $what UP" "still $(server_state "$n") ${BOUND}s after the restart"
    fi
    served=$(server_stat "$n" stot)
    rows_then=$(rows)
    if wait_for "replica $n to serve 100 requests" served_at_least "$n" "$((served + 100))"; then
        ok "$what serves requests through the balancer again"
    else
        fail "$what serves requests again" "HAProxy sent it $(($(server_stat "$n" stot) - served)) in ${BOUND}s"
    fi
    wait_for "$PHASE_ROWS tokens $after" rows_at_least "$((rows_then + PHASE_ROWS))" ||
        die "the load stopped $after"
}

# Polls `$2...` every 50 ms until it succeeds, at most BOUND seconds; $1 says what is awaited.
wait_for() {
    local what="$1" deadline=$(($(date +%s) + BOUND))
    shift
    until "$@"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "balancer: waited ${BOUND}s for $what"
            return 1
        fi
        sleep 0.05
    done
}

replica_ready() { curl -fs -o /dev/null "http://127.0.0.1:${REPLICA_PORTS[$(($1 - 1))]}/health/ready"; }

# The three start at once on the empty database: one creates the keys, the others load them.
for n in 1 2 3; do start_replica "$n"; done
for n in 1 2 3; do
    wait_for "replica $n to be ready" replica_ready "$n" || { cat "$WORK/replica$n.log" >&2; die "replica $n never became ready"; }
done

# HAProxy: health checks on the readiness endpoint every 250 ms (100 ms while a state changes);
# two failures take a replica out, two successes bring it back. A request whose connection to a
# replica fails (refused: the replica is gone) is retried on another replica (retries with
# redispatch on every retry). A request that was sent and got no answer at all (the replica died
# with it) is retried too when repeating it is harmless: GET, DELETE (a second revoke answers 200
# and records nothing) and introspection; any other POST never is (a create may have been written,
# and a second one would make a second token). Each request gets a connection of its own to the
# replica (http-server-close; the client's connection to HAProxy stays open): a kept-alive
# connection to a replica that has just died would take a create and lose it, where a new
# connection is refused and retried elsewhere.
cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 4096
    stats socket $WORK/haproxy.sock mode 600 level admin

defaults
    mode http
    option http-keep-alive
    timeout connect 2s
    timeout client 60s
    # The service ends any request at 30 s itself (408).
    timeout server 35s
    timeout http-keep-alive 10s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend front
    bind 127.0.0.1:$FRONT_PORT
    http-request disable-l7-retry if METH_POST !{ path /v1/access-tokens/introspect }
    default_backend replicas

backend replicas
    balance roundrobin
    option http-server-close
    option httpchk
    http-check send meth GET uri /health/ready ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    default-server check inter 250ms fastinter 100ms downinter 250ms fall 2 rise 2
    server r1 127.0.0.1:${REPLICA_PORTS[0]}
    server r2 127.0.0.1:${REPLICA_PORTS[1]}
    server r3 127.0.0.1:${REPLICA_PORTS[2]}
EOF
haproxy -c -q -f "$WORK/haproxy.cfg" || die "HAProxy refuses its configuration"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!

# One command on HAProxy's stats socket, its answer on stdout.
haproxy_say() {
    python3 - "$WORK/haproxy.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
answer = b""
while chunk := s.recv(65536):
    answer += chunk
sys.stdout.write(answer.decode())
PY
}
# The operational state `show servers state` gives server r$1 (srv_op_state: 0 stopped, 1 starting,
# 2 running, 3 stopping), in HAProxy's words.
server_state() {
    haproxy_say "show servers state replicas" 2>/dev/null |
        awk -v name="r$1" '$4 == name { print ($6 == 0 ? "DOWN" : $6 == 2 ? "UP" : $6 == 1 ? "STARTING" : "STOPPING") }'
}
server_is() { [ "$(server_state "$1")" = "$2" ]; }
# Sends SIGTERM to process $2, the replica behind server r$1, and watches both every 10 ms (one
# interpreter, already running when the signal is sent, so that each look takes a few milliseconds
# however busy the machine) until the process has exited, at most BOUND seconds. Prints four
# numbers: when the signal was sent, when HAProxy was first seen to mark the server DOWN (0: never),
# 1 if the process was still running when looked at just after (0 if not), when the process was
# seen gone (exited, reaped or not; 0: still running after BOUND). Times in ms since the epoch.
term_and_watch() {
    python3 - "$WORK/haproxy.sock" "r$1" "$2" "$BOUND" <<'PY'
import os, signal, socket, sys, time
sock, name, pid, bound = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def say(command):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    s.sendall(command.encode() + b"\n")
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    s.close()
    return answer.decode()
def down():
    for line in say("show servers state replicas").splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[3] == name:
            return fields[5] == "0"
    return False
def running():
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
def now_ms():
    return int(time.time() * 1000)
down(), running()
term_at = now_ms()
os.kill(pid, signal.SIGTERM)
deadline = time.monotonic() + bound
down_at, down_running, exited_at = 0, 0, 0
while time.monotonic() < deadline:
    if not down_at and down():
        down_at = now_ms()
        # Looked at after DOWN was seen: running now, it was running when HAProxy marked it DOWN.
        down_running = int(running())
    if not running():
        exited_at = now_ms()
        break
    time.sleep(0.01)
print(term_at, down_at, down_running, exited_at)
PY
}
# A field of `show stat` (CSV) for server r$1: scur (sessions now), stot (sessions in all); for
# $1 FRONTEND, the frontend's (req_tot: HTTP requests the clients sent through the balancer).
server_stat() {
    local proxy=replicas name="r$1"
    [ "$1" = FRONTEND ] && proxy=front name=FRONTEND
    haproxy_say "show stat" 2>/dev/null | python3 -c '
import csv, sys
rows = csv.reader(line[2:] if line.startswith("# ") else line for line in sys.stdin)
header = next(rows)
for row in rows:
    if len(row) > 1 and row[0] == sys.argv[1] and row[1] == sys.argv[2]:
        print(row[header.index(sys.argv[3])])
' "$proxy" "$name" "$2"
}
rows() { psql "$DATABASE_URL" -Atqc "select count(*) from access_tokens where name like 'load %'"; }
rows_at_least() { [ "$(rows)" -ge "$1" ]; }
served_at_least() { [ "$(server_stat "$1" stot)" -ge "$2" ]; }

all_up() { server_is 1 UP && server_is 2 UP && server_is 3 UP; }
if wait_for "HAProxy to see the three replicas UP" all_up; then
    ok "HAProxy's health checks (GET /health/ready) see the three replicas UP"
else
    fail "HAProxy's health checks see the three replicas UP" "states $(server_state 1) $(server_state 2) $(server_state 3) after ${BOUND}s"
    die "cannot go on without the balancer"
fi

CALLER=$(target/release/access-tokens dev-token --org balancer --user load --role owner --allow-production 2>/dev/null)
REPLICA_ARGS=()
for port in "${REPLICA_PORTS[@]}"; do REPLICA_ARGS+=(--replica "http://127.0.0.1:$port"); done

log "load through $FRONT: $CLIENTS clients; $PHASE_ROWS tokens before the kill, while replica $KILLED is down, after it is back, while replica $DRAINED is stopped (SIGTERM) and after it is back..."
# The load's own bound is long; it is stopped (SIGTERM) once the phases are done.
target/release/examples/load_generator "$FRONT" "$CALLER" "$CLIENTS" 3600 \
    --introspect "$INTROSPECTION_CLIENT" "${REPLICA_ARGS[@]}" >"$WORK/report.json" 2>"$WORK/load.log" &
LOAD_PID=$!

wait_for "$PHASE_ROWS tokens before the kill" rows_at_least "$PHASE_ROWS" || die "the load never created $PHASE_ROWS tokens"
IN_FLIGHT=$(server_stat "$KILLED" scur)
KILL_BEFORE=$(now_ms)
kill -KILL "${REPLICA_PIDS[KILLED]}"
wait "${REPLICA_PIDS[KILLED]}" 2>/dev/null || true
# Reaped: its sockets are closed, so from here a new connection to it is refused. Until then the
# kernel still completed connections on its listening socket, and requests went to the dying replica.
KILL_AFTER=$(now_ms)
REPLICA_PIDS[KILLED]=""
log "replica $KILLED killed (SIGKILL) with $IN_FLIGHT sessions on it per HAProxy"

DOWN_AT=""
if wait_for "HAProxy to mark replica $KILLED DOWN" server_is "$KILLED" DOWN; then
    DOWN_AT=$(now_ms)
    ok "HAProxy marked the killed replica DOWN (show servers state), $(since "$KILL_BEFORE" "$DOWN_AT") after the SIGKILL"
else
    fail "HAProxy marks the killed replica DOWN" "still $(server_state "$KILLED") ${BOUND}s after the SIGKILL"
fi

ROWS_AT_DOWN=$(rows)
wait_for "$PHASE_ROWS tokens while replica $KILLED is down" rows_at_least "$((ROWS_AT_DOWN + PHASE_ROWS))" ||
    die "the load stopped while replica $KILLED was down"

restart_replica "$KILLED" "the restarted replica" "after the restart"
RESTART_AT=$RESTARTED_AT UP_AT=$UP_SEEN_AT

# A rolling restart of replica DRAINED under the same load: SIGTERM, HAProxy takes it out while it
# drains, it exits by itself, it is started again. No client may see an error from here on.
GRACE_AT=$(now_ms)
FRONT_REQUESTS_AT_TERM=$(server_stat FRONTEND req_tot)
SERVED_AT_TERM=$(server_stat "$DRAINED" stot)
DRAINED_PID=${REPLICA_PIDS[DRAINED]}
log "sending SIGTERM to replica $DRAINED (SHUTDOWN_DRAIN=$DRAIN)..."
WATCHED=$(term_and_watch "$DRAINED" "$DRAINED_PID") || die "could not signal and watch replica $DRAINED"
read -r TERM_AT DRAIN_DOWN_AT DOWN_RUNNING EXITED_AT <<<"$WATCHED"
if [ "$DRAIN_DOWN_AT" != 0 ] && [ "$DOWN_RUNNING" = 1 ]; then
    ok "HAProxy marked the replica sent SIGTERM DOWN while its process still ran, $(since "$TERM_AT" "$DRAIN_DOWN_AT") after the SIGTERM (its readiness answered 503; HAProxy sent it $(($(server_stat "$DRAINED" stot) - SERVED_AT_TERM)) requests after the SIGTERM)"
elif [ "$DRAIN_DOWN_AT" != 0 ]; then
    fail "HAProxy marks the replica sent SIGTERM DOWN before its process exits" "DOWN seen $(since "$TERM_AT" "$DRAIN_DOWN_AT") after the SIGTERM, the process gone by then (SHUTDOWN_DRAIN=$DRAIN too short for this machine?)"
elif [ "$EXITED_AT" != 0 ]; then
    fail "HAProxy marks the replica sent SIGTERM DOWN before its process exits" "the process exited $(since "$TERM_AT" "$EXITED_AT") after the SIGTERM, before HAProxy marked it DOWN (it says $(server_state "$DRAINED") now; SHUTDOWN_DRAIN=$DRAIN too short for this machine?)"
else
    fail "HAProxy marks the replica sent SIGTERM DOWN" "still $(server_state "$DRAINED") ${BOUND}s after the SIGTERM"
fi

if [ "$EXITED_AT" != 0 ]; then
    EXIT_STATUS=0
    wait "$DRAINED_PID" 2>/dev/null || EXIT_STATUS=$?
    REPLICA_PIDS[DRAINED]=""
    if [ "$EXIT_STATUS" = 0 ]; then
        ok "the replica sent SIGTERM exited 0 on its own, $(since "$TERM_AT" "$EXITED_AT") after the SIGTERM"
    else
        fail "the replica sent SIGTERM exits 0 on its own" "it exited $EXIT_STATUS, $(since "$TERM_AT" "$EXITED_AT") after the SIGTERM"
    fi
else
    fail "the replica sent SIGTERM exits on its own" "still running ${BOUND}s after the SIGTERM"
    kill -KILL "$DRAINED_PID" 2>/dev/null || true
    wait "$DRAINED_PID" 2>/dev/null || true
    REPLICA_PIDS[DRAINED]=""
    EXITED_AT=$(now_ms)
fi

ROWS_AT_EXIT=$(rows)
wait_for "$PHASE_ROWS tokens while replica $DRAINED is stopped" rows_at_least "$((ROWS_AT_EXIT + PHASE_ROWS))" ||
    die "the load stopped while replica $DRAINED was stopped"

restart_replica "$DRAINED" "the replica restarted after its SIGTERM" "after the second restart"
DRAIN_RESTART_AT=$RESTARTED_AT DRAIN_UP_AT=$UP_SEEN_AT

log "stopping the load (its revocation checks finish first)..."
kill -TERM "$LOAD_PID"
LOAD_STATUS=0
wait "$LOAD_PID" || LOAD_STATUS=$?
LOAD_PID=""
FRONT_REQUESTS_AT_END=$(server_stat FRONTEND req_tot)
[ "$LOAD_STATUS" = 0 ] || { cat "$WORK/load.log" >&2; die "the load generator failed (exit $LOAD_STATUS)"; }

psql "$DATABASE_URL" -Atc "select id from access_tokens where name like 'load %'" >"$WORK/rows"
[ -n "${BALANCER_KEEP:-}" ] &&
    printf '%s\n' "kill_before=$KILL_BEFORE kill_after=$KILL_AFTER down=${DOWN_AT:-} restart=$RESTART_AT up=${UP_AT:-}" \
        "term=$TERM_AT drain_down=${DRAIN_DOWN_AT:-} exited=$EXITED_AT drain_restart=$DRAIN_RESTART_AT drain_up=${DRAIN_UP_AT:-}" >"$WORK/times"
psql "$DATABASE_URL" -Atc "select count(*) from (select id from access_tokens group by id having count(*) > 1) twice" >"$WORK/twice"

python3 - "$WORK/report.json" "$WORK/rows" "$WORK/twice" "$CLIENTS" "$KILL_BEFORE" "$KILL_AFTER" "${DOWN_AT:-0}" "$RESTART_AT" "${UP_AT:-0}" "$KILLED" "$IN_FLIGHT" \
    "$DRAINED" "$GRACE_AT" "$TERM_AT" "$EXITED_AT" "$DRAIN_RESTART_AT" "${DRAIN_UP_AT:-0}" "$((FRONT_REQUESTS_AT_END - FRONT_REQUESTS_AT_TERM))" <<'PY' || FAILED=1
import collections, json, sys

report = json.load(open(sys.argv[1]))
rows = open(sys.argv[2]).read().split()
twice_in_table = int(open(sys.argv[3]).read())
clients = int(sys.argv[4])
kill_before, kill_after, down_at, restart_at, up_at = map(float, sys.argv[5:10])
killed, in_flight = int(sys.argv[10]) - 1, sys.argv[11]
drained = int(sys.argv[12]) - 1
grace_at, term_at, exited_at, drain_restart_at, drain_up_at = map(float, sys.argv[13:18])
grace_requests = int(sys.argv[18])
failed = False

def check(good, what, why):
    global failed
    if good:
        print(f"ok   {what}")
    else:
        print(f"FAIL {what}: {why}")
        failed = True

created, revoked, failures = report["created"], report["revoked"], report["failures"]
stored = set(rows)
lost = [i for i in created if i not in stored]
check(not lost, f"every token answered 201 has its row ({len(created)} answered 201, {len(rows)} rows: "
      f"{len(stored - set(created))} without a 201, a create whose replica died after its commit)",
      f"{len(lost)} without a row, e.g. {lost[:3]}")
twice = len(created) - len(set(created))
check(twice == 0 and twice_in_table == 0 and len(rows) == len(stored),
      "no id answered twice among the 201s, nor stored twice",
      f"{twice} repeated among the 201s, {twice_in_table} in the table")

checks = report["revocation_checks"]
check(len(checks) == len(revoked), f"every revoke answered 200 was checked on the three replicas ({len(revoked)} revokes)",
      f"{len(checks)} checks for {len(revoked)} revokes")
# Each replica's check of each revoke: the delay from the revoke's answer to the refusal's answer
# (an upper bound of the propagation: it includes the ask's own wait on this machine), and from
# the revoke's answer to the sending of the last ask answered active (a lower bound; none: 0).
# The killed replica's checks of revokes answered from the kill until HAProxy saw it UP again are
# apart: their asks waited for the replica to come back (refused, or queued while it started). So
# are the stopped replica's, from its SIGTERM until it was UP again.
# Each stop: the replica, from when its checks are apart, from when it answered nothing more (its
# process gone), its restart, and when it was seen UP again.
stops = [(killed, kill_before, kill_after, restart_at, up_at),
         (drained, term_at, exited_at, drain_restart_at, drain_up_at)]
upper, lower, restarted, never = [], [], [], []
gone, active_on_return = [0, 0], [0, 0]
for c in checks:
    for n, r in enumerate(c["replicas"]):
        stop = next((i for i, (replica, apart, _, _, up) in enumerate(stops)
                     if n == replica and apart <= c["revoked_ms"] <= (up or float("inf"))), None)
        if stop is None and r["unanswered"]:
            stop = next((i for i, (replica, *_) in enumerate(stops) if n == replica), None)
        if r["refused_ms"] is None:
            never.append((c["id"], r["replica"]))
        elif stop is not None:
            restarted.append(r["refused_ms"] - c["revoked_ms"])
            # Revoked while the replica was stopped: whatever it answered came from the new process.
            _, _, down_from, down_to, _ = stops[stop]
            if down_from <= c["revoked_ms"] <= down_to:
                gone[stop] += 1
                active_on_return[stop] += r["active_answers"] > 0
        else:
            upper.append(r["refused_ms"] - c["revoked_ms"])
            lower.append(max(0.0, (r["last_active_sent_ms"] or c["revoked_ms"]) - c["revoked_ms"]))
upper.sort()
worst_upper = upper[-1] if upper else 0.0
worst_lower = max(lower, default=0.0)
p99 = upper[min(len(upper) - 1, int(len(upper) * 0.99))] if upper else 0.0
check(not never, "every revoked token is refused by every replica", f"{len(never)} never refused, e.g. {never[:2]}")
check(worst_lower < 1000.0,
      f"every revoke answered 200 is refused by each replica, asked directly, within 1 s (no ask sent 1 s or more "
      f"after the revoke's answer was answered active): worst delay between {worst_lower:.1f} ms (the last ask "
      f"answered active was sent then) and {worst_upper:.1f} ms (the refusal's answer); p99 {p99:.1f} ms over "
      f"{len(upper)} replica checks",
      f"an ask sent {worst_lower:.1f} ms after a revoke's answer was answered active")
if worst_upper >= 1000.0:
    print(f"     the worst refusal was answered {worst_upper:.0f} ms after its revoke: the asks themselves waited that long on this machine")
check(active_on_return[0] == 0,
      f"the restarted replica refused every token revoked while it was dead from its first answer ({gone[0]} tokens)",
      f"{active_on_return[0]} answered active first")
check(active_on_return[1] == 0,
      f"the replica restarted after its SIGTERM refused every token revoked while it was stopped from its first answer ({gone[1]} tokens; "
      f"{len(restarted)} checks of the two waited for a replica to come back, refused {min(restarted, default=0) / 1000:.1f}-{max(restarted, default=0) / 1000:.1f} s after the revoke)",
      f"{active_on_return[1]} answered active first")
check(report["introspected_inactive"] == 0,
      f"every new token introspects active through the balancer ({report['answers'].get('introspect 200', 0)} introspections)",
      f"{report['introspected_inactive']} answered inactive")

by_kind = collections.Counter(f"{f['operation']} {f['status'] or 'connection error'}" for f in failures)
kinds = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items())) or "none"
print(f"     errors (non-2xx, connection errors): {len(failures)}: {kinds}; HAProxy had {in_flight} sessions on the replica "
      f"just before the SIGKILL, and its listening socket took connections until it was reaped {kill_after - kill_before:.0f} ms later")
check(len(failures) <= clients, f"errors at most the load's concurrency ({len(failures)} <= {clients})", f"{len(failures)} errors")
# The rolling restart's phase: from its start (just before the SIGTERM) to the end of the load.
in_grace = [f for f in failures if f["answered_ms"] >= grace_at]
stray = [f for f in failures if f not in in_grace and not (f["sent_ms"] <= kill_after and f["answered_ms"] >= kill_before)]
def when(f):
    return f"{f['operation']} {f['status'] or 'connection error'} sent {f['sent_ms'] - kill_before:+.0f} ms, answered {f['answered_ms'] - kill_before:+.0f} ms from the SIGKILL"
check(not stray, f"every error is of a request in flight on the killed replica (sent before it was reaped, "
      f"{kill_after - kill_before:.0f} ms after the SIGKILL, and answered after the SIGKILL)",
      f"{len(stray)} others: " + "; ".join(when(f) for f in stray[:5]))
late = [f for f in failures if down_at and f["sent_ms"] >= down_at and f not in in_grace]
check(down_at and not late, "no error for a request sent after HAProxy marked the replica DOWN, to the rolling restart",
      f"{len(late)} errors: " + "; ".join(when(f) for f in late[:5]) if down_at else "DOWN was never observed")
def when_grace(f):
    return f"{f['operation']} {f['status'] or 'connection error'} sent {f['sent_ms'] - term_at:+.0f} ms, answered {f['answered_ms'] - term_at:+.0f} ms from the SIGTERM"
check(not in_grace, f"a rolling restart loses nothing: no error (non-2xx, connection error) from the SIGTERM to the end of the load "
      f"({grace_requests} requests through the balancer while the replica drained and exited in {(exited_at - term_at) / 1000:.2f} s, "
      f"was stopped for {(drain_restart_at - exited_at) / 1000:.2f} s and came back)",
      f"{len(in_grace)} errors: " + "; ".join(when_grace(f) for f in in_grace[:5]))

answers = ", ".join(f"{n} {k}" for k, n in sorted(report["answers"].items()))
print(f"     load: {report['requests']} requests in {report['seconds']:.1f} s ({report['requests_per_second']:.0f}/s) by {clients} clients: {answers}")
print(f"     latency p50 {report['latency_ms']['p50']:.1f} ms, p99 {report['latency_ms']['p99']:.1f} ms, max {report['latency_ms']['max']:.1f} ms")
sys.exit(1 if failed else 0)
PY

if [ "$FAILED" = 0 ]; then
    log "balancer: every check passed"
else
    log "balancer: some checks failed (BALANCER_KEEP=/some/folder keeps the logs)"
fi
exit "$FAILED"
