#!/usr/bin/env bash
# Manages Musubi's local ClickHouse: a clickhouse-server process on private
# loopback ports with its data under <repo>/.local/clickhouse (git-ignored).
# It never touches a ClickHouse running on the standard ports.
#
#   deployments/local/clickhouse.sh install   install Debian's clickhouse-server if missing
#   deployments/local/clickhouse.sh start     install if needed, start, wait until it answers
#   deployments/local/clickhouse.sh stop      stop the server this script started
#   deployments/local/clickhouse.sh status    print whether it runs and its address
#
# Environment: MUSUBI_CH_TCP_PORT (19000), MUSUBI_CH_HTTP_PORT (18123),
# MUSUBI_CH_DIR (<repo>/.local/clickhouse).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=${MUSUBI_CH_DIR:-$repo/.local/clickhouse}
tcp_port=${MUSUBI_CH_TCP_PORT:-19000}
http_port=${MUSUBI_CH_HTTP_PORT:-18123}
interserver_port=${MUSUBI_CH_INTERSERVER_PORT:-19009}
pidfile=$dir/clickhouse-server.pid

log() { echo "clickhouse.sh: $*" >&2; }

server_bin() {
	for b in /usr/bin/clickhouse-server /usr/bin/clickhouse; do
		[ -x "$b" ] && { echo "$b"; return 0; }
	done
	command -v clickhouse-server 2>/dev/null || command -v clickhouse 2>/dev/null || return 1
}

install() {
	if server_bin >/dev/null; then return 0; fi
	if ! command -v apt-get >/dev/null; then
		log "clickhouse-server is not installed and this system has no apt-get."
		log "Install ClickHouse yourself and set MUSUBI_CLICKHOUSE_ADDR, or run the"
		log "whole stack with deployments/compose (see README)."
		exit 1
	fi
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	log "installing Debian's clickhouse-server (apt-get)"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server >/dev/null
}

answers() {
	# The HTTP interface answers "Ok." on /ping.
	local out
	out=$( (exec 3<>"/dev/tcp/127.0.0.1/$http_port" && printf 'GET /ping HTTP/1.0\r\n\r\n' >&3 && cat <&3) 2>/dev/null) || return 1
	[[ "$out" == *"Ok."* ]]
}

running() {
	[ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

start() {
	install
	if running && answers; then
		log "already running on 127.0.0.1:$tcp_port (pid $(cat "$pidfile"))"
		return 0
	fi
	if answers; then
		# Another checkout's server (or one you started) on the private
		# ports: use it rather than fight over the ports.
		log "a ClickHouse already answers on 127.0.0.1:$http_port (not started from $dir); using it"
		return 0
	fi
	mkdir -p "$dir"/{data,tmp,log,user_files,format_schemas}
	sed -e "s#@DIR@#$dir#g" -e "s#@TCP_PORT@#$tcp_port#g" -e "s#@HTTP_PORT@#$http_port#g" \
		-e "s#@INTERSERVER_PORT@#$interserver_port#g" "$here/clickhouse-config.xml" >"$dir/config.xml"
	cp "$here/clickhouse-users.xml" "$dir/users.xml"
	local bin
	bin=$(server_bin)
	# clickhouse-server runs in the foreground; keep it in the background
	# with its own session so it outlives this script.
	if [ "$(basename "$bin")" = clickhouse ]; then
		setsid "$bin" server --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 </dev/null &
	else
		setsid "$bin" --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 </dev/null &
	fi
	echo $! >"$pidfile"
	for _ in $(seq 1 120); do
		if answers; then
			log "ready on 127.0.0.1:$tcp_port (native) and :$http_port (http), data in $dir"
			return 0
		fi
		if ! running; then
			log "server exited; last log lines:"
			tail -n 20 "$dir/log/clickhouse-server.err.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
			exit 1
		fi
		sleep 0.5
	done
	log "server did not answer within 60s"
	exit 1
}

stop() {
	if running; then
		local pid
		pid=$(cat "$pidfile")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$pid" 2>/dev/null || true
		log "stopped (pid $pid)"
	fi
	rm -f "$pidfile"
}

status() {
	if running && answers; then
		echo "running: pid $(cat "$pidfile"), 127.0.0.1:$tcp_port"
	else
		echo "not running"
		return 1
	fi
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
status) status ;;
*) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
