#!/usr/bin/env bash
# Builds the container image localhost/vigil:dev (deploy/Containerfile) with Debian's buildah,
# and with `--test` runs it against a local broker: the container scores generated events and
# prints its alerts.
#
#   scripts/image.sh [--test]
#
# No registry is reachable here, so there is no Debian or Swift image to start from. Instead:
# - the root filesystem is Debian 12 (minbase) made by debootstrap from the configured mirror,
#   with only the runtime libraries (OpenBLAS, OpenSSL, zstd, LZ4, zlib, curl, CA certificates),
#   cached in .deps/image/rootfs;
# - vigil is built here in release mode with the Swift runtime linked statically (librdkafka
#   already is), on the same Debian 12, so it runs on that root filesystem.
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
# The static Swift runtime's FoundationNetworking links libcurl.
dpkg-query -W -f='${Status}' libcurl4-openssl-dev 2>/dev/null | grep -q 'install ok installed' ||
  missing+=(libcurl4-openssl-dev)
if ((${#missing[@]})); then
  log "installing ${missing[*]} from Debian"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$VIGIL_ROOT/scripts/setup.sh" >/dev/null
vigil_env

log "building vigil (release, static Swift runtime)"
swift build -c release --product vigil --static-swift-stdlib
BIN="$(swift build -c release --product vigil --static-swift-stdlib --show-bin-path)/vigil"

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

log "the build context"
context="$WORK/context"
rm -rf "$context"; mkdir -p "$context/topologies"
$SUDO tar -C "$WORK/rootfs" -cf "$context/rootfs.tar" .
strip -o "$context/vigil" "$BIN"   # without its symbols: 82 MB of 150
cp topologies/*.yaml "$context/topologies/"
cp topologies/card-payments.yaml "$context/topologies/topology.yaml"
# Missing libraries would only show when the container starts: check them in the root filesystem.
if $SUDO chroot "$WORK/rootfs" /bin/true 2>/dev/null; then
  cp "$BIN" "$WORK/rootfs/tmp/vigil-check"
  unresolved="$($SUDO chroot "$WORK/rootfs" /usr/bin/ldd /tmp/vigil-check | grep 'not found' || true)"
  rm -f "$WORK/rootfs/tmp/vigil-check"
  [[ -z "$unresolved" ]] || die "libraries missing from the image: $unresolved"
fi

log "building $IMAGE with buildah"
"${BUILDAH[@]}" bud --isolation chroot --layers=false -t "$IMAGE" -f "$VIGIL_ROOT/deploy/Containerfile" "$context"
"${BUILDAH[@]}" images "$IMAGE"

[[ "${1:-}" == --test ]] || exit 0

log "running the image against a local broker"
export VIGIL_BROKER_NAME=image
port="$(scripts/broker.sh start)"
trap 'scripts/broker.sh stop >/dev/null 2>&1 || true; "${BUILDAH[@]}" rm vigil-image-test >/dev/null 2>&1 || true' EXIT
brokers="127.0.0.1:$port"
"$BIN" create-topics --topology topologies/card-payments.yaml --brokers "$brokers" >/dev/null
"$BIN" generate --brokers "$brokers" --events 20000 --labels-topic payments-labels >/dev/null
"${BUILDAH[@]}" rm vigil-image-test >/dev/null 2>&1 || true
"${BUILDAH[@]}" from --name vigil-image-test "$IMAGE" >/dev/null
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
