#!/usr/bin/env bash
# Build the offline server image IMAGE names, with the script that makes it:
#   dolly-mysql:*                 docker/build-mysql-image.sh (Debian sid)
#   dolly-mariadb:11.8            docker/build-mariadb-image.sh, SUITE=trixie
#   anything else                 docker/build-mariadb-image.sh (bookworm)
# Idempotent like the scripts it runs (FORCE=1 rebuilds).
#
# Usage: docker/build-server-image.sh IMAGE
set -euo pipefail
DIR="$(dirname "${BASH_SOURCE[0]}")"
IMAGE="${1:?usage: docker/build-server-image.sh IMAGE}"
case "$IMAGE" in
    dolly-mysql:*) exec "$DIR/build-mysql-image.sh" "$IMAGE" ;;
    dolly-mariadb:11.8) SUITE="${SUITE:-trixie}" exec "$DIR/build-mariadb-image.sh" "$IMAGE" ;;
    *) exec "$DIR/build-mariadb-image.sh" "$IMAGE" ;;
esac
