#!/usr/bin/env bash
# Runs the README's quickstart exactly as written, so that it cannot drift: the block marked
# `quickstart: serve` in the background (in its own process group), then, once the service is
# ready, the block marked `quickstart: client` under `bash -euo pipefail`. Its `curl -f` calls fail
# on any HTTP error; the last line must print 401 (the revoked token is refused).
# The quickstart runs in the repository folder, on 127.0.0.1:8080, with the embedded store in
# ./data; a ./data this script created is removed afterwards, one that was there is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'check-quickstart: %s\n' "$*" >&2; }

block() {
    awk -v marker="<!-- quickstart: $1 -->" '
        $0 == marker { found = 1; next }
        found && /^```sh$/ { inside = 1; next }
        inside && /^```$/ { exit }
        inside { print }' README.md
}

serve=$(block serve)
client=$(block client)
if [ -z "$serve" ] || [ -z "$client" ]; then
    log "README.md lacks the quickstart blocks (<!-- quickstart: serve|client --> before a sh block)"
    exit 1
fi
if curl -s -o /dev/null --max-time 2 http://127.0.0.1:8080/; then
    log "something already answers on 127.0.0.1:8080; stop it first"
    exit 1
fi

# PyJWT for the verification line: the system's, else a virtualenv under target/.
if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
    venv=target/quickstart-venv
    if [ ! -x "$venv/bin/python3" ] || ! "$venv/bin/python3" -c 'import jwt, cryptography' 2>/dev/null; then
        log "installing PyJWT into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check 'pyjwt[crypto]'
    fi
    PATH="$PWD/$venv/bin:$PATH"
    export PATH
fi

# Build first, so that the wait for readiness below is not a wait for the compiler.
cargo build --release --locked

had_data=false
[ -e data ] && had_data=true
serve_log=$(mktemp)
setsid bash -c "$serve" >"$serve_log" 2>&1 &
serve_pid=$!
cleanup() {
    kill -TERM -- "-$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    if [ "$had_data" = false ]; then
        rm -rf data
    fi
    rm -f "$serve_log"
}
trap cleanup EXIT

for _ in $(seq 1 120); do
    if curl -fs -o /dev/null http://127.0.0.1:8080/health/ready; then
        break
    fi
    if ! kill -0 "$serve_pid" 2>/dev/null; then
        log "the service stopped:"
        cat "$serve_log" >&2
        exit 1
    fi
    sleep 0.5
done

output=$(bash -euo pipefail -c "$client") || {
    log "the client block failed; service log:"
    cat "$serve_log" >&2
    exit 1
}
printf '%s\n' "$output"
if [ "$(printf '%s\n' "$output" | tail -n 1)" != 401 ]; then
    log "the revoked token was not refused (last line: $(printf '%s\n' "$output" | tail -n 1))"
    exit 1
fi
log "the quickstart works as written"
