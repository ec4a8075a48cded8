#!/usr/bin/env bash
# Checks the dependency tree against deny.toml: licenses, banned crates, sources. Offline: the
# advisory database is fetched from outside the package registries, so advisories are not checked
# here (see deny.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version >/dev/null 2>&1; then
    echo "installing cargo-deny" >&2
    cargo install cargo-deny --locked
fi

# cargo-deny reads the metadata of every package of the lock file, those of other platforms too:
# fetch them from the registry first (a build fetches only this platform's).
cargo fetch --locked
cargo deny --offline check licenses bans sources
