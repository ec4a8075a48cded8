#!/usr/bin/env bash
# Hostile clients: what they cost the service. Not part of CI; about a minute; cleans up after
# itself; everything listens on 127.0.0.1 only.
#
#   bench/hostile.sh                          # builds and measures target/release/access-tokens
#   HOSTILE_BIN=/path/to/access-tokens bench/hostile.sh   # measures another build (e.g. an older one)
#   HOSTILE_ISSUER=1 bench/hostile.sh         # adds the hostile trusted issuer (section 2)
#   HOSTILE_STORM=1 bench/hostile.sh          # adds the suspend/resume storm (section 4, PostgreSQL)
#
# 1. Failed authentications from many addresses. Loopback is all of 127.0.0.0/8, so the client
#    (python, below) binds each connection to its own 127.x.y.z source address. It measures the
#    service's CPU (utime + stime from /proc, all threads) per request for: authenticated requests
#    (GET /v1/access-tokens?limit=1 with a dev-token caller on one keep-alive connection) with an
#    empty limiter; 20,000 failing requests (a bad bearer token), each from a new address, in
#    chunks of 5,000; authenticated requests again with those 20,000 addresses in the limiter; and
#    5,000 more failing requests from new addresses with the 20,000 still there. All of it within
#    the limiter's one-minute window (the elapsed time is printed). The service runs on the
#    embedded store in a throwaway folder with the default rate limits and RUST_LOG=warn.
# 2. (HOSTILE_ISSUER=1) Peak RSS of the service while a trusted issuer answers the JWKS fetch with
#    an endless chunked body (capped at HOSTILE_ISSUER_MB, default 256, sent as fast as loopback
#    takes it): the fetch is triggered by a caller token naming that issuer and an unknown kid.
# 3. Create bodies: the service's CPU per request for a 3-field body and for a 63 KB body of 7,000
#    keys no token type takes. Both are refused (400, an unknown field) before any rate limit or
#    database work, so the figure is the body's parse alone.
# 4. (HOSTILE_STORM=1) A suspend/resume storm: two replicas on one PostgreSQL database holding
#    100,000 revoked tokens in list 0 of the api set; one client suspends and resumes one token
#    on replica A as fast as it answers (change rate limits off, as a caller with many tokens and
#    callers would spread them), for HOSTILE_STORM_SECONDS (default 10). Printed: the CPU of
#    replica B, which receives no request, idle and during the storm, and A's.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/binary.sh
source bench/lib/binary.sh

PORT="${HOSTILE_PORT:-18486}"
ISSUER_PORT="${HOSTILE_ISSUER_PORT:-18487}"
WORK=$(mktemp -d)
PIDS=()
log() { printf '%s\n' "$*" >&2; }
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for port in "$PORT" "$ISSUER_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        log "port $port is in use (a run left behind?); free it first"
        exit 1
    fi
done

BIN=$(bench_binary "${HOSTILE_BIN:-}")

BASE="http://127.0.0.1:$PORT"
ISSUER="http://127.0.0.1:$ISSUER_PORT"
export DATABASE_URL="sqlite://$WORK/data/access-tokens.db"
export LISTEN_ADDR="127.0.0.1:$PORT" LOG_FORMAT=json RUST_LOG=warn TRUSTED_ISSUERS="$ISSUER" METRICS_ADDR=
unset KEY_ENCRYPTION_KEY RATE_LIMIT_CREATE_PER_ORG RATE_LIMIT_CREATE_PER_CALLER RATE_LIMIT_CHANGE_PER_ORG RATE_LIMIT_CHANGE_PER_CALLER \
    RATE_LIMIT_FAILED_AUTH_PER_ADDRESS RATE_LIMIT_FAILED_INTROSPECTION_PER_CLIENT
# Creation unlimited, so that section 3's bodies are parsed (and refused for what they hold) rather
# than turned away by the limiter first; section 1 creates nothing.
export RATE_LIMIT_CREATE_PER_ORG=0 RATE_LIMIT_CREATE_PER_CALLER=0
"$BIN" serve >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
PIDS+=("$SERVICE_PID")
for _ in $(seq 1 400); do curl -fs -o /dev/null "$BASE/health/ready" && break; sleep 0.05; done
curl -fs -o /dev/null "$BASE/health/ready" || { log "the service never became ready"; cat "$WORK/service.log" >&2; exit 1; }
CALLER=$("$BIN" dev-token --org hostile --user bench --role owner 2>/dev/null)

# --- 1. failed authentications from 20,000 addresses -------------------------------------------
log "failed authentications from distinct addresses..."
python3 - "$SERVICE_PID" "$PORT" "$CALLER" <<'PY'
import http.client, os, socket, sys, time

pid, port, caller = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tick = os.sysconf("SC_CLK_TCK")

def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def address(i):
    return f"127.{1 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"

