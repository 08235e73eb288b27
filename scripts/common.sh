# Shared paths and helpers for Vigil's scripts. Sourced, never run.
# Everything the project installs lives under .deps/ (ignored by git), so a clone is self-contained.

VIGIL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="${VIGIL_DEPS:-$VIGIL_ROOT/.deps}"
RDK_PREFIX="$DEPS/librdkafka"
DEPS_BIN="$DEPS/bin"
DEPS_VENV="$DEPS/venv"
# Debian puts OpenBLAS's pkg-config files beside the pthread build, off pkg-config's default path.
OPENBLAS_PC_DIR="/usr/lib/$(uname -m)-linux-gnu/openblas-pthread/pkgconfig"

if [[ -t 2 ]]; then _B=$'\033[1m' _N=$'\033[0m'; else _B="" _N=""; fi
log()  { printf '%s[vigil %s +%ss]%s %s\n' "$_B" "${VIGIL_STEP:-setup}" "$SECONDS" "$_N" "$*" >&2; }
die()  { printf '[vigil %s] ERROR: %s\n' "${VIGIL_STEP:-setup}" "$*" >&2; exit 1; }

# The environment every build, test and run of Vigil needs: pkg-config finds librdkafka 2.8
# (unless VIGIL_RDKAFKA=system) and OpenBLAS.
vigil_env() {
  local pc="$OPENBLAS_PC_DIR"
  [[ "${VIGIL_RDKAFKA:-local}" == system ]] || pc="$RDK_PREFIX/lib/pkgconfig:$pc"
  export PKG_CONFIG_PATH="$pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export PATH="$DEPS_BIN:$PATH"
}

# "librdkafka 2.8.0, Tansu 0.6.0" and "2 cores, 24 GiB, Debian …": the first lines of every bench table.
versions_line() {
  echo "librdkafka $(PKG_CONFIG_PATH="$RDK_PREFIX/lib/pkgconfig" pkg-config --modversion rdkafka), Tansu $("$DEPS_BIN/tansu" --version | awk '{print $2}')"
}
machine_line() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME")"
}
