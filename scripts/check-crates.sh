#!/usr/bin/env bash
# The floors' walls, as Cargo sees them: the JOSE and domain crates depend on no HTTP or database
# crate, and the store and the service on no HTTP server crate. (Cargo itself refuses an upward dependency
# between the workspace's crates: a lower crate cannot name a higher one without a cycle.)
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
# forbid CRATE DEPENDENCY...: fails when CRATE's normal dependency tree (this platform, all
# features) holds any of the named packages.
forbid() {
    local crate=$1
    shift
    local tree
    tree=$(cargo tree --locked --offline -p "$crate" -e normal --all-features --prefix none --format '{p}' | awk '{print $1}' | sort -u)
    for banned in "$@"; do
        if grep -qx "$banned" <<<"$tree"; then
            echo "check-crates: $crate depends on $banned" >&2
            cargo tree --locked --offline -p "$crate" -e normal --all-features -i "$banned" >&2 || true
            status=1
        fi
    done
}

forbid access-tokens-jose axum hyper reqwest sqlx tokio
forbid access-tokens-domain axum hyper reqwest sqlx tokio
forbid access-tokens-store axum tower-http
# The use cases know no HTTP server (reqwest, their HTTP client, brings hyper and tower-http's
# client layers; the server framework stays in the binary).
forbid access-tokens-service axum
if [ "$status" -eq 0 ]; then
    echo "check-crates: the JOSE and domain crates are free of axum, hyper, reqwest, sqlx and tokio; the store of axum; the service of axum"
fi
exit "$status"
