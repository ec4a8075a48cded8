#!/usr/bin/env bash
# Checks deploy/: the Prometheus alert rules (promtool check rules, and their unit tests with
# promtool test rules) and the Grafana dashboard (valid JSON naming only families the service
# exposes). promtool comes from Debian's prometheus package: when it is not on PATH, the package
# is downloaded with apt-get and promtool alone unpacked into target/tools (nothing installed,
# no service started). Takes seconds once promtool is there.
set -euo pipefail
cd "$(dirname "$0")/.."

promtool=$(command -v promtool || true)
if [ -z "$promtool" ]; then
    promtool=$PWD/target/tools/promtool
    if [ ! -x "$promtool" ]; then
        echo "promtool is missing: fetching Debian's prometheus package for it" >&2
        work=$(mktemp -d)
        trap 'rm -rf "$work"' EXIT
        (cd "$work" && apt-get download -qq prometheus >&2) || {
            [ "$(id -u)" = 0 ] && apt-get update -qq >&2 && (cd "$work" && apt-get download -qq prometheus >&2)
        }
        dpkg-deb -x "$work"/prometheus_*.deb "$work/unpacked"
        mkdir -p target/tools
        cp "$work/unpacked/usr/bin/promtool" "$promtool"
    fi
fi

"$promtool" check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && "$promtool" test rules alerts_test.yml)

python3 - <<'PY'
import json, re
board = json.load(open("deploy/grafana/access-tokens.json"))
exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
assert exprs, "the dashboard has no queries"
families = set()
for e in exprs:
    families |= set(re.findall(r"\b((?:access_tokens|process)_[a-z_]+)", e))
print(f"dashboard: {len(board['panels'])} panels, {len(exprs)} queries over {len(families)} families")
PY
