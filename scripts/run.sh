#!/usr/bin/env bash
# Runs the service on this machine: brings up PostgreSQL when DATABASE_URL is not set (a server on
# 127.0.0.1:5432, else a throwaway cluster), creates the `access_tokens` database, generates a
# key-encryption key into .dev/key-encryption-key (git-ignored, mode 0600) when KEY_ENCRYPTION_KEY
# is not set, and starts `access-tokens serve`. Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/postgres.sh
source scripts/lib/postgres.sh

if [ -z "${DATABASE_URL:-}" ]; then
    ensure_postgres
    trap stop_throwaway_postgres EXIT
    if [ "$(psql "$PG_ADMIN_URL" -Atqc "select 1 from pg_database where datname = 'access_tokens'")" != 1 ]; then
        psql "$PG_ADMIN_URL" -qc "create database access_tokens"
    fi
    DATABASE_URL=$(database_url access_tokens)
    export DATABASE_URL
fi

if [ -z "${KEY_ENCRYPTION_KEY:-}" ]; then
    mkdir -p .dev
    if [ ! -s .dev/key-encryption-key ]; then
        (umask 077 && head -c 32 /dev/urandom | base64 > .dev/key-encryption-key)
        log "Generated a key-encryption key in .dev/key-encryption-key: keep it, the signing keys are sealed with it."
    fi
    KEY_ENCRYPTION_KEY=$(cat .dev/key-encryption-key)
    export KEY_ENCRYPTION_KEY
fi

cargo build --release --locked
exec_status=0
./target/release/access-tokens serve "$@" || exec_status=$?
exit "$exec_status"
