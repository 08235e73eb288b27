#!/usr/bin/env bash
# A local Kafka-protocol broker (Tansu) on a free loopback port.
#
#   scripts/broker.sh start [--durable] [PORT]  start (if not running), wait until it answers, print the port
#   scripts/broker.sh stop [--all]        stop the broker (--all: its durable store as well)
#   scripts/broker.sh status              print "running PORT [durable]" or "stopped" (exit 1 when stopped)
#   scripts/broker.sh topic NAME [PARTS]  create a topic (default 4 partitions); no-op if it exists
#   scripts/broker.sh address             print 127.0.0.1:PORT of the running broker
#
# VIGIL_BROKER_NAME (default "dev") keeps separate brokers apart (the tests use "test"): each has
# its pid, port and log under .deps/run/NAME/.
#
# Storage: memory by default, so a restart loses every topic. With --durable the broker keeps
# topics, groups and offsets in a local S3 store (moto's server, from `scripts/setup.sh
# testtools`), which `stop` leaves running: `stop` then `start --durable` is a broker restart that
# keeps its data. The store holds it in memory, so `stop --all` ends it. Tansu's S3 storage does
# not report a partition's end (ListOffsets latest) truly: it lags (the last batch's base offset
# + 1, and less after a restart), so a reader that stops at the end (`vigil run --until-end`)
# stops short. Read a known number of records (`--events`) instead.
set -euo pipefail
VIGIL_STEP=broker
source "$(dirname "$0")/common.sh"

NAME="${VIGIL_BROKER_NAME:-dev}"
RUN="$DEPS/run/$NAME"
TANSU="$DEPS_BIN/tansu"

# `live_pid NAME`: the pid in $RUN/NAME.pid while that process runs; fails otherwise.
live_pid() {
  local pid
  [[ -f "$RUN/$1.pid" ]] || return 1
  pid="$(cat "$RUN/$1.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}
broker_pid() { live_pid tansu; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Ready means a real Kafka request (Metadata) was answered, not just an open port.
answers() { "$TANSU" topic list --broker "tcp://127.0.0.1:$1" >/dev/null 2>&1; }

store_pid() { live_pid store; }

# Starts the S3 store (if not running) and creates its bucket; prints its port.
start_store() {
  local server="$DEPS_VENV/bin/moto_server" port
  [[ -x "$server" ]] || die "the durable store (moto) is not installed: run scripts/setup.sh testtools"
  if store_pid >/dev/null; then cat "$RUN/store.port"; return; fi
  port="$(free_port)"
  log "starting the durable store (moto) on 127.0.0.1:$port, log $RUN/store.log"
  setsid "$server" -H 127.0.0.1 -p "$port" > "$RUN/store.log" 2>&1 < /dev/null &
  echo $! > "$RUN/store.pid"
  echo "$port" > "$RUN/store.port"
  # S3's CreateBucket is a PUT of the bucket's path; it succeeds once the server is up.
  for _ in $(seq 1 150); do
    if "$DEPS_VENV/bin/python" -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"", method="PUT"), timeout=2)' \
      "http://127.0.0.1:$port/vigil" 2>/dev/null; then
      echo "$port"; return
    fi
    store_pid >/dev/null || break
    sleep 0.1
  done
  tail -20 "$RUN/store.log" >&2
  die "the durable store did not start (log above)"
}

cmd_start() {
  [[ -x "$TANSU" ]] || die "tansu is not installed: run scripts/setup.sh"
  local durable=0
  if [[ "${1:-}" == --durable ]]; then durable=1; shift; fi
  if broker_pid >/dev/null; then cat "$RUN/tansu.port"; return; fi
  mkdir -p "$RUN"
  local port="${1:-$(free_port)}"
  local url="tcp://127.0.0.1:$port" storage=memory://tansu/ env=()
  if ((durable)); then
    local store
    store="$(start_store)"
    storage=s3://vigil/
    env=(AWS_ENDPOINT="http://127.0.0.1:$store" AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=vigil
      AWS_SECRET_ACCESS_KEY=vigil AWS_DEFAULT_REGION=us-east-1)
    echo durable > "$RUN/storage"
  else
    echo memory > "$RUN/storage"
  fi
  log "starting tansu ($NAME, $storage) on $url, log $RUN/tansu.log"
  # setsid: its own session, so the caller's job control does not take it down.
  env "${env[@]}" setsid "$TANSU" broker --listener-url "$url" --advertised-listener-url "$url" \
    --storage-engine "$storage" > "$RUN/tansu.log" 2>&1 < /dev/null &
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
  if [[ "${1:-}" == --all ]] && pid="$(store_pid)"; then
    # moto does not need a graceful end: its data is gone either way.
    kill -9 "$pid"
    log "durable store ($NAME) stopped; its topics are gone"
  fi
  [[ "${1:-}" == --all ]] && rm -f "$RUN/store.pid" "$RUN/store.port"
  return 0
}

cmd_status() {
  if broker_pid >/dev/null; then
    local kind=""
    [[ "$(cat "$RUN/storage" 2>/dev/null)" == durable ]] && kind=" durable"
    echo "running $(cat "$RUN/tansu.port")$kind"
  else
    echo stopped; return 1
  fi
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
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
