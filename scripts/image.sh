#!/usr/bin/env bash
# Builds the container image localhost/vigil:dev (deploy/Containerfile, two stages) with Debian's
# buildah, and with `--test` runs it against a local broker: the container scores generated
# events and prints its alerts.
#
#   scripts/image.sh [--test]
#
# No registry is reachable here, so there is no Debian or Swift image to start from. Instead:
# - both stages start from Debian 12 root filesystems made by debootstrap from the configured
#   mirror, cached in .deps/image: the build stage's with what the Swift toolchain and the C
#   libraries need to compile and link (build-rootfs), the runtime's (minbase) with only the
#   runtime libraries (OpenBLAS, OpenSSL, zstd, LZ4, zlib, curl, CA certificates) (rootfs);
# - the build stage compiles vigil from the sources git tracks, with the host's Swift toolchain
#   (/opt/swift) and Swift package mirror mounted into it, and librdkafka as scripts/setup.sh
#   built it (static, on the same Debian 12);
# - the runtime stage copies the stripped binary from the build stage.
# buildah uses vfs storage and chroot isolation (no overlay or user namespaces needed).
set -euo pipefail
VIGIL_STEP=image
source "$(dirname "$0")/common.sh"
cd "$VIGIL_ROOT"
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
IMAGE=localhost/vigil:dev
WORK="$DEPS/image"
BUILDAH=(buildah --storage-driver vfs)

missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  log "installing ${missing[*]} from Debian"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$VIGIL_ROOT/scripts/setup.sh" >/dev/null
vigil_env

mirror="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1)"
[[ -n "$mirror" ]] || mirror="$(grep -hsE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1)"
[[ -n "$mirror" ]] || die "no Debian mirror found in /etc/apt/sources.list*"
if [[ ! -f "$WORK/rootfs.done" ]]; then
  log "making a Debian 12 root filesystem with debootstrap from $mirror"
  $SUDO rm -rf "$WORK/rootfs"; mkdir -p "$WORK"
  $SUDO debootstrap --variant=minbase \
    --include=libopenblas0-pthread,libssl3,libzstd1,liblz4-1,zlib1g,libcurl4,ca-certificates \
    bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log"
  # What a running engine never reads.
  $SUDO rm -rf "$WORK/rootfs/usr/share/doc" "$WORK/rootfs/usr/share/man" "$WORK/rootfs/usr/share/info" \
    "$WORK/rootfs/var/cache/apt/archives"/*.deb "$WORK/rootfs/var/lib/apt/lists"/*
  touch "$WORK/rootfs.done"
fi

if [[ ! -f "$WORK/build-rootfs.done" ]]; then
  log "making the build stage's Debian 12 root filesystem with debootstrap"
  $SUDO rm -rf "$WORK/build-rootfs"; mkdir -p "$WORK"
  $SUDO debootstrap --variant=minbase \
    --include=libc6-dev,libgcc-12-dev,libstdc++-12-dev,binutils,git,ca-certificates,pkg-config,libcurl4-openssl-dev,libxml2,libsqlite3-0,libncurses6,libedit2,libpython3.11,zlib1g-dev,libssl-dev,libzstd-dev,liblz4-dev,libopenblas-dev \
    bookworm "$WORK/build-rootfs" "$mirror" >"$WORK/build-debootstrap.log"
  $SUDO rm -rf "$WORK/build-rootfs/var/cache/apt/archives"/*.deb "$WORK/build-rootfs/var/lib/apt/lists"/*
  touch "$WORK/build-rootfs.done"
fi

log "the build context"
context="$WORK/context"
rm -rf "$context"; mkdir -p "$context/topologies" "$context/source"
$SUDO tar -C "$WORK/rootfs" -cf "$context/rootfs.tar" .
$SUDO tar -C "$WORK/build-rootfs" -cf "$context/build-rootfs.tar" .
# The sources as committed or edited, not the build products or caches beside them.
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$context/source"
cp -a "$DEPS/librdkafka" "$context/librdkafka"
cp topologies/*.yaml "$context/topologies/"
cp topologies/card-payments.yaml "$context/topologies/topology.yaml"

# The build stage's RUN steps see the toolchain and, where this machine has one, the package
# mirror that git's configuration points github.com at; elsewhere SwiftPM fetches as usual.
toolchain="$(dirname "$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")")"  # …/usr/bin/swift
volumes=(--volume "$toolchain:/opt/swift:ro")
mirror_dir="$(git config --system --get-regexp '^url\..*\.insteadof$' 2>/dev/null | awk '{print $1}' | head -n1 |
  sed -E 's/^url\.(.*)\.insteadof$/\1/I')"
if [[ -n "$mirror_dir" && -d "$mirror_dir" ]]; then
  volumes+=(--volume "$mirror_dir:$mirror_dir:ro" --volume /etc/gitconfig:/etc/gitconfig:ro)
fi

log "building $IMAGE with buildah"
# Each stage ends with `vigil --version`, so a library missing from the runtime stage fails
# the build rather than the first start.
"${BUILDAH[@]}" bud --isolation chroot --layers=false "${volumes[@]}" -t "$IMAGE" -f "$VIGIL_ROOT/deploy/Containerfile" \
  "$context"
# The image this replaced, and the build stage, are no longer needed (vfs keeps every layer whole).
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
"${BUILDAH[@]}" images "$IMAGE"

[[ "${1:-}" == --test ]] || exit 0

log "running the image against a local broker"
export VIGIL_BROKER_NAME=image
port="$(scripts/broker.sh start)"
trap 'scripts/broker.sh stop >/dev/null 2>&1 || true; "${BUILDAH[@]}" rm vigil-image-test >/dev/null 2>&1 || true' EXIT
brokers="127.0.0.1:$port"
"${BUILDAH[@]}" rm vigil-image-test >/dev/null 2>&1 || true
"${BUILDAH[@]}" from --name vigil-image-test "$IMAGE" >/dev/null
# Everything from the image: the topics, the generated stream, then the engine.
in_image() { "${BUILDAH[@]}" run --isolation chroot vigil-image-test -- /usr/local/bin/vigil "$@"; }
in_image create-topics --topology /etc/vigil/topology.yaml --brokers "$brokers" >/dev/null
in_image generate --brokers "$brokers" --events 20000 --labels-topic payments-labels 2>/dev/null
out="$WORK/test-run.log"
"${BUILDAH[@]}" run --isolation chroot vigil-image-test -- /usr/local/bin/vigil run \
  --topology /etc/vigil/topology.yaml --brokers "$brokers" --events 20000 --print-alerts >"$out" 2>&1 ||
  { tail -20 "$out"; die "the container failed"; }
alerts="$(grep -c '^ALERT ' "$out" || true)"
user="$("${BUILDAH[@]}" run --isolation chroot vigil-image-test -- id -u)"
tail -5 "$out"
((alerts > 0)) || die "the container printed no alert (log: $out)"
[[ "$user" == 10001 ]] || die "the container runs as user $user, not 10001"
echo "RESULT image=$IMAGE events=20000 alerts=$alerts user=$user"
