#!/usr/bin/env bash
# Mounts a loop-file btrfs with quotas enabled at DIR (default
# /srv/dolly-btrfs): reflink clones plus per-instance disk limits (each
# instance datadir a subvolume with a qgroup limit, `instance_max_disk`).
# Idempotent (an existing mount gets quotas enabled); root only. Prints the
# mount point.
#
# Usage: scripts/btrfs-fs.sh [DIR] [SIZE]
set -euo pipefail
DIR="${1:-/srv/dolly-btrfs}"
SIZE="${2:-8G}"
IMG="${DIR%/}.img"

if ! mountpoint -q "$DIR"; then
    if [[ $(id -u) != 0 ]]; then
        echo "not root: cannot mount a btrfs filesystem at $DIR" >&2
        exit 1
    fi
    command -v mkfs.btrfs >/dev/null || { echo "mkfs.btrfs missing: apt-get install btrfs-progs" >&2; exit 1; }
    mkdir -p "$DIR"
    if [[ ! -f "$IMG" ]]; then
        truncate -s "$SIZE" "$IMG"
        mkfs.btrfs -q "$IMG" >&2
    fi
    mount -o loop "$IMG" "$DIR"
fi
if [[ $(stat -f -c %T "$DIR") != btrfs ]]; then
    echo "$DIR is mounted but not btrfs" >&2
    exit 1
fi
btrfs quota enable "$DIR"
echo "$DIR"
