#!/usr/bin/env bash
# Operating at scale, on loopback, in one run: PostgreSQL behind PgBouncer in transaction mode
# with a streaming standby for reads (scripts/scale/test-database.sh: the PostgreSQL suite through them, the
# binary's read-your-writes, the standby stopped), then three replicas behind HAProxy with one
# SIGKILLed and one restarted with SIGTERM under load (scripts/scale/test-balancer.sh). Each prints one
# line per check (`ok   <check>` / `FAIL <check>: why`), installs what it needs (apt-get, as root)
# and removes everything it started. Exits non-zero when any check of either failed.
#
#   scripts/scale/test.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
status=0
for part in test-database test-balancer; do
    echo "== scripts/scale/$part.sh"
    if ! "scripts/scale/$part.sh"; then
        echo "FAIL scripts/scale/$part.sh"
        status=1
    fi
done
if [ "$status" -eq 0 ]; then
    echo "scale: every check passed"
fi
exit "$status"
