#!/usr/bin/env bash
# Manages Musubi's local test cluster: a ZooKeeper and three ClickHouse
# servers on private loopback ports, data under <repo>/.local/cluster
# (git-ignored). Shard 1 has two replicas (servers 1 and 2), shard 2 one
# (server 3); the cluster is named musubi_cluster. It never touches the
# single test server of clickhouse.sh (127.0.0.1:19000) nor anything on
# the standard ports.
#
#   deployments/local/cluster.sh install        install Debian's zookeeper and clickhouse-server if missing
#   deployments/local/cluster.sh start          install if needed, start what is not running, wait until all answer
#   deployments/local/cluster.sh stop           stop every server this script started
#   deployments/local/cluster.sh stop-server N  stop ClickHouse server N (1..3) only (the tests stop a replica)
#   deployments/local/cluster.sh status         print each server's state
#   deployments/local/cluster.sh env            print the MUSUBI_CLUSTER_* variables the cluster tests read
#
# Environment: MUSUBI_CLUSTER_DIR (<repo>/.local/cluster), MUSUBI_CLUSTER_PORT
# (29100: ClickHouse server N listens on native port +N, http +20+N,
# interserver +40+N; ZooKeeper on +81).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=${MUSUBI_CLUSTER_DIR:-$repo/.local/cluster}
base=${MUSUBI_CLUSTER_PORT:-29100}
cluster=musubi_cluster
zk_port=$((base + 81))
servers=(1 2 3)
shard_of=([1]=1 [2]=1 [3]=2)
replica_of=([1]=s1r1 [2]=s1r2 [3]=s2r1)

log() { echo "cluster.sh: $*" >&2; }
tcp_port() { echo $((base + $1)); }
http_port() { echo $((base + 20 + $1)); }
interserver_port() { echo $((base + 40 + $1)); }

install() {
	"$here/clickhouse.sh" install
	[ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null && return 0
	if ! command -v apt-get >/dev/null; then
		log "Debian's zookeeper package is not installed and this system has no apt-get."
		exit 1
	fi
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	log "installing Debian's zookeeper (apt-get)"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zookeeper >/dev/null
}

# ask PORT REQUEST: the raw answer of a plain-text request on a loopback port.
ask() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1" && printf '%b' "$2" >&3 && timeout 5 cat <&3) 2>/dev/null
}
zk_answers() { [[ "$(ask "$zk_port" 'ruok')" == imok ]]; }
ch_answers() { [[ "$(ask "$(http_port "$1")" 'GET /ping HTTP/1.0\r\n\r\n')" == *"Ok."* ]]; }

pid_running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_zk() {
	local d=$dir/zookeeper
	if pid_running "$d/pid" && zk_answers; then return 0; fi
	if zk_answers; then
		log "a ZooKeeper already answers on 127.0.0.1:$zk_port (not started from $d); using it"
		return 0
	fi
	mkdir -p "$d/data" "$d/log"
	cat >"$d/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
clientPortAddress=127.0.0.1
clientPort=$zk_port
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
autopurge.purgeInterval=1
CFG
	setsid java -Xms64m -Xmx256m -Dzookeeper.log.dir="$d/log" -Dlog4j.configuration="file:/etc/zookeeper/conf_example/log4j.properties" \
		-Dzookeeper.root.logger=WARN,CONSOLE \
		-cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain "$d/zoo.cfg" \
		>"$d/log/stdout.log" 2>&1 </dev/null &
	echo $! >"$d/pid"
}

