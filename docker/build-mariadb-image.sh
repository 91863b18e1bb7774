#!/usr/bin/env bash
# Build a MariaDB server image without a container registry.
#
# debootstrap a minimal Debian (SUITE, default bookworm: MariaDB 10.11;
# SUITE=trixie: MariaDB 11.8) with mariadb-server, mariadb-client and
# mariadb-backup (physical backups as an import source) from
# the mirror this machine's apt already uses, then `docker import` it.
# Idempotent: does nothing when the image already exists (FORCE=1 rebuilds).
#
# Usage: docker/build-mariadb-image.sh [IMAGE]   (default: dolly-mariadb:10.11)
#        SUITE=trixie docker/build-mariadb-image.sh dolly-mariadb:11.8
set -euo pipefail

IMAGE="${1:-${DOLLY_IMAGE:-dolly-mariadb:10.11}}"
SUITE="${SUITE:-bookworm}"

# shellcheck source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_server_image "$IMAGE" "$SUITE" dolly-mariadb '["mariadbd", "--user=mysql"]' \
    mariadb-server mariadb-client mariadb-backup
