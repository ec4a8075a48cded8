#!/usr/bin/env bash
# Receives the service's webhooks with a third-party implementation of Standard Webhooks: the
# specification's own Python library (`standardwebhooks` from PyPI, installed into a virtualenv
# under target/). Starts the service (debug build, the embedded store in a temporary folder, with
# WEBHOOK_ALLOW_PRIVATE and WEBHOOK_ALLOW_INSECURE so that it may post to loopback), a receiver that
# verifies every delivery with the library exactly as docs/webhooks.md shows, and registers it with a
# dev-token admin. A token is created and revoked (both events must verify); then the secret is
# rotated, and the next delivery must verify with the new secret and with the old one alone. A
# tampered copy of a delivery must fail. Exits non-zero on any difference. In CI (`.ci/run`).
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${INTEROP_PORT:-18630}"
HOOK_PORT="${INTEROP_HOOK_PORT:-18631}"
PACKAGE="standardwebhooks==1.0.0"
BASE="http://127.0.0.1:$PORT"
VENV=target/webhook-interop-venv
log() { printf 'webhook-interop: %s\n' "$*" >&2; }

WORK=$(mktemp -d)
SERVICE_PID=
RECEIVER_PID=
# The script's own status stands: a stopped child's status (143) never becomes it.
cleanup() {
    local pid
    for pid in "$SERVICE_PID" "$RECEIVER_PID"; do
        if [ -n "$pid" ]; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import standardwebhooks' 2>/dev/null; then
    log "installing $PACKAGE"
    python3 -m venv "$VENV" || {
        [ "$(id -u)" = 0 ] && apt-get install -qq -y python3-venv >&2 && python3 -m venv "$VENV"
    }
    "$VENV/bin/pip" install --quiet "$PACKAGE"
fi
cargo build --locked --quiet --bin access-tokens
BIN="$PWD/target/debug/access-tokens"
export LISTEN_ADDR="127.0.0.1:$PORT" WEBHOOK_ALLOW_PRIVATE=true WEBHOOK_ALLOW_INSECURE=true RUST_LOG=warn
(cd "$WORK" && env -u DATABASE_URL -u KEY_ENCRYPTION_KEY "$BIN" serve) >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 300); do
    curl -fs -o /dev/null "$BASE/health/ready" && break
    sleep 0.1
done
ADMIN=$(cd "$WORK" && env -u DATABASE_URL -u KEY_ENCRYPTION_KEY "$BIN" dev-token --org 123 --user interop --role owner 2>/dev/null)
json() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

cat >"$WORK/receiver.py" <<'PY'
# A receiver as docs/webhooks.md writes it: every delivery verified by the library, with the secret(s)
# in the files it is given; what it saw is appended to received.jsonl.
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from standardwebhooks.webhooks import Webhook

port, folder = int(sys.argv[1]), sys.argv[2]

def secrets():
    names = ["secret", "old-secret"]
    found = {}
    for name in names:
        try:
            found[name] = open(f"{folder}/{name}").read().strip()
        except FileNotFoundError:
            pass
    return found

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = {}
        for name, secret in secrets().items():
            try:
                event = Webhook(secret).verify(body, headers)
                verified[name] = event["type"]
            except Exception as error:
                verified[name] = f"refused: {error}"
        # A tampered body must be refused.
        try:
            Webhook(secrets()["secret"]).verify(body + b" ", headers)
            tampered = "accepted"
        except Exception:
            tampered = "refused"
        with open(f"{folder}/received.jsonl", "a") as out:
            out.write(json.dumps({"verified": verified, "tampered": tampered,
                                  "event": json.loads(body)}) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", port), Hook).serve_forever()
PY
"$VENV/bin/python" "$WORK/receiver.py" "$HOOK_PORT" "$WORK" &
RECEIVER_PID=$!

CREATED=$(curl -fsS -X POST "$BASE/v1/access-tokens/webhooks" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' \
    -d "{\"url\": \"http://127.0.0.1:$HOOK_PORT/hook\", \"events\": [\"token.created\", \"token.revoked\"]}")
ENDPOINT=$(json "$CREATED" id)
json "$CREATED" secret >"$WORK/secret"

wait_for() { # count of received deliveries
    for _ in $(seq 1 300); do
        [ -f "$WORK/received.jsonl" ] && [ "$(wc -l <"$WORK/received.jsonl")" -ge "$1" ] && return 0
        sleep 0.1
    done
    log "expected $1 deliveries; got: $(cat "$WORK/received.jsonl" 2>/dev/null)"
    exit 1
}
TOKEN=$(curl -fsS -X POST "$BASE/v1/access-tokens" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"name": "told to a receiver"}')
curl -fsS -o /dev/null -X DELETE "$BASE/v1/access-tokens/$(json "$TOKEN" id)" -H "Authorization: Bearer $ADMIN"
wait_for 2

ROTATED=$(curl -fsS -X POST "$BASE/v1/access-tokens/webhooks/$ENDPOINT/rotate-secret" -H "Authorization: Bearer $ADMIN")
mv "$WORK/secret" "$WORK/old-secret"
json "$ROTATED" secret >"$WORK/secret"
curl -fsS -o /dev/null -X POST "$BASE/v1/access-tokens" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"name": "after the rotation"}'
wait_for 3

python3 - "$WORK/received.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
types = [l["event"]["type"] for l in lines]
assert types == ["token.created", "token.revoked", "token.created"], types
for l in lines[:2]:
    assert l["verified"] == {"secret": l["event"]["type"]}, l["verified"]
# After the rotation both secrets verify it, each alone.
assert lines[2]["verified"] == {"secret": "token.created", "old-secret": "token.created"}, lines[2]["verified"]
assert all(l["tampered"] == "refused" for l in lines), [l["tampered"] for l in lines]
assert all("eyJ" not in json.dumps(l["event"]) for l in lines), "a JWT in an event"
print("webhook-interop: ok: the standardwebhooks library verified %d deliveries (and refused tampered ones)" % len(lines), file=sys.stderr)
PY
