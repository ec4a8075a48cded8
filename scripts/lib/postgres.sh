# shellcheck shell=bash
# Brings up PostgreSQL for the run and test scripts; sourced, not run.
#
# ensure_postgres exports PG_ADMIN_URL, a URL of the `postgres` database of a server that answers
# (with sslmode=disable when the server is on loopback; see without_loopback_tls):
#   1. the server at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) when it answers;
#   2. else a throwaway cluster of this project (initdb + pg_ctl, trust auth, loopback only) in
#      $PG_THROWAWAY_DIR, started now and stopped by stop_throwaway_postgres.
# Installs Debian's `postgresql` package first when its tools are missing and we are root.

PG_THROWAWAY_DIR="${PG_THROWAWAY_DIR:-${TMPDIR:-/tmp}/access-tokens-postgres}"
PG_THROWAWAY_PORT="${PG_THROWAWAY_PORT:-54329}"
PG_STARTED_HERE=""

log() { printf '%s\n' "$*" >&2; }
# shellcheck source=packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/packages.sh"

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$dir" ] && [ -x "$dir/$1" ]; then
        printf '%s/%s' "$dir" "$1"
    elif command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    fi
}

install_postgres_tools() {
    if [ -n "$(pg_bin initdb)" ] && command -v psql >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        log "PostgreSQL tools (initdb, pg_ctl, psql) are missing: install Debian's postgresql package, or set DATABASE_URL to a server that answers."
        return 1
    fi
    install_packages postgresql postgresql-client
}

# The `postgres` database on the same server as URL $1 (keeps user, password, host, port and query).
admin_url_of() {
    local url="$1" base query=""
    case "$url" in *\?*) query="?${url#*\?}"; url="${url%%\?*}" ;; esac
    base="${url%/*}"
    case "$base" in postgres:/|postgresql:/) base="$url" ;; esac
    printf '%s/postgres%s' "$base" "$query"
}

# URL $1 with `sslmode=disable` added when it points at this machine and names no sslmode: TLS on
# loopback protects nothing and costs a handshake (about 90 ms here) per new connection.
without_loopback_tls() {
    local url="$1"
    case "$url" in
        *sslmode=*) printf '%s' "$url"; return ;;
    esac
    case "$url" in
        *@127.0.0.1[:/]*|*@localhost[:/]*|*@\[::1\][:/]*)
            case "$url" in *\?*) printf '%s&sslmode=disable' "$url" ;; *) printf '%s?sslmode=disable' "$url" ;; esac ;;
        *) printf '%s' "$url" ;;
    esac
}

# The URL of database $1 on the server of PG_ADMIN_URL.
database_url() {
    local url="$PG_ADMIN_URL" query=""
    case "$url" in *\?*) query="?${url#*\?}"; url="${url%%\?*}" ;; esac
    printf '%s/%s%s' "${url%/*}" "$1" "$query"
}

answers() {
    pg_isready -q -t 3 -d "$1" >/dev/null 2>&1 && psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

start_throwaway_postgres() {
    local initdb pg_ctl run_as=()
    initdb=$(pg_bin initdb)
    pg_ctl=$(pg_bin pg_ctl)
    if [ "$(id -u)" = 0 ]; then
        # PostgreSQL refuses to run as root: run the cluster as the postgres user of the package.
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$PG_THROWAWAY_DIR" --shell /usr/sbin/nologin postgres
        run_as=(runuser -u postgres --)
    fi
    mkdir -p "$PG_THROWAWAY_DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$PG_THROWAWAY_DIR"
    chmod 700 "$PG_THROWAWAY_DIR"
    if [ ! -f "$PG_THROWAWAY_DIR/data/PG_VERSION" ]; then
        log "Creating a throwaway PostgreSQL cluster in $PG_THROWAWAY_DIR"
        "${run_as[@]}" "$initdb" -D "$PG_THROWAWAY_DIR/data" -U postgres --auth=trust --no-sync >/dev/null
    fi
    if ! "${run_as[@]}" "$pg_ctl" -D "$PG_THROWAWAY_DIR/data" status >/dev/null 2>&1; then
        log "Starting the throwaway PostgreSQL cluster on 127.0.0.1:$PG_THROWAWAY_PORT"
        "${run_as[@]}" "$pg_ctl" -D "$PG_THROWAWAY_DIR/data" -l "$PG_THROWAWAY_DIR/server.log" -w -t 60 \
            -o "-p $PG_THROWAWAY_PORT -k $PG_THROWAWAY_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" \
            start >/dev/null
        PG_STARTED_HERE=1
    fi
    PG_ADMIN_URL="postgres://postgres@127.0.0.1:$PG_THROWAWAY_PORT/postgres?sslmode=disable"
}

stop_throwaway_postgres() {
    if [ -n "$PG_STARTED_HERE" ]; then
        local run_as=()
        [ "$(id -u)" = 0 ] && run_as=(runuser -u postgres --)
        "${run_as[@]}" "$(pg_bin pg_ctl)" -D "$PG_THROWAWAY_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        PG_STARTED_HERE=""
    fi
}

ensure_postgres() {
    install_postgres_tools || return 1
    local candidate
    candidate=$(admin_url_of "${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}")
    if answers "$candidate"; then
        PG_ADMIN_URL=$(without_loopback_tls "$candidate")
    else
        log "No PostgreSQL answers at ${candidate%%\?*}."
        start_throwaway_postgres || return 1
        answers "$PG_ADMIN_URL" || { log "The throwaway PostgreSQL cluster does not answer; see $PG_THROWAWAY_DIR/server.log"; return 1; }
    fi
    # Which server, and which version, this run uses (the URL without its password).
    log "Using PostgreSQL $(psql "$PG_ADMIN_URL" -Atqc 'show server_version' 2>/dev/null) at $(printf '%s' "${PG_ADMIN_URL%%\?*}" | sed -E 's#//([^:@/]+):[^@/]*@#//\1:***@#')"
    export PG_ADMIN_URL
}
