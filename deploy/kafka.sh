#!/usr/bin/env bash
# The local single-node Apache Kafka broker (KRaft) for yijian's demo and tests.
#
#   deploy/kafka.sh fetch    download the pinned broker jars from Maven Central (once; cached)
#   deploy/kafka.sh start    fetch if needed, format storage on first start, start in the background,
#                            wait until the broker answers; a second start is harmless
#   deploy/kafka.sh stop     stop the broker (clean shutdown, then SIGKILL after a timeout)
#   deploy/kafka.sh status   say whether it runs, its pid, port and folders
#
# Where things live (all under the project's ignored var/ folder unless overridden):
#   YIJIAN_HOME               default <repo>/var
#   $YIJIAN_HOME/cache/kafka  downloaded jars (rebuildable cache)
#   $YIJIAN_HOME/data/kafka   broker storage, cluster id, pid file and server.log (kept across stop/start)
#   YIJIAN_KAFKA_PORT         broker port on 127.0.0.1 (default 9092); controller uses port + 1
#   YIJIAN_KAFKA_CACHE, YIJIAN_KAFKA_DATA   override the two folders above
#   YIJIAN_KAFKA_HOSPITAL_PORT  optional second listener (HOSPITAL) for hospital producers, as a
#                             production cluster has (there: SASL_SSL on a public address)
#   YIJIAN_KAFKA_HOSPITAL_ADVERTISED  host:port the HOSPITAL listener advertises (default
#                             127.0.0.1:<its port>); the reliability tests advertise a TCP proxy
#                             here, so they can cut the hospitals off while the platform runs on
#
# Needs Java 17+ and Maven (mvn) on PATH. Production clusters are not run with this script: see deploy/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
home="${YIJIAN_HOME:-$repo/var}"
port="${YIJIAN_KAFKA_PORT:-9092}"
cport=$((port + 1))
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")"
libs="${YIJIAN_KAFKA_CACHE:-$home/cache/kafka}/$version/libs"
data="${YIJIAN_KAFKA_DATA:-$home/data/kafka}"
pidfile="$data/broker.pid"
props="$data/server.properties"

log() { echo "[kafka] $*" >&2; }

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  command -v java >/dev/null || { log "java not found: install a JDK 17+"; exit 1; }
  command -v mvn >/dev/null || { log "mvn not found: install Maven"; exit 1; }
  log "fetching Apache Kafka $version jars from Maven Central into $libs"
  mkdir -p "$libs"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
  log "fetched $(ls "$libs"/*.jar | wc -l) jars, $(du -sh "$libs" | cut -f1)"
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

java_opts() {
  JAVA_OPTS=(-Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$data/log4j.properties" "-Dkafka.logs.dir=$data" -cp "$libs/*")
}

run_java() { java_opts; java "${JAVA_OPTS[@]}" "$@"; }

configure() {
  mkdir -p "$data"
  sed -e "s#@DATA_DIR@#$data#g" -e "s#@BROKER_PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$cport#g" \
      "$here/kafka/server.properties" > "$props"
  if [ -n "${YIJIAN_KAFKA_HOSPITAL_PORT:-}" ]; then
    local hport="$YIJIAN_KAFKA_HOSPITAL_PORT" hadv="${YIJIAN_KAFKA_HOSPITAL_ADVERTISED:-127.0.0.1:$YIJIAN_KAFKA_HOSPITAL_PORT}"
    sed -i -e "s#^listeners=\(.*\)#listeners=\1,HOSPITAL://127.0.0.1:$hport#" \
           -e "s#^advertised.listeners=\(.*\)#advertised.listeners=\1,HOSPITAL://$hadv#" \
           -e "s#^listener.security.protocol.map=\(.*\)#listener.security.protocol.map=\1,HOSPITAL:PLAINTEXT#" "$props"
  fi
  cp "$here/kafka/log4j.properties" "$data/log4j.properties"
  if [ ! -f "$data/logs/meta.properties" ]; then
    local cluster_id
    cluster_id="$(run_java kafka.tools.StorageTool random-uuid)"
    log "formatting storage in $data/logs (cluster id $cluster_id)"
    run_java kafka.tools.StorageTool format -t "$cluster_id" -c "$props" >&2
  fi
}

start() {
  if running; then
    log "already running (pid $(cat "$pidfile")) on 127.0.0.1:$port"
    return 0
  fi
  if answers; then
    log "port $port is taken by another process; set YIJIAN_KAFKA_PORT"; exit 1
  fi
  fetch
  configure
  local t0=$SECONDS
  # setsid: the broker gets its own session, so Ctrl-C in the shell that started it does not kill it
  java_opts
  setsid nohup java "${JAVA_OPTS[@]}" kafka.Kafka "$props" > "$data/console.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 240); do
    if answers; then log "started pid $(cat "$pidfile") on 127.0.0.1:$port in $((SECONDS - t0)) s"; return 0; fi
    if ! running; then log "broker exited; last lines of $data/console.log:"; tail -20 "$data/console.log" >&2; exit 1; fi
    sleep 0.25
  done
  log "broker did not answer on port $port within 60 s; see $data/server.log"; exit 1
}

stop() {
  if ! running; then log "not running"; rm -f "$pidfile"; return 0; fi
  local pid; pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; log "stopped pid $pid"; return 0; }
    sleep 0.25
  done
  log "pid $pid did not stop in 30 s; killing"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

status() {
  if running; then
    echo "running pid=$(cat "$pidfile") port=$port data=$data cache=$libs"
  else
    echo "stopped port=$port data=$data cache=$libs"; return 3
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) sed -n '2,18p' "$0"; exit 2 ;;
esac
