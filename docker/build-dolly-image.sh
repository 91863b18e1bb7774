#!/usr/bin/env bash
# Build the dolly image (dollyd, the dolly CLI and the forwarders' relay
# dolly-forward) without a container registry.
#
# debootstrap a minimal Debian bookworm (plus ca-certificates) from the mirror
# this machine's apt already uses, copy in the locally built release binaries
# and `docker import` it. One image for every subcommand: the entrypoint is
# dollyd, the default command `serve`; run `update` or `reap` by giving the
# command (`docker run ... dolly:latest update`).
# Idempotent: does nothing when the image already exists (FORCE=1 rebuilds;
# rebuild after changing the binaries).
#
# Machines with a registry can use docker/Dockerfile instead.
#
# Usage: docker/build-dolly-image.sh [IMAGE]   (default: dolly:latest)
set -euo pipefail

IMAGE="${1:-${DOLLY_SELF_IMAGE:-dolly:latest}}"
SUITE="${SUITE:-bookworm}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "image $IMAGE already present"
    exit 0
fi

# shellcheck source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_debootstrap

DOLLYD="$TARGET_DIR/release/dollyd"
DOLLY="$TARGET_DIR/release/dolly"
FORWARD="$TARGET_DIR/release/dolly-forward"
if [[ ! -x "$DOLLYD" || ! -x "$DOLLY" || ! -x "$FORWARD" || "${BUILD:-0}" == 1 ]]; then
    echo "building the release binaries"
    (cd "$ROOT" && cargo build --release -p dolly-server -p dolly-cli)
fi

MIRROR="$(mirror)"
WORK="$(mktemp -d /var/tmp/dolly-image.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"

echo "building $IMAGE from $SUITE packages at $MIRROR"
debootstrap --variant=minbase --include=ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 40 "$WORK/debootstrap.log" >&2
    exit 1
}

rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/*
install -m 0755 "$DOLLYD" "$ROOTFS/usr/local/bin/dollyd"
# Next to dollyd: dollyd serves it at GET /cli/dolly (cli_path's default).
install -m 0755 "$DOLLY" "$ROOTFS/usr/local/bin/dolly"
# Next to dollyd: the relay forwarders run (forward_path's default); dollyd
# copies it into the data folder, which forwarders mount.
install -m 0755 "$FORWARD" "$ROOTFS/usr/local/bin/dolly-forward"
mkdir -p "$ROOTFS/var/lib/dolly" "$ROOTFS/etc/dolly"

# dollyd runs as root inside: it gives datadirs to the MariaDB image's mysql
# user (chown) and removes them again, and talks to the engine socket.
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV DOLLY_DATA_DIR=/var/lib/dolly' \
    --change 'EXPOSE 5001' \
    --change 'ENTRYPOINT ["/usr/local/bin/dollyd"]' \
    --change 'CMD ["serve"]' \
    --change 'LABEL org.opencontainers.image.title=dolly' \
    - "$IMAGE" >/dev/null
echo "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