start_ch() {
	local n=$1 d=$dir/ch$1
	# users.xml is reloaded by a running server: a changed profile applies
	# without a restart.
	[ -d "$d" ] && cp "$here/cluster-users.xml" "$d/users.xml"
	if pid_running "$d/pid" && ch_answers "$n"; then return 0; fi
	if ch_answers "$n"; then
		log "a ClickHouse already answers on 127.0.0.1:$(http_port "$n") (not started from $d); using it"
		return 0
	fi
	mkdir -p "$d"/{data,tmp,log,user_files,format_schemas}
	sed -e "s#@DIR@#$d#g" -e "s#@TCP_PORT@#$(tcp_port "$n")#g" -e "s#@HTTP_PORT@#$(http_port "$n")#g" \
		-e "s#@INTERSERVER_PORT@#$(interserver_port "$n")#g" -e "s#@CLUSTER@#$cluster#g" \
		-e "s#@TCP_PORT_1@#$(tcp_port 1)#g" -e "s#@TCP_PORT_2@#$(tcp_port 2)#g" -e "s#@TCP_PORT_3@#$(tcp_port 3)#g" \
		-e "s#@ZK_PORT@#$zk_port#g" -e "s#@SHARD@#${shard_of[$n]}#g" -e "s#@REPLICA@#${replica_of[$n]}#g" \
		"$here/cluster-config.xml" >"$d/config.xml"
	cp "$here/cluster-users.xml" "$d/users.xml"
	local bin
	bin=$(command -v clickhouse-server || command -v clickhouse)
	if [ "$(basename "$bin")" = clickhouse ]; then
		setsid "$bin" server --config-file="$d/config.xml" >"$d/log/stdout.log" 2>&1 </dev/null &
	else
		setsid "$bin" --config-file="$d/config.xml" >"$d/log/stdout.log" 2>&1 </dev/null &
	fi
	echo $! >"$d/pid"
}

# wait_for NAME PIDFILE CHECK...: until CHECK succeeds, for at most 90s.
wait_for() {
	local name=$1 pidfile=$2
	shift 2
	for _ in $(seq 1 180); do
		"$@" && return 0
		if [ -f "$pidfile" ] && ! pid_running "$pidfile"; then
			log "$name exited; last log lines:"
			tail -n 20 "$(dirname "$pidfile")"/log/* >&2 2>/dev/null || true
			exit 1
		fi
		sleep 0.5
	done
	log "$name did not answer within 90s"
	exit 1
}

start() {
	install
	start_zk
	wait_for zookeeper "$dir/zookeeper/pid" zk_answers
	for n in "${servers[@]}"; do start_ch "$n"; done
	for n in "${servers[@]}"; do wait_for "clickhouse server $n" "$dir/ch$n/pid" ch_answers "$n"; done
	log "ready: cluster $cluster on 127.0.0.1:$(tcp_port 1),$(tcp_port 2) (shard 1) and :$(tcp_port 3) (shard 2), ZooKeeper :$zk_port, data in $dir"
}

stop_pid() {
	local name=$1 pidfile=$2
	if pid_running "$pidfile"; then
		local pid
		pid=$(cat "$pidfile")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$pid" 2>/dev/null || true
		log "stopped $name (pid $pid)"
	fi
	rm -f "$pidfile"
}

stop() {
	for n in "${servers[@]}"; do stop_pid "clickhouse server $n" "$dir/ch$n/pid"; done
	stop_pid zookeeper "$dir/zookeeper/pid"
}

stop_server() {
	case "${1:-}" in 1 | 2 | 3) ;; *) echo "usage: $0 stop-server 1|2|3" >&2; exit 2 ;; esac
	if ! pid_running "$dir/ch$1/pid" && ch_answers "$1"; then
		# A server another checkout started (see start_ch) is not ours to
		# stop: say so rather than leave it running unnoticed.
		log "clickhouse server $1 answers on 127.0.0.1:$(http_port "$1") but was not started from $dir; stop it with the cluster.sh that started it"
		exit 1
	fi
	stop_pid "clickhouse server $1" "$dir/ch$1/pid"
}

status() {
	local ok=0
	if zk_answers; then echo "zookeeper: running, 127.0.0.1:$zk_port"; else echo "zookeeper: not running"; ok=1; fi
	for n in "${servers[@]}"; do
		if ch_answers "$n"; then
			echo "clickhouse $n (shard ${shard_of[$n]}, replica ${replica_of[$n]}): running, 127.0.0.1:$(tcp_port "$n")"
		else
			echo "clickhouse $n (shard ${shard_of[$n]}, replica ${replica_of[$n]}): not running"
			ok=1
		fi
	done
	return $ok
}

env_vars() {
	echo "MUSUBI_CLUSTER_ADDRS=127.0.0.1:$(tcp_port 1),127.0.0.1:$(tcp_port 2),127.0.0.1:$(tcp_port 3)"
	echo "MUSUBI_CLUSTER_NAME=$cluster"
	echo "MUSUBI_CLUSTER_SCRIPT=$here/cluster.sh"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
stop-server) stop_server "${2:-}" ;;
status) status ;;
env) env_vars ;;
*) echo "usage: $0 install|start|stop|stop-server N|status|env" >&2; exit 2 ;;
esac
