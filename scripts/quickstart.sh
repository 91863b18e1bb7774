#!/usr/bin/env bash
# Brings dollyd up on this machine with the example dump imported:
# installs what is missing, builds the MariaDB image offline, builds dollyd,
# dolly-forward (next to dollyd: forwarders run it) and dolly, mounts a reflink-capable data folder (root), imports
# examples/dumps, then serves on port 5001 (Ctrl-C stops it; instances stay).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
export DOLLY_IMAGE="${DOLLY_IMAGE:-dolly-mariadb:10.11}"
docker/build-mariadb-image.sh "$DOLLY_IMAGE"
cargo build --release -p dolly-server -p dolly-cli

export DOLLY_DATA_DIR="${DOLLY_DATA_DIR:-/srv/dolly}"
if [[ $(id -u) == 0 ]] && ! mountpoint -q "$DOLLY_DATA_DIR"; then
    scripts/reflink-fs.sh "$DOLLY_DATA_DIR" 20G >/dev/null
fi
mkdir -p "$DOLLY_DATA_DIR/dumps"
cp -n examples/dumps/* "$DOLLY_DATA_DIR/dumps/" 2>/dev/null || true

target/release/dollyd update
echo
echo "dollyd serves on :5001. Try:  target/release/dolly new shop alice"
exec target/release/dollyd serve
