# shellcheck shell=bash
# What the load-driving bench scripts share; sourced, not run. Needs `log` (scripts/lib/postgres.sh).

# json_field NAME: the field NAME of the JSON object on standard input.
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
# rate FILE: requests per second of a wrk report.
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
# wait_for URL: until URL answers 2xx, for at most 30 s.
wait_for() { for _ in $(seq 1 600); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; log "$1 never answered"; return 1; }

# nginx_start WORKERS: nginx ($NGINX) serving $WORK/jwks.json as the service serves its JWKS, on
# 127.0.0.1:$NGINX_PORT; nginx_stop stops it.
nginx_start() {
    cat >"$WORK/nginx.conf" <<CONF
worker_processes $1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /jwks.json { root $WORK; default_type application/json; add_header Cache-Control "public, max-age=300"; }
    }
}
CONF
    "$NGINX" -c "$WORK/nginx.conf" -p "$WORK"
    wait_for "http://127.0.0.1:$NGINX_PORT/jwks.json"
}
nginx_stop() { kill "$(cat "$WORK/nginx.pid")"; sleep 0.5; rm -f "$WORK/nginx.pid"; }