def fail(i):
    s = socket.create_connection(("127.0.0.1", port), source_address=(address(i), 0))
    s.sendall(b"GET /v1/access-tokens HTTP/1.1\r\nHost: bench\r\n"
              b"Authorization: Bearer guessed.token.value\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    status = int(data.split(b" ", 2)[1])
    assert status == 401, (i, data[:200])

def authenticated(n):
    # One keep-alive connection per phase: the service closes connections idle past its header
    # read timeout (10 s), which the failing phases in between may take on a busy machine.
    conn = http.client.HTTPConnection("127.0.0.1", port, source_address=("127.0.0.1", 0))
    for _ in range(n):
        conn.request("GET", "/v1/access-tokens?limit=1", headers={"Authorization": f"Bearer {caller}"})
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
    conn.close()

def measure(label, n, work):
    before, started = cpu(), time.monotonic()
    work()
    spent = cpu() - before
    print(f"{label:<62} {spent / n * 1e6:8.0f} us CPU/request  ({n} requests, {time.monotonic() - started:.1f} s)")

authenticated(500)  # warm-up
AUTH = 3000
measure("authenticated, limiter empty", AUTH, lambda: authenticated(AUTH))
window_started = time.monotonic()
next_address = 0
for chunk in range(4):
    start = next_address
    measure(f"failing, new address each, addresses {start:,}-{start + 4999:,} in the limiter",
            5000, lambda: [fail(i) for i in range(start, start + 5000)])
    next_address += 5000
measure("authenticated, 20,000 failing addresses in the limiter", AUTH, lambda: authenticated(AUTH))
start = next_address
measure("failing, 5,000 more new addresses, 20,000 in the limiter", 5000,
        lambda: [fail(i) for i in range(start, start + 5000)])
print(f"{'(all failing requests within one window: elapsed since the first)':<62} {time.monotonic() - window_started:8.1f} s")
PY
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$SERVICE_PID/status"; }
printf '%-62s %8s MB\n' "service RSS after section 1" "$(rss_mb)"

# --- 3. create bodies: three fields, and 7,000 keys -------------------------------------------
log "create bodies: 3 fields and 7,000 keys..."
python3 - "$SERVICE_PID" "$PORT" "$CALLER" <<'PY'
import http.client, json, os, sys, time

pid, port, caller = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tick = os.sysconf("SC_CLK_TCK")

def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

small = json.dumps({"name": "ci", "token_type": "api", "unknown_field": 1}).encode()
# 63 KB, inside the 64 KiB body limit: hexadecimal keys, no spaces.
large = json.dumps({"name": "ci", **{f"{i:x}": 1 for i in range(7000)}}, separators=(",", ":")).encode()

def post(body, n):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(n):
        conn.request("POST", "/v1/access-tokens", body=body, headers={
            "Authorization": f"Bearer {caller}", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 400, r.status
    conn.close()

post(small, 200)  # warm-up
for label, body, n in [("create body of 3 fields (refused: unknown field)", small, 2000),
                       (f"create body of 7,000 keys, {len(large):,} bytes (refused)", large, 500)]:
    before, started = cpu(), time.monotonic()
    post(body, n)
    spent = cpu() - before
    print(f"{label:<62} {spent / n * 1e6:8.0f} us CPU/request  ({n} requests, {time.monotonic() - started:.1f} s)")
PY

# --- 4. a suspend/resume storm against a replica holding 100,000 revoked tokens --------------
if [ "${HOSTILE_STORM:-0}" = 1 ]; then
    # shellcheck source=../scripts/lib/postgres.sh
    source scripts/lib/postgres.sh
    STORM_DB=at_hostile_storm
    PORT_A="${HOSTILE_STORM_PORT_A:-18488}" PORT_B="${HOSTILE_STORM_PORT_B:-18489}"
    storm_cleanup() {
        for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
        wait 2>/dev/null || true
        psql "$PG_ADMIN_URL" -qc "drop database if exists $STORM_DB with (force)" >/dev/null 2>&1 || true
        stop_throwaway_postgres
        rm -rf "$WORK"
    }
    trap storm_cleanup EXIT
    DATABASE_URL="${HOSTILE_STORM_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" ensure_postgres
    psql "$PG_ADMIN_URL" -qc "drop database if exists $STORM_DB with (force)" >/dev/null
    psql "$PG_ADMIN_URL" -qc "create database $STORM_DB" >/dev/null
    STORM_URL=$(database_url "$STORM_DB")
    STORM_KEK=$(head -c 32 /dev/urandom | base64)
    storm_env=(env DATABASE_URL="$STORM_URL" KEY_ENCRYPTION_KEY="$STORM_KEK" LOG_FORMAT=json RUST_LOG=warn
        TRUSTED_ISSUERS="$ISSUER" METRICS_ADDR= RATE_LIMIT_CHANGE_PER_ORG=0 RATE_LIMIT_CHANGE_PER_CALLER=0)
    # The schema and keys, then 100,000 revoked rows in list 0 of the api set, before the replicas
    # start (so that each renders them once at start).
    "${storm_env[@]}" LISTEN_ADDR="127.0.0.1:$PORT_A" "$BIN" dev-token --org storm --user bench --role owner --allow-production \
        >"$WORK/storm-caller" 2>/dev/null
    log "seeding 100,000 revoked tokens in status list 0..."
    psql "$STORM_URL" -q >/dev/null <<'SQL'
insert into access_tokens (id, org_id, created_by, owner, token_type, name, key_id, created_at,
        revoked_at, status_key_set, status_list, status_idx)
select 'api_storm' || lpad(g::text, 16, '0'), 'storm-seed', 'seed', 'p1_seed', 'api', 'seeded',
       (select kid from signing_keys where key_set = 'api' and state = 'active'),
       now() - interval '1 day', now(), 'api', 0, g
from generate_series(1, 100000) g;
select setval('status_index_api', 200000);
vacuum (analyze) access_tokens;
SQL
    "${storm_env[@]}" LISTEN_ADDR="127.0.0.1:$PORT_A" "$BIN" serve >"$WORK/storm-a.log" 2>&1 &
    PID_A=$!; PIDS+=("$PID_A")
    "${storm_env[@]}" LISTEN_ADDR="127.0.0.1:$PORT_B" "$BIN" serve >"$WORK/storm-b.log" 2>&1 &
    PID_B=$!; PIDS+=("$PID_B")
    for port in "$PORT_A" "$PORT_B"; do
        for _ in $(seq 1 600); do curl -fs -o /dev/null "http://127.0.0.1:$port/health/ready" && break; sleep 0.05; done
        curl -fs -o /dev/null "http://127.0.0.1:$port/health/ready" || { log "replica on $port never became ready"; cat "$WORK"/storm-*.log >&2; exit 1; }
    done
    python3 - "$PID_A" "$PID_B" "$PORT_A" "$(cat "$WORK/storm-caller")" "${HOSTILE_STORM_SECONDS:-10}" <<'PY'
import http.client, json, os, sys, time

pid_a, pid_b, port, caller, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
tick = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

auth = {"Authorization": f"Bearer {caller}", "Content-Type": "application/json"}
conn = http.client.HTTPConnection("127.0.0.1", port)
conn.request("POST", "/v1/access-tokens", body=json.dumps({"name": "stormed"}), headers=auth)
r = conn.getresponse()
token = json.loads(r.read())
assert r.status == 201, (r.status, token)

def window(label, work):
    a0, b0, started = cpu(pid_a), cpu(pid_b), time.monotonic()
    n = work()
    elapsed = time.monotonic() - started
    a, b = cpu(pid_a) - a0, cpu(pid_b) - b0
    rate = f", {n / elapsed:,.0f} changes/s" if n else ""
    print(f"{label:<44} replica B {b / elapsed * 100:6.1f} % CPU, replica A {a / elapsed * 100:6.1f} % CPU ({elapsed:.1f} s{rate})")

time.sleep(3)  # past the start-up renders
window("idle", lambda: time.sleep(seconds) or 0)

def storm():
    # A fresh connection: the service closed the first one while it sat idle.
    conn = http.client.HTTPConnection("127.0.0.1", port)
    n, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        action = "suspend" if n % 2 == 0 else "resume"
        conn.request("POST", f"/v1/access-tokens/{token['id']}/{action}", headers=auth)
        r = conn.getresponse()
        r.read()
        assert r.status == 200, (action, r.status)
        n += 1
    return n

window("suspend/resume storm on A (100,000 revoked)", storm)
PY
fi

# --- 2. a hostile trusted issuer: an endless chunked JWKS -----------------------------------
# Measures only: bounding the fetch is the issuers module's (crates/service/src/issuers/) business.
if [ "${HOSTILE_ISSUER:-0}" = 1 ]; then
    log "a trusted issuer answering with an endless chunked JWKS..."
    python3 - "$ISSUER_PORT" "${HOSTILE_ISSUER_MB:-256}" >"$WORK/issuer.log" 2>&1 <<'PY' &
import socket, sys, threading
port, cap = int(sys.argv[1]), int(sys.argv[2]) << 20
server = socket.create_server(("127.0.0.1", port))
piece = b'{"kty":"RSA","use":"sig","alg":"RS256","kid":"k","n":"' + b"A" * 4000 + b'","e":"AQAB"},'
chunk = b"%x\r\n%s\r\n" % (len(piece) * 16, piece * 16)
def serve(c):
    try:
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"9\r\n{\"keys\":[\r\n")
        sent = 0
        while sent < cap:
            c.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    finally:
        c.close()
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
PY
    PIDS+=($!)
    sleep 0.5
    b64() { python3 -c 'import base64, sys; print(base64.urlsafe_b64encode(sys.argv[1].encode()).decode().rstrip("="))' "$1"; }
    TOKEN="$(b64 '{"alg":"RS256","typ":"JWT","kid":"unknown-kid"}').$(b64 "{\"iss\":\"$ISSUER\",\"sub\":\"x\",\"exp\":4102444800}").c2ln"
    rss_before=$(rss_mb)
    started=$(date +%s.%N)
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$BASE/v1/access-tokens" -H "Authorization: Bearer $TOKEN")
    elapsed=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)")
    peak=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$SERVICE_PID/status")
    printf '%-62s %8s\n' "caller naming the hostile issuer: answer, time" "$status, ${elapsed} s"
    printf '%-62s %8s MB (RSS before %s MB; VmHWM over the whole run)\n' "service peak RSS" "$peak" "$rss_before"
fi
