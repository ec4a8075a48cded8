#!/usr/bin/env bash
# The status list budget (issue 14), served by the release binary: a list of 1,000,000 tokens with
# 1 % revoked, its size as served (plain and gzip; at most 64 KB), and serving throughput against
# the JWKS route of the same process (at least 0.8x), both with wrk on keep-alive connections.
# The render CPU figure is criterion's (`cargo bench --bench hot_paths -- "status list"`).
#
# The embedded store in a temporary folder: the service starts once to create its schema and keys,
# 10,000 revoked rows are written into list 0 of the api set at indices below 1,000,000 spread as
# the criterion bench spreads them (the other 990,000 indices are valid, 0, as unused ones are:
# the list's bytes are those of a million tokens with 1 % revoked), and the service starts again.
# Each round prints the rates and, beside them, the CPU time of the service and wrk together per
# request: where the two have the cores to themselves, the rates' ratio is about the inverse of
# these times' ratio; on a busy machine the times move far less than the rates.
# Not part of CI; about a minute after the build; everything listens on 127.0.0.1 only.
#
# With BENCH_COUNT=instructions the service runs under valgrind's callgrind instead of wrk's load,
# and the script prints the service's instructions per request (all its threads, after a warm-up,
# on one keep-alive connection) for the JWKS route, the list and the list gzip, twice: unlike
# requests per second, the counts do not depend on what else the machine is doing (a few minutes).
#
#   bench/status_lists.sh                          # builds and measures target/release/access-tokens
#   BENCH_BIN=/path/to/access-tokens bench/status_lists.sh
#   BENCH_COUNT=instructions BENCH_BIN=/path/to/access-tokens bench/status_lists.sh
#   BENCH_COUNT=instructions BENCH_KEEP=/some/folder ...  # keeps each phase's dumps (callgrind_annotate)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/binary.sh
source bench/lib/binary.sh

PORT="${BENCH_PORT:-18630}"
SECS="${BENCH_SECONDS:-10}"
BASE="http://127.0.0.1:$PORT"
log() { printf 'status-lists bench: %s\n' "$*" >&2; }
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
wait_for() { for _ in $(seq 1 2400); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; log "$1 never answered"; return 1; }
COUNT="${BENCH_COUNT:-}"
case "$COUNT" in
    "") command -v wrk >/dev/null || { log "wrk is missing: install Debian's wrk package"; exit 1; } ;;
    instructions) command -v valgrind >/dev/null || { log "valgrind is missing: install Debian's valgrind package"; exit 1; } ;;
    *) log "BENCH_COUNT is instructions or unset, not $COUNT"; exit 1 ;;
esac

BIN=$(bench_binary "${BENCH_BIN:-}")
BIN=$(realpath "$BIN")
WORK=$(mktemp -d)
SERVICE_PID=
start() {
    local run=()
    if [ "${1:-}" = counted ]; then
        run=(valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.%p" --dump-instr=no)
    fi
    (cd "$WORK" && exec env -u DATABASE_URL -u KEY_ENCRYPTION_KEY LISTEN_ADDR="127.0.0.1:$PORT" RUST_LOG=warn \
        "${run[@]}" "$BIN" serve) >>"$WORK/service.log" 2>&1 &
    SERVICE_PID=$!
    wait_for "$BASE/health/ready"
}
stop() { kill "$SERVICE_PID"; wait "$SERVICE_PID" 2>/dev/null || true; SERVICE_PID=; }
cleanup() { [ -n "$SERVICE_PID" ] && stop; rm -rf "$WORK"; }
trap cleanup EXIT

start
stop
python3 - "$WORK/data/access-tokens.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
kid = db.execute("select kid from signing_keys where key_set = 'api' and state = 'active'").fetchone()[0]
# The criterion bench's generator (bench/hot_paths.rs): 10,000 distinct indices below 1,000,000.
seed, revoked, mask = 0x5EED, set(), (1 << 64) - 1
while len(revoked) < 10_000:
    seed = (seed * 6364136223846793005 + 1442695040888963407) & mask
    revoked.add((seed >> 33) % 1_000_000)
now = 1_764_300_000_000_000
db.executemany(
    "insert into access_tokens (id, org_id, created_by, token_type, name, assignments, key_id,"
    " created_at, revoked_at, status_key_set, status_list, status_idx)"
    " values (?, '1', 'bench', 'api', 'bench', '[]', ?, ?, ?, 'api', 0, ?)",
    [(f"api_bench{idx:016d}", kid, now, now, idx) for idx in sorted(revoked)],
)
db.execute("update status_list_counters set next_index = 1000000 where key_set = 'api'")
db.commit()
PY
if [ "$COUNT" = instructions ]; then
    start counted
    log "counting instructions under callgrind..."
    PORT="$PORT" SERVICE_PID="$SERVICE_PID" WORK="$WORK" KEEP="${BENCH_KEEP:-}" python3 - <<'PY'
import http.client, os, subprocess
import sys

sys.path.insert(0, "bench/lib")
import callgrind  # noqa: E402

port, pid, work = int(os.environ["PORT"]), os.environ["SERVICE_PID"], os.environ["WORK"]

def dumped_total(label=None):
    return callgrind.dumped_total(work, pid, os.environ["KEEP"], label and label.replace(" ", "-"))

def phase(label, n, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    def get():
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:200])
        return len(body)
    for _ in range(5):
        get()
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    dumped_total()
    size = sum(get() for _ in range(n)) // n
    subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
    conn.close()
    print(f"{label:<10} {dumped_total(label) / n:9,.0f} instructions/request ({n} requests of {size:,} bytes)")

