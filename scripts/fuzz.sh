#!/usr/bin/env bash
# Coverage-guided fuzzing of Vigil's input readers with libFuzzer (docs/reliability.md).
#
#   scripts/fuzz.sh build                    builds .build/fuzz/release/vigil-fuzz
#   scripts/fuzz.sh run SECONDS [TARGET…]    runs each target (all by default) for SECONDS
#   scripts/fuzz.sh runs N [TARGET…]         runs each target for N executions (at most
#                                            VIGIL_FUZZ_MAX_SECONDS each, when set)
#   scripts/fuzz.sh seeds                    remakes Tests/Fuzz/Corpus from the generator
#
# The targets are built with -sanitize=fuzzer,address in a build directory of their own
# (VIGIL_FUZZ=1 adds the driver to the package), so normal builds are unaffected. Each run starts
# from the checked-in seeds (Tests/Fuzz/Corpus/TARGET) and replays the inputs that once crashed
# (Tests/Fuzz/Crashes/TARGET); what it finds goes to .build/fuzz/corpus, and a crash to
# .build/fuzz/crashes with the input that caused it. Prints one line per target:
#   FUZZ target=event execs=… crashes=0 seconds=30
# and exits non-zero when any target crashed. An input that runs longer than VIGIL_FUZZ_TIMEOUT
# seconds (default 10) counts as a crash; raise it when the fuzzer shares a busy machine at a low
# priority, where its wall-clock timer can fire on an input that merely waited for a core.
set -euo pipefail
VIGIL_STEP=fuzz
source "$(dirname "$0")/common.sh"
vigil_env
cd "$VIGIL_ROOT"

build_dir="$VIGIL_ROOT/.build/fuzz"
binary="$build_dir/release/vigil-fuzz"

build() {
  log "building the fuzz driver (-sanitize=fuzzer,address, release; a build directory of its own)"
  # lld: gold fails on libFuzzer's whole-archive main beside SwiftPM's --defsym main=…
  VIGIL_FUZZ=1 swift build -c release --build-path "$build_dir" --product vigil-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing -Xswiftc -use-ld=lld
}

# Runs one target with the libFuzzer options given; prints its FUZZ line.
run_target() {
  local target="$1"; shift
  local corpus="$build_dir/corpus/$target" crashes="$build_dir/crashes/$target"
  local log_file="$build_dir/logs/$target.log"
  mkdir -p "$corpus" "$crashes" "$build_dir/logs"
  # Every input that once crashed must now pass.
  local replayed=0
  if [[ -d Tests/Fuzz/Crashes/$target ]] && compgen -G "Tests/Fuzz/Crashes/$target/*" >/dev/null; then
    SWIFT_BACKTRACE=enable=no "$binary" "$target" Tests/Fuzz/Crashes/"$target"/* >"$build_dir/logs/$target.replay.log" 2>&1 \
      || { echo "FUZZ target=$target replay=failed log=$build_dir/logs/$target.replay.log"; return 1; }
    replayed=$(find "Tests/Fuzz/Crashes/$target" -type f | wc -l)
  fi
  local status=0
  # Swift's backtracer off: libFuzzer's own handler then writes the crashing input.
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=0:malloc_context_size=0:${ASAN_OPTIONS:-}" "$binary" "$target" \
    -max_len=65536 -timeout="${VIGIL_FUZZ_TIMEOUT:-10}" -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "$@" "$corpus" "Tests/Fuzz/Corpus/$target" >"$log_file" 2>&1 || status=$?
  local execs seconds
  execs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log_file" | tail -1)
  seconds=$(awk '/stat::average_exec_per_sec/ {print $NF}' "$log_file" | tail -1)
  local found
  # Crashes, timeouts, leaks and out-of-memory inputs count; libFuzzer's `slow-unit-` reports
  # (inputs over 10 s of wall time, which a starved low-priority run writes) do not.
  found=$(find "$crashes" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  echo "FUZZ target=$target execs=${execs:-0} crashes=$found exec_per_s=${seconds:-0} replayed=$replayed status=$status"
  if ((status != 0)) || ((found > 0)); then
    log "target $target: see $log_file and $crashes"
    tail -30 "$log_file" >&2
    return 1
  fi
}

targets() {
  if (($# > 0)); then printf '%s\n' "$@"; else "$binary" list; fi
}

case "${1:-}" in
  build) build ;;
  run|runs)
    mode="$1"; amount="${2:?usage: scripts/fuzz.sh $1 AMOUNT [TARGET…]}"; shift 2
    [[ -x "$binary" ]] || build
    options=("-max_total_time=$amount")
    if [[ "$mode" == runs ]]; then
      options=("-runs=$amount")
      [[ -n "${VIGIL_FUZZ_MAX_SECONDS:-}" ]] && options+=("-max_total_time=$VIGIL_FUZZ_MAX_SECONDS")
    fi
    failed=0
    for target in $(targets "$@"); do
      run_target "$target" "${options[@]}" || failed=1
    done
    exit "$failed"
    ;;
  seeds)
    [[ -x "$binary" ]] || build
    rm -rf Tests/Fuzz/Corpus
    ASAN_OPTIONS=detect_leaks=0 "$binary" seeds Tests/Fuzz/Corpus
    find Tests/Fuzz/Corpus -type f | sort
    ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
