#!/usr/bin/env bash
# Build a MySQL server image without a container registry.
#
# debootstrap a minimal Debian unstable (SUITE, default sid: MySQL 9) with
# mysql-server and mysql-client from the mirror this machine's apt already
# uses, then `docker import` it. (Forwarders run dolly's own relay,
# dolly-forward, mounted from the data folder: the image needs nothing
# for them but its glibc.) Idempotent: does nothing when the image
# already exists (FORCE=1 rebuilds).
#
# Usage: docker/build-mysql-image.sh [IMAGE]   (default: dolly-mysql:9)
set -euo pipefail

IMAGE="${1:-dolly-mysql:9}"
SUITE="${SUITE:-sid}"

# shellcheck source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_server_image "$IMAGE" "$SUITE" dolly-mysql '["mysqld", "--user=mysql"]' \
    mysql-server mysql-client