for _ in range(2):
    phase("JWKS", 2000, "/v1/access-tokens/.well-known/jwks.json", {})
    phase("list", 2000, "/v1/access-tokens/status-lists/0", {})
    phase("list gzip", 2000, "/v1/access-tokens/status-lists/0", {"Accept-Encoding": "gzip"})
PY
    exit 0
fi
start

LIST="$BASE/v1/access-tokens/status-lists/0"
JWKS="$BASE/v1/access-tokens/.well-known/jwks.json"
plain=$(curl -sf "$LIST" | wc -c)
gzip=$(curl -sf -H 'accept-encoding: gzip' "$LIST" | wc -c)
jwks=$(curl -sf "$JWKS" | wc -c)
python3 - "$(curl -sf "$LIST")" <<'PY'
import base64, json, sys, zlib
payload = sys.argv[1].split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
lst = claims["status_list"]["lst"]
raw = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
revoked = sum(((b >> s) & 3) == 1 for b in raw for s in (0, 2, 4, 6))
print(f"list 0: {len(raw) * 4} indices, {revoked} of them 1 (revoked); lst {len(lst)} characters", file=sys.stderr)
PY

# One wrk run: its rate, and the CPU time per request of the service and wrk together (utime and
# stime of both; on a machine shared with other work, throughput follows the others' load while
# the CPU spent per request moves far less).
ticks() { sed 's/.*) //' "/proc/$SERVICE_PID/stat" | awk '{print $12 + $13}'; }
run() {
    local before after
    before=$(ticks)
    /usr/bin/time -f '%U %S' -o "$WORK/time.txt" wrk -t2 -c64 -d"${SECS}s" "$@" > "$WORK/wrk.txt"
    after=$(ticks)
    python3 - "$before" "$after" "$(getconf CLK_TCK)" "$(cat "$WORK/time.txt")" \
        "$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")" "$(rate "$WORK/wrk.txt")" <<'PY'
import sys
before, after, hz, wrk, requests, rate = sys.argv[1:]
service = (int(after) - int(before)) / int(hz)
user, system = map(float, wrk.split())
print(rate, (service + user + system) / int(requests) * 1e6)
PY
}
command -v /usr/bin/time >/dev/null || { log "/usr/bin/time is missing: install Debian's time package"; exit 1; }
log "wrk -t2 -c64 -d${SECS}s, three rounds, alternating..."
for round in 1 2 3; do
    j=$(run "$JWKS"); l=$(run "$LIST"); g=$(run -H 'accept-encoding: gzip' "$LIST")
    python3 - "$round" $j $l $g <<'PY'
import sys
r, jr, jc, lr, lc, gr, gc = sys.argv[1], *map(float, sys.argv[2:])
print(f"round {r}: JWKS {jr:,.0f} req/s {jc:.1f} us CPU/req; "
      f"list {lr:,.0f} req/s ({lr / jr:.2f}x) {lc:.1f} us ({jc / lc:.2f}x); "
      f"gzip {gr:,.0f} req/s ({gr / jr:.2f}x) {gc:.1f} us ({jc / gc:.2f}x)")
PY
done
printf 'sizes: list %s bytes, gzip %s bytes; JWKS %s bytes\n' "$plain" "$gzip" "$jwks"
