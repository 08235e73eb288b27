# Shared by the bench scripts: source it after scripts/common.sh.

# Installs what the scripts need (quietly, unless something fails) and moves to the repository.
bench_setup() {
  "$VIGIL_ROOT/scripts/setup.sh" >/dev/null 2>&1 || "$VIGIL_ROOT/scripts/setup.sh"
  vigil_env
  cd "$VIGIL_ROOT"
}

# The peers' Python: bench/.venv with pinned River and scikit-learn, created on first use.
# Prints the interpreter's path.
RIVER_VERSION=0.26.1
SKLEARN_VERSION=1.9.1
bench_python() {
  local venv="$VIGIL_ROOT/bench/.venv"
  if ! "$venv/bin/python" -c "import river, sklearn" 2>/dev/null; then
    log "installing river $RIVER_VERSION and scikit-learn $SKLEARN_VERSION into bench/.venv"
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
      "river==$RIVER_VERSION" "scikit-learn==$SKLEARN_VERSION" >&2
  fi
  echo "$venv/bin/python"
}

# Builds one executable of the bench package in release mode and prints its path.
bench_build() {
  log "building $1 (release)"
  # SwiftPM can miss source files added to the main package (a path dependency here) and link a
  # stale module; touching the manifest makes it plan the build again.
  touch "$VIGIL_ROOT/bench/Package.swift"
  swift build -c release --package-path "$VIGIL_ROOT/bench" --product "$1" >/dev/null 2>&1 ||
    swift build -c release --package-path "$VIGIL_ROOT/bench" --product "$1" >&2
  echo "$VIGIL_ROOT/bench/.build/release/$1"
}

# `field NAME`: the value of " NAME=…" on each input line.
field() { grep -o " $1=[0-9.]*" | cut -d= -f2; }

# Builds the vigil command in release mode and prints its path.
bench_vigil() {
  log "building vigil (release)"
  swift build -c release --product vigil >/dev/null 2>&1 || swift build -c release --product vigil >&2
  echo "$VIGIL_ROOT/.build/release/vigil"
}

# Starts a fresh local broker named `bench` and sets BROKERS to its address. When the script
# exits, the broker stops and every pid in the array `pids` is killed. Call it directly, not in
# $(…): the exit trap belongs to the calling shell.
bench_broker() {
  export VIGIL_BROKER_NAME=bench
  pids=()
  trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT
  scripts/broker.sh stop >/dev/null 2>&1 || true
  BROKERS="127.0.0.1:$(scripts/broker.sh start)"
}
