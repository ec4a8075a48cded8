#!/usr/bin/env bash
# The settings page in a real browser: installs Debian's Chromium when it is missing (apt-get, as
# root) and Playwright's driver from npm (tests/ui, no browser download), starts the service on the
# embedded store in a temporary folder, mints an admin caller with `dev-token`, and drives the page
# through tests/ui/settings-page.mjs. Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'test-ui: %s\n' "$*" >&2; }

# Debian's packages, installed when missing (as root; otherwise the message says what to install).
install_packages() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing Debian's $*"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
    else
        log "missing: install Debian's packages $* (sudo apt-get install $*)"
        exit 1
    fi
}
CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
if [ -z "$CHROMIUM" ]; then
    install_packages chromium
    CHROMIUM=$(command -v chromium)
fi
export CHROMIUM
command -v node >/dev/null && command -v npm >/dev/null || install_packages nodejs npm
if [ ! -d tests/ui/node_modules/playwright-core ]; then
    log "installing playwright-core from tests/ui/package-lock.json"
    (cd tests/ui && npm ci --no-audit --no-fund --ignore-scripts --silent)
fi

cargo build --locked --quiet
BIN="$PWD/target/debug/access-tokens"
WORK=$(mktemp -d)
PORT="${UI_TEST_PORT:-18620}"
OIDC_PORT="${UI_TEST_OIDC_PORT:-18621}"
SERVICE_PID=
PROVIDER_PID=
# The script's own status stands: a stopped child's status (143) never becomes it.
cleanup() {
    local pid
    for pid in "$SERVICE_PID" "$PROVIDER_PID"; do
        if [ -n "$pid" ]; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# An identity provider on loopback for the page's sign-in, trusted through TRUSTED_ISSUERS_FILE.
PORT="$OIDC_PORT" CLIENT_ID=settings-page node tests/ui/oidc-provider.mjs >"$WORK/provider.log" 2>&1 &
PROVIDER_PID=$!
for _ in $(seq 1 100); do
    grep -q ready "$WORK/provider.log" 2>/dev/null && break
    sleep 0.1
done
cat >"$WORK/issuers.toml" <<TOML
[[issuer]]
url = "http://127.0.0.1:$OIDC_PORT"
audiences = ["settings-page"]
organization = "1"
roles_claim = "roles"
TOML

# A webhook endpoint on loopback (nothing answers there: its deliveries fail and are shown so).
export LISTEN_ADDR="127.0.0.1:$PORT" METRICS_ADDR="127.0.0.1:0" UI_FRAME_ANCESTORS="https://portal.example.com,http://localhost:18622" \
    WEBHOOK_ALLOW_PRIVATE=true WEBHOOK_ALLOW_INSECURE=true
export TRUSTED_ISSUERS_FILE="$WORK/issuers.toml" UI_OIDC_ISSUER="http://127.0.0.1:$OIDC_PORT" \
    UI_OIDC_CLIENT_ID=settings-page
unset DATABASE_URL KEY_ENCRYPTION_KEY PUBLIC_URL TRUSTED_ISSUERS
(cd "$WORK" && exec "$BIN" serve) >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 300); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/health/ready" && break
    sleep 0.1
done
TOKEN=$(cd "$WORK" && "$BIN" dev-token --org 1 --user ui-admin --role owner --role viewer --expires-in 90d 2>/dev/null | tail -n 1)
status=0
BASE="http://127.0.0.1:$PORT" TOKEN="$TOKEN" WEBHOOK_URL="http://127.0.0.1:9/hooks" \
    node tests/ui/settings-page.mjs || status=$?
if [ "$status" != 0 ]; then
    log "the service's log:"
    tail -n 40 "$WORK/service.log" >&2
fi
exit "$status"
