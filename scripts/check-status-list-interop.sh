#!/usr/bin/env bash
# Reads the service's status lists with a third-party implementation of the draft: the npm package
# @sd-jwt/jwt-status-list (installed with npm into a temporary folder). Starts the service (debug
# build, the embedded store in a temporary folder), creates an api token with a dev-token caller,
# and has the package read the token's `status` claim, fetch the list it names, inflate it and say
# the token's status: 0 (valid); then revokes the token and expects 1 (revoked) within a few
# seconds. Exits non-zero on any difference. Not part of CI (it needs the npm registry); the last
# run is cited in bench/RESULTS.md. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${INTEROP_PORT:-18620}"
PACKAGE="@sd-jwt/jwt-status-list@0.19.0"
BASE="http://127.0.0.1:$PORT"
log() { printf 'status-list-interop: %s\n' "$*" >&2; }

WORK=$(mktemp -d)
SERVICE_PID=
cleanup() {
    [ -n "$SERVICE_PID" ] && kill "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v node >/dev/null || { log "node is missing: install Debian's nodejs and npm packages"; exit 1; }
log "installing $PACKAGE"
npm install --silent --no-save --no-audit --no-fund --prefix "$WORK/js" "$PACKAGE" >&2
cargo build --locked --quiet --bin access-tokens
BIN="$PWD/target/debug/access-tokens"
(
    cd "$WORK"
    env -u DATABASE_URL -u KEY_ENCRYPTION_KEY LISTEN_ADDR="127.0.0.1:$PORT" RUST_LOG=warn \
        "$BIN" serve
) >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 200); do
    curl -fs -o /dev/null "$BASE/health/ready" && break
    sleep 0.1
done
CALLER=$(cd "$WORK" && env -u DATABASE_URL -u KEY_ENCRYPTION_KEY LISTEN_ADDR="127.0.0.1:$PORT" \
    "$BIN" dev-token --org 123 --user interop --role owner 2>/dev/null)
CREATED=$(curl -fsS -X POST "$BASE/v1/access-tokens" -H "Authorization: Bearer $CALLER" \
    -H 'Content-Type: application/json' -d '{"name": "read by a third-party verifier"}')
TOKEN=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["token"])' "$CREATED")
ID=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$CREATED")

cat >"$WORK/js/read.js" <<'JS'
// Reads a token's status the way the package's users do: the reference from the token, the list
// token from its URI (gzip as any client asks), then getStatus at the index.
const { getStatusListFromJWT, getListFromStatusListJWT } = require("@sd-jwt/jwt-status-list");
const [token, expected, seconds] = process.argv.slice(2);
const reference = getStatusListFromJWT(token);
async function status() {
  const response = await fetch(reference.uri, { headers: { "accept-encoding": "gzip" } });
  if (response.headers.get("content-type") !== "application/statuslist+jwt") {
    throw new Error(`content-type ${response.headers.get("content-type")}`);
  }
  const list = getListFromStatusListJWT(await response.text());
  return list.getStatus(reference.idx);
}
(async () => {
  const deadline = Date.now() + Number(seconds) * 1000;
  for (;;) {
    const value = await status();
    if (value === Number(expected)) {
      console.log(`uri ${reference.uri} idx ${reference.idx}: status ${value}`);
      return;
    }
    if (Date.now() > deadline) {
      console.error(`status ${value}, expected ${expected}`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
})().catch((e) => { console.error(e); process.exit(1); });
JS
log "before the revocation (expecting 0):"
(cd "$WORK/js" && node read.js "$TOKEN" 0 0)
curl -fsS -o /dev/null -X DELETE "$BASE/v1/access-tokens/$ID" -H "Authorization: Bearer $CALLER"
log "after the revocation (expecting 1):"
(cd "$WORK/js" && node read.js "$TOKEN" 1 5)
log "ok: $PACKAGE reads the service's lists"
