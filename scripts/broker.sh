#!/usr/bin/env bash
# A local Kafka-protocol broker (Tansu, memory storage) on a free loopback port.
#
#   scripts/broker.sh start [PORT]        start (if not running), wait until it answers, print the port
#   scripts/broker.sh stop                stop it
#   scripts/broker.sh status              print "running PORT" or "stopped" (exit 1 when stopped)
#   scripts/broker.sh topic NAME [PARTS]  create a topic (default 4 partitions); no-op if it exists
#   scripts/broker.sh address             print 127.0.0.1:PORT of the running broker
#
# VIGIL_BROKER_NAME (default "dev") keeps separate brokers apart (the tests use "test"): each has
# its pid, port and log under .deps/run/NAME/. Memory storage: a restart loses every topic.
set -euo pipefail
VIGIL_STEP=broker
source "$(dirname "$0")/common.sh"

NAME="${VIGIL_BROKER_NAME:-dev}"
RUN="$DEPS/run/$NAME"
TANSU="$DEPS_BIN/tansu"

broker_pid() {
  local pid
  [[ -f "$RUN/tansu.pid" ]] || return 1
  pid="$(cat "$RUN/tansu.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Ready means a real Kafka request (Metadata) was answered, not just an open port.
answers() { "$TANSU" topic list --broker "tcp://127.0.0.1:$1" >/dev/null 2>&1; }

cmd_start() {
  [[ -x "$TANSU" ]] || die "tansu is not installed: run scripts/setup.sh"
  if broker_pid >/dev/null; then cat "$RUN/tansu.port"; return; fi
  mkdir -p "$RUN"
  local port="${1:-$(free_port)}"
  local url="tcp://127.0.0.1:$port"
  log "starting tansu ($NAME) on $url, log $RUN/tansu.log"
  # setsid: its own session, so the caller's job control does not take it down.
  setsid "$TANSU" broker --listener-url "$url" --advertised-listener-url "$url" \
    --storage-engine memory://tansu/ > "$RUN/tansu.log" 2>&1 < /dev/null &
  echo $! > "$RUN/tansu.pid"
  echo "$port" > "$RUN/tansu.port"
  for _ in $(seq 1 100); do
    broker_pid >/dev/null || { tail -20 "$RUN/tansu.log" >&2; die "tansu exited at start (log above)"; }
    if answers "$port"; then log "broker ready on 127.0.0.1:$port"; echo "$port"; return; fi
    sleep 0.1
  done
  cmd_stop
  die "tansu did not answer within 10 s (log: $RUN/tansu.log)"
}

cmd_stop() {
  local pid
  if pid="$(broker_pid)"; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "broker ($NAME) stopped"
  fi
  rm -f "$RUN/tansu.pid" "$RUN/tansu.port"
}

cmd_status() {
  if broker_pid >/dev/null; then echo "running $(cat "$RUN/tansu.port")"; else echo stopped; return 1; fi
}

cmd_address() {
  broker_pid >/dev/null || die "broker ($NAME) is not running: scripts/broker.sh start"
  echo "127.0.0.1:$(cat "$RUN/tansu.port")"
}

cmd_topic() {
  local name="${1:?usage: broker.sh topic NAME [PARTITIONS]}" parts="${2:-4}" port out
  broker_pid >/dev/null || die "broker ($NAME) is not running"
  port="$(cat "$RUN/tansu.port")"
  if out="$("$TANSU" topic create "$name" --partitions "$parts" --broker "tcp://127.0.0.1:$port" 2>&1)"; then
    log "topic $name created ($parts partitions)"
  elif grep -q "already exists" <<<"$out"; then
    log "topic $name exists"
  else
    die "creating topic $name failed: $out"
  fi
}

case "${1:-}" in
  start|stop|status|topic|address) cmd="$1"; shift; "cmd_$cmd" "$@" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
