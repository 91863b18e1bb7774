#!/usr/bin/env bash
# Mounts a loop-file XFS with reflink=1 at DIR (default /srv/dolly-test) so
# tests and benchmarks exercise copy-on-write clones. Idempotent; root only.
# Prints the mount point.
#
# Usage: scripts/reflink-fs.sh [DIR] [SIZE]
set -euo pipefail
DIR="${1:-/srv/dolly-test}"
SIZE="${2:-8G}"
IMG="${DIR%/}.img"

if mountpoint -q "$DIR"; then
    echo "$DIR"
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    echo "not root: cannot mount a reflink filesystem at $DIR" >&2
    exit 1
fi
command -v mkfs.xfs >/dev/null || { echo "mkfs.xfs missing: apt-get install xfsprogs" >&2; exit 1; }
mkdir -p "$DIR"
if [[ ! -f "$IMG" ]]; then
    truncate -s "$SIZE" "$IMG"
    mkfs.xfs -q -m reflink=1 "$IMG"
fi
mount -o loop "$IMG" "$DIR"
echo "$DIR"
