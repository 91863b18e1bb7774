#!/usr/bin/env bash
# Build a MariaDB server image without a container registry.
#
# debootstrap a minimal Debian bookworm with mariadb-server and mariadb-client
# from the mirror this machine's apt already uses, then `docker import` it.
# Idempotent: does nothing when the image already exists (FORCE=1 rebuilds).
#
# Usage: docker/build-mariadb-image.sh [IMAGE]   (default: dolly-mariadb:10.11)
set -euo pipefail

IMAGE="${1:-${DOLLY_IMAGE:-dolly-mariadb:10.11}}"
SUITE="${SUITE:-bookworm}"

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "image $IMAGE already present"
    exit 0
fi

# shellcheck source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_debootstrap

MIRROR="$(mirror)"
WORK="$(mktemp -d /var/tmp/dolly-image.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"

echo "building $IMAGE from $SUITE packages at $MIRROR"
debootstrap --variant=minbase --include=mariadb-server,mariadb-client \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 40 "$WORK/debootstrap.log" >&2
    exit 1
}

# Slim the tree: package caches, docs, the datadir the package created
# (dolly initialises its own datadirs with mariadb-install-db).
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/var/lib/mysql/*
mkdir -p "$ROOTFS/run/mysqld"
chroot "$ROOTFS" chown mysql:mysql /run/mysqld /var/lib/mysql

tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'EXPOSE 3306' \
    --change 'CMD ["mariadbd", "--user=mysql"]' \
    --change 'LABEL org.opencontainers.image.title=dolly-mariadb' \
    - "$IMAGE" >/dev/null
echo "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
