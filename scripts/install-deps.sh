#!/usr/bin/env bash
# Installs the Debian packages dolly's scripts and tests need, if missing:
# debootstrap (offline image build), mariadb-client (CLI and tests),
# xfsprogs (reflink test filesystem), btrfs-progs (the per-instance disk
# limit's test filesystem), chromium and chromium-driver (the web
# UI's browser tests, crates/server/tests/engine/ui.rs), docker-compose and
# systemd (deploy.rs checks the compose file and the units with them).
# Idempotent.
set -euo pipefail
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v mariadb >/dev/null || need+=(mariadb-client)
command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
command -v mkfs.btrfs >/dev/null || need+=(btrfs-progs)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v systemd-analyze >/dev/null || need+=(systemd)
if ((${#need[@]})); then
    if [[ $(id -u) != 0 ]]; then
        echo "missing packages: ${need[*]} (run as root or install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
