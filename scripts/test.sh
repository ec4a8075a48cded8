#!/usr/bin/env bash
# Runs the whole test suite: brings up PostgreSQL (scripts/lib/postgres.sh), then `cargo test` over
# the workspace (the service, the crates, and the verifier crate with all its features) with the
# integration suite (tests/api, one binary) on PostgreSQL, then that binary again on the embedded
# store (TEST_STORE=sqlite). Both runs go ahead even if the first fails; the exit status says
# whether both passed. Then the settings page in a real browser (scripts/test-ui.sh).
# Each integration test creates its own database (at_test_*: a PostgreSQL database, or a folder
# under target/tmp for the embedded store); they are swept before and after.
# Extra arguments go to `cargo test`, e.g. `scripts/test.sh create::` or `scripts/test.sh -- --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/postgres.sh
source scripts/lib/postgres.sh

sweep_test_databases() {
    psql "$PG_ADMIN_URL" -Atqc "select datname from pg_database where datname like 'at\_test\_%'" 2>/dev/null |
        while read -r db; do
            psql "$PG_ADMIN_URL" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
        done
    # The embedded store's test folders (CARGO_TARGET_TMPDIR of the integration tests).
    rm -rf target/tmp/at_test_*
}

ensure_postgres
trap 'sweep_test_databases; stop_throwaway_postgres' EXIT
sweep_test_databases
export TEST_DATABASE_URL="$PG_ADMIN_URL"
status=0
echo "== the workspace, with the integration suite on PostgreSQL" >&2
TEST_STORE=postgres cargo test --locked --workspace --all-features "$@" || status=$?
echo "== the integration suite on the embedded store (TEST_STORE=sqlite)" >&2
TEST_STORE=sqlite cargo test --locked --all-features --test api "$@" || status=$?
# The settings page in Debian's Chromium; not when the run is narrowed to some tests.
if [ "$#" = 0 ]; then
    echo "== the settings page in a browser (scripts/test-ui.sh)" >&2
    scripts/test-ui.sh || status=$?
fi
exit "$status"
