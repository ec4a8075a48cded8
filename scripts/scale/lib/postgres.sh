# shellcheck shell=bash
# Throwaway PostgreSQL servers on loopback for scripts/scale/: a primary, a streaming standby of
# it, and PgBouncer in transaction mode in front of the primary. Sourced, not run; needs
# scripts/lib/postgres.sh (pg_bin, log, install_postgres_tools, install_packages) sourced first.
#
# Every server runs as the `postgres` user when we are root (PostgreSQL and PgBouncer refuse
# root), with trust authentication, listening on 127.0.0.1 only, its files under $SCALE_WORK.
# scale_stop_all stops whatever these functions started.

SCALE_STARTED_CLUSTERS=()
SCALE_PGBOUNCER_PID_FILE=""

scale_run_as() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The folder everything lives in, writable by the servers' user.
scale_workdir() {
    SCALE_WORK=$(mktemp -d "${TMPDIR:-/tmp}/at-scale-db.XXXXXX")
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$SCALE_WORK" --shell /usr/sbin/nologin postgres
        chown postgres "$SCALE_WORK"
    fi
    chmod 700 "$SCALE_WORK"
}

install_pgbouncer() {
    command -v pgbouncer >/dev/null 2>&1 || install_packages pgbouncer
}

# Whether anything accepts TCP connections on 127.0.0.1:$1.
port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_cluster NAME PORT [extra postgres options]: starts a cluster in $SCALE_WORK/NAME.
start_cluster() {
    local name="$1" port="$2"
    shift 2
    local dir="$SCALE_WORK/$name"
    scale_run_as mkdir -p "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        scale_run_as "$(pg_bin initdb)" -D "$dir/data" -U postgres --auth=trust --no-sync >/dev/null
    fi
    scale_run_as "$(pg_bin pg_ctl)" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 $*" start >/dev/null
    SCALE_STARTED_CLUSTERS+=("$dir")
}

# start_standby NAME PORT PRIMARY_PORT: a streaming standby of the primary on 127.0.0.1:PRIMARY_PORT,
# copied with pg_basebackup (-R writes primary_conninfo and standby.signal), fed through a
# replication slot so that the primary keeps the WAL it has not received yet.
start_standby() {
    local name="$1" port="$2" primary="$3"
    local dir="$SCALE_WORK/$name"
    scale_run_as mkdir -p "$dir"
    scale_run_as "$(pg_bin pg_basebackup)" -h 127.0.0.1 -p "$primary" -U postgres -D "$dir/data" \
        -R -X stream -C -S "${name//-/_}" --no-sync >/dev/null
    scale_run_as "$(pg_bin pg_ctl)" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c hot_standby=on" start >/dev/null
    SCALE_STARTED_CLUSTERS+=("$dir")
}

stop_cluster() {
    local dir="$1"
    scale_run_as "$(pg_bin pg_ctl)" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# start_pgbouncer PORT PRIMARY_PORT: PgBouncer in transaction mode on 127.0.0.1:PORT, whose
# wildcard database reaches every database of the primary. Short server_idle_timeout: every test
# makes a database of its own, and idle server connections to finished ones must not pile up.
# Short query_wait_timeout: a client waiting for a server connection that cannot be had (the
# database away) gets an error within seconds, which the service answers as 503, instead of
# waiting PgBouncer's default 120 s, past the service's own 30 s request timeout.
start_pgbouncer() {
    local port="$1" primary="$2"
    local dir="$SCALE_WORK/pgbouncer"
    scale_run_as mkdir -p "$dir"
    printf '"postgres" ""\n' | scale_run_as tee "$dir/userlist.txt" >/dev/null
    scale_run_as tee "$dir/pgbouncer.ini" >/dev/null <<INI
[databases]
* = host=127.0.0.1 port=$primary

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 4000
default_pool_size = 20
server_idle_timeout = 5
query_wait_timeout = 5
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    scale_run_as pgbouncer -d -q "$dir/pgbouncer.ini"
    SCALE_PGBOUNCER_PID_FILE="$dir/pgbouncer.pid"
    local _
    for _ in $(seq 1 100); do
        port_taken "$port" && return 0
        sleep 0.1
    done
    log "PgBouncer did not start; see $dir/pgbouncer.log"
    return 1
}

scale_stop_all() {
    if [ -n "$SCALE_PGBOUNCER_PID_FILE" ] && [ -f "$SCALE_PGBOUNCER_PID_FILE" ]; then
        kill "$(cat "$SCALE_PGBOUNCER_PID_FILE")" 2>/dev/null || true
    fi
    SCALE_PGBOUNCER_PID_FILE=""
    local i
    for ((i = ${#SCALE_STARTED_CLUSTERS[@]} - 1; i >= 0; i--)); do
        stop_cluster "${SCALE_STARTED_CLUSTERS[$i]}"
    done
    SCALE_STARTED_CLUSTERS=()
}
